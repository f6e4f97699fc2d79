"""Entity resolution: link records that share a token into people (connected components).

All in DuckDB SQL, no Python loop per row or edge:

1. memberships: one row (node, rule, token) per non-null token of a matching-rule column, where
   node = table index * 2^40 + the record's row number in its Parquet file;
2. keys: group memberships by (rule, token); a token found in more than max_records_per_token
   rows of any one table is ignored everywhere (and counted); keys with one record link nothing;
   a two-record key is one edge, a bigger key a star from its smallest record;
3. min-label propagation over the edges with pointer jumping, one SQL round per iteration
   until no label changes (labels only decrease, so it terminates); at the fixpoint every
   record carries the smallest node id of its component;
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from protocols import atomic_path

from ._sql import Sql, execute, quote_ident

ALGORITHM = "cleanroom-resolve/v2"
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
    scramble: tuple[int, int, int] = field(default=(0, 1, 1), repr=False)
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
        if stats.get("cache_key") != key:
            return None
        k, c1, c2 = (int(x) for x in stats["scramble"])
        return Resolution(path=path, cache_key=key, tables=stats["tables"],
                          overlap_entities=stats["overlap_entities"],
                          links_by_rule=stats["links_by_rule"],
                          ignored_tokens=stats["ignored_tokens"], rounds=stats["rounds"],
                          scramble=(k, c1, c2), from_cache=True)
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowInvalid):
        return None


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


def new_scramble_key() -> tuple[int, int, int]:
    """A random key for `scramble_sql`: a 48-bit xor value and two odd 16-bit multipliers."""
    return (secrets.randbits(48), secrets.randbits(16) | 1, secrets.randbits(16) | 1)


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
    # Keys shared by at least two records: their smallest and largest record, the tables they
    # span, and whether they are over-shared (more than `cap` records in one table).
    execute(con, Sql(
        f"CREATE TEMP TABLE _cr_keys AS SELECT r, a, b, k, ({spread}) AS spans, "
        f"({over}) AS ignored FROM (SELECT r, min(node) AS a, max(node) AS b, count(*) AS k, "
        f"{per_table} FROM _cr_memb GROUP BY r, tok HAVING count(*) > 1)", tuple([cap] * n)))
    ignored = {rule: {"tokens": 0, "records": 0} for rule in rules}
    for r, ntok, nrec in execute(con, "SELECT r, count(*), sum(k) FROM _cr_keys WHERE ignored "
                                      "GROUP BY r").fetchall():
        ignored[rules[r]] = {"tokens": int(ntok), "records": int(nrec)}
    # Edges: (a, b) for two-record keys; a star from the smallest record for bigger keys.
    execute(con, "CREATE TEMP TABLE _cr_edges AS "
                 "SELECT a, b, r, spans FROM _cr_keys WHERE NOT ignored AND k = 2 "
                 "UNION ALL SELECT big.a, m.node AS b, big.r, big.spans FROM "
                 "(SELECT k.a, k.r, k.spans, m0.tok FROM _cr_keys k JOIN _cr_memb m0 "
                 " ON m0.node = k.a AND m0.r = k.r WHERE NOT k.ignored AND k.k > 2) big "
                 "JOIN _cr_memb m ON m.r = big.r AND m.tok = big.tok WHERE m.node <> big.a")
    execute(con, "DROP TABLE _cr_memb")
    execute(con, "DROP TABLE _cr_keys")
    execute(con, "CREATE TEMP TABLE _cr_lab AS SELECT x AS node, min(y) AS lab FROM "
                 "(SELECT a AS x, a AS y FROM _cr_edges UNION ALL SELECT b, a FROM _cr_edges) "
                 "GROUP BY x")
    rounds = 1
    while True:
        # Each record takes the smallest label among itself and its neighbours, then jumps
        # to its label's label. Labels only decrease; stop when none changes.
        execute(con, "CREATE OR REPLACE TEMP TABLE _cr_new AS "
                     "WITH e AS (SELECT a AS x, b AS y FROM _cr_edges "
                     "UNION ALL SELECT b, a FROM _cr_edges), "
                     "c AS (SELECT e.x AS node, min(l.lab) AS lab FROM e "
                     "JOIN _cr_lab l ON l.node = e.y GROUP BY e.x), "
                     "nl AS (SELECT o.node, least(o.lab, c.lab) AS lab FROM _cr_lab o "
                     "JOIN c USING (node)) "
                     "SELECT a.node, least(a.lab, coalesce(b.lab, a.lab)) AS lab "
                     "FROM nl a LEFT JOIN nl b ON b.node = a.lab")
        changed = execute(con, "SELECT count(*) FROM _cr_new n JOIN _cr_lab o USING (node) "
                               "WHERE n.lab <> o.lab").fetchone()[0]
        execute(con, "DROP TABLE _cr_lab")
        execute(con, "ALTER TABLE _cr_new RENAME TO _cr_lab")
        rounds += 1
        if not changed:
            break
    # The entity map of linked records only; every other record is its own entity.
    scramble = new_scramble_key()
    execute(con, Sql(
        "CREATE TEMP TABLE _cr_ent AS "
        "WITH rule AS (SELECT l.lab, min(e.r) AS rule FROM _cr_edges e "
        "JOIN _cr_lab l ON l.node = e.a WHERE e.spans > 1 GROUP BY l.lab), "
        f"spread AS (SELECT lab, count(DISTINCT node >> {NODE_SHIFT}) AS n_tables "
        "FROM _cr_lab GROUP BY lab) "
        f"SELECT CAST(l.node >> {NODE_SHIFT} AS UTINYINT) AS t, "
        f"l.node & {(1 << NODE_SHIFT) - 1} AS rn, {scramble_sql('l.lab', scramble)} AS entity_id,"
        " CAST(spread.n_tables AS UTINYINT) AS n_tables, CAST(rule.rule AS UTINYINT) AS rule "
        "FROM _cr_lab l JOIN spread USING (lab) LEFT JOIN rule USING (lab)"))
    execute(con, "DROP TABLE _cr_edges")
    execute(con, "DROP TABLE _cr_lab")
    linked = {int(t): (int(r), int(e)) for t, r, e in execute(
        con, "SELECT t, count(*), count(DISTINCT entity_id) FROM _cr_ent GROUP BY t").fetchall()}
    tstats = {}
    for i, t in enumerate(tables):
        lrows, lents = linked.get(i, (0, 0))
        tstats[t.name] = {"rows": t.rows, "entities": t.rows - lrows + lents}
    by_rule = dict(execute(con, Sql(
        "SELECT rule, count(DISTINCT entity_id) FROM _cr_ent WHERE n_tables = ? "
        "AND rule IS NOT NULL GROUP BY rule", (n,))).fetchall())
    links = {rule: int(by_rule.get(i, 0)) for i, rule in enumerate(rules)}
    overlap = execute(con, Sql("SELECT count(DISTINCT entity_id) FROM _cr_ent "
                               "WHERE n_tables = ?", (n,))).fetchone()[0]
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
