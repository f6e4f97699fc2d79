"""Check analyst SQL against the tables' policies by walking DuckDB's own parse tree.

The SQL is parsed by DuckDB (`json_serialize_sql`), so what is checked is exactly what DuckDB
understood. The walker is an allow-list: every node kind, key and function it does not know is
refused. It collects every violation and refuses once, naming each rule. What passes comes back
as a `CheckedQuery`: the tree with every column fully qualified and every GROUP BY / ORDER BY
alias or position replaced by the expression it stands for, ready for `_query` to rewrite and run.

Rules (names as they appear in refusals and in the audit log):
    parse, single_select, cte, set_operation, subquery, window_function, select_star,
    table_function, unknown_table, mixed_rules, join_type, join_condition, join_required,
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

from protocols import CleanroomBug, PolicyRefusal

from ._policy import ENTITY_COLUMN, Policy
from ._sqltree import (
    AGGREGATES,
    SAFE_NAME,
    Node,
    canon,
    column_names_in,
    contains_aggregate,
    duckdb_aggregates,
    int_constant,
    is_empty,
    parse,
    qualified_name,
    safe_name,
    uncovered,
)

Context = Literal["where", "group", "post", "list_select", "list_where"]

# AWS scalar-function names -> the DuckDB function names they may appear as in the tree.
# CAST and COALESCE are node kinds of their own; CONVERT, TO_CHAR, TO_DATE and TO_NUMBER
# have no DuckDB equivalent and therefore cannot be used.
_SCALAR = {
    "ABS": {"abs"}, "CEILING": {"ceiling", "ceil"}, "DATEADD": {"date_add"},
    "EXTRACT": {"date_part", "datepart", "extract"}, "FLOOR": {"floor"},
    "GETDATE": {"now", "get_current_timestamp"}, "LN": {"ln"}, "LOG": {"log", "log10"},
    "LOWER": {"lower", "lcase"}, "ROUND": {"round"}, "RTRIM": {"rtrim"}, "SQRT": {"sqrt"},
    "SUBSTRING": {"substring", "substr"}, "TO_TIMESTAMP": {"to_timestamp"}, "TRIM": {"trim"},
    "TRUNC": {"trunc"}, "UPPER": {"upper", "ucase"},
}
_ARITHMETIC = {"+", "-", "*", "/"}
_LIKE = {"~~", "!~~", "~~*", "!~~*"}
_COMPARE = {
    "COMPARE_EQUAL", "COMPARE_NOTEQUAL", "COMPARE_LESSTHAN", "COMPARE_GREATERTHAN",
    "COMPARE_LESSTHANOREQUALTO", "COMPARE_GREATERTHANOREQUALTO", "COMPARE_DISTINCT_FROM",
    "COMPARE_NOT_DISTINCT_FROM",
}
_LITERALS = {"INTEGER", "NUMERIC", "STRING", "BOOLEAN", "NULL_LITERAL"}
_CAST_TYPES = {
    "varchar", "text", "string", "integer", "int", "int4", "bigint", "int8", "smallint",
    "double", "float", "real", "decimal", "numeric", "date", "timestamp", "boolean", "bool",
}
# Keys every expression node may carry; anything else must be absent or empty.
_EXPR_COMMON = {"class", "type", "alias", "query_location", "query_location_length"}
_EXPR_KEYS = {
    "COLUMN_REF": {"column_names"},
    "CONSTANT": {"literal"},
    "COMPARISON": {"left", "right"},
    "CONJUNCTION": {"children"},
    "OPERATOR": {"children"},
    "BETWEEN": {"input", "lower", "upper"},
    "CAST": {"child", "type_expr", "try_cast"},
    "FUNCTION": {"function_name", "arguments", "qualified_name", "is_operator", "distinct",
                 "order_bys", "is_legacy_function_call"},
}
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
_REFUSED_CLASSES = {
    "SUBQUERY": ("subquery", "subqueries are not allowed"),
    "WINDOW": ("window_function", "window functions (OVER) are not allowed"),
    "STAR": ("select_star", "SELECT * and COLUMNS(...) are not allowed; name the columns"),
}


@dataclass(frozen=True)
class TableRules:
    """One collaboration table as the checker sees it: its name, owner and policy."""

    name: str
    owner: str
    policy: Policy

    def columns(self) -> frozenset[str]:
        """Columns of the analyst's view of this table: entity_id and what the policy names."""
        return frozenset((ENTITY_COLUMN, *self.policy.analyst_columns()))


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
        self.tables = {k.lower(): v for k, v in tables.items()}
        self.runner = runner
        self.violations: dict[tuple[str, str], None] = {}
        self.scope: dict[str, TableRules] = {}
        self.order: list[str] = []
        self.using_entity = False
        self.kind: Literal["aggregation", "list"] = "aggregation"
        self.has_aggregate = False
        self.aliases: dict[str, Node] = {}
        self.originals: tuple[Node, ...] = ()

    def refuse(self, rule: str, message: str) -> None:
        self.violations[(rule, message)] = None

    def only(self, node: Any, keys: set[str], what: str) -> bool:
        """Refuse (and return False) if `node` carries anything beyond `keys`."""
        extra = [k for k, v in node.items() if k not in keys and not is_empty(v)] \
            if isinstance(node, dict) else ["(not an object)"]
        if extra:
            self.refuse("unsupported_sql", f"unsupported {what} feature {safe_name(extra[0])}")
        return not extra

    def raise_if_refused(self) -> None:
        if self.violations:
            items = list(self.violations)
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
        self.from_clause(node.get("from_table") or {})
        self.raise_if_refused()  # nothing below makes sense without a valid FROM
        kinds = {t.policy.analysis_rule for t in self.scope.values()}
        if len(kinds) > 1:
            raise PolicyRefusal("mixed_rules", "tables with the aggregation rule and tables "
                                "with the list rule cannot be queried together")
        self.kind = "list" if kinds == {"list"} else "aggregation"
        self.join_requirements()
        modifiers = self.modifiers(node.get("modifiers") or [])
        if self.kind == "list":
            return self.list_query(node, modifiers)
        return self.aggregation_query(node, modifiers)

    def modifiers(self, mods: list[Node]) -> dict[str, Any]:
        out: dict[str, Any] = {"orders": [], "limit": None, "offset": None, "distinct": False}
        for m in mods:
            mtype = m.get("type")
            if not self.only(m, _MODIFIER_KEYS.get(mtype, set()), "query modifier"):
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
        elif rtype == "EMPTY":
            self.refuse("unknown_table", "the query must read a collaboration table (FROM ...)")
        else:
            self.refuse("unknown_table", "only collaboration tables may be queried")
        return []

    def base_table(self, ref: Node) -> list[str]:
        name = str(ref.get("table_name") or "")
        path = (ref.get("qualified_name") or {}).get("path") or [name]
        table = self.tables.get(name.lower())
        if ref.get("schema_name") or ref.get("catalog_name") or len(path) != 1 or table is None:
            self.refuse("unknown_table", f"{safe_name(name)} is not a table of this collaboration "
                        f"(tables: {', '.join(sorted(self.tables))})")
            return []
        if not is_empty(ref.get("sample")) or not is_empty(ref.get("at_clause")):
            self.refuse("unsupported_sql", "TABLESAMPLE and AT (...) are not allowed")
        if ref.get("column_name_alias"):
            self.refuse("unsupported_sql", "renaming a table's columns in FROM is not allowed")
        alias = str(ref.get("alias") or name).lower()
        if alias in self.scope:
            self.refuse("unsupported_sql", f"the name {safe_name(alias)} is used twice in FROM")
            return []
        self.scope[alias] = table
        self.order.append(alias)
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
            self.using_entity = True
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
            and self.only(cond, _EXPR_COMMON | _EXPR_KEYS["COMPARISON"], "join condition") \
            and all(self.only(cond.get(k), _EXPR_COMMON | _EXPR_KEYS["COLUMN_REF"], "join column")
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
                tables = [self.scope[names[0]]] if len(names) == 2 and names[0] in self.scope \
                    else list(self.scope.values())
                if any(col in t.policy.join_columns for t in tables):
                    self.refuse("token_column", f"{safe_name(col)} is a token (join) column: "
                                "the engine has already matched tokens into entity_id; join on "
                                "entity_id")

    def entity_side(self, node: Any) -> str | None:
        if not isinstance(node, dict) or node.get("class") != "COLUMN_REF":
            return None
        names = [str(n).lower() for n in node.get("column_names") or []]
        if len(names) == 2 and names[1] == ENTITY_COLUMN and names[0] in self.scope:
            return names[0]
        return None

    def join_requirements(self) -> None:
        own = [a for a in self.order if self.scope[a].owner == self.runner]
        if self.kind == "list":
            others = [a for a in self.order if self.scope[a].owner != self.runner]
            if not own or not others:
                self.refuse("join_required", "the list rule lists only matched entities: join "
                            "your own table to the other party's table on entity_id")
            return
        for alias in self.order:
            t = self.scope[alias]
            if t.policy.join_required == "query_runner" and not own:
                self.refuse("join_required", f"table {safe_name(t.name)} must be joined to a "
                            f"table of {safe_name(self.runner)} (join_required = query_runner)")

    # -- columns --------------------------------------------------------------------------
    def column(self, node: Node, ctx: Context, *, aggregate: str | None = None) -> None:
        """Resolve and qualify a column reference, then check its role in this context."""
        names = [str(n) for n in node.get("column_names") or []]
        low = [n.lower() for n in names]
        alias: str | None = None
        if len(low) == 1:
            owners = [a for a in self.order if low[0] in self.scope[a].columns()]
            if low[0] == ENTITY_COLUMN and self.using_entity and owners:
                owners = owners[:1]
            if len(owners) > 1:
                self.refuse("ambiguous_column", f"column {safe_name(low[0])} is in several "
                            "tables; qualify it (table.column)")
                return
            if owners:
                alias = owners[0]
            elif low[0] in self.aliases and ctx == "post":
                node.clear()
                node.update(copy.deepcopy(self.aliases[low[0]]))
                return
        elif len(low) == 2 and low[0] in self.scope:
            alias = low[0]
        col = low[-1]
        if alias is None or col not in self.scope[alias].columns():
            self.unknown_column(col, low)
            return
        node["column_names"] = [alias, col]
        self.role(self.scope[alias], col, ctx, aggregate)

    def unknown_column(self, col: str, names: list[str]) -> None:
        tables = [self.scope[a] for a in self.order] if len(names) == 1 else \
            [self.scope[names[0]]] if names[0] in self.scope else []
        if any(col in t.policy.join_columns for t in tables):
            self.refuse("token_column", f"{safe_name(col)} is a token (join) column: tokens are "
                        "never output, filtered, grouped or aggregated; join on entity_id")
        else:
            self.refuse("unknown_column", f"column {safe_name(col)} is not available: the "
                        "policies do not name it")

    def role(self, t: TableRules, col: str, ctx: Context, aggregate: str | None) -> None:
        p = t.policy
        if col == ENTITY_COLUMN:
            if aggregate != "COUNT_DISTINCT":
                self.refuse("entity_id", "entity_id may only be joined on or counted with "
                            "COUNT(DISTINCT entity_id); it is never output, grouped, filtered "
                            "or transformed")
            return
        where = qualified_name(t.name, col)
        if self.kind == "list":
            if col not in p.list_columns:
                self.refuse("column_role", f"{where} is not a list column")
            elif ctx == "list_select" and col in p.disallowed_output_columns:
                self.refuse("disallowed_output_column", f"{where} may not be output")
            return
        if aggregate is not None:
            if aggregate not in p.functions_for(col):
                allowed = ", ".join(p.functions_for(col)) or "none"
                self.refuse("aggregate_function", f"{aggregate} is not allowed on {where} "
                            f"(allowed: {allowed})")
            if col in p.disallowed_output_columns:
                self.refuse("disallowed_output_column", f"{where} may not be output, even "
                            "aggregated")
            return
        if col not in p.dimension_columns:
            self.refuse("column_role", f"{where} is not a dimension column: it cannot be "
                        "selected, grouped by or filtered on" + (
                            " (it may only be aggregated)" if p.functions_for(col) else ""))
        elif ctx != "where" and col in p.disallowed_output_columns:
            self.refuse("disallowed_output_column", f"{where} may be filtered on but not "
                        "output or grouped by")

    # -- expressions ----------------------------------------------------------------------
    def expr(self, node: Any, ctx: Context) -> None:
        """Check one expression tree in place (qualifying its columns)."""
        if not isinstance(node, dict):
            self.refuse("unsupported_sql", "unrecognised expression")
            return
        cls = node.get("class")
        if cls in _REFUSED_CLASSES:
            self.refuse(*_REFUSED_CLASSES[cls])
            return
        if cls not in _EXPR_KEYS:
            self.refuse("unsupported_sql", f"{safe_name(str(cls).lower())} expressions are not "
                        "allowed")
            return
        extra = [k for k, v in node.items()
                 if k not in _EXPR_COMMON | _EXPR_KEYS[cls] and not is_empty(v)]
        if extra:
            self.refuse("unsupported_sql", f"unsupported expression feature {safe_name(extra[0])}")
            return
        alias = node.get("alias") or ""
        if alias.lower().startswith("_cr_"):
            self.refuse("unsupported_sql", "names starting with _cr_ are reserved")
        getattr(self, f"expr_{cls.lower()}")(node, ctx)

    def expr_column_ref(self, node: Node, ctx: Context) -> None:
        self.column(node, ctx)

    def expr_constant(self, node: Node, ctx: Context) -> None:
        if (node.get("literal") or {}).get("kind") not in _LITERALS:
            self.refuse("unsupported_sql", "only number, string, boolean and NULL constants")

    def expr_comparison(self, node: Node, ctx: Context) -> None:
        if node.get("type") not in _COMPARE:
            self.refuse("unsupported_sql", "unsupported comparison")
        self.expr(node.get("left"), ctx)
        self.expr(node.get("right"), ctx)

    def expr_conjunction(self, node: Node, ctx: Context) -> None:
        if node.get("type") not in ("CONJUNCTION_AND", "CONJUNCTION_OR"):
            self.refuse("unsupported_sql", "unsupported boolean operator")
        for c in node.get("children") or []:
            self.expr(c, ctx)

    def expr_between(self, node: Node, ctx: Context) -> None:
        for k in ("input", "lower", "upper"):
            self.expr(node.get(k), ctx)

    def expr_operator(self, node: Node, ctx: Context) -> None:
        otype = node.get("type")
        kids = node.get("children") or []
        if otype in ("OPERATOR_NOT", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL") and len(kids) == 1:
            self.expr(kids[0], ctx)
        elif otype in ("COMPARE_IN", "COMPARE_NOT_IN") and len(kids) >= 2:
            self.expr(kids[0], ctx)
            for k in kids[1:]:
                if not (isinstance(k, dict) and k.get("class") == "CONSTANT"):
                    self.refuse("unsupported_sql", "IN (...) takes a list of constants")
                else:
                    self.expr_constant(k, ctx)
        elif otype == "OPERATOR_COALESCE" and ctx not in ("list_select", "list_where"):
            self.scalar_allowed("COALESCE")
            for k in kids:
                self.expr(k, ctx)
        else:
            self.refuse("unsupported_sql", f"operator {safe_name(str(otype).lower())} is not "
                        "allowed")

    def expr_cast(self, node: Node, ctx: Context) -> None:
        if ctx in ("list_select", "list_where"):
            self.refuse("scalar_function", "the list rule allows no functions (CAST)")
            return
        self.scalar_allowed("CAST")
        texpr = node.get("type_expr") or {}
        tname = str(texpr.get("type_name") or "").lower()
        kids = texpr.get("children") or []
        path = (texpr.get("qualified_name") or {}).get("path") or [tname]
        if tname not in _CAST_TYPES or len(path) != 1 or any(
                int_constant(k) is None for k in kids) or (kids and tname not in (
                    "decimal", "numeric")):
            self.refuse("unsupported_sql", "CAST only to a plain number, text, date, timestamp "
                        "or boolean type")
        self.expr(node.get("child"), ctx)

    def scalar_allowed(self, aws: str) -> bool:
        for alias in self.order:
            if aws not in self.scope[alias].policy.scalar_functions:
                self.refuse("scalar_function", f"{aws} is not allowed by the policy of table "
                            f"{safe_name(self.scope[alias].name)}")
                return False
        return True

    def expr_function(self, node: Node, ctx: Context) -> None:
        fname = str(node.get("function_name") or "").lower()
        path = (node.get("qualified_name") or {}).get("path") or [fname]
        if len(path) != 1 or str(path[0]).lower() != fname:
            self.refuse("scalar_function", "schema-qualified functions are not allowed")
            return
        args = node.get("arguments") or []
        if any(a.get("name") for a in args):
            self.refuse("unsupported_sql", "named function arguments are not allowed")
            return
        if node.get("is_operator"):
            if fname in _ARITHMETIC and 1 <= len(args) <= 2:
                pass
            elif fname in _LIKE and len(args) == 2 and ctx != "list_select":
                pattern = args[1].get("expression") or {}
                if (pattern.get("literal") or {}).get("kind") != "STRING":
                    self.refuse("unsupported_sql", "LIKE takes a constant pattern")
            else:
                self.refuse("scalar_function", f"operator {safe_name(fname)} is not allowed"
                            if SAFE_NAME.fullmatch(fname) else "this operator is not allowed")
                return
            if node.get("distinct"):
                self.refuse("unsupported_sql", "DISTINCT is only for aggregates")
            for a in args:
                self.expr(a.get("expression"), ctx)
            return
        if fname in AGGREGATES:
            self.aggregate(node, fname, args, ctx)
            return
        if fname in duckdb_aggregates():
            self.refuse("list_aggregate" if self.kind == "list" else "aggregate_function",
                        f"aggregate {safe_name(fname)} is not allowed (allowed: COUNT, "
                        "COUNT(DISTINCT ...), SUM, SUM(DISTINCT ...), AVG, as the policies say)")
            return
        if ctx in ("list_select", "list_where"):
            self.refuse("scalar_function", "the list rule allows no functions")
            return
        aws = next((k for k, v in _SCALAR.items() if fname in v), None)
        if aws is None:
            self.refuse("scalar_function", f"function {safe_name(fname)} is not allowed (allowed "
                        "scalar functions come from the policies' scalar_functions)")
            return
        if node.get("distinct"):
            self.refuse("unsupported_sql", "DISTINCT is only for aggregates")
        if self.scalar_allowed(aws):
            for a in args:
                self.expr(a.get("expression"), ctx)

    def aggregate(self, node: Node, fname: str, args: list[Node], ctx: Context) -> None:
        if self.kind == "list":
            self.refuse("list_aggregate", "the list rule allows no aggregate functions")
            return
        if ctx != "post":
            self.refuse("aggregate_function", "aggregates may not appear in WHERE or GROUP BY")
            return
        if not is_empty(node.get("order_bys")):
            self.refuse("unsupported_sql", "ORDER BY inside an aggregate is not allowed")
        self.has_aggregate = True
        distinct = bool(node.get("distinct"))
        if fname == "count_star":
            if args or distinct:
                self.refuse("aggregate_argument", "COUNT(*) takes no argument")
            return
        if fname == "avg" or fname == "mean":
            aws = "AVG"
        else:
            aws = fname.upper() + ("_DISTINCT" if distinct else "")
        if distinct and fname not in ("count", "sum"):
            self.refuse("aggregate_function", f"{fname.upper()}(DISTINCT ...) is not allowed")
        arg = args[0].get("expression") if len(args) == 1 else None
        if not isinstance(arg, dict) or arg.get("class") != "COLUMN_REF" or not is_empty(
                arg.get("alias")):
            self.refuse("aggregate_argument", "aggregates take exactly one plain column "
                        "(e.g. SUM(t.miles), COUNT(DISTINCT t.entity_id))")
            return
        self.column(arg, ctx, aggregate=aws)

    # -- query shapes ---------------------------------------------------------------------
    def select_items(self, items: list[Node], ctx: Context) -> tuple[Node, ...]:
        if not items:
            self.refuse("unsupported_sql", "the query selects nothing")
        self.originals = tuple(copy.deepcopy(i) for i in items)
        for item in items:
            self.expr(item, ctx)
            alias = str(item.get("alias") or "").lower()
            if alias:
                self.aliases[alias] = item
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
            is_column = any(name in self.scope[a].columns() for a in self.order)
            if name in self.aliases and (alias_first or not is_column):
                return copy.deepcopy(self.aliases[name])
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
                self.expr(g, "group")
            elif contains_aggregate(sub):
                self.refuse("aggregate_function", "GROUP BY cannot name an aggregate")
                continue
            groups.append(sub)
        where = node.get("where_clause")
        if where is not None:
            self.expr(where, "where")
        having = node.get("having")
        if having is not None:
            self.expr(having, "post")
        orders = []
        for o in mods["orders"]:
            e = self.substituted(o.get("expression"), select, alias_first=True)
            if e is o.get("expression"):
                self.expr(e, "post")
            if e is not None:
                orders.append({**o, "expression": e})
        if not self.has_aggregate:
            self.refuse("aggregate_required", "the aggregation rule needs at least one aggregate "
                        "(COUNT, SUM, AVG, ...) in the query")
        keys = {canon(g) for g in groups}
        checked = () if self.violations else (*select, having, *(o["expression"] for o in orders))
        for e in checked:
            for col in uncovered(e, keys):
                name = qualified_name(*col) if len(col) == 2 else "a column"
                self.refuse("group_by", f"column {name} must be in GROUP BY or inside an "
                            "aggregate")
        return CheckedQuery(
            kind="aggregation", tables=tuple(self.scope[a].name for a in self.order),
            aliases=tuple(self.order),
            minimum=max(self.scope[a].policy.minimum or 2 for a in self.order),
            select=select, originals=self.originals, from_table=node.get("from_table") or {},
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
            self.expr(where, "list_where")
        orders = []
        for o in mods["orders"]:
            e = self.substituted(o.get("expression"), select, alias_first=True)
            if e is o.get("expression"):
                self.expr(e, "list_select")
            if e is not None:
                orders.append({**o, "expression": e})
        return CheckedQuery(
            kind="list", tables=tuple(self.scope[a].name for a in self.order),
            aliases=tuple(self.order), minimum=None, select=select, originals=self.originals,
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
