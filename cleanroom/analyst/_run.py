"""Run checked analyst SQL under the threshold, and audit every query (see `_plan` for the
SQL that runs)."""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import math
import os
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb

from cleanroom.engine import (
    CleanRoom,
    Sql,
    execute,
    fetch_one,
    open_collaboration,
    require_member,
)
from protocols import CleanroomBug, CleanroomError, InputError, PolicyRefusal

from ._checker import CheckedQuery, check_sql
from ._expressions import TableRules
from ._plan import RESERVED, plan
from ._redact import redacted_sql


def json_value(value: Any) -> Any:
    """A JSON-friendly value: decimals as numbers, dates and times as ISO text."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, _dt.date | _dt.datetime | _dt.time):
        return value.isoformat()
    if isinstance(value, bytes):  # never expected: the analyst views hold no binary column
        raise CleanroomBug("binary values are never output")
    return value


@dataclass(frozen=True)
class QueryResult:
    """The answer to an analyst query: column names and rows (every row above the minimum)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    kind: str = "aggregation"
    tables: tuple[str, ...] = ()
    minimum: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """{"columns": [...], "rows": [[...], ...]} for `--json`."""
        return {"columns": list(self.columns),
                "rows": [[json_value(v) for v in r] for r in self.rows]}


def execute_checked(
    query: CheckedQuery, con: duckdb.DuckDBPyConnection
) -> tuple[QueryResult, int]:
    """Run a checked query on an analyst connection; drop groups below the minimum.

    Returns the result and the number of groups dropped — for the audit log only: telling the
    analyst would say that a small group exists.
    """
    if query.kind == "list":
        p = plan(query, con, f"{RESERVED}unused")
        rows = execute(con, p.answer_sql, analyst=True).fetchall()
        return QueryResult(p.names, tuple(map(tuple, rows)), "list", query.tables, None), 0
    table = f"{RESERVED}groups_{uuid.uuid4().hex}"
    p = plan(query, con, table)
    execute(con, f"CREATE TEMP TABLE {table} AS {p.groups_sql}", analyst=True)
    try:
        suppressed = fetch_one(con, Sql(f"SELECT count(*) FROM {table} WHERE {RESERVED}n < ?",
                                        (p.minimum,)))[0]
        rows = execute(con, p.answer_sql, analyst=True).fetchall()
    finally:
        execute(con, f"DROP TABLE IF EXISTS {table}")
    result = QueryResult(p.names, tuple(map(tuple, rows)), "aggregation", query.tables,
                         p.minimum)
    return result, int(suppressed)


def run_query(
    collaboration: Any,
    member: str,
    sql: str,
    *,
    memory_limit: str | None = None,
) -> QueryResult:
    """Check analyst SQL for `member` against the policies, run it under the threshold and
    record it (accepted or refused, with the deciding rule) in the audit log.

    `collaboration` is a collaboration file path or an opened `CleanRoom`.
    """
    own = not isinstance(collaboration, CleanRoom)
    room = open_collaboration(collaboration, memory_limit=memory_limit) if own else collaboration
    request: dict[str, Any] = {
        "analysis": "query",
        "sql_sha256": hashlib.sha256(sql.encode("utf-8", "replace")).hexdigest(),
        "sql": redacted_sql(sql),
    }
    try:
        # a name that is not a member is refused before anything is logged under it
        require_member(room.collaboration, member)
        try:
            room.authorize(member, ())
            tables = {n: TableRules(n, t.owner, t.policy)
                      for n, t in room.collaboration.tables.items()}
            query = check_sql(sql, tables, member)
            request["tables"] = list(query.tables)
            room.authorize(member, query.tables)
        except PolicyRefusal as exc:
            request["rules"] = list(exc.rules)
            room.audit.record(member=member, request=request, decision="refused", rule=exc.rule)
            raise
        rule = "list" if query.kind == "list" else "aggregation_threshold"
        request["minimum"] = query.minimum
        try:
            con = room.analyst_connection(query.tables)
            try:
                result, suppressed = execute_checked(query, con)
            finally:
                con.close()
        except PolicyRefusal as exc:
            request["rules"] = list(exc.rules)
            room.audit.record(member=member, request=request, decision="refused", rule=exc.rule)
            raise
        except CleanroomError as exc:
            request["failed"] = type(exc).__name__
            room.audit.record(member=member, request=request, decision="accepted", rule=rule)
            raise
        room.audit.record(member=member, request=request, decision="accepted", rule=rule,
                          rows_returned=len(result.rows), rows_suppressed=suppressed)
        return result
    finally:
        if own:
            room.close()


def sql_from_file(path: str | os.PathLike[str]) -> str:
    """Read analyst SQL from a file (UTF-8)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise InputError("file not found", file=name) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", file=name) from None
