"""Run every benchmark, each against its baseline, one after the other.

    python -m bench            full sizes (minutes; 1M-row and 10M-row runs)
    python -m bench --quick    small sizes, a smoke run of every benchmark
    python -m bench engine psi only the named ones
    python -m bench.X --help   one benchmark's own options
"""

from __future__ import annotations

import argparse
import subprocess
import sys

BENCHES = ("normalize", "tokenize", "engine", "query", "psi", "platform_export", "c3r", "serve",
           "match", "privacy", "audit")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0],
        epilog=f"benchmarks: {', '.join(BENCHES)}")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench.{name}{' --quick' if args.quick else ''} ===", flush=True)
        cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if args.quick else [])
        if subprocess.call(cmd) != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
