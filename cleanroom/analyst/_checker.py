"""Check analyst SQL against the tables' policies by walking DuckDB's own parse tree.

The SQL is parsed by DuckDB (`json_serialize_sql`), so what is checked is exactly what DuckDB
understood. The walker is an allow-list: every node kind, key and function it does not know is
refused. It collects every violation and refuses once, naming each rule. What passes comes back
as a `CheckedQuery`: the tree with every column fully qualified and every GROUP BY / ORDER BY
alias or position replaced by the expression it stands for, ready for `_query` to rewrite and run.

Rules (names as they appear in refusals and in the audit log):
    parse, single_select, cte, set_operation, subquery, window_function, select_star,
    table_function, unknown_table, mixed_rules, join_type, join_condition, join_required,
    self_join,
    entity_id, token_column, unknown_column, ambiguous_column, column_role,
    disallowed_output_column, aggregate_required, aggregate_function, aggregate_argument,
    scalar_function, grouping_sets, limit, list_distinct, list_aggregate, unsupported_sql
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb

from cleanroom.config import ENTITY_COLUMN
from protocols import CleanroomBug, PolicyRefusal

from ._expressions import (
    EXPR_COMMON,
    EXPR_KEYS,
    Context,
    ExpressionChecker,
    TableRules,
    Walk,
)
from ._tree import (
    MAX_SQL_CHARS,
    Node,
    canon,
    column_names_in,
    contains_aggregate,
    int_constant,
    is_empty,
    parse,
    qualified_name,
    safe_name,
    uncovered,
)

# Select items, GROUP BY and ORDER BY expressions each: more is a denial of service (10,000
# GROUP BY expressions took 40 s to check and plan), not an analysis.
MAX_ITEMS = 256
_REF_COMMON = {"type", "alias", "sample", "query_location", "query_location_length"}
_REF_KEYS = {
    "BASE_TABLE": _REF_COMMON | {"schema_name", "table_name", "column_name_alias",
                                 "catalog_name", "at_clause", "qualified_name"},
    "JOIN": _REF_COMMON | {"left", "right", "condition", "join_type", "ref_type", "using_columns",
                           "delim_flipped", "duplicate_eliminated_columns", "is_implicit",
                           "ranking_expression", "nearest_count", "nearest_order_type",
                           "nearest_approx"},
}
_MODIFIER_KEYS = {
    "ORDER_MODIFIER": {"type", "orders"},
    "LIMIT_MODIFIER": {"type", "limit", "offset", "limit_type"},
    "DISTINCT_MODIFIER": {"type", "distinct_on_targets"},
}


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed every rule: its tree (qualified), the tables and the minimum."""

    kind: Literal["aggregation", "list"]
    tables: tuple[str, ...]
    aliases: tuple[str, ...]
    minimum: int | None
    select: tuple[Node, ...] = field(repr=False)
    originals: tuple[Node, ...] = field(default=(), repr=False)  # select items as written
    from_table: Node = field(default_factory=dict, repr=False)
    where: Node | None = field(default=None, repr=False)
    groups: tuple[Node, ...] = field(default=(), repr=False)
    having: Node | None = field(default=None, repr=False)
    orders: tuple[Node, ...] = field(default=(), repr=False)
    limit: int | None = None
    offset: int | None = None
    distinct: bool = False


class _Checker:
    """One walk over one statement; collects violations, then refuses once or returns."""

    def __init__(self, tables: Mapping[str, TableRules], runner: str) -> None:
        self.walk = Walk({k.lower(): v for k, v in tables.items()}, runner)
        self.exprs = ExpressionChecker(self.walk)

    def refuse(self, rule: str, message: str) -> None:
        """Record a violation (the query is refused once the walk is over)."""
        self.walk.refuse(rule, message)

    def only(self, node: Any, keys: set[str], what: str) -> bool:
        """Refuse (and return False) if `node` carries anything beyond `keys`."""
        extra = [k for k, v in node.items() if k not in keys and not is_empty(v)] \
            if isinstance(node, dict) else ["(not an object)"]
        if extra:
            self.refuse("unsupported_sql", f"unsupported {what} feature {safe_name(extra[0])}")
        return not extra

    def raise_if_refused(self) -> None:
        if self.walk.violations:
            items = list(self.walk.violations)
            rules = list(dict.fromkeys(r for r, _ in items))
            text = "; ".join([items[0][1]] + [f"also [{r}] {m}" for r, m in items[1:]])
            raise PolicyRefusal(rules[0], text, rules=rules)

    # -- statement ------------------------------------------------------------------------
    def statement(self, stmt: Node) -> CheckedQuery:
        if stmt.get("named_param_map"):
            self.refuse("unsupported_sql", "query parameters ($1, ?) are not allowed")
        node = stmt.get("node") or {}
        ntype = node.get("type")
        if ntype == "SET_OPERATION_NODE":
            raise PolicyRefusal("set_operation", "UNION, INTERSECT and EXCEPT are not allowed")
        if ntype != "SELECT_NODE":
            raise PolicyRefusal("single_select", "only a plain SELECT is allowed")
        if (node.get("cte_map") or {}).get("map"):
            self.refuse("cte", "WITH (common table expressions) is not allowed")
        if not is_empty(node.get("qualify")):
            self.refuse("window_function", "QUALIFY and window functions are not allowed")
        if not is_empty(node.get("sample")):
            self.refuse("unsupported_sql", "USING SAMPLE is not allowed")
        known = {"type", "modifiers", "cte_map", "select_list", "from_table", "where_clause",
                 "group_expressions", "group_sets", "aggregate_handling", "having", "sample",
                 "qualify"}
        for k, v in node.items():
            if k not in known and not is_empty(v):
                self.refuse("unsupported_sql", f"unsupported SELECT feature {safe_name(k)}")
        sizes = (("select list items", len(node.get("select_list") or [])),
                 ("GROUP BY expressions", len(node.get("group_expressions") or [])),
                 ("ORDER BY expressions", sum(len(m.get("orders") or [])
                                              for m in node.get("modifiers") or [])))
        for what, n in sizes:
            if n > MAX_ITEMS:
                raise PolicyRefusal("unsupported_sql", f"too many {what} ({n:,}; at most "
                                    f"{MAX_ITEMS})")
        self.from_clause(node.get("from_table") or {})
        self.raise_if_refused()  # nothing below makes sense without a valid FROM
        kinds = {t.policy.analysis_rule for t in self.walk.scope.values()}
        if len(kinds) > 1:
            raise PolicyRefusal("mixed_rules", "tables with the aggregation rule and tables "
                                "with the list rule cannot be queried together")
        self.walk.kind = "list" if kinds == {"list"} else "aggregation"
        self.join_requirements()
        modifiers = self.modifiers(node.get("modifiers") or [])
        if self.walk.kind == "list":
            return self.list_query(node, modifiers)
        return self.aggregation_query(node, modifiers)

    def modifiers(self, mods: list[Node]) -> dict[str, Any]:
        out: dict[str, Any] = {"orders": [], "limit": None, "offset": None, "distinct": False}
        for m in mods:
            mtype = m.get("type")
            if not self.only(m, _MODIFIER_KEYS.get(str(mtype), set()), "query modifier"):
                continue
            if mtype == "ORDER_MODIFIER":
                for o in m.get("orders") or []:
                    self.only(o, {"type", "null_order", "expression"}, "ORDER BY")
                    if o.get("type") not in ("ORDER_DEFAULT", "ASCENDING", "DESCENDING"):
                        self.refuse("unsupported_sql", "unsupported ORDER BY direction")
                    out["orders"].append(o)
            elif mtype == "LIMIT_MODIFIER":
                if m.get("limit_type", "ROW_COUNT") != "ROW_COUNT":
                    self.refuse("limit", "LIMIT must be a number of rows")
                for key in ("limit", "offset"):
                    if m.get(key) is None:
                        continue
                    value = int_constant(m[key])
                    if value is None:
                        self.refuse("limit", f"{key.upper()} must be a plain whole number")
                    out[key] = value
            elif mtype == "DISTINCT_MODIFIER":
                if m.get("distinct_on_targets"):
                    self.refuse("unsupported_sql", "DISTINCT ON is not allowed")
                out["distinct"] = True
            else:
                self.refuse("unsupported_sql", "unsupported query modifier")
        return out

    # -- FROM -----------------------------------------------------------------------------
    def from_clause(self, ref: Node) -> list[str]:
        """Check a table reference; return the aliases it brings into scope."""
        rtype = ref.get("type")
        if rtype in _REF_KEYS:
            extra = [k for k, v in ref.items() if k not in _REF_KEYS[rtype] and not is_empty(v)]
            if extra:
                self.refuse("unsupported_sql", f"unsupported FROM feature {safe_name(extra[0])}")
                return []
        if rtype == "BASE_TABLE":
            return self.base_table(ref)
        if rtype == "JOIN":
            return self.join(ref)
        if rtype == "TABLE_FUNCTION":
            self.refuse("table_function", "table functions and file readers (read_csv, "
                        "read_parquet, glob, ...) are not allowed")
        elif rtype == "SUBQUERY":
            self.refuse("subquery", "subqueries are not allowed")
        elif rtype == "SHOW_REF":  # DESCRIBE, SUMMARIZE, SHOW: statements of their own
            self.refuse("single_select", "DESCRIBE, SUMMARIZE and SHOW are not allowed; only "
                        "a plain SELECT")
            self.refuse("unknown_table", "only collaboration tables may be queried")
        elif rtype == "PIVOT":
            self.refuse("unsupported_sql", "PIVOT and UNPIVOT are not allowed")
            self.refuse("unknown_table", "only collaboration tables may be queried")
        elif rtype == "EXPRESSION_LIST":
            self.refuse("subquery", "VALUES lists are not allowed")
            self.refuse("unknown_table", "only collaboration tables may be queried")
        elif rtype == "EMPTY":
            self.refuse("unknown_table", "the query must read a collaboration table (FROM ...)")
        else:
            self.refuse("unknown_table", "only collaboration tables may be queried")
        return []

    def base_table(self, ref: Node) -> list[str]:
        name = str(ref.get("table_name") or "")
        path = (ref.get("qualified_name") or {}).get("path") or [name]
        table = self.walk.tables.get(name.lower())
        if ref.get("schema_name") or ref.get("catalog_name") or len(path) != 1 or table is None:
            self.refuse("unknown_table", f"{safe_name(name)} is not a table of this collaboration "
                        f"(tables: {', '.join(sorted(self.walk.tables))})")
            return []
        if not is_empty(ref.get("sample")) or not is_empty(ref.get("at_clause")):
            self.refuse("unsupported_sql", "TABLESAMPLE and AT (...) are not allowed")
        if ref.get("column_name_alias"):
            self.refuse("unsupported_sql", "renaming a table's columns in FROM is not allowed")
        alias = str(ref.get("alias") or name).lower()
        if any(t is table for t in self.walk.scope.values()):
            # A table joined to itself on entity_id teaches nothing new about people, but it
            # multiplies each person's records (a denial of service); one reference per table.
            self.refuse("self_join", f"table {safe_name(table.name)} appears twice in FROM: "
                        "each table may be used once (no self-joins)")
            return []
        if alias in self.walk.scope:
            self.refuse("unsupported_sql", f"the name {safe_name(alias)} is used twice in FROM")
            return []
        self.walk.scope[alias] = table
        self.walk.order.append(alias)
        return [alias]

    def join(self, ref: Node) -> list[str]:
        left = self.from_clause(ref.get("left") or {})
        right = self.from_clause(ref.get("right") or {})
        jt, rt = ref.get("join_type"), ref.get("ref_type")
        if ref.get("is_implicit") or rt == "CROSS":
            self.refuse("join_type", "CROSS joins (and FROM a, b) are not allowed; use "
                        "a JOIN b ON a.entity_id = b.entity_id")
        elif rt in ("NATURAL", "ASOF", "POSITIONAL", "DEPENDENT") or rt != "REGULAR":
            self.refuse("join_type", f"{str(rt).lower()} joins are not allowed; only INNER JOIN "
                        "on entity_id")
        elif jt != "INNER":
            self.refuse("join_type", f"{str(jt).lower()} joins are not allowed; only INNER JOIN "
                        "on entity_id")
        elif ref.get("using_columns"):
            if [c.lower() for c in ref["using_columns"]] != [ENTITY_COLUMN] or \
                    ref.get("condition") is not None:
                self.refuse("join_condition", "joins must be on entity_id only")
            self.walk.using_entity = True
        else:
            self.join_condition(ref.get("condition"), left, right)
        for k in ("delim_flipped", "duplicate_eliminated_columns", "ranking_expression",
                  "sample", "nearest_approx"):
            if not is_empty(ref.get(k)):
                self.refuse("unsupported_sql", "unsupported join feature")
        return left + right

    def join_condition(self, cond: Any, left: list[str], right: list[str]) -> None:
        ok = isinstance(cond, dict) and cond.get("class") == "COMPARISON" \
            and cond.get("type") == "COMPARE_EQUAL" \
            and self.only(cond, EXPR_COMMON | EXPR_KEYS["COMPARISON"], "join condition") \
            and all(self.only(cond.get(k), EXPR_COMMON | EXPR_KEYS["COLUMN_REF"], "join column")
                    for k in ("left", "right"))
        if ok:
            sides = [self.entity_side(cond.get(k)) for k in ("left", "right")]
            a, b = sides
            ok = a is not None and b is not None and (
                (a in left and b in right) or (a in right and b in left))
            if ok:
                for k, alias in zip(("left", "right"), sides, strict=True):
                    cond[k]["column_names"] = [alias, ENTITY_COLUMN]
        if not ok:
            self.refuse("join_condition", "a join must be exactly ON a.entity_id = b.entity_id "
                        "(one table on each side); joining on anything else is not allowed")
            for names in column_names_in(cond):
                col = names[-1]
                scope = self.walk.scope
                tables = [scope[names[0]]] if len(names) == 2 and names[0] in scope \
                    else list(self.walk.scope.values())
                if any(col in t.policy.join_columns for t in tables):
                    self.refuse("token_column", f"{safe_name(col)} is a token (join) column: "
                                "the engine has already matched tokens into entity_id; join on "
                                "entity_id")

    def entity_side(self, node: Any) -> str | None:
        if not isinstance(node, dict) or node.get("class") != "COLUMN_REF":
            return None
        names = [str(n).lower() for n in node.get("column_names") or []]
        if len(names) == 2 and names[1] == ENTITY_COLUMN and names[0] in self.walk.scope:
            return names[0]
        return None

    def join_requirements(self) -> None:
        own = [a for a in self.walk.order if self.walk.scope[a].owner == self.walk.runner]
        if self.walk.kind == "list":
            others = [a for a in self.walk.order if self.walk.scope[a].owner != self.walk.runner]
            if not own or not others:
                self.refuse("join_required", "the list rule lists only matched entities: join "
                            "your own table to the other party's table on entity_id")
            return
        for alias in self.walk.order:
            t = self.walk.scope[alias]
            if t.policy.join_required == "query_runner" and not own:
                self.refuse("join_required", f"table {safe_name(t.name)} must be joined to a "
                            f"table of {safe_name(self.walk.runner)} "
                            "(join_required = query_runner)")

    # -- query shapes ---------------------------------------------------------------------
    def select_items(self, items: list[Node], ctx: Context) -> tuple[Node, ...]:
        if not items:
            self.refuse("unsupported_sql", "the query selects nothing")
        self.walk.originals = tuple(copy.deepcopy(i) for i in items)
        for item in items:
            self.exprs.expr(item, ctx)
            alias = str(item.get("alias") or "").lower()
            if alias:
                self.walk.aliases[alias] = item
        return tuple(items)

    def substituted(self, expr: Any, select: tuple[Node, ...], *, alias_first: bool) -> Any:
        """Replace an ORDER BY / GROUP BY position or select alias by the item it names."""
        pos = int_constant(expr)
        if pos is not None:
            if 1 <= pos <= len(select):
                return copy.deepcopy(select[pos - 1])
            self.refuse("unsupported_sql", f"position {pos} is not in the select list")
            return None
        names = expr.get("column_names") if isinstance(expr, dict) and \
            expr.get("class") == "COLUMN_REF" else None
        if names and len(names) == 1:
            name = str(names[0]).lower()
            is_column = any(name in self.walk.scope[a].columns() for a in self.walk.order)
            if name in self.walk.aliases and (alias_first or not is_column):
                return copy.deepcopy(self.walk.aliases[name])
        return expr

    def aggregation_query(self, node: Node, mods: dict[str, Any]) -> CheckedQuery:
        select = self.select_items(node.get("select_list") or [], "post")
        handling = node.get("aggregate_handling")
        raw_groups = node.get("group_expressions") or []
        groups: list[Node] = []
        if handling == "FORCE_AGGREGATES":  # GROUP BY ALL
            groups = [copy.deepcopy(i) for i in select if not contains_aggregate(i)]
        elif handling != "STANDARD_HANDLING":
            self.refuse("unsupported_sql", "unsupported GROUP BY form")
        sets = node.get("group_sets") or []
        if sets not in ([], [[]], [list(range(len(raw_groups)))]):
            self.refuse("grouping_sets", "ROLLUP, CUBE and GROUPING SETS are not allowed")
        for g in raw_groups:
            sub = self.substituted(g, select, alias_first=False)
            if sub is None:
                continue
            if sub is g:
                self.exprs.expr(g, "group")
            elif contains_aggregate(sub):
                self.refuse("aggregate_function", "GROUP BY cannot name an aggregate")
                continue
            groups.append(sub)
        where = node.get("where_clause")
        if where is not None:
            self.exprs.expr(where, "where")
        having = node.get("having")
        if having is not None:
            self.exprs.expr(having, "post")
        orders = []
        for o in mods["orders"]:
            e = self.substituted(o.get("expression"), select, alias_first=True)
            if e is o.get("expression"):
                self.exprs.expr(e, "post")
            if e is not None:
                orders.append({**o, "expression": e})
        if not self.walk.has_aggregate:
            self.refuse("aggregate_required", "the aggregation rule needs at least one aggregate "
                        "(COUNT, SUM, AVG, ...) in the query")
        keys = {canon(g) for g in groups}
        checked = () if self.walk.violations else \
            (*select, having, *(o["expression"] for o in orders))
        for e in checked:
            for col in uncovered(e, keys):
                name = qualified_name(*col) if len(col) == 2 else "a column"
                self.refuse("group_by", f"column {name} must be in GROUP BY or inside an "
                            "aggregate")
        return CheckedQuery(
            kind="aggregation", tables=tuple(self.walk.scope[a].name for a in self.walk.order),
            aliases=tuple(self.walk.order),
            minimum=max(self.walk.scope[a].policy.minimum or 2 for a in self.walk.order),
            select=select, originals=self.walk.originals, from_table=node.get("from_table") or {},
            where=where,
            groups=tuple(groups), having=having, orders=tuple(orders), limit=mods["limit"],
            offset=mods["offset"], distinct=mods["distinct"])

    def list_query(self, node: Node, mods: dict[str, Any]) -> CheckedQuery:
        if not mods["distinct"]:
            self.refuse("list_distinct", "the list rule requires SELECT DISTINCT")
        if node.get("group_expressions") or node.get("having") is not None or \
                node.get("aggregate_handling") != "STANDARD_HANDLING":
            self.refuse("list_aggregate", "the list rule allows no GROUP BY or HAVING")
        select = self.select_items(node.get("select_list") or [], "list_select")
        for item in select:
            if item.get("class") != "COLUMN_REF":
                self.refuse("column_role", "list queries select plain list columns")
        where = node.get("where_clause")
        if where is not None:
            self.exprs.expr(where, "list_where")
        orders = []
        for o in mods["orders"]:
            e = self.substituted(o.get("expression"), select, alias_first=True)
            if e is o.get("expression"):
                self.exprs.expr(e, "list_select")
            if e is not None:
                orders.append({**o, "expression": e})
        return CheckedQuery(
            kind="list", tables=tuple(self.walk.scope[a].name for a in self.walk.order),
            aliases=tuple(self.walk.order), minimum=None, select=select,
            originals=self.walk.originals,
            from_table=node.get("from_table") or {}, where=where, orders=tuple(orders),
            limit=mods["limit"], offset=mods["offset"], distinct=True)


def check_sql(
    sql: str,
    tables: Mapping[str, TableRules],
    runner: str,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> CheckedQuery:
    """Parse and check analyst SQL for `runner`; return the checked query or refuse once."""
    if not isinstance(sql, str) or not sql.strip():
        raise PolicyRefusal("parse", "the SQL is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise PolicyRefusal("unsupported_sql", f"the query is too long ({len(sql):,} characters; "
                            f"at most {MAX_SQL_CHARS:,})")
    statements = parse(sql, con)
    checker = _Checker(tables, runner)
    try:
        query = checker.statement(copy.deepcopy(statements[0]))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RecursionError) as exc:
        # An unexpected tree shape: refuse rather than guess (allow-list walker).
        raise PolicyRefusal("unsupported_sql", "the query uses a construct this engine does "
                            f"not recognise ({type(exc).__name__})") from None
    checker.raise_if_refused()
    if query.kind == "aggregation" and query.minimum is None:
        raise CleanroomBug("aggregation query without a minimum")
    return query
