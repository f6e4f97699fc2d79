"""Entity resolution: link records that share a token into people (connected components).

All in DuckDB SQL, no Python loop per row or edge:

1. memberships: one row (node, rule, token) per non-null token of a matching-rule column, where
   node = table index * 2^40 + the record's row number in its Parquet file;
2. keys: group memberships by (rule, token); a token found in more than max_records_per_token
   rows of any one table is ignored everywhere (and counted); keys with one record link nothing;
3. min-label propagation over the bipartite record-key graph with pointer jumping, one SQL
   round per iteration until no label changes (labels only decrease, so it terminates); at the
   fixpoint every record carries the smallest node id of its component;
4. entity ids are the component labels renumbered in a random order (so an id says nothing
   about which table or row it came from); for each entity the first rule (priority order) of
   a key shared across tables is the rule that linked it.

The result (table index, row number, entity id, tables the entity is in, linking rule) is
cached as Parquet, keyed by the SHA-256 of the token files and the matching settings, with the
statistics in the file's metadata, so that repeated analyses do not recompute it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from protocols import atomic_path

from ._sql import Sql, execute, quote_ident

ALGORITHM = "cleanroom-resolve/v1"
NODE_SHIFT = 40
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
    from_cache: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Statistics as plain JSON values."""
        return {"tables": self.tables, "overlap_entities": self.overlap_entities,
                "links_by_rule": self.links_by_rule, "ignored_tokens": self.ignored_tokens,
                "rounds": self.rounds}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def cache_key(tables: Sequence[ResolveInput], rules: Sequence[str], cap: int) -> str:
    """The cache key: algorithm, matching settings, and each token file's content hash."""
    spec = {"algorithm": ALGORITHM, "rules": list(rules), "cap": cap,
            "tables": [[t.name, list(t.columns), file_sha256(t.path)] for t in tables]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def resolve(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[ResolveInput],
    rules: Sequence[str],
    max_records_per_token: int,
    cache_dir: Path,
    *,
    use_cache: bool = True,
) -> Resolution:
    """Resolve entities across `tables`; the result is a Parquet file in `cache_dir`."""
    key = cache_key(tables, rules, max_records_per_token)
    target = cache_dir / f"resolution-{key[:24]}.parquet"
    if use_cache and target.exists():
        cached = _load(target, key)
        if cached is not None:
            return cached
    return _compute(con, tables, rules, max_records_per_token, key, target)


def _load(path: Path, key: str) -> Resolution | None:
    """A cached resolution, or None if the file is unreadable or for another key."""
    try:
        meta = pq.read_schema(path).metadata or {}
        stats = json.loads(meta[_STATS_KEY])
    except (OSError, KeyError, ValueError):
        return None
    if stats.get("cache_key") != key:
        return None
    return Resolution(path=path, cache_key=key, tables=stats["tables"],
                      overlap_entities=stats["overlap_entities"],
                      links_by_rule=stats["links_by_rule"],
                      ignored_tokens=stats["ignored_tokens"], rounds=stats["rounds"],
                      from_cache=True)


def _memberships_sql(tables: Sequence[ResolveInput], rules: Sequence[str]) -> Sql:
    """One (t, node, r, tok) row per non-null token of a linking column."""
    parts, params = [], []
    for i, t in enumerate(tables):
        for col in t.columns:
            c = quote_ident(col, t.columns)
            parts.append(
                f"SELECT CAST({i} AS UTINYINT) AS t, "
                f"(CAST({i} AS BIGINT) << {NODE_SHIFT}) + file_row_number AS node, "
                f"CAST({rules.index(col)} AS UTINYINT) AS r, {c} AS tok "
                f"FROM read_parquet(?, file_row_number = true) WHERE {c} IS NOT NULL")
            params.append(os.fspath(t.path))
    if not parts:
        parts.append("SELECT NULL::UTINYINT t, NULL::BIGINT node, NULL::UTINYINT r, "
                     "NULL::BLOB tok WHERE false")
    return Sql("CREATE TEMP TABLE _cr_memb AS " + " UNION ALL ".join(parts), tuple(params))


def _compute(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[ResolveInput],
    rules: Sequence[str],
    cap: int,
    key: str,
    target: Path,
) -> Resolution:
    n = len(tables)
    for name in ("_cr_memb", "_cr_keys", "_cr_edges", "_cr_lab", "_cr_new", "_cr_ent"):
        execute(con, f"DROP TABLE IF EXISTS {quote_ident(name)}")
    execute(con, _memberships_sql(tables, rules))
    per_table = ", ".join(f"count(*) FILTER (WHERE t = {i}) AS c{i}" for i in range(n))
    over = " OR ".join(f"c{i} > ?" for i in range(n))
    spread = " + ".join(f"CAST(c{i} > 0 AS INTEGER)" for i in range(n))
    # Keys: one row per (rule, token) with its records, the tables it spans and whether ignored.
    execute(con, Sql(
        f"CREATE TEMP TABLE _cr_keys AS SELECT r, nodes, k, ({spread}) AS spans, "
        f"({over}) AS ignored FROM (SELECT r, list(node) AS nodes, count(*) AS k, {per_table} "
        f"FROM _cr_memb GROUP BY r, tok HAVING count(*) > 1)", tuple([cap] * n)))
    ignored_rows = execute(con, "SELECT r, count(*), sum(k) FROM _cr_keys WHERE ignored "
                                "GROUP BY r").fetchall()
    ignored = {rule: {"tokens": 0, "records": 0} for rule in rules}
    for r, ntok, nrec in ignored_rows:
        ignored[rules[r]] = {"tokens": int(ntok), "records": int(nrec)}
    execute(con, "CREATE TEMP TABLE _cr_edges AS SELECT row_number() OVER () AS kid, r, spans, "
                 "unnest(nodes) AS node FROM (SELECT * FROM _cr_keys WHERE NOT ignored)")
    execute(con, "DROP TABLE _cr_memb")
    execute(con, "CREATE TEMP TABLE _cr_lab AS SELECT node, min(node) OVER (PARTITION BY kid) "
                 "AS lab FROM _cr_edges")
    execute(con, "CREATE OR REPLACE TEMP TABLE _cr_lab AS SELECT node, min(lab) AS lab "
                 "FROM _cr_lab GROUP BY node")
    rounds = 1
    while True:
        # Key label = min label of its records; record label = min over its keys; then jump.
        execute(con, "CREATE OR REPLACE TEMP TABLE _cr_new AS "
                     "WITH kl AS (SELECT e.kid, min(l.lab) AS lab FROM _cr_edges e "
                     "JOIN _cr_lab l USING (node) GROUP BY e.kid), "
                     "nl AS (SELECT e.node, min(kl.lab) AS lab FROM _cr_edges e "
                     "JOIN kl USING (kid) GROUP BY e.node) "
                     "SELECT a.node, least(a.lab, coalesce(b.lab, a.lab)) AS lab "
                     "FROM nl a LEFT JOIN nl b ON b.node = a.lab")
        changed = execute(con, "SELECT count(*) FROM _cr_new n JOIN _cr_lab o USING (node) "
                               "WHERE n.lab <> o.lab").fetchone()[0]
        execute(con, "DROP TABLE _cr_lab")
        execute(con, "ALTER TABLE _cr_new RENAME TO _cr_lab")
        rounds += 1
        if not changed:
            break
    # Entity ids: labels renumbered in a random order; first cross-table rule per entity.
    seed = secrets.randbits(62)
    all_rows = " UNION ALL ".join(
        f"SELECT CAST({i} AS UTINYINT) AS t, range AS rn FROM range(?)" for i in range(n))
    execute(con, Sql(
        "CREATE TEMP TABLE _cr_ent AS "
        f"WITH recs AS ({all_rows}), "
        f"lab AS (SELECT r.t, r.rn, coalesce(l.lab, (CAST(r.t AS BIGINT) << {NODE_SHIFT}) + r.rn)"
        f" AS lab FROM recs r LEFT JOIN _cr_lab l "
        f"ON l.node = (CAST(r.t AS BIGINT) << {NODE_SHIFT}) + r.rn), "
        "ids AS (SELECT lab, row_number() OVER (ORDER BY hash(lab + ?), lab) AS entity_id "
        "FROM (SELECT DISTINCT lab FROM lab)), "
        "rule AS (SELECT l.lab, min(e.r) AS rule FROM _cr_edges e JOIN _cr_lab l USING (node) "
        "WHERE e.spans > 1 GROUP BY l.lab), "
        "spread AS (SELECT lab, count(DISTINCT t) AS n_tables FROM lab GROUP BY lab) "
        "SELECT lab.t, lab.rn, ids.entity_id, spread.n_tables, rule.rule "
        "FROM lab JOIN ids USING (lab) JOIN spread USING (lab) LEFT JOIN rule USING (lab)",
        tuple(t.rows for t in tables) + (seed,)))
    for name in ("_cr_keys", "_cr_edges", "_cr_lab"):
        execute(con, f"DROP TABLE {quote_ident(name)}")
    stats_rows = execute(con, "SELECT t, count(*), count(DISTINCT entity_id) FROM _cr_ent "
                              "GROUP BY t").fetchall()
    counts = {int(t): (int(r), int(e)) for t, r, e in stats_rows}
    tstats = {t.name: {"rows": counts.get(i, (0, 0))[0], "entities": counts.get(i, (0, 0))[1]}
              for i, t in enumerate(tables)}
    by_rule = dict(execute(con, Sql(
        "SELECT rule, count(DISTINCT entity_id) FROM _cr_ent WHERE n_tables = ? "
        "AND rule IS NOT NULL GROUP BY rule", (n,))).fetchall())
    links = {rule: int(by_rule.get(i, 0)) for i, rule in enumerate(rules)}
    overlap = execute(con, Sql("SELECT count(DISTINCT entity_id) FROM _cr_ent "
                               "WHERE n_tables = ?", (n,))).fetchone()[0]
    res = Resolution(path=target, cache_key=key, tables=tstats, overlap_entities=int(overlap),
                     links_by_rule=links, ignored_tokens=ignored, rounds=rounds)
    meta = json.dumps({"cache_key": key, **res.to_dict()})
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, 0o600) as tmp:
        execute(con, Sql("COPY _cr_ent TO ? (FORMAT parquet, COMPRESSION zstd, "
                         "KV_METADATA {cleanroom_resolution: ?})", (os.fspath(tmp), meta)))
    for old in target.parent.glob("resolution-*.parquet"):
        if old != target:
            old.unlink(missing_ok=True)
    execute(con, "DROP TABLE _cr_ent")
    return res
