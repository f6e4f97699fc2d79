"""Probabilistic entity resolution in the engine (`[matching] method = "probabilistic"`).

What is compared: every join column of the tables' policies (or only the `rules`, if the
collaboration names some) with, for each, its derived-form columns (`tokenize --fuzzy`) that
every table holding the column also has. A match key (`name_dob`) is left out when all its
kinds are compared on their own (it would count the same evidence twice), unless a rule
names it. Columns held by one table only still count: they find that table's duplicates, and
a pair where one side lacks the column is neutral (Splink's null level).

How: the records of all token files become one table (record key = table index * 2^40 + row
number, as in deterministic resolution; tokens compacted to 64-bit hashes), tokens of the
strong identifiers and match keys held by more than `max_records_per_token` rows of one table
are ignored everywhere (and counted), and `cleanroom.matching.resolve_probabilistic` trains
a Fellegi-Sunter model (Splink, DuckDB) on them and scores the blocked pairs. Pairs at or
above the threshold, plus every pair sharing an `external_id` token (a party's own
resolution, from `cleanroom dedupe`: its duplicates always merge), link records into
entities (connected components).

The model's scored pairs (record keys and match probabilities, at or above 0.5) are cached
next to the entity map, keyed by the token files and the settings but not the threshold: at
another threshold the records are re-clustered from them without training again (the same
entities as training afresh: training picks and orders its records by their keys, so it
is repeatable in whatever order the records table comes).

The entity map has the deterministic format (t, rn, entity_id, n_tables, rule), so overlap,
analyst SQL and reports read it unchanged. `rule` credits an entity that spans tables to the
first strong identifier or match key whose token its records share across tables, else to
`probabilistic` (linked by the combined evidence of the other fields). The model's weights
per field level go into the resolution's `matching` statistics.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanroom.config import Collaboration, Matching
from cleanroom.matching import (
    DEFAULT_BLOCKING,
    STRONG_IDENTIFIERS,
    FieldSpec,
    ProbabilisticOptions,
    connected_components,
    null_frequent_values,
    resolve_probabilistic,
)
from protocols import (
    FORM_SEPARATOR,
    CleanroomBug,
    ConfigError,
    InputError,
    ManifestMismatch,
    atomic_path,
)

from ._resolve import (
    MAX_TABLES,
    NODE_SHIFT,
    Resolution,
    ResolveInput,
    _load,
    content_hashes,
    new_scramble_key,
    scramble_sql,
)
from ._sql import Sql, execute, fetch_arrow, fetch_one, quote_ident

ALGORITHM = "cleanroom-resolve-probabilistic/v1"
#: columns whose equal tokens always link (a party's own resolution of its records)
ALWAYS_LINK = ("external_id",)
#: the links_by_rule entry of entities linked by the model without a shared strong token
PROBABILISTIC_RULE = "probabilistic"
_RECORDS = "_cr_prec"
_SCORES_META = b"cleanroom_scores"
#: the match-probability threshold when the collaboration names none
DEFAULT_THRESHOLD = 0.9
#: scored pairs at or above this probability are kept, so a higher threshold re-clusters them
KEEP_PAIRS_ABOVE = 0.5


@dataclass(frozen=True)
class ProbabilisticPlan:
    """What probabilistic resolution compares: the fields, and per table its token columns."""

    fields: tuple[FieldSpec, ...]
    tables: tuple[ResolveInput, ...]
    strong: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for f in self.fields for c in f.columns)

    @property
    def credits(self) -> tuple[str, ...]:
        """The links_by_rule names, in priority order."""
        return (*self.strong, PROBABILISTIC_RULE)


def probabilistic_plan(collab: Collaboration) -> ProbabilisticPlan:
    """Choose the compared fields and check that the token files agree on them (kinds, forms,
    form rules' version, binary tokens); raise ManifestMismatch saying what differs."""
    tables = list(collab.tables.values())
    rules = collab.matching.rules
    ids = {t.name: t.manifest.identifiers for t in tables}
    compares: dict[str, list[str]] = {}
    for t in tables:
        for c in t.policy.join_columns:
            if "form" not in ids[t.name].get(c, {"form": None}) and (not rules or c in rules):
                compares.setdefault(c, []).append(t.name)
    spec = {c: ids[names[0]][c] for c, names in compares.items()}
    singles = {k for c, s in spec.items() if not s.get("match_key") for k in s["kinds"]}
    for c, s in list(spec.items()):
        if s.get("match_key") and c not in rules and set(s["kinds"]) <= singles:
            del compares[c]
    if not compares:
        raise ConfigError("probabilistic matching found no join column to compare (each "
                          "table's policy names its join columns)", file=str(collab.path),
                          key="matching")
    fields, strong = [], []
    for c, names in compares.items():
        # forms strongest first, as the tokenizer listed them (`identifiers` is sorted)
        lists = [[f"{c}{FORM_SEPARATOR}{f}" for f in collab.tables[t].manifest.fuzzy.get(
            "forms", {}).get(c, ()) if f"{c}{FORM_SEPARATOR}{f}" in ids[t]] for t in names]
        forms = tuple(f for f in lists[0] if all(f in other for other in lists[1:]))
        s = spec[c]
        is_strong = bool(s.get("match_key")) or s["kinds"][0] in STRONG_IDENTIFIERS
        if is_strong:
            strong.append(c)
        fields.append(FieldSpec(c, c, forms, term_frequency=not is_strong))
    inputs = []
    for t in tables:
        cols = tuple(col for f in fields if t.name in compares[f.name] for col in f.columns)
        inputs.append(ResolveInput(t.name, t.tokens, cols, t.manifest.row_count))
    plan = ProbabilisticPlan(tuple(fields), tuple(inputs), tuple(strong))
    _verify(collab, plan)
    return plan


def _verify(collab: Collaboration, plan: ProbabilisticPlan) -> None:
    tables = collab.tables
    for col in plan.columns:
        holders = [t for t in plan.tables if col in t.columns]
        kinds = {t.path.name: (tables[t.name].manifest.identifiers[col].get("kinds"),
                               tables[t.name].manifest.identifiers[col].get("form"))
                 for t in holders}
        if len({repr(k) for k in kinds.values()}) > 1:
            detail = "; ".join(f"{n}: {k[0]}{' ' + k[1] if k[1] else ''}"
                               for n, k in kinds.items())
            raise ManifestMismatch(f"token column {col!r} holds different identifiers "
                                   f"({detail})")
        for t in holders:
            typ = pq.read_schema(t.path).field(col).type if col in pq.read_schema(
                t.path).names else None
            if typ is None or not (pa.types.is_binary(typ) or pa.types.is_fixed_size_binary(typ)
                                   or pa.types.is_large_binary(typ)):
                raise ManifestMismatch(f"{t.path.name}: token column {col!r} is missing or "
                                       "not binary")
    versions = {t.path.name: tables[t.name].manifest.fuzzy.get("version") for t in plan.tables
                if any(f.forms and f.name in t.columns for f in plan.fields)}
    if len(set(versions.values())) > 1:
        detail = "; ".join(f"{n}: {v}" for n, v in versions.items())
        raise ManifestMismatch(f"the token files derive fuzzy forms by different rules "
                               f"(version {detail}): their forms never agree")


def _scores_key(plan: ProbabilisticPlan, matching: Matching, cache_dir: Path) -> str:
    """The key of the model's scored pairs: everything the training and scoring read (the
    token files' content, the fields, the cap, the lowest probability kept), not the
    threshold, so another threshold re-clusters the same scores."""
    hashes = content_hashes([t.path for t in plan.tables], cache_dir)
    spec = {"algorithm": ALGORITHM, "floor": _floor(_threshold(matching)),
            "cap": matching.max_records_per_token,
            "fields": [[f.name, list(f.columns)] for f in plan.fields],
            "tables": [[t.name, list(t.columns), h] for t, h in
                       zip(plan.tables, hashes, strict=True)]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _cache_key(scores_key: str, matching: Matching) -> str:
    """The entity map's key: the scores' key and the threshold."""
    spec = {"scores": scores_key, "threshold": _threshold(matching)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _threshold(matching: Matching) -> float:
    return float(matching.threshold or DEFAULT_THRESHOLD)


def _floor(threshold: float) -> float:
    """The lowest match probability kept with the scores (the threshold if that is lower)."""
    return min(KEEP_PAIRS_ABOVE, threshold)


@dataclass(frozen=True)
class Scores:
    """A trained model's scored pairs by record key (left, right, match_probability), and
    what the model learnt (weights, prior, timings: no token, no key)."""

    pairs: pa.Table
    model: dict[str, Any]


def resolve_probabilistic_tables(
    con: duckdb.DuckDBPyConnection, plan: ProbabilisticPlan, matching: Matching,
    cache_dir: Path, *, use_cache: bool = True, memory_limit: str | None = None,
    threads: int | None = None,
) -> Resolution:
    """Probabilistic resolution of the plan's tables. The entity map is cached as Parquet in
    `cache_dir`, keyed by the token files' content and the matching settings; so are the
    model's scored pairs, keyed the same way but for the threshold: at another threshold the
    records are re-clustered from them, without training again (`use_cache=False`: neither
    cache is read)."""
    skey = _scores_key(plan, matching, cache_dir)
    key = _cache_key(skey, matching)
    target = cache_dir / f"resolution-{key[:24]}.parquet"
    if use_cache and target.exists():
        cached = _load(target, key)
        if cached is not None:
            return cached
    if len(plan.tables) > MAX_TABLES:
        raise ConfigError(f"entity resolution handles at most {MAX_TABLES} tables")
    t0 = time.perf_counter()
    records, ignored = _records(con, plan, matching.max_records_per_token)
    steps = {"records": time.perf_counter() - t0}
    threshold = _threshold(matching)
    con.register(_RECORDS, records)  # the records' view for the SQL below (no copy)
    try:
        spath = cache_dir / f"scores-{skey[:24]}.parquet"
        scores = _load_scores(spath, skey) if use_cache else None
        from_cache = scores is not None
        if scores is None:
            scores = _score(con, plan, records, threshold, memory_limit=memory_limit,
                            threads=threads)
            _write_scores(scores, spath, skey)
        nodes = _nodes(plan, records)
        t = time.perf_counter()
        labels = _link(con, plan, nodes, scores.pairs, threshold)
        steps["link"] = time.perf_counter() - t
        t = time.perf_counter()
        res = _entity_map(con, plan, nodes, labels, key, target, ignored)
        steps["entity_map"] = time.perf_counter() - t
    finally:
        con.unregister(_RECORDS)
    del records
    matching_doc = {
        "method": "probabilistic", "threshold": threshold,
        "fields": [f.name for f in plan.fields],
        "compared": {f.name: list(f.columns) for f in plan.fields},
        "weights": scores.model["weights"],
        "probability_two_random_records_match":
            scores.model["probability_two_random_records_match"],
        "always_link": [c for c in ALWAYS_LINK if c in plan.columns],
        "scores_from_cache": from_cache,
        "timings": {**steps, **scores.model["timings"], "total": time.perf_counter() - t0},
    }
    res = Resolution(path=res.path, cache_key=key, tables=res.tables,
                     overlap_entities=res.overlap_entities, links_by_rule=res.links_by_rule,
                     ignored_tokens=res.ignored_tokens, rounds=0, scramble=res.scramble,
                     matching=matching_doc)
    _write(con, res, target)
    return res


def _score(con: duckdb.DuckDBPyConnection, plan: ProbabilisticPlan, records: pa.Table,
           threshold: float, *, memory_limit: str | None, threads: int | None) -> Scores:
    """Train the model on the records and score their blocked pairs (by record key)."""
    blocking = tuple(dict.fromkeys([(c,) for c in plan.strong] + list(DEFAULT_BLOCKING)))
    options = ProbabilisticOptions(threshold=threshold, blocking=blocking,
                                   keep_pairs_above=_floor(threshold),
                                   memory_limit=memory_limit, threads=threads)
    result = resolve_probabilistic(con, records, key="record_key", source="source",
                                   fields=plan.fields, options=options)
    keys = pc.cast(result.clusters.column("key"), pa.int64()).to_numpy()
    left = result.pairs.column("left_id").to_numpy(zero_copy_only=False)
    right = result.pairs.column("right_id").to_numpy(zero_copy_only=False)
    pairs = pa.table({"left": keys[left], "right": keys[right],
                      "match_probability": result.pairs.column("match_probability")})
    stats = result.to_dict()
    model = {k: stats[k] for k in ("weights", "probability_two_random_records_match",
                                   "timings")}
    return Scores(pairs, model)


def _nodes(plan: ProbabilisticPlan, records: pa.Table) -> np.ndarray:
    """Every record key, sorted: table i's rows 0..rows-1 under i << NODE_SHIFT (the records
    hold each row of each table once; checked by their count)."""
    if records.num_rows != sum(t.rows for t in plan.tables):
        raise CleanroomBug("the records table does not hold every row once")
    return np.concatenate([(i << NODE_SHIFT) + np.arange(t.rows, dtype=np.int64)
                           for i, t in enumerate(plan.tables)])


def _positions(plan: ProbabilisticPlan, keys: np.ndarray) -> np.ndarray:
    """Positions of record keys in `_nodes` (arithmetic: no search over the records)."""
    starts = np.cumsum([0] + [t.rows for t in plan.tables[:-1]]).astype(np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    return starts[keys >> NODE_SHIFT] + (keys & ((1 << NODE_SHIFT) - 1))


def _link(con: duckdb.DuckDBPyConnection, plan: ProbabilisticPlan, nodes: np.ndarray,
          pairs: pa.Table, threshold: float) -> np.ndarray:
    """Component label (a position in the sorted `nodes`) of every record: the scored pairs
    at or above the threshold and the pairs sharing an always-link token."""
    prob = pairs.column("match_probability").to_numpy(zero_copy_only=False)
    keep = prob >= threshold
    ends = [(pairs.column("left").to_numpy(zero_copy_only=False)[keep],
             pairs.column("right").to_numpy(zero_copy_only=False)[keep])]
    ends += [_always_edges(con, col) for col in ALWAYS_LINK if col in plan.columns]
    left = np.concatenate([np.asarray(a, np.int64) for a, _ in ends])
    right = np.concatenate([np.asarray(b, np.int64) for _, b in ends])
    return connected_components(len(nodes), _positions(plan, left), _positions(plan, right))


def _load_scores(path: Path, key: str) -> Scores | None:
    """Cached scores, or None if absent, unreadable or for another key."""
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        model = json.loads((table.schema.metadata or {})[_SCORES_META])
        if model.pop("scores_key", None) != key:
            return None
        return Scores(table.replace_schema_metadata(None), model)
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowInvalid):
        return None


def _write_scores(scores: Scores, path: Path, key: str) -> None:
    """Write the scored pairs (record keys and probabilities only) atomically, mode 0600;
    drop older scores."""
    meta = json.dumps({"scores_key": key, **scores.model})
    _replace_cached(path, "the model's scores", lambda tmp: pq.write_table(
        scores.pairs.replace_schema_metadata({_SCORES_META: meta}), tmp, compression="zstd"))


def _replace_cached(path: Path, what: str, write: Callable[[Path], object]) -> None:
    """Write a cache file with `write(temporary path)`, atomically and mode 0600; then drop
    the older files of its kind (same name up to the first "-")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, 0o600) as tmp:
            write(tmp)
    except OSError as exc:
        raise InputError(f"cannot write {what} ({exc.strerror})", file=os.fspath(path)) from None
    for old in path.parent.glob(f"{path.name.split('-', 1)[0]}-*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)


def _records(con: duckdb.DuckDBPyConnection, plan: ProbabilisticPlan,
             cap: int) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """The records, in no particular order (training orders its own sample), as an Arrow
    table: record_key, source, one 64-bit hash per token column
    (null where the table lacks it); tokens of strong columns held by more than `cap` rows
    of one table nulled everywhere. Also the ignored tokens and records per strong column."""
    cols = plan.columns
    parts, params = [], []
    for i, t in enumerate(plan.tables):
        sel = ", ".join(f"{_hashed(quote_ident(c, t.columns))} AS {quote_ident(c, cols)}"
                        if c in t.columns else f"CAST(NULL AS UBIGINT) AS {quote_ident(c, cols)}"
                        for c in cols)
        parts.append(f"SELECT (CAST({i} AS BIGINT) << {NODE_SHIFT}) + file_row_number AS "
                     f"record_key, CAST({i} AS UTINYINT) AS source, {sel} "
                     "FROM read_parquet(?, file_row_number = true)")
        params.append(os.fspath(t.path))
    records = fetch_arrow(con, Sql(" UNION ALL ".join(parts), tuple(params)))
    ignored = {}
    for c in plan.strong:
        records, tokens, rows = null_frequent_values(records, c, cap, per="source")
        ignored[c] = {"tokens": tokens, "records": rows}
    return records, ignored


def _hashed(column: str) -> str:
    """SQL: the 64-bit hash of a token, null kept null (DuckDB's hash(NULL) is a value)."""
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE hash({column}) END"


def _always_edges(con: duckdb.DuckDBPyConnection, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) record keys of a star per shared token of `col`: its smallest record to each."""
    q = quote_ident(col, (col,))
    got = execute(con, f"SELECT a, record_key FROM (SELECT record_key, min(record_key) OVER "
                       f"(PARTITION BY {q}) AS a FROM {_RECORDS} WHERE {q} IS NOT NULL) "
                       "WHERE a <> record_key").fetchnumpy()
    return (np.asarray(got["a"], np.int64), np.asarray(got["record_key"], np.int64))


def _entity_map(con: duckdb.DuckDBPyConnection, plan: ProbabilisticPlan, nodes: np.ndarray,
                labels: np.ndarray, key: str, target: Path,
                ignored: dict[str, dict[str, int]]) -> Resolution:
    """The entity map of linked records (`_cr_ent`) and its statistics."""
    n = len(plan.tables)
    size = np.bincount(labels, minlength=len(nodes))
    linked = size[labels] > 1
    node, lab = nodes[linked], nodes[labels[linked]]
    table = (node >> NODE_SHIFT).astype(np.int64)
    # the tables each component spans: a flag per (component label, table), no sort
    spans = np.zeros((len(nodes), n), dtype=bool)
    spans[labels[linked], table] = True
    n_tables = spans.sum(axis=1, dtype=np.int64)[labels[linked]]
    del spans
    con.register("_cr_pm", pa.table({"node": node, "lab": lab, "n_tables": n_tables}))
    try:
        execute(con, "DROP TABLE IF EXISTS _cr_pcredit")
        execute(con, "CREATE TEMP TABLE _cr_pcredit (lab BIGINT, r UTINYINT)")
        cols = plan.columns
        for r, c in enumerate(plan.strong):
            q = quote_ident(c, cols)
            execute(con, Sql(
                f"INSERT INTO _cr_pcredit SELECT DISTINCT lab, CAST(? AS UTINYINT) FROM "
                f"(SELECT m.lab, r.{q} FROM _cr_pm m JOIN {_RECORDS} r ON r.record_key = m.node "
                f"WHERE m.n_tables > 1 AND r.{q} IS NOT NULL GROUP BY ALL "
                "HAVING count(DISTINCT r.source) > 1)", (r,)))
        scramble = new_scramble_key()
        fallback = len(plan.strong)
        execute(con, "DROP TABLE IF EXISTS _cr_ent")
        execute(con, Sql(
            f"CREATE TEMP TABLE _cr_ent AS SELECT CAST(m.node >> {NODE_SHIFT} AS UTINYINT) "
            f"AS t, m.node & {(1 << NODE_SHIFT) - 1} AS rn, "
            f"{scramble_sql('m.lab', scramble)} AS entity_id, "
            "CAST(m.n_tables AS UTINYINT) AS n_tables, "
            "CAST(CASE WHEN m.n_tables > 1 THEN coalesce(c.r, ?) END AS UTINYINT) AS rule "
            "FROM _cr_pm m LEFT JOIN (SELECT lab, min(r) AS r FROM _cr_pcredit GROUP BY lab) c "
            "USING (lab)", (fallback,)))
        execute(con, "DROP TABLE _cr_pcredit")
    finally:
        con.unregister("_cr_pm")
    linked_rows = dict(execute(con, "SELECT t, count(*) FROM _cr_ent GROUP BY ALL").fetchall())
    per = ", ".join(f"count(DISTINCT entity_id) FILTER (WHERE t = {i})" for i in range(n))
    ents = fetch_one(con, f"SELECT {per} FROM _cr_ent")
    tstats = {t.name: {"rows": t.rows, "entities": t.rows - int(linked_rows.get(i, 0))
                       + int(ents[i] or 0)} for i, t in enumerate(plan.tables)}
    by_rule = dict(execute(con, Sql("SELECT rule, count(DISTINCT entity_id) FROM _cr_ent "
                                    "WHERE n_tables = ? GROUP BY rule", (n,))).fetchall())
    credits = plan.credits
    links = {name: int(by_rule.get(i, 0)) for i, name in enumerate(credits)}
    overlap = fetch_one(con, Sql("SELECT count(DISTINCT entity_id) FROM _cr_ent "
                                 "WHERE n_tables = ?", (n,)))[0]
    return Resolution(path=target, cache_key=key, tables=tstats, overlap_entities=int(overlap),
                      links_by_rule=links, ignored_tokens=ignored, rounds=0, scramble=scramble)


def _write(con: duckdb.DuckDBPyConnection, res: Resolution, target: Path) -> None:
    """Write `_cr_ent` with the statistics in its metadata, atomically; drop older maps."""
    meta = json.dumps({"cache_key": res.cache_key, **res.to_dict(),
                       "scramble": list(res.scramble)})
    _replace_cached(target, "the entity map", lambda tmp: execute(con, Sql(
        "COPY _cr_ent TO ? (FORMAT parquet, COMPRESSION zstd, KV_METADATA "
        "{cleanroom_resolution: ?})", (os.fspath(tmp), meta))))
    execute(con, "DROP TABLE _cr_ent")

