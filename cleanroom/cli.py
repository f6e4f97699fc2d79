"""The `cleanroom` command line: one click group, one subcommand per user step.

Each subcommand lives in a `_cli_*.py` module and calls the library; this module is the one
boundary that turns library errors into a one-line message on stderr and an exit status
(2 usage, 1 failure, 3 policy refusal). No traceback for a user's mistake.
"""

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


# Subcommands register here, one import per module.
from ._cli_local import inspect, keys, normalize_cmd, tokenize  # noqa: E402

main.add_command(keys)
main.add_command(normalize_cmd)
main.add_command(tokenize)
main.add_command(inspect)

from ._cli_interop import c3r, export_hashes  # noqa: E402

main.add_command(c3r)
main.add_command(export_hashes)
from ._cli_psi import psi  # noqa: E402

main.add_command(psi)

from ._cli_demo import demo, report  # noqa: E402

main.add_command(demo)
main.add_command(report)

from ._cli_engine import audit, overlap_cmd, policy  # noqa: E402

main.add_command(policy)
main.add_command(overlap_cmd)
main.add_command(audit)

from ._cli_query import query  # noqa: E402

main.add_command(query)

from ._cli_interop import c3r, export_hashes  # noqa: E402

main.add_command(c3r)
main.add_command(export_hashes)
