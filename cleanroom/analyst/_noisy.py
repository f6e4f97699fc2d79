"""Analyst SQL in differential mode: the groups table replaced by a noisy one.

The groups query ran on analyst tables already cut to each table's `user_contribution_limit`
records per person and clamped to the public bounds (`CleanRoom.rows_sql`). With at most k_t
records of each joined table, one person's joined rows number at most G = ∏ k_t, and each
falls in one group; so a person is in at most G groups, and adds at most G to the vector of
a table's record counts (a record is in as many groups as it has join partners) and
G · max(|lo|, |hi|) to a sum. Those are the L1 sensitivities given to OpenDP.

ε per query is split evenly over the measurements: the people counts (which also decide
which groups appear) and each other aggregate (an AVG spends its share half on a sum, half on
a count; an analyst's own COUNT(DISTINCT t.entity_id) reuses the people count). Groups are
released by DP partition selection unless every GROUP BY key is a plain dimension column
with `public_keys` in its owner's policy; then every combination of the public values is a
group, with a noisy count even where no one is. Groups whose noisy count is below the
minimum are dropped (post-processing). The answer's expressions, HAVING, ORDER BY and LIMIT
then run on the noisy table: they only post-process noisy figures.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from cleanroom.config import Policy
from cleanroom.engine import Sql, execute, quote_ident
from cleanroom.privacy import (
    DEFAULT_DELTA,
    NoisyValue,
    average_of,
    noisy_counts,
    noisy_sums,
    release_partitions,
    sum_sensitivity,
)
from protocols import PolicyRefusal

from ._checker import CheckedQuery
from ._plan import RESERVED, Plan
from ._tree import AGGREGATES, parse, safe_name


@dataclass(frozen=True)
class DifferentialSettings:
    """What the noise needs: ε for this query, each table's policy and contribution limit."""

    epsilon: float
    policies: Mapping[str, Policy]
    limits: Mapping[str, int]
    delta: float = DEFAULT_DELTA


def refuse_unsupported(sql: str) -> None:
    """Before the policy check: an aggregate noise cannot serve (MIN, MAX, MEDIAN, STDDEV, …:
    one person can move them arbitrarily) is refused with rule dp_unsupported."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class") == "FUNCTION":
                found.add(str(node.get("function_name", "")).lower())
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(parse(sql))
    other = sorted((found & _aggregate_names()) - AGGREGATES)
    if other:
        raise PolicyRefusal("dp_unsupported", f"differential mode releases COUNT, SUM and AVG "
                            f"only; {safe_name(other[0]).upper()} cannot be given noise (one "
                            "person's effect on it cannot be bounded)")


@functools.cache
def _aggregate_names() -> frozenset[str]:
    """Every aggregate function DuckDB knows (by name)."""
    with duckdb.connect() as con:
        rows = con.execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                           "WHERE function_type = 'aggregate'").fetchall()
    return frozenset(str(r[0]) for r in rows)


def check_bounds(plan: Plan, settings: DifferentialSettings) -> None:
    """SUM and AVG need public bounds on their column (rule dp_bounds)."""
    for agg in plan.aggregates:
        if agg.kind in ("sum", "avg") and agg.table and agg.column and \
                settings.policies[agg.table].bounds_for(agg.column) is None:
            raise PolicyRefusal("dp_bounds", f"{agg.kind.upper()} of {agg.table}.{agg.column} "
                                f"needs public bounds: the owner of table {agg.table!r} must "
                                f"give aggregate_columns {agg.column!r} bounds = [lo, hi]")


def _public_keys(query: CheckedQuery, policies: Mapping[str, Policy]
                 ) -> list[tuple[Any, ...]] | None:
    """Every combination of the GROUP BY columns' public values, if all have them."""
    values = []
    for g in query.groups:
        names = g.get("column_names") if g.get("class") == "COLUMN_REF" else None
        if not names or len(names) != 2 or str(names[0]) not in query.aliases:
            return None
        table = query.tables[query.aliases.index(str(names[0]))]
        public = policies[table].public_values(str(names[1]))
        if public is None:
            return None
        values.append(public)
    return list(itertools.product(*values))


def noise_groups(con: duckdb.DuckDBPyConnection, true_table: str, noisy_table: str,
                 plan: Plan, query: CheckedQuery, settings: DifferentialSettings
                 ) -> dict[int, dict[str, NoisyValue]]:
    """Write `noisy_table` (same columns as `true_table`: _cr_i, group keys, aggregates,
    _cr_n) with the released groups and their noisy figures; return each released group's
    noise by aggregate alias."""
    if plan.minimum is None:
        raise PolicyRefusal("analysis_rule", "differential mode answers aggregates only")
    described = execute(con, f"DESCRIBE {quote_ident(true_table)}").fetchall()
    columns = [(str(r[0]), str(r[1])) for r in described]
    names = [c for c, _ in columns]
    rows = execute(con, f"SELECT * FROM {quote_ident(true_table)}").fetchall()
    keys = [f"{RESERVED}g{i}" for i in range(plan.group_count)]
    at = {c: names.index(c) for c in names}
    by_key = {tuple(r[at[k]] for k in keys): r for r in rows}
    reach = math.prod(settings.limits[t] for t in query.tables)
    shares = 1 + sum(1 for a in plan.aggregates if a.kind not in ("people",))
    each = settings.epsilon / shares
    public = [()] if not keys else _public_keys(query, settings.policies)
    people: dict[tuple[Any, ...], NoisyValue]
    if public is not None:
        counts = noisy_counts([int(by_key[k][at[f"{RESERVED}n"]]) if k in by_key else 0
                               for k in public], epsilon=each, sensitivity=reach)
        people = {k: c for k, c in zip(public, counts, strict=True) if c.value >= plan.minimum}
    else:
        people = release_partitions(
            {k: int(r[at[f"{RESERVED}n"]]) for k, r in by_key.items()}, epsilon=each,
            delta=settings.delta, max_groups=reach, minimum=plan.minimum)
    order = list(people)
    noise: dict[int, dict[str, NoisyValue]] = {i: {f"{RESERVED}n": people[k]}
                                               for i, k in enumerate(order, start=1)}

    def true(alias: str) -> list[float]:
        return [float(by_key[k][at[alias]] or 0) if k in by_key else 0.0 for k in order]

    for agg in plan.aggregates:
        if agg.kind == "people" or not order:
            values = [people[k] for k in order]
        elif agg.kind == "count":
            values = noisy_counts([int(v) for v in true(agg.alias)], epsilon=each,
                                  sensitivity=reach)
        else:
            assert agg.table is not None and agg.column is not None
            bounds = settings.policies[agg.table].bounds_for(agg.column)
            assert bounds is not None  # check_bounds ran first
            share = each / 2 if agg.kind == "avg" else each
            values = noisy_sums(true(agg.alias), epsilon=share,
                                sensitivity=sum_sensitivity(*bounds, reach))
            if agg.kind == "avg" and agg.count_alias:
                counts = noisy_counts([int(v) for v in true(agg.count_alias)], epsilon=share,
                                      sensitivity=reach)
                values = [average_of(s, c, bounds) for s, c in zip(values, counts, strict=True)]
        for i, v in enumerate(values, start=1):
            noise[i][agg.alias] = v
    integral = {f"{RESERVED}n"} | {a.alias for a in plan.aggregates
                                   if a.kind in ("people", "count")}
    _write(con, noisy_table, columns, order, keys, integral, noise)
    return noise


def _write(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[tuple[str, str]],
           order: Sequence[tuple[Any, ...]], keys: Sequence[str], counts: set[str],
           noise: Mapping[int, Mapping[str, NoisyValue]]) -> None:
    """The noisy groups table: numbered 1.., group keys as they were, noisy aggregates."""
    decl = []
    for name, typ in columns:
        if name == f"{RESERVED}i" or name in counts:
            typ = "BIGINT"
        elif name not in keys:
            typ = "DOUBLE"
        decl.append(f"{quote_ident(name)} {typ}")
    execute(con, f"CREATE OR REPLACE TEMP TABLE {quote_ident(table)} ({', '.join(decl)})")
    if not order:
        return
    marks = ", ".join("?" for _ in columns)
    for i, key in enumerate(order, start=1):
        values: list[Any] = []
        for name, _ in columns:
            if name == f"{RESERVED}i":
                values.append(i)
            elif name in keys:
                values.append(key[keys.index(name)])
            elif name in noise[i]:
                v = noise[i][name].value
                values.append(int(v) if name in counts else float(v))
            else:
                values.append(None)  # an AVG's record count: already folded into the AVG
        execute(con, Sql(f"INSERT INTO {quote_ident(table)} VALUES ({marks})", tuple(values)))
