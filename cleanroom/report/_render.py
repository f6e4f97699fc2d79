"""Render the HTML report a marketer reads: one self-contained file (inline CSS, SVG).

`render_report` fills the packaged template from a plain dict of results, so the layout can
change without touching the analyses; every value is escaped. Combinations missing from the
segment results (empty or below the minimum — indistinguishable by design) are shown as
"< minimum", never as zero.

The dict (all keys but `summary` optional):

    title, collaboration_id, viewer, generated_at, version
    summary    the overlap result without --by: tables.<t>.rows/entities, overlap.entities,
               match_rate.<t>, links_by_rule.<rule>, threshold, matching (method,
               threshold, fields; probabilistic: weights [{field, level, m, u, match_weight}])
    segments   {"by": ["airline.tier", "brand.category"], "metric": "SUM(brand.spend)" | None,
                "rows": [...overlap --by result rows...],
                "values": {"airline.tier": [known values, in display order], ...}}
               (differential mode: each row's "noise", and summary "noise" per figure)
    privacy    the budget (`cleanroom budget --json`): mode, epsilon, spent, remaining, ...
    policies   [{"table", "owner", "lines" | "can" | "cannot": [plain-word sentences]}]
    audit      {"verified": bool, "message": str, "entries": [{"time", "member", "action",
                "decision", "rule", "rows", "suppressed"}]}
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from string import Template
from typing import Any

from protocols import write_bytes_atomic

_A, _B, _BOTH = "#1f5f99", "#e0603a", "#7a4fa0"
_GOOD, _BAD = "#1e8a5a", "#c0392b"


def _e(value: Any) -> str:
    """Escape anything for HTML text or attribute context."""
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    """A count or amount with thousands separators (no decimals above 100)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return str(value)


def _pct(value: Any) -> str:
    """A rate in [0, 1] as a percentage."""
    if value is None:
        return "–"
    return f"{100 * float(value):.1f}%"


def _below(minimum: Any) -> str:
    return f"&lt; {_e(_num(minimum))}"


def _get(data: Mapping[str, Any], *path: str) -> Any:
    """Nested lookup that returns None where a key is missing (suppressed or not asked)."""
    cur: Any = data
    for key in path:
        if not isinstance(cur, Mapping) or key not in cur:
            return None
        cur = cur[key]
    return cur


def _pm(noise: Any) -> str:
    """" ± q" for a noisy figure (q: half its 95% interval), empty for an exact one."""
    if not isinstance(noise, Mapping):
        return ""
    try:
        half = (float(noise["ci95_high"]) - float(noise["ci95_low"])) / 2
    except (KeyError, TypeError, ValueError):
        return ""
    return f" ± {_num(round(half) if half >= 100 or half == int(half) else half)}"


def _pm_span(noise: Any) -> str:
    """The ± of a figure as a muted span (nothing for an exact figure)."""
    pm = _pm(noise)
    return f'<span class="pm">{_e(pm)}</span>' if pm else ""


# -- pieces -------------------------------------------------------------------------------
def _kpis(summary: Mapping[str, Any], names: Sequence[str], minimum: Any) -> str:
    cards = []
    noise = _get(summary, "noise") or {}
    for cls, name in zip(("a", "b"), names, strict=False):
        ent = _get(summary, "tables", name, "entities")
        rows = _get(summary, "tables", name, "rows")
        pm = _pm_span(noise.get(f"tables.{name}.entities"))
        sub = f"people, from {_e(_num(rows))} records" if rows is not None else "people"
        cards.append(
            f'<div class="kpi {cls}"><div class="label">{_e(name)} audience</div>'
            f'<div class="value">{_e(_num(ent)) if ent is not None else _below(minimum)}'
            f'{pm}</div><div class="sub">{sub}</div></div>')
    both = _get(summary, "overlap", "entities")
    pm = _pm_span(noise.get("overlap.entities"))
    cards.append(
        f'<div class="kpi both"><div class="label">In both</div>'
        f'<div class="value">{_e(_num(both)) if both is not None else _below(minimum)}'
        f'{pm}</div><div class="sub">overlapping people</div></div>')
    lines = "".join(
        f'<div class="rate"><span>{_e(n)}</span><strong style="color:{(_A, _B)[i % 2]}">'
        f'{_e(_pct(_get(summary, "match_rate", n)))}</strong></div>'
        for i, n in enumerate(names))
    cards.append(
        f'<div class="kpi"><div class="label">Match rates</div>{lines}'
        f'<div class="sub">of each audience found in the other</div></div>')
    return "".join(cards)


def _lens_distance(r1: float, r2: float, area: float) -> float:
    """Distance between two circle centres whose intersection has `area` (bisection)."""
    lo, hi = abs(r1 - r2), r1 + r2
    if area <= 0:
        return hi
    if area >= math.pi * min(r1, r2) ** 2:
        return lo

    def inter(d: float) -> float:
        a1 = r1 * r1 * math.acos(max(-1.0, min(1.0, (d * d + r1 * r1 - r2 * r2) / (2 * d * r1))))
        a2 = r2 * r2 * math.acos(max(-1.0, min(1.0, (d * d + r2 * r2 - r1 * r1) / (2 * d * r2))))
        k = (-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2)
        return a1 + a2 - 0.5 * math.sqrt(max(0.0, k))

    for _ in range(60):
        mid = (lo + hi) / 2
        if inter(mid) > area:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _venn(summary: Mapping[str, Any], names: Sequence[str], minimum: Any) -> str:
    if len(names) != 2:
        return "<p>The overlap diagram needs exactly two tables.</p>"
    n1 = _get(summary, "tables", names[0], "entities")
    n2 = _get(summary, "tables", names[1], "entities")
    both = _get(summary, "overlap", "entities")
    if not n1 or not n2:
        return f"<p>Audience sizes are below the minimum of {_e(minimum)}.</p>"
    width, height, rmax = 500, 250, 100.0
    scale = rmax / math.sqrt(max(n1, n2) / math.pi)
    r1, r2 = scale * math.sqrt(n1 / math.pi), scale * math.sqrt(n2 / math.pi)
    shown = both if both is not None else 0
    d = _lens_distance(r1, r2, scale * scale * shown)
    cx = width / 2
    x1, x2 = cx - (d / 2) - (r1 - r2) / 4, cx + (d / 2) - (r1 - r2) / 4
    cy = 125
    both_txt = _e(_num(both)) if both is not None else _below(minimum)
    mid = (max(x1, x2 - r2) + min(x1 + r1, x2)) / 2
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Overlap of {_e(names[0])} and {_e(names[1])} audiences">'
        f'<circle cx="{x1:.1f}" cy="{cy}" r="{r1:.1f}" fill="{_A}" fill-opacity=".28" '
        f'stroke="{_A}" stroke-width="2"/>'
        f'<circle cx="{x2:.1f}" cy="{cy}" r="{r2:.1f}" fill="{_B}" fill-opacity=".28" '
        f'stroke="{_B}" stroke-width="2"/>'
        f'<text x="{max(x1 - r1 * 0.45, 60):.1f}" y="{cy - 6}" text-anchor="middle" '
        f'font-size="14" font-weight="600" fill="{_A}">{_e(names[0])}</text>'
        f'<text x="{max(x1 - r1 * 0.45, 60):.1f}" y="{cy + 14}" text-anchor="middle" '
        f'font-size="13" fill="#1d2433">{_e(_num(n1))}</text>'
        f'<text x="{min(x2 + r2 * 0.45, width - 60):.1f}" y="{cy - 6}" text-anchor="middle" '
        f'font-size="14" font-weight="600" fill="{_B}">{_e(names[1])}</text>'
        f'<text x="{min(x2 + r2 * 0.45, width - 60):.1f}" y="{cy + 14}" text-anchor="middle" '
        f'font-size="13" fill="#1d2433">{_e(_num(n2))}</text>'
        f'<text x="{mid:.1f}" y="{cy - 4}" text-anchor="middle" font-size="19" '
        f'font-weight="700" fill="{_BOTH}">{both_txt}</text>'
        f'<text x="{mid:.1f}" y="{cy + 14}" text-anchor="middle" font-size="11.5" '
        f'fill="{_BOTH}">in both</text></svg>')


def _bars(items: Sequence[tuple[str, float | None, str, str]], width: int = 500) -> str:
    """Horizontal bars: (label, fraction 0..1 or None, value text, colour)."""
    row, pad, label_w = 46, 6, 150
    height = row * len(items) + pad
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img">']
    for i, (label, frac, text, colour) in enumerate(items):
        y = pad + i * row
        bar_w = width - label_w - 80
        fill = 0 if frac is None else max(1.5, bar_w * min(1.0, float(frac)))
        out.append(
            f'<text x="0" y="{y + 21}" font-size="13.5" fill="#1d2433">{_e(label)}</text>'
            f'<rect x="{label_w}" y="{y + 6}" width="{bar_w}" height="22" rx="6" '
            f'fill="#eef1f6"/>'
            f'<rect x="{label_w}" y="{y + 6}" width="{fill:.1f}" height="22" rx="6" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 10}" y="{y + 22}" font-size="14" font-weight="700" '
            f'fill="#1d2433">{text}</text>')
    out.append("</svg>")
    return "".join(out)


def _match_rates(summary: Mapping[str, Any], names: Sequence[str]) -> str:
    items = []
    for i, name in enumerate(names):
        rate = _get(summary, "match_rate", name)
        other = names[1 - i] if len(names) == 2 else "the others"
        items.append((f"{name} in {other}", rate, _e(_pct(rate)), (_A, _B)[i % 2]))
    if not items:
        return "<p>No tables.</p>"
    both = _get(summary, "overlap", "entities")
    notes = []
    for i, name in enumerate(names):
        ent = _get(summary, "tables", name, "entities")
        rate = _get(summary, "match_rate", name)
        if both is None or ent is None or rate is None or len(names) != 2:
            continue
        notes.append(f"<li><strong>{_e(_pct(rate))}</strong> of {_e(name)}’s "
                     f"{_e(_num(ent))} people ({_e(_num(both))}) are also in "
                     f"{_e(names[1 - i])}’s audience.</li>")
    return _bars(items) + (f'<ul class="notes">{"".join(notes)}</ul>' if notes else "")


def _links(summary: Mapping[str, Any], minimum: Any) -> str:
    links = _get(summary, "links_by_rule") or {}
    if not links:
        return "<p>No cross-company links were reported.</p>"
    total = sum(v for v in links.values() if isinstance(v, int | float)) or 1
    palette = ("#2b7bb9", "#7a4fa0", "#1e8a5a", "#d08a1a", "#8a8f98")
    items = []
    for i, (rule, count) in enumerate(links.items()):
        shown = _e(_num(count)) if count is not None else _below(minimum)
        frac = None if count is None else count / total
        label = "by the model" if rule == "probabilistic" else f"by {rule}"
        items.append((label, frac, shown, palette[i % len(palette)]))
    return _bars(items)


def _dedup(summary: Mapping[str, Any], names: Sequence[str]) -> str:
    rows = []
    for name in names:
        r = _get(summary, "tables", name, "rows")
        ent = _get(summary, "tables", name, "entities")
        merged = r - ent if isinstance(r, int) and isinstance(ent, int) else None
        rows.append(f"<tr><td>{_e(name)}</td><td class='num'>{_e(_num(r))}</td>"
                    f"<td class='num'>{_e(_num(ent))}</td>"
                    f"<td class='num'>{_e(_num(merged))}</td></tr>")
    return ("<table><thead><tr><th>Table</th><th class='num'>Records</th>"
            "<th class='num'>People</th><th class='num'>Duplicates merged</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


_WEIGHT_CAP = 20.0  # bits shown at full bar length; a level the model never saw in a match
                   # gets an extreme weight (say -110), drawn as "-20 or less"


def _matching(summary: Mapping[str, Any]) -> tuple[str, str]:
    """What drove the links: the method and, for probabilistic matching, the trained
    model's match weight (log2 m/u) per field and agreement level. Returns (lede, HTML)."""
    m = _get(summary, "matching") or {}
    fields = [str(f) for f in m.get("fields") or []]
    if m.get("method") != "probabilistic":
        lede = ("Deterministic matching: two records are the same person when they share a "
                "token of one of these columns, in this order of priority.")
        chips = "".join(f'<span class="chip">{_e(f)}</span>' for f in fields)
        return lede, f'<p class="chips">{chips or "–"}</p>'
    lede = (f"Probabilistic matching (Fellegi–Sunter, trained on the collaboration’s own "
            f"tokens): two records are linked when the evidence below adds up to a match "
            f"probability of at least {_e(_pct(m.get('threshold')))}. Each bar is the weight "
            "one agreement level adds (right, green) or takes away (left, red), in bits: "
            "+10 makes a match about 1,000 times more likely. Tokens only: no value was seen.")
    by_field: dict[str, list[Mapping[str, Any]]] = {}
    for w in m.get("weights") or []:
        by_field.setdefault(str(w.get("field")), []).append(w)
    blocks = []
    for field in fields or list(by_field):
        rows = []
        for w in by_field.get(field, []):
            rows.append(_weight_row(str(w.get("level", "")), w.get("match_weight"),
                                    w.get("m"), w.get("u")))
        blocks.append(f'<div class="weights"><h3>{_e(field.replace("_", " "))}</h3>'
                      f'{"".join(rows)}</div>')
    return lede, f'<div class="weight-grid">{"".join(blocks)}</div>'


def _weight_row(level: str, weight: Any, m: Any, u: Any) -> str:
    """One agreement level: label, a bar from the centre line, the weight in bits."""
    label = {"else": "disagree", "exact": "same token"}.get(level, level.replace("_", " "))
    if not isinstance(weight, int | float) or math.isnan(weight):
        bar, text = "", "–"
    else:
        frac = min(abs(weight), _WEIGHT_CAP) / _WEIGHT_CAP
        side, colour = ("left", _BAD) if weight < 0 else ("right", _GOOD)
        bar = (f'<span class="bar {side}" style="width:{50 * frac:.1f}%;'
               f'background:{colour}"></span>')
        text = (f"{weight:+.1f}" if abs(weight) <= _WEIGHT_CAP
                else f"−{_WEIGHT_CAP:.0f} or less" if weight < 0
                else f"+{_WEIGHT_CAP:.0f} or more")
    tip = (f"m = {m:.3g}, u = {u:.3g}" if isinstance(m, int | float) and isinstance(u, int | float)
           else "not estimated")
    return (f'<div class="wrow" title="{_e(tip)}"><span class="wl">{_e(label)}</span>'
            f'<span class="track"><span class="axis"></span>{bar}</span>'
            f'<span class="wv">{_e(text)}</span></div>')


def _short(column: str) -> str:
    return column.split(".", 1)[-1].replace("_", " ")


def _heat_colour(frac: float) -> tuple[str, str]:
    """Background and text colour for a heat cell, light to deep violet."""
    lo, hi = (238, 233, 246), (84, 46, 128)
    c = tuple(round(a + (b - a) * frac) for a, b in zip(lo, hi, strict=True))
    return f"rgb({c[0]},{c[1]},{c[2]})", "#ffffff" if frac > 0.45 else "#1d2433"


def _heatmap(segments: Mapping[str, Any] | None, minimum: Any) -> tuple[str, str, str]:
    """The segment heatmap; returns (section title, lede, HTML)."""
    if not segments or not segments.get("by"):
        return ("Overlap by segment", "No segment analysis was requested.", "")
    by = list(segments["by"])[:2]
    metric = segments.get("metric")
    rows = list(segments.get("rows") or [])
    known = segments.get("values") or {}

    def values(col: str) -> list[Any]:
        seen = list(known.get(col, []))
        for r in rows:
            if r.get(col) not in seen:
                seen.append(r.get(col))
        return seen

    rvals = values(by[0])
    cvals = values(by[1]) if len(by) > 1 else [None]
    cells = {(r.get(by[0]), r.get(by[1]) if len(by) > 1 else None): r for r in rows}
    top = max((r.get("entities") or 0 for r in rows), default=0) or 1
    title = "Overlap by " + " × ".join(_short(c) for c in by)
    lede = (f"Overlapping people in each combination of {_e(by[0])}"
            + (f" and {_e(by[1])}" if len(by) > 1 else "")
            + (f", with {_e(metric)} of the matched audience" if metric else "")
            + f". Combinations with fewer than {_e(minimum)} people are not reported.")
    head = "".join(f"<th>{_e(c)}</th>" for c in cvals) if len(by) > 1 else "<th>people</th>"
    corner = f"{_e(_short(by[0]))}" + (f" \\ {_e(_short(by[1]))}" if len(by) > 1 else "")
    body = []
    shown = hidden = 0
    for rv in rvals:
        tds = []
        for cv in cvals:
            cell = cells.get((rv, cv))
            if cell is None or cell.get("entities") is None:
                hidden += 1
                tds.append(f'<td class="hidden" title="below the minimum or empty">'
                           f'<span class="n">{_below(minimum)}</span></td>')
                continue
            shown += 1
            n = cell["entities"]
            said = cell.get("noise") or {}
            bg, fg = _heat_colour(0.15 + 0.85 * max(0, n) / top)
            m = (f'<span class="m">{_e(_num(cell.get(metric)))}{_e(_pm(said.get(metric)))}'
                 '</span>' if metric and metric in cell else "")
            tds.append(f'<td style="background:{bg};color:{fg}" class="shown">'
                       f'<span class="n">{_e(_num(n))}{_e(_pm(said.get("entities")))}</span>'
                       f'{m}</td>')
        body.append(f"<tr><th>{_e(rv)}</th>{''.join(tds)}</tr>")
    legend = (
        '<div class="legend">'
        f'<span><span class="swatch" style="background:{_heat_colour(0.2)[0]}"></span>'
        f'<span class="swatch" style="background:{_heat_colour(0.6)[0]}"></span>'
        f'<span class="swatch" style="background:{_heat_colour(1.0)[0]}"></span>'
        'more overlapping people</span>'
        + (f'<span>small figure: {_e(metric)}</span>' if metric else "")
        + f'<span><span class="swatch hidden"></span>&lt; {_e(minimum)}: empty or below the '
        'minimum (not distinguishable, by design)</span>'
        f'<span>{shown} shown · {hidden} withheld</span></div>')
    table = (f'<div style="overflow-x:auto"><table class="heat"><thead><tr>'
             f'<th class="corner">{corner}</th>{head}</tr></thead>'
             f'<tbody>{"".join(body)}</tbody></table></div>{legend}')
    return title, lede, table


def _privacy(data: Mapping[str, Any], minimum: Any) -> tuple[str, str, str]:
    """The privacy card (lede, HTML: a budget gauge in differential mode) and the footer."""
    budget = data.get("privacy") or {}
    if budget.get("mode") == "differential":
        total, spent = float(budget.get("epsilon") or 0), float(budget.get("spent") or 0)
        left = float(budget.get("remaining") or 0)
        per = float(budget.get("epsilon_per_query") or 0)
        frac = min(1.0, spent / total) if total else 1.0
        colour = _GOOD if frac < 0.7 else "#d08a1a" if frac < 0.9 else _BAD
        gauge = (
            '<svg viewBox="0 0 1000 28" width="100%" role="img" aria-label="privacy budget">'
            '<rect x="0" y="2" width="1000" height="24" rx="8" fill="#eef1f6"/>'
            f'<rect x="0" y="2" width="{max(4.0, 1000 * frac):.1f}" height="24" rx="8" '
            f'fill="{colour}"/></svg>'
            f'<p class="lede" style="margin-top:8px">ε spent <strong>{_e(f"{spent:g}")}</strong> '
            f'of {_e(f"{total:g}")} · {_e(f"{left:g}")} left: '
            f'{_e(_num(budget.get("queries_remaining")))} more answers at ε = '
            f'{_e(f"{per:g}")} each</p>')
        lede = ("Differential privacy: every figure carries random noise (± is its 95% "
                "interval), and every answer spends part of the collaboration’s budget ε, all "
                "members together, for its whole lifetime. When it is spent, no more answers.")
        foot = ("Every figure is noisy; the noise, not the minimum, is what stops many "
                "answers from adding up to one person.")
        return lede, gauge, foot
    withheld = sum(int(((part or {}).get("privacy") or {}).get("difference_check", {})
                       .get("suppressed", 0) or 0)
                   for part in (data.get("summary"), data.get("segments")))
    lede = ("Threshold mode: every figure stands for at least the minimum of people, and a "
            "figure whose people differ from an earlier answer’s by fewer than the minimum is "
            "withheld (difference checks), so two answers cannot be subtracted to single out "
            "a few people.")
    body = (f"<p>Withheld by difference checks in this report: <strong>{withheld}</strong>. "
            "What this does not stop: reconstruction from many overlapping answers combined "
            "(differential mode protects against that).</p>")
    foot = (f"Missing combinations are shown as “&lt; {_e(_num(minimum))}”: empty, "
            "below-minimum and withheld groups are indistinguishable by design.")
    return lede, body, foot


def _policies(policies: Sequence[Mapping[str, Any]] | None) -> str:
    if not policies:
        return "<p>No policy description was provided.</p>"
    out = []
    for p in policies:
        items = "".join(f"<li>{_e(line)}</li>" for line in p.get("lines", []))
        items += "".join(f'<li class="can">{_e(line)}</li>' for line in p.get("can", []))
        items += "".join(f'<li class="cannot">{_e(line)}</li>' for line in p.get("cannot", []))
        out.append(f'<div class="policy"><h3>{_e(p.get("table", ""))} '
                   f'<span style="font-weight:400;color:#5b6475">— owned by '
                   f'{_e(p.get("owner", ""))}</span></h3><ul>{items}</ul></div>')
    return "".join(out)


def _audit(audit: Mapping[str, Any] | None) -> str:
    if not audit:
        return "<p>No audit log was provided.</p>"
    ok = bool(audit.get("verified"))
    msg = audit.get("message") or ("hash chain verified" if ok else "verification failed")
    head = (f'<p class="chain {"ok" if ok else "bad"}">{"✔" if ok else "✘"} {_e(msg)}</p>')
    rows = []
    for entry in audit.get("entries", []):
        decision = str(entry.get("decision", ""))
        cls = "accepted" if decision.lower().startswith("accept") else "refused"
        rows.append(
            f"<tr><td class='when'>{_e(entry.get('time', ''))}</td>"
            f"<td>{_e(entry.get('member', ''))}</td>"
            f"<td>{_e(entry.get('action', ''))}</td>"
            f"<td><span class='pill {cls}'>{_e(decision)}</span></td>"
            f"<td>{_e(entry.get('rule', '') or '')}</td>"
            f"<td class='num'>{_e(_num(entry.get('rows')))}</td>"
            f"<td class='num'>{_e(_num(entry.get('suppressed')))}</td></tr>")
    if not rows:
        return head + "<p>The log is empty.</p>"
    return (head + "<table><thead><tr><th>Time (UTC)</th><th>Member</th><th>Analysis</th>"
            "<th>Decision</th><th>Rule</th><th class='num'>Rows</th>"
            "<th class='num'>Suppressed</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


# -- public -------------------------------------------------------------------------------
def render_report(data: Mapping[str, Any]) -> str:
    """Render the report dict (see the module docstring) into one self-contained HTML page."""
    summary = data.get("summary") or {}
    names = list((summary.get("tables") or {}).keys())
    minimum = summary.get("threshold", data.get("threshold", "the minimum"))
    seg_title, seg_lede, heat = _heatmap(data.get("segments"), minimum)
    matching_lede, matching = _matching(summary)
    privacy_lede, privacy, privacy_note = _privacy(data, minimum)
    template = Template(
        resources.files("cleanroom.report").joinpath("templates/report.html").read_text("utf-8"))
    return template.substitute(
        title=_e(data.get("title", "Audience overlap")),
        viewer=_e(data.get("viewer", "")),
        generated_at=_e(data.get("generated_at", "")),
        version=_e(data.get("version", "")),
        collaboration_id=_e(data.get("collaboration_id", "")),
        minimum=_e(_num(minimum)),
        kpis=_kpis(summary, names, minimum),
        venn=_venn(summary, names, minimum),
        match_rates=_match_rates(summary, names),
        links=_links(summary, minimum),
        dedup=_dedup(summary, names),
        matching_lede=matching_lede,
        matching=matching,
        segments_title=_e(seg_title),
        segments_lede=seg_lede,
        heatmap=heat,
        privacy_lede=privacy_lede,
        privacy=privacy,
        privacy_note=privacy_note,
        policies=_policies(data.get("policies")),
        audit=_audit(data.get("audit")),
    )


def report_css() -> str:
    """The report's style sheet (the text of its <style> element), for pages that should look
    the same, such as the server's console."""
    page = resources.files("cleanroom.report").joinpath("templates/report.html").read_text(
        "utf-8")
    start, end = page.index("<style>") + len("<style>"), page.index("</style>")
    return page[start:end]


def write_report(data: Mapping[str, Any], out: str | os.PathLike[str]) -> None:
    """Render the report and write it atomically to `out`."""
    write_bytes_atomic(out, render_report(data).encode("utf-8"))
