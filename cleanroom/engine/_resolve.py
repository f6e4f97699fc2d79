"""Entity resolution: link records that share a token into people (connected components).

All in DuckDB SQL, no Python loop per row or edge:

1. memberships, one rule at a time (small hash tables, no spilling): one row (node, token) per
   non-null token, where node = table index * 2^40 + the record's row number in its file,
   read from the files as they are grouped (not stored);
2. keys: group memberships by token; a token found in more than max_records_per_token rows of
   any one table is ignored everywhere (and counted); keys with one record link nothing;
   a two-record key is one edge, a bigger key a star from its smallest record;
3. min-label propagation over the edges with pointer jumping, one SQL round per iteration
   until no label changes (labels only decrease, so it terminates); at the fixpoint every
   record carries the smallest node id of its component. When only one rule links, each
   record is in at most one key, so the components are the keys' stars themselves and
   propagation is skipped (same labels; tested against the propagation path);
4. entity ids are the labels put through a keyed 48-bit bijection (`scramble_sql`), so they
   are unique but say nothing about which table or row they came from; a record linked to no
   other is its own entity, with id scramble(node). For each entity the first rule (priority
   order) of a key shared across tables is the rule that linked it.

The entity map of linked records (table index, row number, entity id, number of tables the
entity is in, linking rule) is cached as Parquet, keyed by the SHA-256 of the token files and
the matching settings, with the statistics and the scramble key in the file's metadata, so
that repeated analyses do not recompute it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from protocols import CleanroomError, atomic_path

from ._sql import Sql, execute, fetch_one, quote_ident

ALGORITHM = "cleanroom-resolve/v2"
NODE_SHIFT = 40
MAX_TABLES = 64
_STATS_KEY = b"cleanroom_resolution"


@dataclass(frozen=True)
class ResolveInput:
    """One table as entity resolution sees it: its token file and its linking columns."""

    name: str
    path: Path
    columns: tuple[str, ...]
    rows: int


@dataclass(frozen=True)
class Resolution:
    """The outcome of entity resolution, with its statistics (no tokens, no identifiers)."""

    path: Path
    cache_key: str
    tables: dict[str, dict[str, int]]
    overlap_entities: int
    links_by_rule: dict[str, int]
    ignored_tokens: dict[str, dict[str, int]]
    rounds: int
    scramble: tuple[int, int, int] = field(default=(0, 1, 1), repr=False)
    from_cache: bool = field(default=False, compare=False)
    matching: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Statistics as plain JSON values (`matching`: what a probabilistic model learnt)."""
        doc = {"tables": self.tables, "overlap_entities": self.overlap_entities,
               "links_by_rule": self.links_by_rule, "ignored_tokens": self.ignored_tokens,
               "rounds": self.rounds}
        if self.matching:
            doc["matching"] = self.matching
        return doc


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _stat_id(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def content_hashes(paths: Sequence[Path], cache_dir: Path) -> list[str]:
    """SHA-256 of each file, remembered in `cache_dir` against the file's identity, size and
    modification times (as git's index does), so an unchanged file is not read again; files
    not remembered are hashed in parallel threads."""
    memo_path = cache_dir / "file-hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    names = [os.fspath(p.resolve()) for p in paths]
    idents = [_stat_id(p) for p in paths]
    todo = {}
    for name, ident, p in zip(names, idents, paths, strict=True):
        seen = memo.get(name)
        if not (isinstance(seen, dict) and seen.get("stat") == ident and "sha256" in seen):
            todo[name] = p
    changed = bool(todo)
    if todo:
        # hashlib releases the GIL on large blocks: the files are hashed side by side.
        with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:
            digests = dict(zip(todo, pool.map(file_sha256, todo.values()), strict=True))
        for name, ident in zip(names, idents, strict=True):
            if name in digests:
                memo[name] = {"stat": ident, "sha256": digests[name]}
    out = [str(memo[name]["sha256"]) for name in names]
    if changed:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(memo_path, 0o600) as tmp:
            tmp.write_text(json.dumps(memo, sort_keys=True))
    return out


def cache_key(tables: Sequence[ResolveInput], rules: Sequence[str], cap: int,
              cache_dir: Path) -> str:
    """The cache key: algorithm, matching settings, and each token file's content hash."""
    hashes = content_hashes([t.path for t in tables], cache_dir)
    spec = {"algorithm": ALGORITHM, "rules": list(rules), "cap": cap,
            "tables": [[t.name, list(t.columns), h] for t, h in zip(tables, hashes, strict=True)]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def resolve(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[ResolveInput],
    rules: Sequence[str],
    max_records_per_token: int,
    cache_dir: Path,
    *,
    use_cache: bool = True,
    propagate: bool = False,
) -> Resolution:
    """Resolve entities across `tables`; the result is a Parquet file in `cache_dir`.

    `propagate` forces label propagation even where one rule links (the reference path that
    the single-rule shortcut is tested against)."""
    key = cache_key(tables, rules, max_records_per_token, cache_dir)
    target = cache_dir / f"resolution-{key[:24]}.parquet"
    if use_cache and target.exists():
        cached = _load(target, key)
        if cached is not None:
            return cached
    return _compute(con, tables, rules, max_records_per_token, key, target, propagate=propagate)


def _load(path: Path, key: str) -> Resolution | None:
    """A cached resolution, or None if the file is unreadable or for another key."""
    try:
        meta = pq.read_schema(path).metadata or {}
        stats = json.loads(meta[_STATS_KEY])
        if stats.get("cache_key") != key:
            return None
        k, c1, c2 = (int(x) for x in stats["scramble"])
        return Resolution(path=path, cache_key=key, tables=stats["tables"],
                          overlap_entities=stats["overlap_entities"],
                          links_by_rule=stats["links_by_rule"],
                          ignored_tokens=stats["ignored_tokens"], rounds=stats["rounds"],
                          scramble=(k, c1, c2), from_cache=True,
                          matching=stats.get("matching", {}))
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowInvalid):
        return None


def _memberships_sql(tables: Sequence[ResolveInput], rule: str) -> Sql:
    """One (t, node, tok) row per non-null token of one rule's column, across tables."""
    parts, params = [], []
    for i, t in enumerate(tables):
        if rule in t.columns:
            c = quote_ident(rule, t.columns)
            parts.append(
                f"SELECT CAST({i} AS UTINYINT) AS t, "
                f"(CAST({i} AS BIGINT) << {NODE_SHIFT}) + file_row_number AS node, {c} AS tok "
                f"FROM read_parquet(?, file_row_number = true) WHERE {c} IS NOT NULL")
            params.append(os.fspath(t.path))
    return Sql(" UNION ALL ".join(parts), tuple(params))


def scramble_sql(expr: str, key: Sequence[int]) -> str:
    """SQL for a keyed bijection on 48-bit integers (xor, odd 16-bit multiplications mod 2^48,
    xorshifts; UBIGINT arithmetic never overflows), so entity ids are unique but say nothing
    about table or row."""
    k, c1, c2 = (int(x) for x in key)
    mask = (1 << 48) - 1
    y0 = f"xor(CAST({expr} AS UBIGINT), CAST({k} AS UBIGINT))"
    y1 = f"(({y0}) * CAST({c1} AS UBIGINT)) & CAST({mask} AS UBIGINT)"
    y2 = f"xor({y1}, ({y1}) >> 24)"
    y3 = f"(({y2}) * CAST({c2} AS UBIGINT)) & CAST({mask} AS UBIGINT)"
    return f"CAST(xor({y3}, ({y3}) >> 24) AS BIGINT)"


def unscramble(entity_ids: np.ndarray, key: Sequence[int]) -> np.ndarray:
    """The labels (nodes) behind entity ids: `scramble_sql`'s inverse, in numpy (the engine
    keeps the key; it maps an answer's entities to per-row arrays without a search)."""
    k, c1, c2 = (int(x) for x in key)
    mask = np.uint64((1 << 48) - 1)
    shift = np.uint64(24)
    y3 = np.asarray(entity_ids).astype(np.uint64)
    y3 ^= y3 >> shift
    y2 = (y3 * np.uint64(pow(c2, -1, 1 << 48))) & mask
    y2 ^= y2 >> shift
    y0 = (y2 * np.uint64(pow(c1, -1, 1 << 48))) & mask
    return (y0 ^ np.uint64(k)).astype(np.int64)


def new_scramble_key() -> tuple[int, int, int]:
    """A random key for `scramble_sql`: a 48-bit xor value and two odd 16-bit multipliers."""
    return (secrets.randbits(48), secrets.randbits(16) | 1, secrets.randbits(16) | 1)


def _entity_map_sql(alias: str, scramble: Sequence[int]) -> str:
    """SELECT list of the entity map from a relation of (node, lab, mask, rule)."""
    return (f"SELECT CAST({alias}.node >> {NODE_SHIFT} AS UTINYINT) AS t, "
            f"{alias}.node & {(1 << NODE_SHIFT) - 1} AS rn, "
            f"{scramble_sql(f'{alias}.lab', scramble)} AS entity_id, "
            f"CAST(bit_count({alias}.mask) AS UTINYINT) AS n_tables, "
            f"CAST({alias}.rule AS UTINYINT) AS rule")


def _stars(con: duckdb.DuckDBPyConnection, scramble: Sequence[int]) -> int:
    """Components and entity map when only one rule links: a record has at most one token,
    so it is in at most one key, and each key's edges are a star from its smallest record;
    the components are the keys, labelled by that record (what propagation reaches in its
    first round). A two-record key is its own component, without grouping or joining."""
    bit = "(CAST(1 AS UBIGINT) << CAST({} >> " + str(NODE_SHIFT) + " AS UBIGINT))"
    mask = f"({bit.format('a')} | {bit.format('b')})"
    execute(con, "CREATE TEMP TABLE _cr_comp AS "
                 f"SELECT a AS lab, {mask} AS mask, CASE WHEN spans THEN r END AS rule "
                 f"FROM _cr_edges WHERE pair UNION ALL SELECT a, bit_or({mask}), "
                 "min(r) FILTER (WHERE spans) FROM _cr_edges WHERE NOT pair GROUP BY a")
    execute(con, "CREATE TEMP TABLE _cr_ent AS "
                 f"WITH p AS (SELECT a, b, {mask} AS mask, CASE WHEN spans THEN r END AS rule "
                 "FROM _cr_edges WHERE pair), "
                 "s AS (SELECT a AS node, a AS lab FROM _cr_edges WHERE NOT pair GROUP BY a "
                 "UNION ALL SELECT b, a FROM _cr_edges WHERE NOT pair), "
                 "l AS (SELECT a AS node, a AS lab, mask, rule FROM p "
                 "UNION ALL SELECT b, a, mask, rule FROM p "
                 "UNION ALL SELECT s.node, s.lab, c.mask, c.rule FROM s JOIN _cr_comp c "
                 f"USING (lab)) {_entity_map_sql('l', scramble)} FROM l")
    return 1


def _propagate(con: duckdb.DuckDBPyConnection) -> int:
    """Components by min-label propagation with pointer jumping; returns the rounds."""
    shift = NODE_SHIFT
    execute(con, "CREATE TEMP TABLE _cr_lab AS SELECT x AS node, min(y) AS lab FROM "
                 "(SELECT a AS x, a AS y FROM _cr_edges UNION ALL SELECT b, a FROM _cr_edges) "
                 "GROUP BY x")
    rounds = 1
    while fetch_one(con, "SELECT count(*) FROM _cr_edges e JOIN _cr_lab x ON x.node = e.a "
                         "JOIN _cr_lab y ON y.node = e.b WHERE x.lab <> y.lab")[0]:
        # Each record takes the smallest label among itself and its neighbours, then jumps
        # to its label's label. Labels only decrease; at the fixpoint every edge's two ends
        # agree, so each component carries its smallest record.
        execute(con, "CREATE OR REPLACE TEMP TABLE _cr_new AS "
                     "WITH e AS (SELECT a AS x, b AS y FROM _cr_edges "
                     "UNION ALL SELECT b, a FROM _cr_edges), "
                     "c AS (SELECT e.x AS node, min(l.lab) AS lab FROM e "
                     "JOIN _cr_lab l ON l.node = e.y GROUP BY e.x), "
                     "nl AS (SELECT o.node, least(o.lab, c.lab) AS lab FROM _cr_lab o "
                     "JOIN c USING (node)) "
                     "SELECT a.node, least(a.lab, coalesce(b.lab, a.lab)) AS lab "
                     "FROM nl a LEFT JOIN nl b ON b.node = a.lab")
        execute(con, "DROP TABLE _cr_lab")
        execute(con, "ALTER TABLE _cr_new RENAME TO _cr_lab")
        rounds += 1
    # Components: the tables they span (bit mask) and the first rule linking across tables.
    execute(con, "CREATE TEMP TABLE _cr_comp AS "
                 "WITH rule AS (SELECT l.lab, min(e.r) AS rule FROM _cr_edges e "
                 "JOIN _cr_lab l ON l.node = e.a WHERE e.spans GROUP BY l.lab) "
                 f"SELECT c.lab, c.mask, rule.rule FROM (SELECT lab, "
                 f"bit_or(CAST(1 AS UBIGINT) << CAST(node >> {shift} AS UBIGINT)) AS mask "
                 "FROM _cr_lab GROUP BY lab) c LEFT JOIN rule USING (lab)")
    return rounds


def _compute(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[ResolveInput],
    rules: Sequence[str],
    cap: int,
    key: str,
    target: Path,
    *,
    propagate: bool = False,
) -> Resolution:
    n = len(tables)
    if n > MAX_TABLES:
        raise CleanroomError(f"entity resolution handles at most {MAX_TABLES} tables, not {n}")
    for name in ("_cr_keys", "_cr_big", "_cr_bigk", "_cr_edges", "_cr_lab",
                 "_cr_new", "_cr_comp", "_cr_ent"):
        execute(con, f"DROP TABLE IF EXISTS {quote_ident(name)}")
    shift = NODE_SHIFT
    execute(con, "CREATE TEMP TABLE _cr_keys (r UTINYINT, k BIGINT, a BIGINT, b BIGINT, tok BLOB)")
    execute(con, "CREATE TEMP TABLE _cr_big (a BIGINT, r UTINYINT, node BIGINT, t UTINYINT)")
    linking = []
    for r, rule in enumerate(rules):
        memb = _memberships_sql(tables, rule)
        if not memb.text:
            continue
        linking.append(rule)
        # Keys shared by at least two records: how many, the smallest and the largest record,
        # grouped straight from the files (one rule at a time keeps the hash table small);
        # the token is kept only for the rare keys of more than two records.
        execute(con, Sql("INSERT INTO _cr_keys SELECT CAST(? AS UTINYINT), count(*), min(node), "
                         f"max(node), CASE WHEN count(*) > 2 THEN tok END FROM ({memb.text}) "
                         "GROUP BY tok HAVING count(*) > 1", (r, *memb.params)))
        if fetch_one(con, Sql("SELECT count(*) FROM _cr_keys WHERE r = ? AND k > 2", (r,)))[0]:
            # Keys of more than two records: all their records, from a second read.
            execute(con, Sql("INSERT INTO _cr_big SELECT k.a, CAST(? AS UTINYINT), m.node, m.t "
                             f"FROM ({memb.text}) m JOIN (SELECT tok, a FROM _cr_keys "
                             "WHERE r = ? AND k > 2) k ON m.tok = k.tok",
                             (r, *memb.params, r)))
    per_table = ", ".join(f"count(*) FILTER (WHERE t = {i}) AS c{i}" for i in range(n))
    over = " OR ".join(f"c{i} > ?" for i in range(n))
    spread = " + ".join(f"CAST(c{i} > 0 AS INTEGER)" for i in range(n))
    execute(con, Sql(
        f"CREATE TEMP TABLE _cr_bigk AS SELECT a, r, k, ({spread}) AS spans, "
        f"({over}) AS ignored FROM (SELECT a, r, count(*) AS k, {per_table} FROM _cr_big "
        "GROUP BY a, r)", tuple([cap] * n)))
    # Two-record keys: over-shared only if both records are in one table and cap < 2.
    same = f"(a >> {shift}) = (b >> {shift})"
    ignored = {rule: {"tokens": 0, "records": 0} for rule in rules}
    for r, ntok, nrec in execute(con, Sql(
            f"SELECT r, count(*), sum(k) FROM (SELECT r, k FROM _cr_keys WHERE k = 2 AND {same} "
            "AND ? < 2 UNION ALL SELECT r, k FROM _cr_bigk WHERE ignored) GROUP BY r",
            (cap,))).fetchall():
        ignored[rules[r]] = {"tokens": int(ntok), "records": int(nrec)}
    # Edges: (a, b) for two-record keys; a star from the smallest record for bigger keys.
    execute(con, Sql(
        "CREATE TEMP TABLE _cr_edges AS "
        f"SELECT a, b, r, NOT {same} AS spans, true AS pair FROM _cr_keys "
        f"WHERE k = 2 AND NOT ({same} AND ? < 2) UNION ALL "
        "SELECT g.a, g.node AS b, g.r, k.spans > 1 AS spans, false AS pair FROM _cr_big g "
        "JOIN _cr_bigk k USING (a, r) WHERE NOT k.ignored AND g.node <> g.a", (cap,)))
    for name in ("_cr_keys", "_cr_big", "_cr_bigk"):
        execute(con, f"DROP TABLE {quote_ident(name)}")
    # The entity map of linked records only; every other record is its own entity.
    scramble = new_scramble_key()
    if len(linking) == 1 and not propagate:
        rounds = _stars(con, scramble)
    else:
        rounds = _propagate(con)
        execute(con, f"CREATE TEMP TABLE _cr_ent AS {_entity_map_sql('x', scramble)} "
                     "FROM (SELECT l.node, l.lab, c.mask, c.rule FROM _cr_lab l "
                     "JOIN _cr_comp c USING (lab)) x")
        execute(con, "DROP TABLE _cr_lab")
    execute(con, "DROP TABLE _cr_edges")
    all_tables = (1 << n) - 1
    linked_rows = dict(execute(con, "SELECT t, count(*) FROM _cr_ent GROUP BY ALL").fetchall())
    masks = ", ".join(f"count(*) FILTER (WHERE mask & {1 << i} <> 0)" for i in range(n))
    linked_ents = fetch_one(con, f"SELECT {masks} FROM _cr_comp")
    tstats = {t.name: {"rows": t.rows, "entities": t.rows - int(linked_rows.get(i, 0))
                       + int(linked_ents[i] or 0)} for i, t in enumerate(tables)}
    by_rule = dict(execute(con, Sql("SELECT rule, count(*) FROM _cr_comp WHERE mask = ? "
                                    "AND rule IS NOT NULL GROUP BY rule", (all_tables,)))
                   .fetchall())
    links = {rule: int(by_rule.get(i, 0)) for i, rule in enumerate(rules)}
    overlap = fetch_one(con, Sql("SELECT count(*) FROM _cr_comp WHERE mask = ?",
                                 (all_tables,)))[0]
    execute(con, "DROP TABLE _cr_comp")
    res = Resolution(path=target, cache_key=key, tables=tstats, overlap_entities=int(overlap),
                     links_by_rule=links, ignored_tokens=ignored, rounds=rounds,
                     scramble=scramble)
    meta = json.dumps({"cache_key": key, **res.to_dict(), "scramble": list(scramble)})
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, 0o600) as tmp:
        execute(con, Sql("COPY _cr_ent TO ? (FORMAT parquet, COMPRESSION zstd, "
                         "KV_METADATA {cleanroom_resolution: ?})", (os.fspath(tmp), meta)))
    for old in target.parent.glob("resolution-*.parquet"):
        if old != target:
            old.unlink(missing_ok=True)
    execute(con, "DROP TABLE _cr_ent")
    return res
