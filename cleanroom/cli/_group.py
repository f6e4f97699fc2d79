"""The root `cleanroom` group and the one boundary from library errors to exit statuses."""

from __future__ import annotations

import sys
from typing import Any

import click

from protocols import CleanroomError


class _Group(click.Group):
    """A click group that maps cleanroom errors to one line on stderr and an exit status."""

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
