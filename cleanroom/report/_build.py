"""Build the report's figures: run the report's analyses as one member (each audited and
thresholded like any other) and collect them in the plain dict that `render_report` fills the
template from."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from cleanroom.engine import CleanRoom, open_collaboration

_STRING = re.compile(r"'(?:[^']|'')*'")
_LONG_NUMBER = re.compile(r"\d{5,}")


def describe_request(request: Mapping[str, Any]) -> str:
    """What an audit entry asked, in a few words (no values beyond column names and SQL)."""
    name = str(request.get("analysis") or request.get("kind") or "request")
    parts = [name]
    for key in ("by", "metrics"):
        vals = request.get(key)
        if vals:
            parts.append(f"{'by' if key == 'by' else 'with'} {', '.join(map(str, vals))}")
    sql = request.get("sql")
    if sql:
        # literals an analyst typed could be identifiers: the report shows the query's shape only
        text = _LONG_NUMBER.sub("#", _STRING.sub("'…'", " ".join(str(sql).split())))
        parts.append(text if len(text) <= 90 else text[:87] + "…")
    return " ".join(parts)


def _default_dimensions(room: CleanRoom, member: str) -> list[str]:
    """The first dimension column of the member's own table and of one other table."""
    tables = room.collaboration.tables
    own = [n for n, t in tables.items() if t.owner == member]
    order = own + [n for n in tables if n not in own]
    dims = [f"{n}.{tables[n].policy.dimension_columns[0]}" for n in order
            if tables[n].policy.dimension_columns]
    return dims[:2]


def _default_metric(room: CleanRoom, member: str) -> str | None:
    """SUM (or the first allowed function) of the first aggregate column of another table."""
    tables = room.collaboration.tables
    others = [n for n, t in tables.items() if t.owner != member] + \
        [n for n, t in tables.items() if t.owner == member]
    for n in others:
        p = tables[n].policy
        for col in p.aggregated_columns():
            funcs = p.functions_for(col)
            if funcs:
                func = "SUM" if "SUM" in funcs else funcs[0]
                return f"{func}({n}.{col})"
    return None


def _ordered_values(rows: Sequence[Mapping[str, Any]], col: str) -> list[Any]:
    """Dimension values in decreasing order of overlapping people (ties by value)."""
    totals: dict[Any, int] = {}
    for r in rows:
        totals[r.get(col)] = totals.get(r.get(col), 0) + int(r.get("entities") or 0)
    return sorted(totals, key=lambda v: (-totals[v], str(v)))


def build_report(
    collaboration: str | os.PathLike[str] | CleanRoom,
    member: str,
    *,
    by: Sequence[str] = (),
    metric: str | None = None,
    values: Mapping[str, Sequence[Any]] | None = None,
    now: Any = None,
) -> dict[str, Any]:
    """Run the analyses of the report as `member` (each audited) and collect the report dict.

    `collaboration` is a collaboration file or an opened `CleanRoom` (left open).
    """
    with (open_collaboration(collaboration) if not isinstance(collaboration, CleanRoom)
          else contextlib.nullcontext(collaboration)) as room:
        differential = room.privacy.differential
        summary = room.overlap(member).to_dict()
        dims = list(by) or _default_dimensions(room, member)
        met = metric if metric is not None else _default_metric(room, member)
        segments: dict[str, Any] | None = None
        if dims:
            seg = room.overlap(member, by=dims, metrics=[met] if met else []).to_dict()
            rows = seg.get("segments") or []
            known: dict[str, list[Any]] = {}
            for d in dims:
                table, _, column = d.partition(".")
                public = (room.collaboration.tables[table].policy.public_values(column)
                          if table in room.collaboration.tables else None)
                if values and values.get(d):
                    known[d] = list(values[d])
                elif public is not None:
                    known[d] = list(public)
                elif len(dims) > 1 and not differential:  # each would spend ε: not in DP mode
                    # the values of one dimension alone (each audited and thresholded too):
                    # lets a row whose every cell is withheld still appear, as "< minimum";
                    # the one-dimension totals themselves are not shown (no differencing aid)
                    alone = room.overlap(member, by=[d]).to_dict().get("segments") or []
                    known[d] = _ordered_values(alone, d)
                else:
                    known[d] = _ordered_values(rows, d)
            segments = {"by": dims, "metric": met, "rows": rows, "values": known,
                        "privacy": seg.get("privacy") or {}}
        plain = room.policy_report()
        policies = []
        for name, table in plain["tables"].items():
            said = plain["members"].get(member, {}).get("tables", {}).get(name, {})
            policies.append({"table": name, "owner": table.get("owner", ""),
                             "can": list(said.get("can_learn", [])),
                             "cannot": list(said.get("cannot_learn", []))})
        checked = room.audit.verify()
        entries = [
            {"time": str(e.get("time", "")).replace("T", " ").replace("+00:00", ""),
             "member": e.get("member", ""), "action": describe_request(e.get("request") or {}),
             "decision": e.get("decision", ""), "rule": e.get("rule", ""),
             "rows": e.get("rows_returned"), "suppressed": e.get("rows_suppressed")}
            for e in room.audit.entries()]
        collab = room.collaboration
        budget = room.budget()
    try:
        ver = version("cleanroom")
    except PackageNotFoundError:
        ver = ""
    when = now or dt.datetime.now(dt.UTC)
    return {
        "title": collab.name,
        "collaboration_id": collab.id,
        "viewer": member,
        "generated_at": when.strftime("%Y-%m-%d %H:%M UTC"),
        "version": ver,
        "summary": summary,
        "segments": segments,
        "privacy": budget,
        "policies": policies,
        "audit": {"verified": True,
                  "message": f"{checked.entries} entries, hash chain intact "
                             f"(head {checked.head_sha256[:12]}…)",
                  "entries": entries[-60:]},
    }
