"""How commands print: JSON for scripts (`--json`), aligned text tables for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import click


def emit_json(doc: object, *, indent: int | None = 2, sort_keys: bool = True) -> None:
    """Print `doc` as JSON on stdout (the `--json` form of a command); other values as text."""
    click.echo(json.dumps(doc, indent=indent, sort_keys=sort_keys, default=str))


def emit(doc: dict[str, Any], as_json: bool, line: str) -> None:
    """Print `doc` as JSON when `as_json`, else the one-line summary `line`."""
    if as_json:
        emit_json(doc)
    else:
        click.echo(line)


def with_noise(value: Any, noise: dict[str, Any] | None) -> str:
    """A cell as people read it: a noisy figure as "value ± half its 95% interval"."""
    if isinstance(value, Decimal):
        value = float(value)
    text = "" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)
    if noise and value is not None:
        half = (float(noise["ci95_high"]) - float(noise["ci95_low"])) / 2
        text += f" ± {half:.0f}" if half >= 10 else f" ± {half:.2f}"
    return text


def privacy_note(privacy: dict[str, Any]) -> str:
    """The line under an answer saying what the privacy mode did (empty if nothing)."""
    if privacy.get("mode") == "differential":
        return (f"\n(differential privacy: ε = {privacy.get('epsilon')} spent; every figure is "
                "noisy, ± is its 95% interval)")
    n = int(privacy.get("difference_check", {}).get("suppressed", 0) or 0)
    if n:
        return (f"\n({n} row{'s' if n != 1 else ''} withheld by the difference check: "
                f"{'their' if n != 1 else 'its'} people differ from an earlier answer's by "
                "fewer than the minimum)")
    return ""


def table_text(header: Sequence[Any], rows: Sequence[Sequence[Any]], *, rule: bool = False) -> str:
    """Columns padded to their widest cell, two spaces apart; `rule` adds a dashed line
    under the header."""
    cells = [[str(x) for x in header], *[[str(x) for x in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
