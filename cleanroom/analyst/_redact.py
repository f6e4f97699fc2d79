"""Analyst SQL as the audit log keeps it: constants and unusual names masked."""

from __future__ import annotations

from typing import Any

import duckdb

from protocols import CleanroomBug, CleanroomError

from ._tree import MAX_SQL_CHARS, parse, safe_name, to_sql


def redacted_sql(sql: str) -> str | None:
    """The query as DuckDB understood it, with every constant and unusual name masked, for
    the audit log (an analyst may type an email address; the log never holds one)."""
    if len(sql) > MAX_SQL_CHARS:
        return None
    try:
        return to_sql(None, _redact(parse(sql)[0]["node"]))
    except (CleanroomError, CleanroomBug, duckdb.Error, KeyError, TypeError, RecursionError):
        return None


def _redact(node: Any) -> Any:
    if isinstance(node, list):
        return [_redact(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "literal" and isinstance(v, dict) and v.get("kind") not in ("NULL_LITERAL",):
            out[k] = {"kind": "STRING", "text": "?"}
        elif k in ("alias", "table_name", "function_name", "schema_name", "catalog_name") \
                and isinstance(v, str) and v:
            out[k] = v if safe_name(v.lower()) != "(a name)" else "_"
        elif k in ("column_names", "path") and isinstance(v, list):
            out[k] = [s if isinstance(s, str) and safe_name(s.lower()) != "(a name)" else "_"
                      for s in v]
        else:
            out[k] = _redact(v)
    return out
