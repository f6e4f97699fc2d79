"""Audit log appends: one line written in place against the earlier design's rewrite of the
whole file, at growing log sizes.

    python -m bench.audit            1k, 10k and 50k entries
    python -m bench.audit --quick    1k and 5k entries

Baseline: the append the log used before (read the whole file, write it again with the new
line under a temporary name, rename), timed on a copy of the same log. Medians of --runs
appends at each size; the load average at start and end (the machine is shared).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
from pathlib import Path

from cleanroom import AuditLog
from protocols import atomic_path

from ._common import median_seconds

REQUEST = {"analysis": "overlap", "by": ["airline.tier", "brand.category"],
           "metrics": ["SUM(brand.spend)"]}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _append(log: AuditLog) -> None:
    log.record(member="airline", request=REQUEST, decision="accepted",
               rule="output_constraints", rows_returned=16)


def _rewrite(path: Path, line: bytes) -> None:
    """The earlier append: the whole log read and written again, atomically."""
    old = path.read_bytes()
    with atomic_path(path, 0o600) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(old)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1k and 5k entries")
    ap.add_argument("--runs", type=int, default=25, help="appends timed at each size (median)")
    args = ap.parse_args(argv)
    sizes = [1_000, 5_000] if args.quick else [1_000, 10_000, 50_000]
    print(f"audit log appends, median of {args.runs}; load average {_load()}")
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        log = AuditLog(work / "audit.jsonl")
        count = 0
        for size in sizes:
            while count < size:
                _append(log)
                count += 1
            ours = median_seconds(functools.partial(_append, log), args.runs)
            count += args.runs
            copy = work / "rewrite.jsonl"
            shutil.copyfile(log.path, copy)
            line = log.path.read_bytes().splitlines(keepends=True)[-1]
            base = median_seconds(functools.partial(_rewrite, copy, line), args.runs)
            print(f"  {size:>7,} entries ({log.path.stat().st_size / 2**20:5.1f} MiB): append "
                  f"{ours * 1e3:6.2f} ms, rewrite {base * 1e3:6.2f} ms = {base / ours:5.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
