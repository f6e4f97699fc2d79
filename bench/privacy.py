"""Privacy: what difference checks and differential mode add to an analysis; a difference
check against a large memory.

    python -m bench.privacy                 # 10M x 10M token rows
    python -m bench.privacy --quick         # 1M x 1M, 2,000 remembered rows
    python -m bench.privacy --rows 3000000 --runs 5 --remembered 10000

1. Overlap by tier x segment with SUM(brand.spend) (`overlap --by airline.tier --by
   brand.segment --metric 'SUM(brand.spend)'`) on bench.engine's synthetic token files,
   entity resolution cached, side by side in one run:
     threshold mode without difference checks (the baseline),
     threshold mode with difference checks (the default; every row is checked against the
     memory, where earlier rounds left it, and found identical),
     differential mode (ε charged in the ledger, contributions cut, noise on every figure;
     bench.engine's people have one record per table, so the cut, listed once per
     resolution, drops none and costs nothing per answer).
   a. Steady state, the checks' target figure: one warmed room (a server's) answering with
      its checks switched off and on in turn, each checked answer listing its people anew
      (its kept answers forgotten), so both modes share one engine instance.
   b. Fresh engine instances every round, opened in rotated order (in one process, the
      instance opened later on the same files can be 25-40% slower for its whole life, even
      between two rooms without checks), each warmed by another question; the question
      asked first (with checks: the instance's first listing of this query's millions of
      ids, which costs more than later ones) and again (a long-lived room reuses the
      people it listed).
      Differential mode's target figure.
   c. One process per room, without and with checks in turn: the question asked first in
      the process (a one-shot `cleanroom overlap`, the resolution already cached) and again,
      with no other engine instance in the process.
   The one-time cost of the stable person ids (built once per resolution) is printed apart.
   Target: each mode at most 20% over the baseline (the median of per-round ratios: pairing
   each run with the baseline's of its round cancels the shared machine's drift).
2. A difference check of fresh rows against a memory of --remembered rows (sets of 50 to
   50,000 people out of 10M, written to disk), in one table's memory and through the
   engine's guard (two tables): milliseconds per output row, from a fresh process's first
   check (the memory read from disk) and from a warm one. Target: at most 5 ms per row.

Medians of --runs runs, wall and CPU time; the load average at start and end (the machine
is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import cleanroom
from cleanroom.config import read_toml, write_toml
from cleanroom.privacy import DifferenceGuard, DifferenceMemory, people_set

from ._common import timed
from .engine import make_collab

BY = ["airline.tier", "brand.segment"]
METRICS = ["SUM(brand.spend)"]
MINIMUM = 100  # the brand's minimum in bench.engine's policies (the higher one)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _differential_copy(collab: Path) -> Path:
    """The same token files (hard links) under a differential-mode collaboration, with the
    brand's spend bounded; its own folder, so its privacy state is its own."""
    src = collab.parent
    dst = src / "differential"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir()
    for name in ("airline.tokens.parquet", "brand.tokens.parquet", "airline.policy.toml"):
        os.link(src / name, dst / name)
    brand = read_toml(str(src / "brand.policy.toml"))
    brand["aggregate_columns"][0]["bounds"] = [0, 100]
    write_toml(dst / "brand.policy.toml", brand)
    doc = read_toml(str(collab))
    doc["privacy"] = {"mode": "differential", "epsilon": 1000.0, "epsilon_per_query": 0.5}
    return write_toml(dst / "collab.toml", doc)


def analyses(n: int, runs: int, memory: str, threads: int, work: Path) -> None:
    """Part 1: the three modes side by side."""
    t = time.perf_counter()
    collab = make_collab(work / "one_key", n, ("email",))
    print(f"token files ready in {time.perf_counter() - t:.1f} s")
    state = collab.parent / cleanroom.engine.STATE_DIR
    shutil.rmtree(state, ignore_errors=True)
    dp = _differential_copy(collab)
    modes = {"threshold, no difference checks": (collab, {"difference_checks": False}),
             "threshold + difference checks": (collab, {}),
             "differential mode": (dp, {})}

    def open_rooms(first: int = 0) -> dict[str, Any]:
        """The modes' rooms, opened from the `first`th mode on (rotated): in one process, an
        instance opened after another on the same files runs the same query up to 40%
        slower for its whole life (two rooms without checks show it as well), so every mode
        is opened first, second and last in turn."""
        names = list(modes)
        names = names[first % len(names):] + names[:first % len(names)]
        return {name: cleanroom.open_collaboration(modes[name][0], memory_limit=memory,
                                                   threads=threads, **modes[name][1])
                for name in names}

    rooms = open_rooms()
    try:
        for room in rooms.values():
            room.resolution()
        build, _ = timed(rooms["threshold + difference checks"].people_index, 1)
    finally:
        for room in rooms.values():
            room.close()
    print(f"stable person ids, once per resolution (keys, registry, maps): {build:.2f} s")
    same_room(collab, runs, memory, threads)
    print("  fresh engine instances every round:")
    results: dict[str, Any] = {}
    asks = ("asked first", "asked again")
    times: dict[tuple[str, str], list[float]] = {(m, a): [] for m in modes for a in asks}
    cpu: dict[tuple[str, str], list[float]] = {(m, a): [] for m in modes for a in asks}
    for r in range(runs):
        # Fresh rooms every round, opened in rotated order: one DuckDB instance can run the
        # same query 25-40% slower than another in the same process for its whole life (the
        # one opened later on the same files, as measured), so each mode gets new ones,
        # warmed by another question (file metadata, the people index). Then the question,
        # first in this room (its people listed and checked against the memory), and again
        # (a dashboard's refresh: a long-lived room checks the people it already has).
        rooms = open_rooms(r)
        try:
            for room in rooms.values():
                room.overlap("airline", by=["airline.tier"])
            order = list(rooms.items())  # rotated: drift, opening and asking order hit all alike
            for ask in asks:
                for name, room in order:
                    t0, c0 = time.perf_counter(), time.process_time()
                    results[name] = room.overlap("airline", by=BY, metrics=METRICS)
                    times[name, ask].append(time.perf_counter() - t0)
                    cpu[name, ask].append(time.process_time() - c0)
        finally:
            for room in rooms.values():
                room.close()
    plain = results["threshold, no difference checks"]
    same = results["threshold + difference checks"]
    keys = [{k: v for k, v in s.items() if k not in METRICS} for s in plain.segments]
    assert [{k: v for k, v in s.items() if k not in METRICS} for s in same.segments] == keys, \
        "difference checks withheld a repeated row"  # (float sums may differ in the last bits)
    noisy = results["differential mode"]
    print(f"segments answered: {len(plain.segments)} (threshold), {len(same.segments)} "
          f"(with checks), {len(noisy.segments)} (differential)")
    base_name = "threshold, no difference checks"
    for ask in asks:
        print(f"    the question {ask}:")
        base, base_cpu = times[base_name, ask], cpu[base_name, ask]
        for name in modes:
            xs, cs = times[name, ask], cpu[name, ask]
            m, c = statistics.median(xs), statistics.median(cs)
            runs_text = ", ".join(f"{x:.2f}" for x in xs)
            over = ""
            if name != base_name:  # each run against the baseline of its own round (paired)
                over = f"  {_over(xs, base):+.0f}% (CPU {_over(cs, base_cpu):+.0f}%)"
            print(f"      {name:34s} median {m:6.2f} s, CPU {c:6.2f} s{over}   "
                  f"(runs: {runs_text})")
    print("  (+%: the median over rounds of each run's time over the baseline's in that round)")
    processes(collab, runs, memory, threads)


def processes(collab: Path, runs: int, memory: str, threads: int) -> None:
    """Without and with checks, each in a process of its own (one engine instance per
    process, nothing else in it), alternating: the question asked first and again."""
    times: dict[tuple[bool, str], list[float]] = {}
    for r in range(runs):
        for checks in ((False, True) if r % 2 == 0 else (True, False)):
            out = subprocess.run(
                [sys.executable, "-m", "bench.privacy", "--child", str(collab),
                 "--memory-limit", memory, "--threads", str(threads)]
                + ([] if checks else ["--no-checks"]),
                check=True, capture_output=True, text=True).stdout
            for ask, seconds in json.loads(out.strip().splitlines()[-1]).items():
                times.setdefault((checks, ask), []).append(seconds)
    print("  one process per room, alternating:")
    for ask in ("asked first", "asked again"):
        off, on = times[False, ask], times[True, ask]
        print(f"    the question {ask}: median {statistics.median(off):.2f} s without checks, "
              f"{statistics.median(on):.2f} s with, {_over(on, off):+.0f}%")


def child(collab: Path, checks: bool, memory: str, threads: int) -> None:
    """One room in this process, its resolution loaded: the question asked first (as a
    one-shot `cleanroom overlap` would) and again; prints their seconds as JSON (for
    `processes`)."""
    room = cleanroom.open_collaboration(collab, memory_limit=memory, threads=threads,
                                        difference_checks=checks)
    try:
        room.resolution()
        out = {}
        for ask in ("asked first", "asked again"):
            t0 = time.perf_counter()
            room.overlap("airline", by=BY, metrics=METRICS)
            out[ask] = time.perf_counter() - t0
    finally:
        room.close()
    print(json.dumps(out))


def same_room(collab: Path, runs: int, memory: str, threads: int) -> None:
    """The checks' own cost without instance effects: one room, its checks switched off and
    on between answers (and its kept answers forgotten, so each checked answer lists its
    people again)."""
    room = cleanroom.open_collaboration(collab, memory_limit=memory, threads=threads)
    try:
        room.overlap("airline", by=["airline.tier"])
        index = room.people_index()
        times: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for r in range(runs):
            for checks in (r % 2 == 0, r % 2 == 1):  # alternating which goes first
                room.privacy.difference_checks = checks
                index.forget_answers()
                t0, c0 = time.perf_counter(), time.process_time()
                room.overlap("airline", by=BY, metrics=METRICS)
                times[checks].append(time.perf_counter() - t0)
                cpu[checks].append(time.process_time() - c0)
    finally:
        room.close()
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"  steady state, one room, checks off / on between answers (each checked answer "
          f"listing its people): median {off:.2f} s / {on:.2f} s, "
          f"{_over(times[True], times[False]):+.0f}% "
          f"(CPU {_over(cpu[True], cpu[False]):+.0f}%)")


def _over(runs: list[float], base: list[float]) -> float:
    """Percent over the baseline: the median of each run's ratio to the baseline's run of
    the same round (paired, so drifts of the shared machine cancel)."""
    return 100 * (statistics.median(x / b for x, b in zip(runs, base, strict=True)) - 1)


def _random_rows(rng: np.random.Generator, count: int, universe: int) -> list[Any]:
    sizes = np.exp(rng.uniform(np.log(50), np.log(50_000), count)).astype(np.int64)
    rows = []
    for size in sizes.tolist():
        start = int(rng.integers(0, universe - size))
        # a block of people plus scattered ones: realistic mix of runs and sparse ids
        block = np.arange(start, start + size // 2, dtype=np.uint64)
        scattered = rng.choice(universe, size - size // 2, replace=False).astype(np.uint64)
        rows.append(people_set(np.concatenate([block, scattered])))
    return rows


def memory_check(remembered: int, probes: int, runs: int, work: Path) -> None:
    """Part 2: per-row cost of a difference check against a large memory."""
    rng = np.random.default_rng(11)
    universe = 10_000_000
    folder = work / "memory"
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    rows = _random_rows(rng, remembered, universe)
    one = DifferenceMemory(folder / "one")
    guard = DifferenceGuard(folder / "guard")
    for s in range(0, remembered, 500):
        batch = rows[s:s + 500]
        one.check_and_remember(batch, MINIMUM)
        guard.check_and_remember([{"airline": r, "brand": r} for r in batch], MINIMUM)
    print(f"remembered {len(one):,} distinct rows (one table) and the same in two tables' "
          f"memories, in {time.perf_counter() - t:.1f} s")
    # fresh rows: near-copies of remembered ones (the hard case: same size, many candidates)
    picks = rng.choice(remembered, probes, replace=False)
    fresh = [rows[i] ^ people_set(np.arange(universe + 7 * i, universe + 7 * i + MINIMUM + 3,
                                            dtype=np.uint64)) for i in picks.tolist()]
    cold_one, cold_guard, warm_one, warm_guard = [], [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        DifferenceMemory(folder / "one").check(fresh, MINIMUM)
        cold_one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        one.check(fresh, MINIMUM)
        warm_one.append(time.perf_counter() - t0)
        rows2 = [{"airline": r, "brand": r} for r in fresh]
        g = DifferenceGuard(folder / "guard")
        t0 = time.perf_counter()
        for table in ("airline", "brand"):
            g.memory(table).check([r[table] for r in rows2], MINIMUM)
        cold_guard.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for table in ("airline", "brand"):
            g.memory(table).check([r[table] for r in rows2], MINIMUM)
        warm_guard.append(time.perf_counter() - t0)
    verdict = one.check(fresh, MINIMUM)
    print(f"{probes} fresh rows checked against {len(one):,} remembered ones "
          f"({len(verdict.accepted)} answered, {len(verdict.suppressed)} withheld):")
    for label, xs in (("one table, fresh process (read from disk)", cold_one),
                      ("one table, warm", warm_one),
                      ("two tables (engine guard), fresh process", cold_guard),
                      ("two tables (engine guard), warm", warm_guard)):
        per = 1000 * statistics.median(xs) / probes
        print(f"  {label:44s} {per:6.2f} ms per output row")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1M x 1M rows and 2,000 remembered rows")
    ap.add_argument("--rows", type=int, default=None, help="rows per party (default 10M)")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--remembered", type=int, default=None,
                    help="rows in the memory (default 10,000)")
    ap.add_argument("--probes", type=int, default=200, help="fresh rows checked")
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None,
                    help="reuse token files made here by an earlier run")
    ap.add_argument("--skip-analyses", action="store_true", help="only the memory check")
    ap.add_argument("--skip-memory", action="store_true", help="only the analyses")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # one room (`processes`)
    ap.add_argument("--no-checks", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, not args.no_checks, args.memory_limit, args.threads)
    n = args.rows or (1_000_000 if args.quick else 10_000_000)
    remembered = args.remembered or (2_000 if args.quick else 10_000)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-privacy-"))
    print(f"rows per party: {n:,}; DuckDB memory_limit={args.memory_limit}, threads="
          f"{args.threads}; cpus={os.cpu_count()}; load average {_load()}")
    if not args.skip_analyses:
        analyses(n, args.runs, args.memory_limit, args.threads, work)
    if not args.skip_memory:
        memory_check(remembered, args.probes, args.runs, work)
    print(f"load average at the end: {_load()} (other processes share the cores: read the "
          "medians with it)")


if __name__ == "__main__":
    main()
