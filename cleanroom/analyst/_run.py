"""Run checked analyst SQL under the threshold, and audit every query (see `_plan` for the
SQL that runs).

The collaboration's privacy mode applies to every answer: in threshold mode each output row's
people go through the difference check (a row whose people differ from an answered row's by
1..minimum−1 is withheld and counted in the answer's `privacy` and the audit entry); in
differential mode the query first spends ε (rule `privacy_budget` when the budget is spent),
then every figure is noised (`_noisy`) and stated with its noise."""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import math
import os
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import numpy as np

from cleanroom.engine import (
    CleanRoom,
    PeopleIndex,
    Sql,
    execute,
    fetch_arrow,
    fetch_one,
    open_collaboration,
    require_member,
)
from cleanroom.privacy import Charge, DifferenceGuard, NoisyValue
from protocols import CleanroomBug, CleanroomError, InputError, PolicyRefusal

from ._checker import CheckedQuery, check_sql
from ._expressions import TableRules
from ._noisy import DifferentialSettings, check_bounds, noise_groups, refuse_unsupported
from ._plan import RESERVED, Plan, plan
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
    """The answer to an analyst query: column names and rows (every row above the minimum).

    `privacy` says what the privacy mode did (threshold: `difference_check.suppressed`;
    differential: ε spent); `noise`, in differential mode, holds per row and column the
    figure's noise (`mechanism`, `scale`, `ci95_low`, `ci95_high`), or None for a group key or
    a value computed from several figures."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    kind: str = "aggregation"
    tables: tuple[str, ...] = ()
    minimum: int | None = None
    privacy: dict[str, Any] = field(default_factory=dict)
    noise: tuple[tuple[dict[str, Any] | None, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """{"columns": [...], "rows": [[...], ...], "privacy": {...}} for `--json`, and in
        differential mode "noise": [[{...} | null, ...], ...] (one per cell)."""
        doc: dict[str, Any] = {"columns": list(self.columns),
                               "rows": [[json_value(v) for v in r] for r in self.rows]}
        if self.privacy:
            doc["privacy"] = self.privacy
        if self.noise:
            doc["noise"] = [list(r) for r in self.noise]
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> QueryResult:
        """The result a server sent (its `to_dict`)."""
        return cls(tuple(doc["columns"]), tuple(tuple(r) for r in doc["rows"]),
                   privacy=dict(doc.get("privacy") or {}),
                   noise=tuple(tuple(r) for r in doc.get("noise") or ()))


@dataclass(frozen=True)
class AnswerPrivacy:
    """What the privacy mode asks of one answer: difference checks (`guard` with the room's
    stable person ids) or noise (`differential`)."""

    guard: DifferenceGuard | None = None
    people: PeopleIndex | None = None
    differential: DifferentialSettings | None = None


def execute_checked(
    query: CheckedQuery, con: duckdb.DuckDBPyConnection, *, privacy: AnswerPrivacy | None = None
) -> tuple[QueryResult, int]:
    """Run a checked query on an analyst connection; drop groups below the minimum, and
    apply `privacy` (difference checks or noise; none when absent).

    Returns the result and the number of groups dropped by the threshold — for the audit log
    only: telling the analyst would say that a small group exists (in differential mode not
    even that is counted: which groups exist is what partition selection hides).
    """
    if query.kind == "list":
        p = plan(query, con, f"{RESERVED}unused")
        rows = execute(con, p.answer_sql, analyst=True).fetchall()
        return QueryResult(p.names, tuple(map(tuple, rows)), "list", query.tables, None), 0
    privacy = privacy or AnswerPrivacy()
    checks, dp = privacy.guard is not None, privacy.differential
    table = f"{RESERVED}groups_{uuid.uuid4().hex}"
    p = plan(query, con, table, people=checks, differential=dp is not None)
    if dp is not None:
        check_bounds(p, dp)
    made = f"{table}_true" if dp is not None else table
    execute(con, f"CREATE TEMP TABLE {made} AS SELECT row_number() OVER () AS {RESERVED}i, * "
                 f"FROM ({p.groups_sql})", analyst=True)
    try:
        noise: dict[int, dict[str, NoisyValue]] = {}
        if dp is not None:
            noise = noise_groups(con, made, table, p, query, dp)
            suppressed = 0
        else:
            suppressed = fetch_one(con, Sql(
                f"SELECT count(*) FROM {table} WHERE {RESERVED}n < ?", (p.minimum,)))[0]
        answered = execute(con, p.answer_sql, analyst=True).fetchall()
        if p.index_sql is None:
            rows = [tuple(r[:-1]) for r in answered]
            groups = [[int(r[-1])] for r in answered]
        else:
            rows = [tuple(r) for r in answered]
            listed = {tuple(r[:-1]): list(r[-1]) for r in execute(
                con, p.index_sql, analyst=True).fetchall()}
            groups = [listed.get(r, []) for r in rows]
        withheld = 0
        if checks:
            rows, groups, withheld = _difference_check(con, table, query, p, privacy, rows,
                                                       groups)
    finally:
        execute(con, f"DROP TABLE IF EXISTS {table}")
        execute(con, f"DROP TABLE IF EXISTS {made}")
    said: dict[str, Any] = {"mode": "threshold", "difference_check": {"suppressed": withheld}}
    cells: tuple[tuple[dict[str, Any] | None, ...], ...] = ()
    if dp is not None:
        said = {"mode": "differential", "epsilon": dp.epsilon, "delta": dp.delta}
        cells = tuple(tuple(
            noise[g[0]][f].noise() if f is not None and g and f in noise.get(g[0], {})
            else None for f in p.figures) for g in groups)
    elif not checks:
        said = {}
    result = QueryResult(p.names, tuple(rows), "aggregation", query.tables, p.minimum,
                         said, cells)
    return result, int(suppressed)


def _difference_check(
    con: duckdb.DuckDBPyConnection, table: str, query: CheckedQuery, p: Plan,
    privacy: AnswerPrivacy, rows: list[tuple[Any, ...]], groups: list[list[int]],
) -> tuple[list[tuple[Any, ...]], list[list[int]], int]:
    """Withhold output rows whose people differ from an answered row's by 1..minimum−1."""
    assert privacy.guard is not None and privacy.people is not None and p.minimum is not None
    if not rows:
        return rows, groups, 0
    wanted = sorted({i for g in groups for i in g})
    got = fetch_arrow(con, Sql(f"SELECT {RESERVED}i, {RESERVED}p FROM {table} WHERE "
                               f"{RESERVED}i IN (SELECT unnest(?))", (wanted,)))
    ids = got.column(0).to_pylist()
    lists: Any = got.column(1).combine_chunks()
    flat = np.asarray(lists.flatten(), dtype=np.int64)
    offsets = np.asarray(lists.offsets)
    members = {i: flat[offsets[k]:offsets[k + 1]] for k, i in enumerate(ids)}
    people = privacy.people.rows([np.unique(np.concatenate(
        [members[i] for i in g] or [np.zeros(0, np.int64)])) for g in groups], query.tables)
    verdict = privacy.guard.check_and_remember(people, p.minimum)
    keep = [i for i in verdict.accepted if groups[i]]  # a row no group gives: fail closed
    return [rows[i] for i in keep], [groups[i] for i in keep], len(rows) - len(keep)


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
        differential = room.privacy.differential
        try:
            room.authorize(member, ())
            tables = {n: TableRules(n, t.owner, t.policy)
                      for n, t in room.collaboration.tables.items()}
            if differential:
                refuse_unsupported(sql)
            query = check_sql(sql, tables, member)
            request["tables"] = list(query.tables)
            room.authorize(member, query.tables)
            privacy, charge = _answer_privacy(room, query, member, request)
        except PolicyRefusal as exc:
            request["rules"] = list(exc.rules)
            room.audit.record(member=member, request=request, decision="refused", rule=exc.rule)
            raise
        rule = "list" if query.kind == "list" else "aggregation_threshold"
        request["minimum"] = query.minimum
        extra: dict[str, Any] | None = None
        if charge is not None:
            rule = "differential_privacy"
            extra = {"epsilon": charge.epsilon, "query_id": charge.query_id,
                     "budget_spent": charge.spent_after}
        try:
            con = room.analyst_connection(query.tables)
            try:
                result, suppressed = execute_checked(query, con, privacy=privacy)
            finally:
                con.close()
        except PolicyRefusal as exc:
            request["rules"] = list(exc.rules)
            room.audit.record(member=member, request=request, decision="refused", rule=exc.rule,
                              extra=extra)
            raise
        except CleanroomError as exc:
            request["failed"] = type(exc).__name__
            room.audit.record(member=member, request=request, decision="accepted", rule=rule,
                              extra=extra)
            raise
        withheld = int(result.privacy.get("difference_check", {}).get("suppressed", 0))
        if privacy is not None and privacy.guard is not None:
            extra = {"difference_suppressed": withheld}
            rule = "difference_check" if withheld else rule
        if charge is not None:
            result = replace(result, privacy={
                **result.privacy, "budget_spent": charge.spent_after,
                "budget_remaining": room.privacy.ledger.remaining()})
        room.audit.record(member=member, request=request, decision="accepted", rule=rule,
                          rows_returned=len(result.rows),
                          rows_suppressed=suppressed + withheld, extra=extra)
        return result
    finally:
        if own:
            room.close()


def _answer_privacy(room: CleanRoom, query: CheckedQuery, member: str,
                    request: dict[str, Any]) -> tuple[AnswerPrivacy | None, Charge | None]:
    """What the room's privacy mode asks of this query. In differential mode, refuse what
    noise cannot serve (dp_unsupported, dp_bounds), then spend ε — before anything runs."""
    if query.kind == "list":
        if room.privacy.differential:
            raise PolicyRefusal("dp_unsupported", "differential mode answers aggregates only; "
                                "list queries release rows without noise")
        return None, None
    if room.privacy.differential:
        collab = room.collaboration
        dp = DifferentialSettings(
            epsilon=room.privacy.epsilon_per_query,
            policies={n: t.policy for n, t in collab.tables.items()},
            limits={n: room.privacy.contribution_limit(n) for n in collab.tables})
        check_bounds(plan(query, None, f"{RESERVED}check", differential=True), dp)
        charge = room.privacy.charge(member, uuid.uuid4().hex)
        return AnswerPrivacy(differential=dp), charge
    if room.privacy.difference_checks:
        return AnswerPrivacy(guard=room.privacy.guard, people=room.people_index()), None
    return None, None


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
