"""DuckDB parse trees: parse SQL into DuckDB's JSON tree, build and compare nodes, and turn a
tree back into SQL text (checking that the text parses back into the very same tree).

Node shapes are never written by hand: new nodes are copies of what DuckDB's own parser
produces for a tiny template statement, so they stay right across DuckDB versions.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
from typing import Any

import duckdb

from protocols import CleanroomBug, PolicyRefusal

Node = dict[str, Any]
AGGREGATES = frozenset({"count", "count_star", "sum", "avg", "mean"})
SAFE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
# JSON nesting of a parse tree: DuckDB cannot regenerate SQL from trees much deeper (about 260),
# and it keeps every tree walk far from Python's recursion limit.
MAX_DEPTH = 200
# Longer SQL is refused before parsing: a 100,000-constant IN list (0.8 MB) takes ~8 s to check
# and plan; 100,000 characters still fit a 10,000-value IN list.
MAX_SQL_CHARS = 100_000


def _depth(tree: Any) -> int:
    """Nesting depth of a JSON value, computed without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        value, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(value, dict):
            stack.extend((v, d + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, d + 1) for v in value)
    return deepest


def qualified_name(table: str, column: str) -> str:
    """table.column for messages, when both are plain names; otherwise a description."""
    if SAFE_NAME.fullmatch(table) and SAFE_NAME.fullmatch(column):
        return f"{table}.{column}"
    return "a column"


@functools.cache
def duckdb_aggregates() -> frozenset[str]:
    """Every aggregate function DuckDB knows, so that MIN, MAX, LIST... are named as such."""
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT DISTINCT function_name FROM duckdb_functions() "
                           "WHERE function_type = 'aggregate'").fetchall()
    finally:
        con.close()
    return frozenset(str(r[0]).lower() for r in rows)


def safe_name(name: object) -> str:
    """An identifier fit to appear in a message or log; anything else is described, not echoed."""
    return repr(name) if isinstance(name, str) and SAFE_NAME.fullmatch(name) else "(a name)"


_PARSER_LOCK = threading.Lock()


@functools.cache
def _parser() -> duckdb.DuckDBPyConnection:
    """One empty in-memory DuckDB used only to parse and regenerate SQL (never holds data)."""
    return duckdb.connect()


def parse(sql: str, con: duckdb.DuckDBPyConnection | None = None) -> list[Node]:
    """Parse SQL with DuckDB's parser into its JSON statements; refuse what it cannot serialize."""
    try:
        if con is None:
            with _PARSER_LOCK:
                raw = _parser().execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
        else:
            raw = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    except duckdb.Error:
        raise PolicyRefusal("parse", "the SQL could not be parsed") from None
    tree: dict[str, Any] | None
    try:
        tree = json.loads(raw[0]) if raw else {"error": True}
    except RecursionError:
        tree = None
    if tree is None or _depth(tree) > MAX_DEPTH:
        raise PolicyRefusal("unsupported_sql", "the query is nested too deeply")
    if tree.get("error"):
        if tree.get("error_type") == "parser":
            pos = tree.get("position")
            where = f" near character {int(str(pos)) + 1}" if str(pos or "").isdigit() else ""
            raise PolicyRefusal("parse", f"the SQL is not valid{where}")
        raise PolicyRefusal("single_select", "only a single SELECT statement is allowed "
                            "(no PRAGMA, SET, COPY, ATTACH, CREATE, INSERT, EXPLAIN, ...)")
    statements: list[dict[str, Any]] = tree.get("statements") or []
    if len(statements) != 1:
        raise PolicyRefusal("single_select", "exactly one SELECT statement is allowed, found "
                            f"{len(statements)}")
    return statements


def strip_locations(node: Any) -> Any:
    """The tree without source positions and aliases: equal for equal expressions."""
    if isinstance(node, dict):
        return {k: strip_locations(v) for k, v in node.items()
                if k not in ("query_location", "query_location_length", "alias")}
    if isinstance(node, list):
        return [strip_locations(v) for v in node]
    return node


def canon(node: Node) -> str:
    """A canonical key of an expression, for matching GROUP BY items and deduplicating."""
    return json.dumps(strip_locations(node), sort_keys=True, separators=(",", ":"))


def is_empty(value: Any) -> bool:
    return value in (None, "", [], {}, False) or value == {"type": "ORDER_MODIFIER", "orders": []}


def int_constant(node: Any) -> int | None:
    if isinstance(node, dict) and node.get("class") == "CONSTANT":
        lit = node.get("literal") or {}
        if lit.get("kind") == "INTEGER" and re.fullmatch(r"\d{1,12}", str(lit.get("text"))):
            return int(lit["text"])
    return None


def column_names_in(node: Any) -> list[list[str]]:
    """The (lower-cased) names of every column reference in a tree."""
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF":
            return [[str(n).lower() for n in node.get("column_names") or [""]]]
        return [c for v in node.values() for c in column_names_in(v)]
    if isinstance(node, list):
        return [c for v in node for c in column_names_in(v)]
    return []


def is_aggregate(node: Any) -> bool:
    """True for an aggregate function call node."""
    return isinstance(node, dict) and node.get("class") == "FUNCTION" and \
        not node.get("is_operator") and str(node.get("function_name")).lower() in AGGREGATES


def contains_aggregate(node: Any) -> bool:
    """True if the expression calls an aggregate anywhere."""
    if is_aggregate(node):
        return True
    if isinstance(node, dict):
        return any(contains_aggregate(v) for k, v in node.items() if k != "type_expr")
    if isinstance(node, list):
        return any(contains_aggregate(v) for v in node)
    return False


def uncovered(node: Any, keys: set[str]) -> list[tuple[str, ...]]:
    """Column references not inside an aggregate nor inside a GROUP BY expression."""
    if node is None or is_aggregate(node):
        return []
    if isinstance(node, dict):
        if node.get("class") and canon(node) in keys:
            return []
        if node.get("class") == "COLUMN_REF":
            return [tuple(node.get("column_names") or ())]
        return [c for k, v in node.items() if k != "type_expr" for c in uncovered(v, keys)]
    if isinstance(node, list):
        return [c for v in node for c in uncovered(v, keys)]
    return []


@functools.cache
def _template(sql: str) -> str:
    return json.dumps(parse(sql)[0]["node"])


def node_of(sql: str) -> Node:
    """A fresh copy of the SELECT node DuckDB parses `sql` into (node shapes stay DuckDB's)."""
    return json.loads(_template(sql))


def col(*names: str) -> Node:
    node = node_of("SELECT a")["select_list"][0]
    node["column_names"] = list(names)
    return node


def try_(expr: Node, *, always: bool = False) -> Node:
    """TRY(expr): an expression that fails yields NULL instead of an error. Plain columns and
    constants are left bare (names stay readable) unless `always`: a bare column used as a
    condition is still cast to BOOLEAN, and a bare whole number in GROUP BY is a position."""
    if expr.get("class") in ("COLUMN_REF", "CONSTANT") and not always:
        return expr
    node = node_of("SELECT TRY(a)")["select_list"][0]
    node["children"] = [expr]
    return node


def condition(expr: Node) -> Node:
    """A WHERE / HAVING condition that cannot fail: TRY(CAST(expr AS BOOLEAN)) unless expr is
    already a comparison or boolean operation (the implicit cast of a bare column to BOOLEAN
    would otherwise raise outside TRY, and an error says something about the data)."""
    cls = expr.get("class")
    if cls in ("COMPARISON", "CONJUNCTION", "BETWEEN") or (
            cls == "OPERATOR" and expr.get("type") != "OPERATOR_COALESCE"):
        return try_(expr, always=True)
    node = node_of("SELECT TRY(CAST(a AS BOOLEAN))")["select_list"][0]
    node["children"][0]["child"] = expr
    return node


def aliased(expr: Node, alias: str) -> Node:
    expr = copy.deepcopy(expr)
    expr["alias"] = alias
    return expr


def int_node(value: int) -> Node:
    node = node_of("SELECT 1")["select_list"][0]
    node["literal"]["text"] = str(int(value))
    return node


def and_(parts: list[Node]) -> Node:
    if len(parts) == 1:
        return parts[0]
    node = node_of("SELECT a AND b")["select_list"][0]
    node["children"] = parts
    return node


def to_sql(con: duckdb.DuckDBPyConnection | None, node: Node) -> str:
    """SQL text of a SELECT node, generated by DuckDB from the tree (on `con`, or the parser)."""
    if con is None:
        with _PARSER_LOCK:
            return to_sql(_parser(), node)
    doc = {"error": False, "statements": [{"node": node, "named_param_map": []}]}
    try:
        row = con.execute("SELECT json_deserialize_sql(?::JSON)", [json.dumps(doc)]).fetchone()
    except duckdb.Error:
        raise PolicyRefusal("unsupported_sql", "the query is too complex to be regenerated "
                            "from its checked form") from None
    if not row or not isinstance(row[0], str):
        raise CleanroomBug("could not regenerate SQL from the tree")
    # What runs must be what was checked: the text must parse back into the very same tree.
    back = parse(row[0], con)[0]
    if back.get("named_param_map") or strip_locations(back["node"]) != strip_locations(node):
        # Never run text that differs from what was checked; refuse rather than guess.
        raise PolicyRefusal("unsupported_sql", "the query uses a construct that does not "
                            "survive regeneration from its checked form")
    return row[0]


