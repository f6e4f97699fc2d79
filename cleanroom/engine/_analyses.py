"""Built-in analyses: overlap, match rates, links by rule, overlap by segment; policy report.

Every number that comes out stands for at least the effective minimum of distinct entities
(the highest minimum of the tables involved); a row below it is dropped without a trace in the
result, and the audit log records how many rows were suppressed. Every analysis, accepted or
refused, is appended to the audit log; a refusal names the rule that refused.

Segments are the overlapping entities (present in every table) grouped by the `--by`
dimensions: the distinct (entity, dimension values) pairs, from the dimension tables joined on
`entity_id`. An entity whose records carry several values is in several segments. Each metric
aggregates its own table's rows of the entities in a segment (for a table that also gives a
dimension, only its rows with the segment's values), so the rows of another table never
multiply it (no join fan-out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import duckdb
import numpy as np

from cleanroom.config import AGGREGATE_FUNCTIONS, Collaboration, EffectivePolicy
from protocols import PolicyRefusal

from ._audit import AuditLog
from ._members import require_member
from ._people import PeopleIndex
from ._privacy import RoomPrivacy
from ._resolve import Resolution
from ._sql import Sql, execute, fetch_arrow, quote_ident


class Room(Protocol):
    """What the analyses need of an opened collaboration (`CleanRoom` provides it)."""

    collaboration: Collaboration
    audit: AuditLog

    @property
    def connection(self) -> duckdb.DuckDBPyConnection: ...

    def authorize(self, member: str, tables: Iterable[str] | None = None) -> None: ...

    def effective_policy(self, tables: Iterable[str] | None = None) -> EffectivePolicy: ...

    def effective_minimum(self, tables: Iterable[str] | None = None) -> int: ...

    def resolution(self, *, refresh: bool = False) -> Resolution: ...

    @property
    def privacy(self) -> RoomPrivacy: ...

    def rows_sql(self, name: str, columns: Sequence[str], *, overlap_only: bool,
                 record_id: str | None = None) -> Sql: ...

    def people_index(self) -> PeopleIndex: ...

    def noisy_overlap(self, member: str, request: dict[str, Any], dims: Sequence[Dimension],
                      mets: Sequence[Metric], minimum: int) -> OverlapResult: ...

_COLUMN = re.compile(r"\s*([a-z0-9_]+)\.([a-z0-9_]+)\s*")
_METRIC = re.compile(r"\s*([A-Za-z_]+)\s*\(\s*(DISTINCT\s+)?([a-z0-9_]+)\.([a-z0-9_]+)\s*\)\s*",
                     re.IGNORECASE)
_SQL_FUNCS = {"SUM": "sum({})", "AVG": "avg({})", "COUNT": "count({})",
              "COUNT_DISTINCT": "count(DISTINCT {})", "SUM_DISTINCT": "sum(DISTINCT {})"}


@dataclass(frozen=True)
class Dimension:
    """A `TABLE.COLUMN` to group by."""

    table: str
    column: str

    @classmethod
    def parse(cls, text: str) -> Dimension:
        """Parse `TABLE.COLUMN`; anything else is refused by the dimension_columns rule."""
        m = _COLUMN.fullmatch(text)
        if not m:
            raise PolicyRefusal("dimension_columns", f"{text!r} is not TABLE.COLUMN")
        return cls(m.group(1), m.group(2))

    def __str__(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class Metric:
    """An aggregate `FUNC(TABLE.COLUMN)`, keyed in results as written."""

    function: str
    table: str
    column: str
    text: str

    @classmethod
    def parse(cls, text: str) -> Metric:
        """Parse `SUM(t.c)`, `COUNT(DISTINCT t.c)`, `COUNT_DISTINCT(t.c)`..."""
        m = _METRIC.fullmatch(text)
        if not m:
            raise PolicyRefusal("aggregate_columns", f"{text!r} is not FUNC(TABLE.COLUMN)")
        func = m.group(1).upper() + ("_DISTINCT" if m.group(2) else "")
        if func not in AGGREGATE_FUNCTIONS:
            raise PolicyRefusal("aggregate_columns", f"unknown aggregate function in {text!r} "
                                f"(allowed: {', '.join(AGGREGATE_FUNCTIONS)})")
        return cls(func, m.group(3), m.group(4), text.strip())


@dataclass(frozen=True)
class OverlapResult:
    """What an overlap analysis returns (already thresholded)."""

    tables: dict[str, dict[str, int]]
    overlap: dict[str, int]
    match_rate: dict[str, float]
    links_by_rule: dict[str, int]
    segments: list[dict[str, Any]]
    threshold: int
    rows_returned: int = field(default=0, compare=False)
    rows_suppressed: int = field(default=0, compare=False)
    matching: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `cleanroom overlap --json`. `privacy` says the mode and what
        it did (difference-check suppressions; ε spent); in differential mode `noise` gives
        each summary figure's mechanism, scale and 95% interval (`tables.<t>.entities`,
        `overlap.entities`, `links_by_rule.<rule>`), and each segment its own `noise`."""
        doc = {"tables": self.tables, "overlap": self.overlap, "match_rate": self.match_rate,
               "links_by_rule": self.links_by_rule, "segments": self.segments,
               "threshold": self.threshold, "matching": self.matching, "privacy": self.privacy}
        if self.noise:
            doc["noise"] = self.noise
        return doc


def matching_summary(collab: Collaboration, res: Resolution) -> dict[str, Any]:
    """How records were linked: method, match-probability threshold (probabilistic only) and
    the fields compared (deterministic: the rules); probabilistic adds the trained model's
    match weight per field level (aggregate model parameters, no token, no count)."""
    m = collab.matching
    if m.method != "probabilistic":
        return {"method": m.method, "threshold": None, "fields": list(m.rules)}
    return {"method": m.method, "threshold": res.matching.get("threshold", m.threshold),
            "fields": list(res.matching.get("fields", [])),
            "weights": list(res.matching.get("weights", []))}


def _check_request(room: Room, dims: Sequence[Dimension], metrics: Sequence[Metric]) -> None:
    """Refuse dimensions and metrics the tables' policies do not allow."""
    tables = room.collaboration.tables
    for d in dims:
        if d.table not in tables:
            raise PolicyRefusal("dimension_columns", f"{d.table!r} is not a table")
        p = tables[d.table].policy
        if d.column in p.join_columns:
            raise PolicyRefusal("join_columns", f"{d} is a join column; join columns are "
                                "never output")
        if d.column in p.disallowed_output_columns:
            raise PolicyRefusal("disallowed_output_columns", f"{d} may not be output")
        if d.column not in p.dimension_columns:
            raise PolicyRefusal("dimension_columns", f"{d} is not a dimension column of table "
                                f"{d.table!r}")
    for m in metrics:
        if m.table not in tables:
            raise PolicyRefusal("aggregate_columns", f"{m.table!r} is not a table")
        p = tables[m.table].policy
        if m.column in p.disallowed_output_columns:
            raise PolicyRefusal("disallowed_output_columns", f"{m.table}.{m.column} may not be "
                                "output, even aggregated")
        if m.function not in p.functions_for(m.column):
            allowed = ", ".join(p.functions_for(m.column)) or "none"
            raise PolicyRefusal("aggregate_columns", f"{m.text} is not allowed on table "
                                f"{m.table!r} (allowed on {m.column}: {allowed})")


def overlap(
    room: Room, as_member: str, *, by: Sequence[str] = (), metrics: Sequence[str] = ()
) -> OverlapResult:
    """Overlap of all tables as `as_member` sees it, thresholded and audited."""
    request = {"analysis": "overlap", "by": list(by), "metrics": list(metrics)}
    require_member(room.collaboration, as_member)
    try:
        names = tuple(room.collaboration.tables)
        for n in names:
            if room.collaboration.tables[n].policy.analysis_rule != "aggregation":
                raise PolicyRefusal("analysis_rule", f"table {n!r} allows list queries only")
        room.authorize(as_member, names)
        dims = [Dimension.parse(b) for b in by]
        mets = [Metric.parse(m) for m in metrics]
        _check_request(room, dims, mets)
        minimum = room.effective_minimum(names)
    except PolicyRefusal as exc:
        room.audit.record(member=as_member, request=request, decision="refused", rule=exc.rule)
        raise
    if room.privacy.differential:
        return room.noisy_overlap(as_member, request, dims, mets, minimum)
    res = room.resolution()
    kept = suppressed = 0

    def ok(entities: int) -> bool:
        nonlocal kept, suppressed
        if entities >= minimum:
            kept += 1
            return True
        suppressed += 1
        return False

    # every row that passes the threshold, with who it stands for (for the difference check)
    checks = room.privacy.difference_checks
    index = room.people_index() if checks else None
    rows: list[tuple[str, Any]] = []
    tables = {n: dict(s) for n, s in res.tables.items() if ok(s["entities"])}
    rows += [("tables", n) for n in tables]
    ov = res.overlap_entities
    overlap_out = {"entities": ov} if ok(ov) else {}
    rows += [("overlap", None)] if overlap_out else []
    links = {r: c for r, c in res.links_by_rule.items() if ok(c)}
    rows += [("links", r) for r in links]
    segments: list[dict[str, Any]] = []
    # a question asked before in this resolution: its rows' people are known (not listed again)
    question = (tuple(map(str, dims)), tuple(m.text for m in mets))
    known = index.answered(question) if index is not None and (dims or mets) else None
    if dims or mets:
        found, people = segments_with_people(room, dims, mets,
                                             people=checks and known is None)
        for i, row in enumerate(found):
            if ok(row["entities"]):
                segments.append(row)
                rows.append(("segments", people[i] if people else _segment_key(row, dims)))
    withheld = 0
    if index is not None and rows:
        listed = [key for kind, key in rows if kind == "segments"]
        if known is not None and not all(key in known for key in listed):
            found, people = segments_with_people(room, dims, mets, people=True)  # data moved
            lists = {_segment_key(row, dims): ids for row, ids in zip(found, people, strict=True)}
            listed = [lists[key] for key in listed]
            known = None
        if known is None:
            made = index.rows(listed, room.collaboration.tables)
            index.remember_answer(question, {_segment_key(row, dims): sets for row, sets
                                             in zip(segments, made, strict=True)})
        else:
            made = [known[key] for key in listed]
        segment_people = iter(made)
        verdict = room.privacy.guard.check_and_remember([
            index.table(key) if kind == "tables" else index.overlap() if kind == "overlap"
            else index.links(key) if kind == "links" else next(segment_people)
            for kind, key in rows], minimum)
        withheld = verdict.suppressed_count
        gone = set(verdict.suppressed)
        answered = [i for i, (kind, _) in enumerate(rows) if kind == "segments"]
        segments = [row for row, i in zip(segments, answered, strict=True) if i not in gone]
        for kind, key in (rows[i] for i in gone):
            if kind == "tables":
                del tables[key]
            elif kind == "overlap":
                overlap_out = {}
            elif kind == "links":
                del links[key]
        kept -= withheld
    rates = {n: round(ov / s["entities"], 6) for n, s in tables.items()
             if overlap_out and s["entities"]}
    result = OverlapResult(tables=tables, overlap=overlap_out, match_rate=rates,
                           links_by_rule=links, segments=segments, threshold=minimum,
                           rows_returned=kept, rows_suppressed=suppressed,
                           matching=matching_summary(room.collaboration, res),
                           privacy={"mode": "threshold",
                                    "difference_check": {"suppressed": withheld}})
    room.audit.record(member=as_member, request=request, decision="accepted",
                      rule="difference_check" if withheld else "output_constraints",
                      rows_returned=kept, rows_suppressed=suppressed + withheld,
                      extra={"difference_suppressed": withheld} if checks else None)
    return result


def _segment_key(row: dict[str, Any], dims: Sequence[Dimension]) -> tuple[Any, ...]:
    """A segment row's dimension values (what its people depend on)."""
    return tuple(row[str(d)] for d in dims)


def _general_sql(room: Room, dims: Sequence[Dimension], mets: Sequence[Metric],
                 params: list[Any], people: bool = False) -> str:
    """Segments in general: distinct (entity, dimension values) from the dimension tables
    joined on entity_id, counted; each metric over its own table's rows of those entities.
    With `people`, each segment's entity ids too (last column)."""
    ctes: list[str] = []
    dim_tables = list(dict.fromkeys(d.table for d in dims))
    nd = range(len(dims))
    dcols = ", ".join(f"d{k}" for k in nd)
    # A table giving both a dimension and a metric is read once (a materialized CTE with
    # the columns of both uses): one scan, and in differential mode one contribution cut.
    shared: dict[str, list[str]] = {}
    for t in dict.fromkeys(m.table for m in mets):
        if t in dim_tables:
            cols = list(dict.fromkeys([d.column for d in dims if d.table == t]
                                      + [m.column for m in mets if m.table == t]))
            sql = room.rows_sql(t, cols, overlap_only=True)
            params.extend(sql.params)
            renamed = ", ".join(["entity_id"] + [f"{quote_ident(c, cols)} AS c{i}"
                                                 for i, c in enumerate(cols)])
            ctes.append(f"r{len(shared)} AS MATERIALIZED (SELECT {renamed} FROM ({sql.text}))")
            shared[t] = cols

    def rows_of(t: str, cols: list[str], alias: str) -> str:
        if t in shared:
            renamed = ", ".join(["entity_id"] + [f"c{shared[t].index(c)} AS {alias}{i}"
                                                 for i, c in enumerate(cols)])
            return f"(SELECT {renamed} FROM r{list(shared).index(t)})"
        sql = room.rows_sql(t, cols, overlap_only=True)
        params.extend(sql.params)
        renamed = ", ".join(["entity_id"] + [f"{quote_ident(c, cols)} AS {alias}{i}"
                                             for i, c in enumerate(cols)])
        return f"(SELECT {renamed} FROM ({sql.text}))"

    if dims:
        parts = []
        for i, t in enumerate(dim_tables):
            cols = list(dict.fromkeys(d.column for d in dims if d.table == t))
            parts.append(f"{rows_of(t, cols, f'x{i}_')} AS t{i}")
        src = parts[0] + "".join(f" JOIN {p} USING (entity_id)" for p in parts[1:])
        picks = []
        for k, d in enumerate(dims):
            i = dim_tables.index(d.table)
            cols = list(dict.fromkeys(x.column for x in dims if x.table == d.table))
            picks.append(f"t{i}.x{i}_{cols.index(d.column)} AS d{k}")
        ctes.append(f"seg AS (SELECT DISTINCT entity_id, {', '.join(picks)} FROM {src})")
    else:
        any_table = next(iter(room.collaboration.tables))
        ctes.append(f"seg AS (SELECT DISTINCT entity_id FROM {rows_of(any_table, [], 'x')})")
    group = f" GROUP BY {dcols}" if dims else ""
    listed = ", list(entity_id) AS people" if people else ""
    ctes.append(f"cnt AS (SELECT {dcols + ', ' if dims else ''}count(*) AS entities{listed} "
                f"FROM seg{group})")
    met_tables = list(dict.fromkeys(m.table for m in mets))
    joins, sel = [], [f"cnt.d{k}" for k in nd] + ["cnt.entities"]
    for j, t in enumerate(met_tables):
        own_dims = [k for k, d in enumerate(dims) if d.table == t]
        cols = list(dict.fromkeys([m.column for m in mets if m.table == t]
                                  + [dims[k].column for k in own_dims]))
        aggs = [_SQL_FUNCS[m.function].format(f"v.y{cols.index(m.column)}") + f" AS m{k}"
                for k, m in enumerate(mets) if m.table == t]
        gsel = "".join(f"seg.d{k}, " for k in nd)
        # A row of a dimension table counts only in the segment of its own values.
        cond = "".join(f" AND v.y{cols.index(dims[k].column)} IS NOT DISTINCT FROM seg.d{k}"
                       for k in own_dims)
        ctes.append(f"mt{j} AS (SELECT {gsel}{', '.join(aggs)} FROM seg JOIN "
                    f"{rows_of(t, cols, 'y')} v ON v.entity_id = seg.entity_id{cond}"
                    f"{' GROUP BY ' + ', '.join(f'seg.d{k}' for k in nd) if dims else ''})")
        on = " AND ".join(f"cnt.d{k} IS NOT DISTINCT FROM mt{j}.d{k}" for k in nd) or "true"
        joins.append(f" LEFT JOIN mt{j} ON {on}")
    sel += [f"mt{met_tables.index(m.table)}.m{k}" for k, m in enumerate(mets)]
    sel += ["cnt.people"] if people else []
    order = f" ORDER BY {', '.join(f'cnt.d{k} NULLS LAST' for k in nd)}" if dims else ""
    return f"WITH {', '.join(ctes)} SELECT {', '.join(sel)} FROM cnt{''.join(joins)}{order}"


def _one_table_sql(room: Room, dims: Sequence[Dimension], mets: Sequence[Metric],
                   params: list[Any], people: bool = False) -> str:
    """Segments when every dimension and metric comes from one table, in one pass over its
    overlapping rows: a row of entity e with values d joins exactly the segment row (e, d),
    so the general query's join gives each row once, in its own segment."""
    t = (dims[0] if dims else mets[0]).table
    cols = list(dict.fromkeys([d.column for d in dims] + [m.column for m in mets]))
    sql = room.rows_sql(t, cols, overlap_only=True)
    params.extend(sql.params)
    renamed = ", ".join(["entity_id"] + [f"{quote_ident(c, cols)} AS y{i}"
                                         for i, c in enumerate(cols)])
    nd = range(len(dims))
    sel = [f"y{cols.index(d.column)} AS d{k}" for k, d in enumerate(dims)]
    sel.append("count(DISTINCT entity_id) AS entities")
    sel += [_SQL_FUNCS[m.function].format(f"y{cols.index(m.column)}") + f" AS m{k}"
            for k, m in enumerate(mets)]
    sel += ["list(DISTINCT entity_id) AS people"] if people else []
    group = f" GROUP BY {', '.join(f'd{k}' for k in nd)}" if dims else ""
    order = f" ORDER BY {', '.join(f'd{k} NULLS LAST' for k in nd)}" if dims else ""
    return f"SELECT {', '.join(sel)} FROM (SELECT {renamed} FROM ({sql.text})){group}{order}"


def _segments(room: Room, dims: Sequence[Dimension], mets: Sequence[Metric], *,
              fast: bool = True) -> list[dict[str, Any]]:
    """All segment rows (before the threshold), as dicts keyed like the JSON output.

    Segment membership is the set of distinct (entity, dimension values) of the overlapping
    entities; each metric aggregates its own table's rows of the entities in the segment
    (only those with the segment's values if its table gives a dimension). With `fast`, the
    one-table case takes a single pass (`_one_table_sql`; tested equal to the general query).
    """
    return segments_with_people(room, dims, mets, fast=fast, people=False)[0]


def segments_with_people(
    room: Room, dims: Sequence[Dimension], mets: Sequence[Metric], *, fast: bool = True,
    people: bool,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """`_segments`, and with `people` each segment's entity ids (for difference checks):
    the result read as Arrow, so the ids come as one column (no Python object per entity)."""
    params: list[Any] = []
    if fast and len({d.table for d in dims} | {m.table for m in mets}) == 1:
        text = _one_table_sql(room, dims, mets, params, people)
    else:
        text = _general_sql(room, dims, mets, params, people)
    lists: list[np.ndarray] = []
    if people:  # (in the answer's order already: by its dimension values, nulls last)
        got = fetch_arrow(room.connection, Sql(text, tuple(params)))
        names = [n for n in got.column_names if n != "people"]
        rows = list(zip(*(got.column(n).to_pylist() for n in names), strict=True)) \
            if names else []
        column: Any = got.column("people").combine_chunks()
        flat = np.asarray(column.flatten(), dtype=np.int64)
        offsets = np.asarray(column.offsets)
        lists = [flat[offsets[i]:offsets[i + 1]] for i in range(len(column))]
    else:
        rows = execute(room.connection, Sql(text, tuple(params))).fetchall()
    out = []
    for row in rows:
        rec: dict[str, Any] = {str(d): row[k] for k, d in enumerate(dims)}
        rec["entities"] = int(row[len(dims)])
        for k, m in enumerate(mets):
            v = row[len(dims) + 1 + k]
            rec[m.text] = float(v) if isinstance(v, Decimal) else v
        out.append(rec)
    if not dims and out and out[0]["entities"] == 0:
        return [], []
    return out, lists


def policy_report(room: Room) -> dict[str, Any]:
    """What each member can and cannot learn from each table, as data and plain sentences."""
    collab = room.collaboration
    names = tuple(collab.tables)
    eff = room.effective_policy(names)
    tables: dict[str, Any] = {}
    for n, t in collab.tables.items():
        p = t.policy
        tables[n] = {
            "owner": t.owner, "analysis_rule": p.analysis_rule,
            "join_columns": list(p.join_columns),
            "dimension_columns": list(p.dimension_columns),
            "aggregate_columns": {c: list(p.functions_for(c)) for c in p.aggregated_columns()},
            "list_columns": list(p.list_columns),
            "minimum": p.minimum, "join_required": p.join_required,
            "scalar_functions": list(p.scalar_functions),
            "disallowed_output_columns": list(p.disallowed_output_columns),
            "allowed_result_receivers": (None if p.allowed_result_receivers is None
                                         else list(p.allowed_result_receivers)),
        }
    members: dict[str, Any] = {}
    for mname, m in collab.members.items():
        per: dict[str, Any] = {}
        for n in collab.tables:
            per[n] = _explain(room, mname, n, eff.minimum)
        members[mname] = {"can_query": m.can_query, "can_receive_results": m.can_receive_results,
                          "owns": list(collab.owned_by(mname)), "tables": per}
    return {"collaboration": {"id": collab.id, "name": collab.name},
            "matching": {"rules": list(collab.matching.rules),
                         "max_records_per_token": collab.matching.max_records_per_token,
                         "method": collab.matching.method,
                         "threshold": collab.matching.threshold},
            "joint_minimum": eff.minimum, "tables": tables, "members": members}


def _explain(room: Room, member: str, table: str, joint: int | None) -> dict[str, Any]:
    """Plain sentences: what `member` can and cannot learn from `table`."""
    p = room.collaboration.tables[table].policy
    can: list[str] = []
    cannot = [f"the tokens in {', '.join(p.join_columns)} (join columns only link records; "
              "they are never output)"]
    try:
        room.authorize(member, tuple(room.collaboration.tables))
    except PolicyRefusal as exc:
        cannot.insert(0, f"any result from this table: {exc.detail} (rule {exc.rule})")
        return {"can_learn": can, "cannot_learn": cannot}
    if p.analysis_rule == "list":
        can.append(f"row-level lists of {', '.join(p.list_columns)} for people who are also in "
                   "its own data (list rule)")
    else:
        if p.dimension_columns:
            can.append(f"counts of distinct people grouped by {', '.join(p.dimension_columns)}")
        for c in p.aggregated_columns():
            can.append(f"{' / '.join(p.functions_for(c))} of {c}")
        crowd = p.minimum if joint is None else max(p.minimum or 0, joint)
        can.append(f"only numbers that stand for at least {p.minimum} distinct people (at least "
                   f"{crowd} when combined with the other tables)")
        cannot.append(f"any group of fewer than {p.minimum} people (silently dropped)")
        settings = room.privacy.settings
        if settings.differential:
            can.append(f"only noisy figures (differential privacy: ε = "
                       f"{settings.epsilon_per_query:g} per answer, from a budget of "
                       f"{settings.epsilon:g} shared by all members for the collaboration's "
                       "lifetime)")
            cannot.append("SUM or AVG of a column without public bounds, or MIN, MAX and "
                          "DISTINCT aggregates (differential mode)")
        elif room.privacy.difference_checks:
            cannot.append("a row whose people differ from an earlier answer's by fewer than the "
                          "minimum (difference checks)")
    if p.scalar_functions:
        can.append(f"scalar functions on dimensions: {', '.join(p.scalar_functions)}")
    if p.disallowed_output_columns:
        cannot.append(f"{', '.join(p.disallowed_output_columns)} in any output")
    cannot.append("any column the policy does not list")
    if p.join_required == "query_runner":
        can.append("this only in a join with a table of its own (join_required)")
    return {"can_learn": can, "cannot_learn": cannot}
