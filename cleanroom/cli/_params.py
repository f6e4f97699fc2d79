"""Parameter types and options shared by the subcommands: each check happens in `convert`,
so a malformed value is a usage error (exit 2) naming the option."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import click

import normalize
import protocols

F = TypeVar("F", bound=Callable[..., Any])


class CollaborationIdParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """A collaboration id: a UUID, returned in canonical (lowercase) form."""

    name = "UUID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return protocols.parse_collaboration_id(value)
        except protocols.KeyMaterialError:
            self.fail(f"{value!r} is not a UUID", param, ctx)


class KindColumnParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """KIND=COLUMN (or COLUMN=KIND with `kind_first=False`) -> (kind, column) or (column, kind).

    With `kinds`, an unknown kind is a usage error; without, the library decides (and says so).
    """

    def __init__(self, kinds: Collection[str] | None = None, *, kind_first: bool = True) -> None:
        self.kinds = tuple(kinds) if kinds is not None else None
        self.kind_first = kind_first
        self.name = "KIND=COLUMN" if kind_first else "COLUMN=KIND"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        left, sep, right = str(value).partition("=")
        kind = (left if self.kind_first else right).strip()
        column = right if self.kind_first else left
        if not sep or not kind or not column.strip():
            example = "email=Email" if self.kind_first else "Email=email"
            self.fail(f"{value!r} is not {self.name} (e.g. {example})", param, ctx)
        if self.kinds is not None and kind not in self.kinds:
            self.fail(f"unknown kind {kind!r}; expected one of: {', '.join(self.kinds)}",
                      param, ctx)
        return (kind, column) if self.kind_first else (column, kind)


class MatchKeyParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """NAME=KIND+KIND..., a part optionally KIND:COLUMN, e.g. name_dob=first_name+last_name+dob."""

    name = "NAME=KIND+KIND"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> tuple[str, tuple[tuple[str, str | None], ...]]:
        if isinstance(value, tuple):
            return value
        name, sep, rest = str(value).partition("=")
        name = name.strip()
        if not sep or not name or not rest or not name.replace("_", "").isalnum():
            self.fail(f"{value!r} is not NAME=KIND+KIND (NAME: letters, digits, _)", param, ctx)
        parts = []
        for part in rest.split("+"):
            kind, _, column = part.partition(":")
            kind = kind.strip()
            if kind not in normalize.KINDS:
                self.fail(f"unknown kind {kind!r} in match key {name!r}; expected one of: "
                          f"{', '.join(normalize.KINDS)}", param, ctx)
            parts.append((kind, column or None))
        return name, tuple(parts)


class DimensionParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """TABLE.COLUMN, checked for syntax here and against the policies by the engine."""

    name = "TABLE.COLUMN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            from cleanroom.engine import Dimension  # the engine loads only for its commands

            return str(Dimension.parse(value))
        except protocols.PolicyRefusal:
            self.fail(f"{value!r} is not TABLE.COLUMN", param, ctx)


class MetricParam(click.ParamType):  # type: ignore[type-arg]  # generic in some click versions
    """FUNC(TABLE.COLUMN), e.g. SUM(airline.miles)."""

    name = "FUNC(TABLE.COLUMN)"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            from cleanroom.engine import Metric

            return Metric.parse(value).text
        except protocols.PolicyRefusal:
            self.fail(f"{value!r} is not FUNC(TABLE.COLUMN) with FUNC one of SUM, "
                      "SUM_DISTINCT, COUNT, COUNT_DISTINCT, AVG", param, ctx)


COLLAB_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


def profile_option(
    help: str = "Normalization rules (strict, or a platform's).",
) -> Callable[[F], F]:
    """`--profile`, one of normalize's profiles, default strict."""
    return click.option("--profile", type=click.Choice(normalize.PROFILES), default="strict",
                        show_default=True, help=help)


def json_option(help: str = "Machine-readable output on stdout.") -> Callable[[F], F]:
    """`--json`, stored as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help=help)
