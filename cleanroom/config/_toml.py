"""The one TOML writer for collaboration and policy files (the demo, tests and benches use it).

Python's `tomllib` only reads; the files we write have a small, fixed shape (scalars, lists,
lists of inline tables, and one or two levels of tables), so a short writer of that shape is
simpler than a dependency and keeps the files readable: keys in the order given, one blank
line before each table, inline tables written `{ key = value }` as the policy docs show them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protocols import CleanroomBug, write_bytes_atomic


def toml_text(doc: Mapping[str, Any], *, header: str | None = None) -> str:
    """TOML text for `doc`: plain keys first, then `[table]` and `[table.sub]` sections."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    plain = {k: v for k, v in doc.items() if not isinstance(v, Mapping)}
    lines += [f"{_key(k)} = {_value(v)}" for k, v in plain.items()]
    for name, section in doc.items():
        if isinstance(section, Mapping):
            _section(lines, _key(name), section)
    return "\n".join(lines) + "\n"


def write_toml(
    path: str | os.PathLike[str], doc: Mapping[str, Any], *, header: str | None = None
) -> Path:
    """Write `doc` as TOML to `path` atomically (temporary name, then rename)."""
    out = Path(path)
    write_bytes_atomic(out, toml_text(doc, header=header).encode("utf-8"))
    return out


def _section(lines: list[str], name: str, table: Mapping[str, Any]) -> None:
    """A `[name]` section, or one `[name.sub]` section per sub-table when all are tables."""
    if table and all(isinstance(v, Mapping) for v in table.values()):
        for sub, inner in table.items():
            _section(lines, f"{name}.{_key(sub)}", inner)
        return
    if lines:
        lines.append("")
    lines.append(f"[{name}]")
    for k, v in table.items():
        if isinstance(v, Mapping):
            raise CleanroomBug(f"TOML writer: a table inside [{name}] mixes tables and values")
        lines.append(f"{_key(k)} = {_value(v)}")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise CleanroomBug(f"TOML writer: no TOML form for {type(value).__name__}")
