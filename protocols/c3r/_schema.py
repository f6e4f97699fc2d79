"""C3R table schemas: the mapped form (`headerRow: true`) and the positional form, like C3R."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, cast

from .._errors import ConfigError
from ._core import Pad, PadType, Settings, normalize_header

HEADER_MAX_LENGTH = 128
MAX_OUTPUT_COLUMNS = 1600
_HEADER_RE = re.compile(r"[a-z0-9_](([a-z0-9_ ]+-)*([a-z0-9_ ]+))?")
_SUFFIX = {"sealed": "_sealed", "fingerprint": "_fingerprint", "cleartext": ""}
ColumnType = Literal["cleartext", "fingerprint", "sealed"]


def check_header(header: str, *, file: str | None = None, key: str = "header") -> str:
    """Normalize a header as C3R does and check it against the AWS Clean Rooms column rules."""
    if not isinstance(header, str):
        raise ConfigError("a column header must be a string", file=file, key=key)
    name = normalize_header(header)
    if not name.strip():
        raise ConfigError("column header names must not be blank", file=file, key=key)
    if len(name) > HEADER_MAX_LENGTH:
        raise ConfigError(f"column header longer than {HEADER_MAX_LENGTH} characters",
                          file=file, key=key)
    if not _HEADER_RE.fullmatch(name):
        raise ConfigError(f"column header {name!r} does not match pattern "
                          f"{_HEADER_RE.pattern}", file=file, key=key)
    return name


@dataclass(frozen=True)
class ColumnSpec:
    """One output column: normalized source and target headers, its type and (sealed) pad."""

    source: str
    target: str
    type: ColumnType
    pad: Pad | None = None

    def __post_init__(self) -> None:
        if self.type not in _SUFFIX:
            raise ConfigError("column type must be cleartext, fingerprint or sealed", key="type")
        if self.type == "sealed" and self.pad is None:
            raise ConfigError(f"sealed column {self.target!r} needs a pad", key="pad")
        if self.type != "sealed" and self.pad is not None:
            raise ConfigError(f"pad is only allowed on sealed columns ({self.target!r})",
                              key="pad")


@dataclass(frozen=True)
class Schema:
    """A C3R table schema: whether the data has a header row, and the output columns in order."""

    header_row: bool
    columns: tuple[ColumnSpec, ...]
    source_count: int | None = None

    def __post_init__(self) -> None:
        if not self.columns:
            raise ConfigError("at least one data column must be given", key="columns")
        if len(self.columns) > MAX_OUTPUT_COLUMNS:
            raise ConfigError(f"at most {MAX_OUTPUT_COLUMNS} output columns are allowed",
                              key="columns")
        targets = Counter(c.target for c in self.columns)
        dupes = sorted(t for t, n in targets.items() if n > 1)
        if dupes:
            raise ConfigError(f"target header used more than once: {', '.join(dupes)}",
                              key="targetHeader")

    def check_settings(self, settings: Settings, *, file: str | None = None) -> None:
        """Refuse cleartext columns unless the collaboration allows them (allowCleartext)."""
        clear = [c.target for c in self.columns if c.type == "cleartext"]
        if clear and not settings.allow_cleartext:
            raise ConfigError("cleartext columns found but allowCleartext is false: "
                              + ", ".join(clear), file=file, key="allow_cleartext")

    @classmethod
    def from_dict(cls, doc: Any, *, file: str | None = None) -> Schema:
        """Build a schema from C3R's JSON document (mapped or positional)."""
        if not isinstance(doc, dict):
            raise ConfigError("a C3R schema must be a JSON object", file=file)
        header_row = doc.get("headerRow")
        if not isinstance(header_row, bool):
            raise ConfigError("must be true or false", file=file, key="headerRow")
        columns = doc.get("columns")
        if not isinstance(columns, list) or not columns:
            raise ConfigError("at least one data column must be given", file=file, key="columns")
        if header_row:
            specs = [_column(c, None, file, f"columns[{i}]") for i, c in enumerate(columns)]
            return _build(cls, True, specs, None, file)
        specs = []
        for i, group in enumerate(columns):
            if group is None:
                continue
            if not isinstance(group, list):
                raise ConfigError("a positional schema lists an array of targets per source "
                                  "column", file=file, key=f"columns[{i}]")
            for j, c in enumerate(group):
                specs.append(_column(c, i, file, f"columns[{i}][{j}]"))
        return _build(cls, False, specs, len(columns), file)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a C3R schema JSON file."""
        name = os.fspath(path)
        try:
            with open(name, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            raise ConfigError("schema file not found", file=name) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"not a readable JSON file ({type(exc).__name__})",
                              file=name) from None
        return cls.from_dict(doc, file=name)


def _build(cls: type[Schema], header_row: bool, specs: list[ColumnSpec],
           source_count: int | None, file: str | None) -> Schema:
    try:
        return cls(header_row, tuple(specs), source_count)
    except ConfigError as exc:
        raise ConfigError(exc.detail, file=file, key=exc.key) from None


def _column(doc: Any, position: int | None, file: str | None, key: str) -> ColumnSpec:
    if not isinstance(doc, dict):
        raise ConfigError("a column must be a JSON object", file=file, key=key)
    raw_type = doc.get("type")
    if not isinstance(raw_type, str) or raw_type.strip().lower() not in _SUFFIX:
        raise ConfigError("type must be cleartext, fingerprint or sealed", file=file,
                          key=f"{key}.type")
    ctype = cast(ColumnType, raw_type.strip().lower())
    if position is None:
        if doc.get("sourceHeader") is None:
            raise ConfigError("sourceHeader is required", file=file, key=f"{key}.sourceHeader")
        source = check_header(doc["sourceHeader"], file=file, key=f"{key}.sourceHeader")
    else:
        if doc.get("sourceHeader") is not None:
            raise ConfigError("positional schemas cannot have sourceHeader", file=file,
                              key=f"{key}.sourceHeader")
        if doc.get("targetHeader") is None:
            raise ConfigError("positional schemas need a targetHeader", file=file,
                              key=f"{key}.targetHeader")
        source = f"_c{position}"
    if doc.get("targetHeader") is None:
        target = check_header(source + _SUFFIX[ctype], file=file, key=f"{key}.targetHeader")
    else:
        target = check_header(doc["targetHeader"], file=file, key=f"{key}.targetHeader")
    pad = _pad(doc.get("pad"), file, f"{key}.pad")
    try:
        return ColumnSpec(source, target, ctype, pad)
    except ConfigError as exc:
        raise ConfigError(exc.detail, file=file, key=f"{key}.pad") from None


def _pad(doc: Any, file: str | None, key: str) -> Pad | None:
    if doc is None:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise ConfigError("pad must be an object with a type (none, fixed or max)",
                          file=file, key=key)
    length = doc.get("length")
    try:
        return Pad(cast(PadType, doc["type"].lower()), length)
    except ConfigError as exc:
        raise ConfigError(exc.detail, file=file, key=key) from None
