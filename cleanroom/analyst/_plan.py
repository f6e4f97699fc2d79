"""Plan checked analyst SQL: regenerate it from the checked tree, rewritten so that the
engine, not the analyst, enforces the minimum.

An aggregation query runs in two steps:

    1. groups:  SELECT TRY(g1) AS _cr_g0, ..., agg1 AS _cr_a0, ...,
                       count(DISTINCT <first table>.entity_id) AS _cr_n
                FROM <the analyst's joins> WHERE TRY(<the analyst's WHERE>) GROUP BY ...
    2. answer:  SELECT TRY(<each output expression over _cr_g*/_cr_a*>) AS "<name>"
                FROM groups WHERE _cr_n >= minimum AND TRY(<HAVING>)
                ORDER BY TRY(...) LIMIT ... OFFSET ...

The groups table also numbers its groups (`_cr_i`, selected last by the answer and dropped
before output) and, for difference checks, lists each group's people (`_cr_p`, the distinct
entity ids). In differential mode the engine replaces the groups table by a noisy one before
the answer runs (see `_noisy`): the answer's expressions, HAVING and ORDER BY then only
post-process noisy figures.

Every output expression, HAVING, ORDER BY and LIMIT sees only groups that already stand for
at least the minimum number of distinct entities; all joins are INNER on entity_id, so every
table's entity_id is equal within a row and one count serves them all. Expressions are wrapped
in TRY(), so no value of a row or a small group can surface as a run-time error (an error
would be a yes/no answer about data the analyst may not see); an expression that would fail
yields NULL instead.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from protocols import CleanroomBug, PolicyRefusal

from ._checker import CheckedQuery
from ._tree import (
    Node,
    aliased,
    and_,
    canon,
    col,
    condition,
    int_node,
    is_aggregate,
    node_of,
    to_sql,
    try_,
)

RESERVED = "_cr_"


@dataclass(frozen=True)
class Aggregate:
    """One hidden aggregate column of the groups table, as differential mode must noise it:
    `people` (distinct entities), `count` (records of `table`), `sum` / `avg` of a column of
    `table` (an AVG's record count is the column `count_alias`)."""

    alias: str
    kind: str
    table: str | None = None
    column: str | None = None
    count_alias: str | None = None


@dataclass(frozen=True)
class Plan:
    """The SQL that will run for a checked query (text generated from the checked tree).

    `figures` names, per output column, the hidden aggregate it shows unchanged (None for
    group keys and computed expressions): its noise can then be stated."""

    names: tuple[str, ...]
    answer_sql: str
    groups_sql: str | None = None
    minimum: int | None = None
    aggregates: tuple[Aggregate, ...] = ()
    figures: tuple[str | None, ...] = ()
    group_count: int = 0
    index_sql: str | None = None  # DISTINCT answers: each row's group numbers (`_cr_l`)


# -- tree building -----------------------------------------------------------------------
def _rewrite(expr: Any, groups: dict[str, int], aggs: dict[str, str]) -> Any:
    """Replace GROUP BY expressions by _cr_g<i> and aggregates by _cr_a<j>."""
    if isinstance(expr, dict):
        if expr.get("class"):
            key = canon(expr)
            if key in groups:
                return col(f"{RESERVED}g{groups[key]}")
            if is_aggregate(expr):
                return col(aggs[key])
            if expr.get("class") == "COLUMN_REF":
                raise CleanroomBug("ungrouped column survived the check")
        return {k: v if k == "type_expr" else _rewrite(v, groups, aggs) for k, v in expr.items()}
    if isinstance(expr, list):
        return [_rewrite(v, groups, aggs) for v in expr]
    return expr


def _collect_aggregates(expr: Any, out: dict[str, Node]) -> None:
    if is_aggregate(expr):
        out.setdefault(canon(expr), expr)
    elif isinstance(expr, dict):
        for k, v in expr.items():
            if k != "type_expr":
                _collect_aggregates(v, out)
    elif isinstance(expr, list):
        for v in expr:
            _collect_aggregates(v, out)


def _modifiers(q: CheckedQuery, orders: list[Node]) -> list[Node]:
    mods: list[Node] = []
    if q.distinct:
        mods.append(node_of("SELECT DISTINCT a")["modifiers"][0])
    if orders:
        m = node_of("SELECT a ORDER BY a")["modifiers"][0]
        m["orders"] = orders
        mods.append(m)
    if q.limit is not None or q.offset is not None:
        m = node_of("SELECT a LIMIT 1 OFFSET 1")["modifiers"][0]
        for key, value in (("limit", q.limit), ("offset", q.offset)):
            m[key] = None if value is None else int_node(value)
        mods.append(m)
    return mods


def _output_names(
    con: duckdb.DuckDBPyConnection | None, select: Sequence[Node], checked: Sequence[Node]
) -> tuple[str, ...]:
    names = []
    for item, done in zip(select, checked, strict=True):
        if item.get("alias"):
            names.append(str(item["alias"]))
        elif item.get("class") == "COLUMN_REF":
            names.append(str(item["column_names"][-1]))
        else:
            node = node_of("SELECT a")
            node["select_list"] = [copy.deepcopy(item)]
            try:
                text = to_sql(con, node)
            except PolicyRefusal:  # as written it does not regenerate (e.g. a quoted type)
                node["select_list"] = [copy.deepcopy(done)]
                text = to_sql(con, node)
            names.append(re.sub(r"^SELECT\s+", "", text))
    return tuple(names)


# People semantics: in a join, a record of one table meets every record of the same person
# in another, so a plain SUM would count it once per such record. Each aggregate of a table's
# column instead counts each of that table's records at most once per output row, exactly as
# the built-in analyses do: over its distinct (record id, value) pairs. DISTINCT aggregates,
# MIN and MAX do not depend on multiplicity and run as written.
_PER_RECORD = {
    "sum": "list_sum(list_transform(list(DISTINCT {'r': _cr_r, 'v': _cr_v}), lambda s: s.v))",
    "avg": "list_avg(list_transform(list(DISTINCT {'r': _cr_r, 'v': _cr_v}), lambda s: s.v))",
    "count": "count(DISTINCT CASE WHEN _cr_v IS NOT NULL THEN _cr_r END)",
    "count_star": "count(DISTINCT _cr_r)",
}
_SYNONYMS = {"mean": "avg"}
RECORD_ID = f"{RESERVED}rid"


def per_record(agg: Node, first_alias: str) -> Node:
    """`agg` rewritten so each record of its table contributes once (see _PER_RECORD)."""
    fname = str(agg.get("function_name", "")).lower()
    fname = _SYNONYMS.get(fname, fname)
    if agg.get("distinct") or fname not in _PER_RECORD:
        return agg
    args = agg.get("arguments") or []
    value = args[0]["expression"] if args else None
    alias = first_alias if value is None else str(value["column_names"][0])
    template = node_of(f"SELECT {_PER_RECORD[fname]}")["select_list"][0]
    return _fill(template, col(alias, RECORD_ID), value)


def _fill(node: Any, record: Node, value: Node | None) -> Any:
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF" and node.get("column_names") in (["_cr_r"],
                                                                              ["_cr_v"]):
            return copy.deepcopy(record if node["column_names"] == ["_cr_r"] else value)
        return {k: _fill(v, record, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, record, value) for v in node]
    return node


def _group_key(g: Node) -> Node:
    """A GROUP BY key as run: TRY(...) around expressions and constants (a bare whole number
    in GROUP BY would be read as a position); plain columns stay bare."""
    return try_(g, always=g.get("class") == "CONSTANT")


def _describe(agg: Node, alias: str, query: CheckedQuery) -> Aggregate:
    """What differential mode needs to know of one aggregate (or refuse: dp_unsupported)."""
    fname = _SYNONYMS.get(str(agg.get("function_name", "")).lower(),
                          str(agg.get("function_name", "")).lower())
    args = agg.get("arguments") or []
    ref = args[0]["expression"].get("column_names") if args else None
    table = column = None
    if ref:
        table, column = query.tables[query.aliases.index(str(ref[0]))], str(ref[-1])
    if fname == "count" and agg.get("distinct") and column == "entity_id":
        return Aggregate(alias, "people")
    if agg.get("distinct") or fname not in ("count", "count_star", "sum", "avg"):
        raise PolicyRefusal("dp_unsupported", "differential mode releases COUNT(*), "
                            "COUNT(DISTINCT t.entity_id), COUNT, SUM and AVG of a column only "
                            "(one person's effect on the others cannot be bounded)")
    if fname == "count_star":
        return Aggregate(alias, "count", query.tables[0])
    if fname == "avg":
        return Aggregate(alias, "avg", table, column, f"{alias}_c")
    return Aggregate(alias, fname, table, column)


def _renamed(agg: Node, name: str) -> Node:
    """The same aggregate call under another function name (an AVG's SUM and COUNT)."""
    out = copy.deepcopy(agg)
    out["function_name"] = name
    out["qualified_name"] = {"path": [name]}
    return out


def plan(query: CheckedQuery, con: duckdb.DuckDBPyConnection | None, groups_table: str, *,
         people: bool = False, differential: bool = False) -> Plan:
    """The SQL to run for a checked query; aggregation queries read `groups_table`. With
    `people` the groups list their entity ids; with `differential` the aggregates are those
    noise can be added to (AVG as SUM and COUNT; refused otherwise: dp_unsupported)."""
    names = _output_names(con, query.originals or query.select, query.select)
    if query.kind == "list":
        node = node_of("SELECT a FROM t")
        node["select_list"] = [aliased(i, n) for i, n in zip(query.select, names, strict=True)]
        node["from_table"] = copy.deepcopy(query.from_table)
        node["where_clause"] = None if query.where is None else condition(query.where)
        node["modifiers"] = _modifiers(query, [{**o, "expression": try_(o["expression"])}
                                               for o in query.orders])
        return Plan(names, to_sql(con, node))
    if not groups_table.startswith(RESERVED) or query.minimum is None:
        raise CleanroomBug("bad plan arguments")
    groups = {canon(g): i for i, g in enumerate(query.groups)}
    found: dict[str, Node] = {}
    for e in (*query.select, query.having, *(o["expression"] for o in query.orders)):
        _collect_aggregates(e, found)
    counter = node_of("SELECT count(DISTINCT a)")["select_list"][0]
    counter["arguments"][0]["expression"] = col(query.aliases[0], "entity_id")
    # The analyst's own identical count, if any, is the hidden count: computed once.
    aggs = {k: f"{RESERVED}n" if k == canon(counter) else f"{RESERVED}a{j}"
            for j, k in enumerate(found)}
    described = tuple(_describe(a, aggs[k], query) for k, a in found.items()
                      if aggs[k] != f"{RESERVED}n") if differential else ()
    computed = []
    for k, a in found.items():
        if aggs[k] == f"{RESERVED}n":
            continue
        if differential and str(a.get("function_name")).lower() in ("avg", "mean"):
            computed += [aliased(per_record(_renamed(a, "sum"), query.aliases[0]), aggs[k]),
                         aliased(per_record(_renamed(a, "count"), query.aliases[0]),
                                 f"{aggs[k]}_c")]
        else:
            computed.append(aliased(per_record(a, query.aliases[0]), aggs[k]))
    listed = node_of("SELECT list(DISTINCT a)")["select_list"][0]
    listed["arguments"][0]["expression"] = col(query.aliases[0], "entity_id")
    inner = node_of("SELECT a FROM t GROUP BY a")
    inner["select_list"] = (
        [aliased(_group_key(g), f"{RESERVED}g{i}") for i, g in enumerate(query.groups)]
        + computed + [aliased(counter, f"{RESERVED}n")]
        + ([aliased(listed, f"{RESERVED}p")] if people else []))
    inner["from_table"] = copy.deepcopy(query.from_table)
    inner["where_clause"] = None if query.where is None else condition(query.where)
    inner["group_expressions"] = [_group_key(g) for g in query.groups]
    inner["group_sets"] = [list(range(len(query.groups)))] if query.groups else []
    outer = node_of(f"SELECT a FROM {RESERVED}groups WHERE {RESERVED}n >= 2")
    outer["from_table"]["table_name"] = groups_table
    outer["from_table"]["qualified_name"]["path"] = [groups_table]
    outer["where_clause"]["right"] = int_node(query.minimum)
    if query.having is not None:
        outer["where_clause"] = and_([outer["where_clause"],
                                      condition(_rewrite(query.having, groups, aggs))])
    outer["select_list"] = [aliased(try_(_rewrite(i, groups, aggs)), n)
                            for i, n in zip(query.select, names, strict=True)]
    index_sql = None
    if query.distinct:
        # a DISTINCT row stands for every group that gives it: list their numbers per row
        index = copy.deepcopy(outer)
        lister = node_of("SELECT list(a)")["select_list"][0]
        lister["arguments"][0]["expression"] = col(f"{RESERVED}i")
        index["select_list"].append(aliased(lister, f"{RESERVED}l"))
        index["group_expressions"] = copy.deepcopy(outer["select_list"])
        for g in index["group_expressions"]:
            g.pop("alias", None)
        index["group_sets"] = [list(range(len(index["group_expressions"])))]
        index_sql = to_sql(con, index)
    else:
        outer["select_list"].append(col(f"{RESERVED}i"))
    outer["modifiers"] = _modifiers(query, [
        {**o, "expression": try_(_rewrite(o["expression"], groups, aggs))}
        for o in query.orders])
    figures = []
    for item in query.select:
        done = _rewrite(item, groups, aggs)
        names_ = done.get("column_names") if done.get("class") == "COLUMN_REF" else None
        figures.append(str(names_[0]) if names_ and str(names_[0]).startswith(
            (f"{RESERVED}a", f"{RESERVED}n")) else None)
    return Plan(names, to_sql(con, outer), to_sql(con, inner), query.minimum,
                (*described, Aggregate(f"{RESERVED}n", "people")), tuple(figures),
                len(query.groups), index_sql)
