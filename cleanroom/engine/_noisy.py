"""The overlap analysis in differential mode: every figure noised, the budget spent first.

Order of work: check the request (SUM/AVG need public bounds — rule `dp_bounds`; only COUNT,
SUM and AVG can be released — `dp_unsupported`), spend ε_per_query in the ledger (durably,
before anything is computed — rule `privacy_budget` when it would overspend), then compute on
records cut to each table's `user_contribution_limit` per person and clamped to the bounds
(`CleanRoom.rows_sql`), and add OpenDP noise to every figure.

ε is split evenly over the measurements: the table sizes, the overlap, the links by rule, and
— with --by or --metric — the segments' people counts and each metric (AVG spends its share
half on a sum, half on a count). Sensitivities, for a person with at most k_t records in
table t (after the cut) and S = ∏ k_t over the tables giving dimensions (segments one person
can reach):

    table sizes        a person is in each table at most once: L1 = number of tables
    overlap, links     1 (a person is linked by one rule)
    segment people     S
    COUNT / SUM of t   R_t = S if t gives a dimension, else k_t · S (records of t a person
                       adds over all segments); SUM: R_t · max(|lo|, |hi|)

Segment keys are released through DP partition selection (`release_partitions`, δ =
DEFAULT_DELTA) unless every --by column has `public_keys` in its owner's policy; then every
combination of the listed values gets a noisy count. Either way a figure is shown only if
its noisy people count reaches the owners' minimum (post-processing, free). Record counts
(`rows`) are not released: one person's records are not bounded outside the cut.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Sequence
from typing import Any

from cleanroom.privacy import (
    DEFAULT_DELTA,
    NoisyValue,
    average_of,
    noisy_counts,
    noisy_sums,
    release_partitions,
    sum_sensitivity,
)
from protocols import PolicyRefusal

from ._analyses import (
    Dimension,
    Metric,
    OverlapResult,
    Room,
    matching_summary,
    segments_with_people,
)
from ._privacy import contribution_limit

DP_FUNCTIONS = ("COUNT", "SUM", "AVG")


def check_differential(room: Room, mets: Sequence[Metric]) -> None:
    """Refuse what differential mode cannot release: rule dp_unsupported or dp_bounds."""
    for m in mets:
        if m.function not in DP_FUNCTIONS:
            raise PolicyRefusal("dp_unsupported", f"{m.text}: differential mode releases "
                                f"{', '.join(DP_FUNCTIONS)} only (one person's effect on "
                                f"{m.function} cannot be bounded)")
        policy = room.collaboration.tables[m.table].policy
        if m.function in ("SUM", "AVG") and policy.bounds_for(m.column) is None:
            raise PolicyRefusal("dp_bounds", f"{m.text} needs public bounds: the owner of "
                                f"table {m.table!r} must give aggregate_columns "
                                f"{m.column!r} bounds = [lo, hi]")


def noisy_overlap(room: Room, member: str, request: dict[str, Any], dims: Sequence[Dimension],
                  mets: Sequence[Metric], minimum: int) -> OverlapResult:
    """`overlap` in differential mode (request already checked against the policies)."""
    try:
        check_differential(room, mets)
        query_id = uuid.uuid4().hex
        charge = room.privacy.charge(member, query_id)
    except PolicyRefusal as exc:
        room.audit.record(member=member, request=request, decision="refused", rule=exc.rule)
        raise
    epsilon = room.privacy.epsilon_per_query
    collab = room.collaboration
    segmented = bool(dims or mets)
    each = epsilon / (3 + (1 + len(mets) if segmented else 0))
    res = room.resolution()
    names = tuple(collab.tables)

    sizes = noisy_counts([res.tables[n]["entities"] for n in names], epsilon=each,
                         sensitivity=len(names))
    ov = noisy_counts([res.overlap_entities], epsilon=each)[0]
    rules = tuple(res.links_by_rule)
    linked = noisy_counts([res.links_by_rule[r] for r in rules], epsilon=each) if rules else []
    noise: dict[str, Any] = {}
    tables = {}
    for n, v in zip(names, sizes, strict=True):
        if v.value >= minimum:
            tables[n] = {"entities": int(v.value)}
            noise[f"tables.{n}.entities"] = v.noise()
    overlap_out = {"entities": int(ov.value)} if ov.value >= minimum else {}
    if overlap_out:
        noise["overlap.entities"] = ov.noise()
    links = {}
    for r, v in zip(rules, linked, strict=True):
        if v.value >= minimum:
            links[r] = int(v.value)
            noise[f"links_by_rule.{r}"] = v.noise()
    rates = {n: round(min(1.0, ov.value / t["entities"]), 6) for n, t in tables.items()
             if overlap_out}
    segments = _segments(room, dims, mets, each, minimum) if segmented else []
    returned = len(tables) + bool(overlap_out) + len(links) + len(segments)
    privacy = {"mode": "differential", "epsilon": epsilon, "delta": DEFAULT_DELTA,
               "budget_spent": charge.spent_after,
               "budget_remaining": room.privacy.ledger.remaining()}
    result = OverlapResult(tables=tables, overlap=overlap_out, match_rate=rates,
                           links_by_rule=links, segments=segments, threshold=minimum,
                           rows_returned=returned, rows_suppressed=0,
                           matching=matching_summary(collab, res), privacy=privacy, noise=noise)
    room.audit.record(member=member, request=request, decision="accepted",
                      rule="differential_privacy", rows_returned=returned,
                      extra={"epsilon": epsilon, "query_id": query_id,
                             "budget_spent": charge.spent_after})
    return result


def _segments(room: Room, dims: Sequence[Dimension], mets: Sequence[Metric], epsilon: float,
              minimum: int) -> list[dict[str, Any]]:
    """Noisy segments: partition selection (or public keys), then each metric's noise."""
    tables = room.collaboration.tables
    limit = {n: contribution_limit(t.policy) for n, t in tables.items()}
    dim_tables = list(dict.fromkeys(d.table for d in dims))
    reach = math.prod(limit[t] for t in dim_tables)  # S: segments one person can reach
    parts: list[Metric] = []
    for m in mets:
        if m.function in ("SUM", "AVG"):
            parts.append(Metric("SUM", m.table, m.column, f"SUM({m.table}.{m.column})"))
        if m.function in ("COUNT", "AVG"):
            parts.append(Metric("COUNT", m.table, m.column, f"COUNT({m.table}.{m.column})"))
    found, _ = segments_with_people(room, dims, list(dict.fromkeys(parts)), people=False)
    key = [str(d) for d in dims]
    by_key = {tuple(row[k] for k in key): row for row in found}
    public = [tables[d.table].policy.public_values(d.column) for d in dims]
    known = [v for v in public if v is not None]
    if len(known) == len(public):
        keys = list(itertools.product(*known))
        counts = noisy_counts([int(by_key.get(k, {}).get("entities", 0)) for k in keys],
                              epsilon=epsilon, sensitivity=reach)
        released = {k: c for k, c in zip(keys, counts, strict=True) if c.value >= minimum}
    else:
        released = release_partitions({k: int(r["entities"]) for k, r in by_key.items()},
                                       epsilon=epsilon, max_groups=reach, minimum=minimum)
    order = list(released)
    if not order:
        return []
    out: list[dict[str, Any]] = [
        {**dict(zip(key, k, strict=True)), "entities": int(released[k].value)} for k in order]
    noise: list[dict[str, Any]] = [{"entities": released[k].noise()} for k in order]
    for m in mets:
        records = reach if m.table in dim_tables else limit[m.table] * reach
        bounds = tables[m.table].policy.bounds_for(m.column)

        def column(func: str, m: Metric = m) -> list[float]:
            name = f"{func}({m.table}.{m.column})"
            return [float(by_key.get(k, {}).get(name) or 0) for k in order]

        values: list[NoisyValue]
        if m.function == "COUNT":
            values = noisy_counts([int(v) for v in column("COUNT")], epsilon=epsilon,
                                  sensitivity=records)
        else:
            assert bounds is not None  # checked by check_differential
            share = epsilon / 2 if m.function == "AVG" else epsilon
            sums = noisy_sums(column("SUM"), epsilon=share,
                              sensitivity=sum_sensitivity(*bounds, records))
            values = sums
            if m.function == "AVG":
                counts = noisy_counts([int(v) for v in column("COUNT")], epsilon=share,
                                      sensitivity=records)
                values = [average_of(s, c, bounds) for s, c in zip(sums, counts, strict=True)]
        for row, said, v in zip(out, noise, values, strict=True):
            row[m.text] = int(v.value) if m.function == "COUNT" else float(v.value)
            said[m.text] = v.noise()
    for row, said in zip(out, noise, strict=True):
        row["noise"] = said
    return out
