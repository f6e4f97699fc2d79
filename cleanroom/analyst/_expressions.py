"""Expression checks of analyst SQL: columns, their roles, functions, aggregates.

`ExpressionChecker` resolves and qualifies every column reference and checks every expression
node against an allow-list, in a context (WHERE, GROUP BY, after the threshold, list rule).
It shares one `Walk` (the state of the walk over one statement, and its violations) with the
statement checker of `_checker`, which owns it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from cleanroom.config import ENTITY_COLUMN, Policy

from ._tree import (
    AGGREGATES,
    SAFE_NAME,
    Node,
    duckdb_aggregates,
    int_constant,
    is_empty,
    node_of,
    qualified_name,
    safe_name,
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
EXPR_COMMON = {"class", "type", "alias", "query_location", "query_location_length"}
EXPR_KEYS = {
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


@dataclass
class Walk:
    """The state of one walk over one statement, and the violations found so far."""

    tables: dict[str, TableRules]
    runner: str
    violations: dict[tuple[str, str], None] = field(default_factory=dict)
    scope: dict[str, TableRules] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    using_entity: bool = False
    kind: Literal["aggregation", "list"] = "aggregation"
    has_aggregate: bool = False
    aliases: dict[str, Node] = field(default_factory=dict)
    originals: tuple[Node, ...] = ()

    def refuse(self, rule: str, message: str) -> None:
        """Record a violation (the query is refused once the walk is over)."""
        self.violations[(rule, message)] = None


class ExpressionChecker:
    """Checks of columns and expressions, in the walk's current scope."""

    def __init__(self, walk: Walk) -> None:
        self.walk = walk

    def refuse(self, rule: str, message: str) -> None:
        """Record a violation (the query is refused once the walk is over)."""
        self.walk.refuse(rule, message)

    # -- columns --------------------------------------------------------------------------
    def column(self, node: Node, ctx: Context, *, aggregate: str | None = None) -> None:
        """Resolve and qualify a column reference, then check its role in this context."""
        names = [str(n) for n in node.get("column_names") or []]
        low = [n.lower() for n in names]
        alias: str | None = None
        if len(low) == 1:
            owners = [a for a in self.walk.order if low[0] in self.walk.scope[a].columns()]
            if low[0] == ENTITY_COLUMN and self.walk.using_entity and owners:
                owners = owners[:1]
            if len(owners) > 1:
                self.refuse("ambiguous_column", f"column {safe_name(low[0])} is in several "
                            "tables; qualify it (table.column)")
                return
            if owners:
                alias = owners[0]
            elif low[0] in self.walk.aliases and ctx == "post":
                node.clear()
                node.update(copy.deepcopy(self.walk.aliases[low[0]]))
                return
        elif len(low) == 2 and low[0] in self.walk.scope:
            alias = low[0]
        col = low[-1]
        if alias is None or col not in self.walk.scope[alias].columns():
            self.unknown_column(col, low)
            return
        node["column_names"] = [alias, col]
        self.role(self.walk.scope[alias], col, ctx, aggregate)

    def unknown_column(self, col: str, names: list[str]) -> None:
        tables = [self.walk.scope[a] for a in self.walk.order] if len(names) == 1 else \
            [self.walk.scope[names[0]]] if names[0] in self.walk.scope else []
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
        if self.walk.kind == "list":
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
        if cls not in EXPR_KEYS:
            self.refuse("unsupported_sql", f"{safe_name(str(cls).lower())} expressions are not "
                        "allowed")
            return
        extra = [k for k, v in node.items()
                 if k not in EXPR_COMMON | EXPR_KEYS[cls] and not is_empty(v)]
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
        else:
            # The type as DuckDB spells it unquoted: a quoted "integer" regenerates differently.
            plain = node_of(f"SELECT CAST(a AS {tname})")["select_list"][0]["type_expr"]
            texpr["type_name"] = plain["type_name"]
            texpr["qualified_name"] = plain["qualified_name"]
        self.expr(node.get("child"), ctx)

    def scalar_allowed(self, aws: str) -> bool:
        for alias in self.walk.order:
            if aws not in self.walk.scope[alias].policy.scalar_functions:
                self.refuse("scalar_function", f"{aws} is not allowed by the policy of table "
                            f"{safe_name(self.walk.scope[alias].name)}")
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
            self.refuse("list_aggregate" if self.walk.kind == "list" else "aggregate_function",
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
        if self.walk.kind == "list":
            self.refuse("list_aggregate", "the list rule allows no aggregate functions")
            return
        if ctx != "post":
            self.refuse("aggregate_function", "aggregates may not appear in WHERE or GROUP BY")
            return
        if not is_empty(node.get("order_bys")):
            self.refuse("unsupported_sql", "ORDER BY inside an aggregate is not allowed")
        self.walk.has_aggregate = True
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
        names = [str(n).lower() for n in arg.get("column_names") or []]
        if len(names) == 1 and names[0] in self.walk.aliases and not any(
                names[0] in self.walk.scope[a].columns() for a in self.walk.order):
            # A select alias inside an aggregate would smuggle in whatever it names (an
            # expression, a dimension column) past the aggregate allow-list.
            self.refuse("aggregate_argument", "aggregates take a table column, not a select "
                        "alias")
            return
        self.column(arg, ctx, aggregate=aws)
