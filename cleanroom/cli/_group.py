"""The root `cleanroom` group and the one boundary from library errors to exit statuses.

Subcommands load on first use (`lazy`: name -> "module:attribute"), so `cleanroom psi …`
does not import the engine, the server stack or the report templates before it starts.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

import click

from protocols import CleanroomError


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when first named (or listed)."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module, __package__), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


class _Group(LazyGroup):
    """The root group: maps cleanroom errors to one line on stderr and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CleanroomError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cleanroom")
def main() -> None:
    """cleanroom: measure how customer bases overlap without sharing a single identifier.

    Each party normalizes and tokenizes its identifiers locally (normalize, keys, tokenize);
    only token files leave. The engine matches them and answers aggregate questions under
    the data owners' policies (policy check, overlap, query, report), logging every query
    (audit). Run `cleanroom demo` for a walk-through.
    """
