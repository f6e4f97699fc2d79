"""The one place the engine builds and runs SQL.

Identifiers go through `quote_ident`, which accepts only names on an allow-list (or matching
the column-name pattern of the policy files); values are always bound as `?` parameters.
`execute` is the one function that runs SQL and maps `duckdb.Error` to cleanroom errors, with
messages that never echo data values.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from cleanroom.config import valid_name
from protocols import CleanroomBug, CleanroomError, InputError

_INTERNAL = re.compile(r"_cr_[a-z0-9_]+")


def quote_ident(name: str, allowed: Collection[str] | None = None) -> str:
    """Quote an identifier for DuckDB, refusing names outside `allowed` (or the name pattern)."""
    if allowed is not None:
        if name not in allowed:
            raise CleanroomBug(f"identifier {name!r} is not on the allow-list")
    elif not (valid_name(name) or _INTERNAL.fullmatch(name)):
        raise CleanroomBug(f"identifier {name!r} is not a valid name")
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Sql:
    """SQL text with its `?` parameters, kept together until execution."""

    text: str
    params: tuple[Any, ...] = ()


def connect(
    *, memory_limit: str | None = None, threads: int | None = None, database: str = ":memory:"
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB connection with an optional memory limit and thread count."""
    con = duckdb.connect(database)
    if memory_limit:
        execute(con, Sql("SET memory_limit = ?", (memory_limit,)))
    if threads:
        execute(con, Sql("SET threads = ?", (int(threads),)))
    execute(con, Sql("SET preserve_insertion_order = false"))
    return con


def execute(
    con: duckdb.DuckDBPyConnection,
    sql: Sql | str,
    params: Sequence[Any] = (),
    *,
    analyst: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Run one statement; map DuckDB errors to cleanroom errors without echoing data values.

    `analyst=True` marks SQL regenerated from an analyst's checked query: a binder, catalog or
    parser error is then the analyst's mistake (said with quoted names masked) and any other
    failure a failed query; for the engine's own SQL both are bugs.
    """
    if isinstance(sql, Sql):
        text, bound = sql.text, sql.params
    else:
        text, bound = sql, tuple(params)
    try:
        return con.execute(text, list(bound)) if bound else con.execute(text)
    except duckdb.OutOfMemoryException:
        raise CleanroomError(
            "the engine ran out of memory; raise the memory limit or use a smaller input"
        ) from None
    except duckdb.IOException as exc:
        raise InputError(f"cannot read input ({_first_line(exc)})") from None
    except duckdb.InterruptException:
        raise CleanroomError("query interrupted") from None
    except (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException) as exc:
        if not analyst:
            raise CleanroomBug(f"engine SQL failed: {type(exc).__name__}") from None
        masked = re.sub(r"'[^']*'|\"[^\"]*\"", "…", _first_line(exc))
        raise CleanroomError(f"the query could not be run: {masked}") from None
    except duckdb.Error as exc:
        if analyst:
            raise CleanroomError(
                f"the query failed while running ({type(exc).__name__})") from None
        # Our own SQL failing is a bug; the class name is enough and leaks no value.
        raise CleanroomBug(f"engine SQL failed: {type(exc).__name__}") from None


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: Sql | str) -> Any:
    """Run the engine's own query and return its result as an Arrow table (no Python object
    per value: for large columns such as a segment's people)."""
    text, bound = (sql.text, sql.params) if isinstance(sql, Sql) else (sql, ())
    try:
        return con.sql(text, params=list(bound) if bound else None).to_arrow_table()
    except duckdb.OutOfMemoryException:
        raise CleanroomError(
            "the engine ran out of memory; raise the memory limit or use a smaller input"
        ) from None
    except duckdb.IOException as exc:
        raise InputError(f"cannot read input ({_first_line(exc)})") from None
    except duckdb.Error as exc:
        raise CleanroomBug(f"engine SQL failed: {type(exc).__name__}") from None


def fetch_one(con: duckdb.DuckDBPyConnection, sql: Sql | str) -> tuple[Any, ...]:
    """Run a query that returns exactly one row and return that row (the result read to its
    end, so the connection is free for the next statement)."""
    rows = execute(con, sql).fetchall()
    if not rows:
        raise CleanroomBug("engine query returned no row")
    return tuple(rows[0])


def _first_line(exc: BaseException) -> str:
    """The first line of a DuckDB I/O message (file names only, never data)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
