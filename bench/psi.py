"""PSI end to end (party A, party B and the engine role on this machine) versus OpenMined PSI.

    python -m bench.psi                 # 100k x 100k, 3 runs each, medians
    python -m bench.psi --quick         # 10k x 10k
    python -m bench.psi --size 1000000 --repeat 1

cleanroom: both parties normalize, hash to curve25519 (RFC 9380) and blind their emails
(`psi_blind_file`), re-blind each other's round-1 file (`psi_reblind_file`), and the engine
finishes both token files (`psi_finish_file`); the intersection is then read with DuckDB.
OpenMined PSI 2.0 (P-256, C++): server setup message (GCS, fpr 1e-9), client request, server
response, client intersection — one process, as its Python API runs. Both get the same
normalized e-mail sets; the intersections must be equal. Throughput = (|A| + |B|) / seconds.
OpenMined is optional (`pip install openmined-psi`, not a project dependency).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

import protocols
from bench._common import median_seconds
from protocols import hazmat

COLLAB = "0b7c3f4e-5a61-4d2b-9c8e-7f1a2b3c4d5e"
_FIRST = ("james", "mary", "wei", "fatima", "lukas", "sofia", "arjun", "yuki", "olga", "diego",
          "chloe", "kwame", "elena", "omar", "hannah", "mateo", "aiko", "noah", "priya", "liam")
_LAST = ("smith", "garcia", "chen", "muller", "rossi", "kim", "okafor", "silva", "novak",
         "haddad", "jensen", "tanaka", "dubois", "kowalski", "nguyen", "brown", "patel")
_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "web.de", "free.fr",
            "hotmail.co.uk", "acme-corp.com")


def emails(ids: np.ndarray) -> list[str]:
    """Deterministic, realistic-looking, distinct e-mail addresses for person ids."""
    return [f"{_FIRST[i % 20]}.{_LAST[(i // 20) % 17]}{i}@{_DOMAINS[(i * 7) % 8]}"
            for i in ids.tolist()]


def make_sets(n: int) -> tuple[list[str], list[str]]:
    """A has persons 0..n-1, B has n/2..3n/2-1, both shuffled: |A ∩ B| = n/2."""
    rng = np.random.default_rng(20261129)
    a = emails(rng.permutation(np.arange(0, n)))
    b = emails(rng.permutation(np.arange(n // 2, n // 2 + n)))
    return a, b


def cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def run_cleanroom(a: list[str], b: list[str], work: Path) -> tuple[float, float, set[str]]:
    """Wall and CPU seconds of the whole three-role flow, and the intersection (A's e-mails)."""
    for name, items in (("a", a), ("b", b)):
        pacsv.write_csv(pa.table({"email": items, "uid": [str(i) for i in range(len(items))]}),
                        work / f"{name}.csv")
    ka, kb = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    t0, c0 = time.perf_counter(), cpu_seconds()
    for name, key in (("a", ka), ("b", kb)):
        protocols.psi_blind_file(work / f"{name}.csv", party=name, key=key,
                                 collaboration_id=COLLAB, ids=[("email", "email")],
                                 attrs=["uid"], out_round1=work / f"{name}.r1",
                                 out_attrs=work / f"{name}.attrs")
    protocols.psi_reblind_file(work / "a.r1", key=kb, out=work / "a.r2")
    protocols.psi_reblind_file(work / "b.r1", key=ka, out=work / "b.r2")
    for name, peer in (("a", "b"), ("b", "a")):
        protocols.psi_finish_file(round2=work / f"{name}.r2", attrs=work / f"{name}.attrs",
                                  party=name, out=work / f"{name}.tokens.parquet",
                                  peer_round2=work / f"{peer}.r2")
    uids = duckdb.sql(
        "SELECT a.uid FROM read_parquet(?) a JOIN read_parquet(?) b ON a.email = b.email",
        params=[str(work / "a.tokens.parquet"), str(work / "b.tokens.parquet")],
    ).fetchall()
    return time.perf_counter() - t0, cpu_seconds() - c0, {a[int(u)] for (u,) in uids}


def run_openmined(a: list[str], b: list[str]) -> tuple[float, float, set[str]] | None:
    """Wall and CPU seconds of OpenMined PSI (A client, B server), or None if not installed."""
    try:
        import private_set_intersection.python as om
    except ImportError:
        return None
    t0, c0 = time.perf_counter(), cpu_seconds()
    client = om.client.CreateWithNewKey(True)
    server = om.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(a), b, om.DataStructure.GCS)
    response = server.ProcessRequest(client.CreateRequest(a))
    idx = client.GetIntersection(setup, response)
    return time.perf_counter() - t0, cpu_seconds() - c0, {a[i] for i in idx}


def components(n: int = 4000) -> None:
    """Per-element cost of the building blocks, one core."""
    msgs = [e.encode() for e in emails(np.arange(n))]
    dst = b"cleanroom-psi-v1:bench:email"
    key = X25519PrivateKey.generate()

    def per(fn, count: int) -> float:
        """Median microseconds per element over three runs."""
        return median_seconds(fn, 3) / count * 1e6

    ro = per(lambda: hazmat.hash_to_curve_u_many(msgs, dst, hazmat.SUITE_RO), n)
    nu = per(lambda: hazmat.hash_to_curve_u_many(msgs, dst, hazmat.SUITE_NU), n)
    ref = per(lambda: [hazmat.hash_to_curve(m, dst) for m in msgs[:200]], 200)
    pts = hazmat.hash_to_curve_u_many(msgs, dst)
    x = per(lambda: [key.exchange(X25519PublicKey.from_public_bytes(p)) for p in pts], n)
    oc = per(lambda: hazmat.u_on_curve(pts), n)
    print(f"components, one core, us/element: hash_to_curve RO {ro:.1f} (gmpy2) vs "
          f"{ref:.1f} (pure-Python reference, {ref / ro:.1f}x); NU {nu:.1f}; X25519 {x:.1f}; "
          f"on-curve check {oc:.1f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k x 10k")
    ap.add_argument("--size", type=int, default=100_000, help="elements per party")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side (median)")
    ap.add_argument("--no-openmined", action="store_true", help="skip the baseline")
    args = ap.parse_args(argv)
    n = 10_000 if args.quick else args.size
    print(f"PSI {n:,} x {n:,} (|A ∩ B| = {n // 2:,}), {os.cpu_count()} cores, "
          f"median of {args.repeat}, load average {os.getloadavg()[0]:.1f}")
    components()
    a, b = make_sets(n)
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            work = Path(tmp) / f"run{r}"
            work.mkdir()
            sec, cpu, inter = run_cleanroom(a, b, work)
            assert len(inter) == n // 2, "cleanroom PSI found a wrong intersection"
            ours.append((sec, cpu))
            print(f"  cleanroom run {r + 1}: {sec:.2f} s wall, {cpu:.2f} s CPU")
            if not args.no_openmined:
                got = run_openmined(a, b)
                if got is None:
                    print("  OpenMined PSI is not installed (pip install openmined-psi): "
                          "no baseline")
                    args.no_openmined = True
                    continue
                base.append(got[:2])
                same = got[2] == inter
                print(f"  openmined run {r + 1}: {got[0]:.2f} s wall, {got[1]:.2f} s CPU, "
                      f"intersection {'equal' if same else 'DIFFERENT'} ({len(got[2]):,})")
                assert same, "intersections differ"
    w_ours, c_ours = (statistics.median(x) for x in zip(*ours, strict=True))
    print(f"cleanroom PSI (3 roles, {os.cpu_count()} cores): {w_ours:.2f} s wall = "
          f"{2 * n / w_ours:,.0f} elements/s; {c_ours:.2f} CPU s")
    if base:
        w_base, c_base = (statistics.median(x) for x in zip(*base, strict=True))
        print(f"OpenMined PSI 2.0 (P-256, one process): {w_base:.2f} s wall = "
              f"{2 * n / w_base:,.0f} elements/s; {c_base:.2f} CPU s")
        print(f"throughput ratio cleanroom / OpenMined: {w_base / w_ours:.2f}x wall-clock "
              f"(target >= 3x), {c_base / c_ours:.2f}x per CPU second")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other jobs share these cores)")


if __name__ == "__main__":
    main()
