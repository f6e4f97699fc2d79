"""Engine: overlap and one segment analysis versus pandas merge + groupby; 3-key resolution.

    python -m bench.engine                  # 10M x 10M token rows
    python -m bench.engine --quick          # 1M x 1M
    python -m bench.engine --rows 3000000 --runs 3 --memory-limit 4GB

Synthetic token files (32-byte tokens; airline has persons 0..n-1, the brand 0.7n..1.7n-1, so
30% of each overlaps), airline with two dimensions (tier, home_airport) and one metric
(miles), the brand with a segment and spend.

1. Single key (email): cleanroom opens the collaboration, resolves entities (cold, no cache),
   runs `overlap` and `overlap --by airline.tier --metric 'SUM(airline.miles)'`; "warm" is the
   same two analyses on a fresh engine with the resolution cache in place. The baseline is
   what an analyst would write in pandas: read both files, merge on the email token, count
   distinct, group by tier. Answers must be equal.
2. Three keys (email, phone, name_dob; missing values; 5% duplicate profiles within a table,
   linked only through phone): entity resolution time and rounds.

Medians of --runs runs (the pandas baseline --baseline-runs times), with the cold run's phases
(open, resolution, each analysis). DuckDB's memory limit is set and printed. The machine is
shared: numbers are noisy, so the load average is printed at start and end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import cleanroom
from cleanroom.config import write_toml
from protocols import MANIFEST_METADATA_KEY, PROTOCOL_HMAC, Manifest, atomic_path

COLLAB_ID = "2b9a0f3c-8e41-4c7d-a6f2-5d3e1b9c7a80"
CHUNK = 1_000_000
DUP = 1 << 40
_M1, _M2, _G = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), \
    np.uint64(0x9E3779B97F4A7C15)
TIERS = np.array(["blue", "silver", "gold", "platinum"])
AIRPORTS = np.array([f"A{i:02d}" for i in range(50)])
SEGMENTS = np.array([f"seg{i}" for i in range(8)])


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a bijection on uint64 (so word 0 never collides)."""
    with np.errstate(over="ignore"):
        z = x + _G
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def tokens(ids: np.ndarray, kind: int, valid: np.ndarray | None = None) -> pa.Array:
    """32-byte pseudo-tokens, distinct per (id, kind), nulls where not `valid`."""
    base = ids.astype(np.uint64) ^ (np.uint64(kind) << np.uint64(56))
    words = np.stack([_mix(base ^ (np.uint64(w) << np.uint64(52))) for w in range(4)], axis=1)
    buf = pa.py_buffer(np.ascontiguousarray(words).tobytes())
    mask = None
    if valid is not None:
        mask = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), len(ids), [mask, buf])


def write_party(path: Path, party: str, ids: np.ndarray, kinds: tuple[str, ...],
                attrs: Callable[[np.ndarray, np.random.Generator], dict[str, pa.Array]],
                seed: int, *, three_keys: bool) -> None:
    """Write a token file in chunks (bounded memory), manifest in the metadata."""
    rng = np.random.default_rng(seed)
    sample = attrs(ids[:1], rng)
    fields = [pa.field("row_id", pa.int64())] + [pa.field(k, pa.binary(32)) for k in kinds] + \
        [pa.field(n, a.type) for n, a in sample.items()]
    manifest = Manifest(
        party=party, collaboration_id=COLLAB_ID, protocol=PROTOCOL_HMAC,
        key_fingerprint="b3nchb3nchb3nch0", profile="strict", region="US",
        row_count=len(ids), identifiers={k: {"kinds": [k]} for k in kinds},
        attributes={n: str(a.type) for n, a in sample.items()})
    schema = pa.schema(fields, metadata={MANIFEST_METADATA_KEY: manifest.to_json().encode()})
    row_ids = rng.permutation(len(ids)).astype(np.int64) * 7 + 3
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        for s in range(0, len(ids), CHUNK):
            chunk = ids[s:s + CHUNK]
            cols: dict[str, pa.Array] = {"row_id": pa.array(row_ids[s:s + CHUNK])}
            if three_keys:
                # A duplicate profile (id + DUP) has its own email, the person's phone.
                person, dup = chunk % DUP, chunk >= DUP
                cols["email"] = tokens(chunk, 1, rng.random(len(chunk)) >= 0.10)
                cols["phone"] = tokens(person, 2, (rng.random(len(chunk)) >= 0.30) | dup)
                cols["name_dob"] = tokens(person, 3, (rng.random(len(chunk)) >= 0.20) & ~dup)
            else:
                cols["email"] = tokens(chunk, 1)
            cols.update(attrs(chunk, rng))
            w.write_table(pa.table(cols, schema=schema))


def airline_attrs(ids: np.ndarray, rng: np.random.Generator) -> dict[str, pa.Array]:
    return {"tier": pa.array(TIERS[ids % 4]), "home_airport": pa.array(AIRPORTS[ids % 50]),
            "miles": pa.array((ids % 1000) * 10, pa.int64())}


def brand_attrs(ids: np.ndarray, rng: np.random.Generator) -> dict[str, pa.Array]:
    return {"segment": pa.array(SEGMENTS[ids % 8]),
            "spend": pa.array(np.round(rng.random(len(ids)) * 100, 2))}


def _policy(joins: list[str], dimensions: list[str], column: str, functions: list[str],
            minimum: int, **extra: str) -> dict[str, object]:
    return {"analysis_rule": "aggregation", "join_columns": joins,
            "dimension_columns": dimensions,
            "aggregate_columns": [{"columns": [column], "functions": functions}],
            "output_constraints": [{"column": "entity_id", "type": "COUNT_DISTINCT",
                                    "minimum": minimum}], **extra}


def write_collab_files(d: Path, kinds: tuple[str, ...]) -> Path:
    """The two policies and the collaboration file, through the one TOML writer."""
    joins = list(kinds)
    write_toml(d / "airline.policy.toml",
               _policy(joins, ["tier", "home_airport"], "miles", ["SUM", "AVG"], 50,
                       join_required="query_runner"))
    write_toml(d / "brand.policy.toml", _policy(joins, ["segment"], "spend", ["SUM"], 100))
    return write_toml(d / "collab.toml", {
        "collaboration": {"id": COLLAB_ID, "name": "bench"},
        "members": {"airline": {"can_query": True, "can_receive_results": True},
                    "brand": {"can_receive_results": True}},
        "tables": {t: {"owner": t, "tokens": f"{t}.tokens.parquet",
                       "policy": f"{t}.policy.toml"} for t in ("airline", "brand")},
        "matching": {"rules": joins, "max_records_per_token": 5},
    })


def make_collab(d: Path, n: int, kinds: tuple[str, ...]) -> Path:
    """Both token files, policies and the collaboration file in `d` (reused if there)."""
    marker = d / f".complete-{n}"
    if marker.exists():
        return d / "collab.toml"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    a = rng.permutation(n).astype(np.int64)
    b = rng.permutation(np.arange(int(0.7 * n), int(0.7 * n) + n)).astype(np.int64)
    three = len(kinds) > 1
    if three:  # 5% of rows are second profiles of a person already in the table
        for ids in (a, b):
            pos = rng.choice(n, n // 20, replace=False)
            ids[pos] = ids[rng.choice(n, n // 20)] + DUP
    write_party(d / "airline.tokens.parquet", "airline", a, kinds, airline_attrs, 1,
                three_keys=three)
    write_party(d / "brand.tokens.parquet", "brand", b, kinds, brand_attrs, 2, three_keys=three)
    write_collab_files(d, kinds)
    marker.touch()
    return d / "collab.toml"


class Clock:
    """Wall-clock and CPU seconds (all threads of this process) of a block."""

    def __enter__(self) -> Clock:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def run_engine(collab: Path, memory: str, threads: int, *, cold: bool,
               phases: dict[str, list[float]] | None = None) -> tuple[Clock, Any]:
    """Time of overlap + one --by analysis (cold: including entity resolution); the wall
    seconds of each phase are appended to `phases`."""
    marks = [time.perf_counter()]
    with Clock() as c, cleanroom.open_collaboration(collab, memory_limit=memory,
                                                    threads=threads) as room:
        marks.append(time.perf_counter())
        room.resolution(refresh=cold)
        marks.append(time.perf_counter())
        plain = room.overlap("airline")
        marks.append(time.perf_counter())
        seg = room.overlap("airline", by=["airline.tier"], metrics=["SUM(airline.miles)"])
        marks.append(time.perf_counter())
    if phases is not None:
        names = ("open + verify", "resolution (cache key, resolve, cache write)",
                 "overlap", "overlap --by --metric")
        for name, t0, t1 in zip(names, marks[:-1], marks[1:], strict=True):
            phases.setdefault(name, []).append(t1 - t0)
    return c, (plain, seg)


def run_pandas(d: Path) -> tuple[Clock, Any]:
    """What an analyst would write: read, merge on the token, count distinct, group by."""
    with Clock() as c:
        out = _pandas(d)
    return c, out


def _pandas(d: Path) -> dict[str, Any]:
    a = pd.read_parquet(d / "airline.tokens.parquet", columns=["email", "tier", "miles"])
    b = pd.read_parquet(d / "brand.tokens.parquet", columns=["email"])
    m = a.merge(b, on="email", how="inner")
    out = {
        "airline_entities": a["email"].nunique(), "brand_entities": b["email"].nunique(),
        "overlap": m["email"].nunique(),
        "segments": m.groupby("tier").agg(entities=("email", "nunique"),
                                          miles=("miles", "sum")).sort_index(),
    }
    return out


def check_same(engine: Any, pandas: dict[str, Any]) -> None:
    """The engine's answers must equal the pandas answers exactly."""
    plain, seg = engine
    assert plain.tables["airline"]["entities"] == pandas["airline_entities"]
    assert plain.tables["brand"]["entities"] == pandas["brand_entities"]
    assert plain.overlap["entities"] == pandas["overlap"]
    want = [{"airline.tier": t, "entities": int(r.entities), "SUM(airline.miles)": int(r.miles)}
            for t, r in pandas["segments"].iterrows()]
    assert seg.segments == want, (seg.segments, want)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def show(label: str, clocks: list[Clock]) -> tuple[float, float]:
    """Print and return the medians of wall and CPU seconds."""
    w, c = med([x.wall for x in clocks]), med([x.cpu for x in clocks])
    runs = ", ".join(f"{x.wall:.2f}" for x in clocks)
    print(f"{label:44s} wall median {w:7.2f} s  cpu median {c:7.2f} s  (wall runs: {runs})")
    return w, c


def single_key(args: argparse.Namespace, n: int, base_runs: int, work: Path) -> None:
    """Overlap + one --by analysis versus pandas, same answers checked."""
    t = time.perf_counter()
    one = make_collab(work / "one_key", n, ("email",))
    print(f"generated single-key token files in {time.perf_counter() - t:.1f} s")
    cold, warm, pand = [], [], []
    result = None
    phases: dict[str, list[float]] = {}
    for _ in range(args.runs):
        s, result = run_engine(one, args.memory_limit, args.threads, cold=True, phases=phases)
        cold.append(s)
        s, _ = run_engine(one, args.memory_limit, args.threads, cold=False)
        warm.append(s)
    presult = None
    for _ in range(base_runs):
        s, presult = run_pandas(one.parent)
        pand.append(s)
    assert result is not None and presult is not None
    check_same(result, presult)
    print("answers equal: overlap "
          f"{result[0].overlap['entities']:,}, {len(result[1].segments)} tier segments")
    cw, cc = show("cleanroom cold (resolve + overlap + --by)", cold)
    ww, wc = show("cleanroom warm (cached resolution)", warm)
    pw, pc = show("pandas merge + groupby", pand)
    print("cold phases (wall median): " + "; ".join(
        f"{name} {med(xs):.2f} s" for name, xs in phases.items()))
    print(f"speed-up vs pandas (wall): cold {pw / cw:.1f}x, warm {pw / ww:.1f}x; "
          f"(cpu): cold {pc / cc:.1f}x, warm {pc / wc:.1f}x")


def three_keys(args: argparse.Namespace, n: int, work: Path) -> None:
    """Three-key entity resolution time."""
    t = time.perf_counter()
    three = make_collab(work / "three_keys", n, ("email", "phone", "name_dob"))
    print(f"generated three-key token files in {time.perf_counter() - t:.1f} s")
    times = []
    res = None
    for _ in range(args.runs):
        with cleanroom.open_collaboration(three, memory_limit=args.memory_limit,
                                          threads=args.threads) as room, Clock() as c:
            res = room.resolution(refresh=True)
        times.append(c)
    assert res is not None
    show("three-key entity resolution", times)
    print(f"  rounds {res.rounds}; entities {res.tables}; overlap {res.overlap_entities:,}; "
          f"links {res.links_by_rule}; ignored {res.ignored_tokens}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1M x 1M rows")
    ap.add_argument("--rows", type=int, default=None, help="rows per party (default 10M)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline-runs", type=int, default=None)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-resolution", action="store_true")
    ap.add_argument("--only-resolution", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    n = args.rows or (1_000_000 if args.quick else 10_000_000)
    base_runs = args.baseline_runs or (args.runs if n <= 2_000_000 else 1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-engine-"))
    print(f"rows per party: {n:,}; DuckDB memory_limit={args.memory_limit}, "
          f"threads={args.threads}; cpus={os.cpu_count()}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    if not args.only_resolution:
        single_key(args, n, base_runs, work)
    if not args.skip_resolution:
        three_keys(args, n, work)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(other processes share the cores: read the medians with it)")


if __name__ == "__main__":
    main()
