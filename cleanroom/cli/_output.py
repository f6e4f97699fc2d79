"""How commands print: JSON for scripts (`--json`), aligned text tables for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
