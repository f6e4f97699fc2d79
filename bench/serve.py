"""The served clean room under load: concurrent signed clients versus the same calls locally.

    python -m bench.serve [--quick] [--rows N] [--clients C] [--requests R] [--workers W]

N concurrent signed clients on loopback against the same analyses run locally in the library.
Builds a two-party collaboration of synthetic token files (with identity keys), starts
`cleanroom serve` as its own process on a free loopback port, and lets C client threads each
send R signed requests, cycling through three analyses: the overlap (answered from the cached
resolution), the overlap by tier × segment with a spend sum, and an analyst SQL join. Prints,
per analysis, the median of the same call made locally on an opened room (warm cache) and the
server's p50 / p95 latency, then the total throughput and the number of errors (the target:
zero errors and a p95 of the cached overlap of at most 1 s with 8 clients).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa

from cleanroom.analyst import run_query
from cleanroom.config import write_toml
from cleanroom.engine import open_collaboration
from cleanroom.server import ServerClient
from protocols import PROTOCOL_HMAC, Manifest, write_identity, write_token_file

from ._common import median_seconds

CID = "6f1c2a9e-0d5b-4f7e-9a51-2c4d8e7b1f03"
SQL = ("SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS spend "
       "FROM airline a JOIN brand b ON a.entity_id = b.entity_id GROUP BY a.tier, b.segment")
ANALYSES = ("overlap (cached)", "overlap by tier x segment", "query (SQL join)")


def _tokens(kind: str, ids: list[int]) -> pa.Array:
    return pa.array([hashlib.sha256(f"{kind}:{i}".encode()).digest() for i in ids],
                    pa.binary(32))


def _party(path: Path, party: str, ids: list[int], attrs: dict[str, pa.Array]) -> None:
    cols = {"row_id": pa.array(range(len(ids)), pa.int64()), "email": _tokens("email", ids),
            "phone": _tokens("phone", [i if i % 2 else -i - 1 for i in ids])}
    manifest = Manifest(party=party, collaboration_id=CID, protocol=PROTOCOL_HMAC,
                        key_fingerprint="bench0000fingerprint", profile="strict", region="US",
                        row_count=len(ids), identifiers={"email": {"kinds": ["email"]},
                                                         "phone": {"kinds": ["phone"]}},
                        attributes={n: str(a.type) for n, a in attrs.items()})
    write_token_file(pa.table({**cols, **attrs}), manifest, path)


def _policy(dims: list[str], column: str, minimum: int) -> dict[str, Any]:
    return {"analysis_rule": "aggregation", "join_columns": ["email", "phone"],
            "dimension_columns": dims,
            "aggregate_columns": [{"columns": [column], "functions": ["SUM", "AVG"]}],
            "output_constraints": [{"column": "entity_id", "type": "COUNT_DISTINCT",
                                    "minimum": minimum}],
            "allowed_result_receivers": ["airline"]}


def build(root: Path, rows: int) -> Path:
    """The operator's folder (collaboration, policies, token files) and the identity keys."""
    op = root / "operator"
    op.mkdir(parents=True)
    airline = list(range(rows))
    brand = [j if j % 10 < 3 else rows + j for j in range(rows)]  # 30% in both
    _party(op / "airline.tokens.parquet", "airline", airline, {
        "tier": pa.array([("gold", "silver", "blue")[i % 3] for i in airline]),
        "home_airport": pa.array([f"A{i % 40}" for i in airline]),
        "miles": pa.array([i % 9000 for i in airline], pa.int64())})
    _party(op / "brand.tokens.parquet", "brand", brand, {
        "segment": pa.array([("sports", "travel", "home", "golf")[j % 4] for j in range(rows)]),
        "spend": pa.array([float(j % 300) for j in range(rows)], pa.float64())})
    for who in ("airline", "brand", "operator"):
        write_identity(root / who)
        shutil.copy(root / f"{who}.pub", op / f"{who}.pub")
    write_toml(op / "airline.policy.toml", _policy(["tier", "home_airport"], "miles", 50))
    write_toml(op / "brand.policy.toml", _policy(["segment"], "spend", 50))
    write_toml(op / "collaboration.toml", {
        "collaboration": {"id": CID, "name": "bench", "audit_log": "audit.jsonl"},
        "members": {"airline": {"can_query": True, "can_receive_results": True,
                                "identity": "airline.pub"},
                    "brand": {"can_query": False, "can_receive_results": True,
                              "identity": "brand.pub"}},
        "operator": {"identity": "operator.pub"},
        "tables": {p: {"owner": p, "tokens": f"{p}.tokens.parquet",
                       "policy": f"{p}.policy.toml"} for p in ("airline", "brand")},
        "matching": {"rules": ["email", "phone"], "max_records_per_token": 5}})
    return op / "collaboration.toml"


def _call(c: ServerClient, kind: int) -> Any:
    if kind == 0:
        return c.overlap()
    if kind == 1:
        return c.overlap(by=["airline.tier", "brand.segment"], metrics=["SUM(brand.spend)"])
    return c.query(SQL)


def start_server(collab: Path, key: Path, workers: int) -> tuple[subprocess.Popen[str], str]:
    """`cleanroom serve` on a free loopback port; its process and URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cleanroom.cli import main; main()", "serve", str(collab),
         "--identity", str(key), "--port", "0", "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://\S+?(?= \()", line)
    if match is None:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise SystemExit(f"the server did not start: {line}{err[-800:]}")
    return proc, match.group(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small size (20,000 rows per party, 8 clients x 6 requests)")
    ap.add_argument("--rows", type=int, default=None, help="rows per party (default 200,000)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    ap.add_argument("--requests", type=int, default=None,
                    help="requests per client (default 24; --quick 6)")
    ap.add_argument("--workers", type=int, default=4, help="server workers (default 4)")
    ap.add_argument("--runs", type=int, default=5, help="local runs per analysis (median)")
    args = ap.parse_args()
    rows = args.rows or (20_000 if args.quick else 200_000)
    per_client = args.requests or (6 if args.quick else 24)
    with tempfile.TemporaryDirectory(prefix="cleanroom-bench-serve-") as tmp:
        root = Path(tmp)
        collab = build(root, rows)
        local = root / "local"
        shutil.copytree(collab.parent, local)  # local runs keep their own (unsigned) log
        print(f"rows per party: {rows:,}; clients: {args.clients} x {per_client} requests; "
              f"server workers: {args.workers}; cpus: {os.cpu_count()}; load average at "
              f"start: {os.getloadavg()[0]:.2f}", flush=True)
        with open_collaboration(local / collab.name) as room:
            room.resolution()
            local_calls = [
                lambda: room.overlap("airline"),
                lambda: room.overlap("airline", by=["airline.tier", "brand.segment"],
                                     metrics=["SUM(brand.spend)"]),
                lambda: run_query(room, "airline", SQL)]
            local_ms = [1000 * median_seconds(f, args.runs) for f in local_calls]
        proc, url = start_server(collab, root / "operator.key", args.workers)
        try:
            with ServerClient(url, root / "airline.key", keep_receipts=False) as c:
                answers = [_call(c, k) for k in range(3)]  # warm-up: resolution, caches
                with open_collaboration(local / collab.name) as room:
                    assert answers[0] == room.overlap("airline").to_dict(), "answers differ"
            latencies: list[list[float]] = [[], [], []]
            errors: list[str] = []
            lock = threading.Lock()
            barrier = threading.Barrier(args.clients)

            def client(i: int) -> None:
                with ServerClient(url, root / "airline.key", keep_receipts=False) as c:
                    c.hello()
                    barrier.wait(timeout=60)
                    for k in range(per_client):
                        kind = (i + k) % 3
                        start = time.perf_counter()
                        try:
                            _call(c, kind)
                        except Exception as exc:  # counted and reported, never raised
                            with lock:
                                errors.append(type(exc).__name__)
                            continue
                        with lock:
                            latencies[kind].append(time.perf_counter() - start)

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(client, range(args.clients)))
            wall = time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    total = args.clients * per_client
    print(f"{'analysis':<28}{'local median':>14}{'server p50':>13}{'server p95':>13}"
          f"{'requests':>10}")
    for name, ms, lat in zip(ANALYSES, local_ms, latencies, strict=True):
        if not lat:
            print(f"{name:<28}{ms:>11.1f} ms{'—':>13}{'—':>13}{0:>10}")
            continue
        qs = statistics.quantiles(lat, n=20, method="inclusive") if len(lat) > 1 else lat * 19
        print(f"{name:<28}{ms:>11.1f} ms{1000 * statistics.median(lat):>10.1f} ms"
              f"{1000 * qs[18]:>10.1f} ms{len(lat):>10}")
    print(f"all: {total} requests in {wall:.2f} s = {total / wall:.1f} requests/s with "
          f"{args.clients} clients, {len(errors)} errors"
          + (f" ({', '.join(sorted(set(errors)))})" if errors else ""))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
