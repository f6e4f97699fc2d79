"""Pieces shared by the subcommand modules: JSON output and the collaboration-id parameter."""

from __future__ import annotations

import json

import click

import protocols


def emit_json(doc: object) -> None:
    """Print `doc` as indented, key-sorted JSON on stdout (the `--json` form of a command)."""
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


class CollaborationIdParam(click.ParamType):
    """A collaboration id: a UUID, returned in canonical form."""

    name = "UUID"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        try:
            return protocols.parse_collaboration_id(value)
        except protocols.KeyMaterialError:
            self.fail(f"{value!r} is not a UUID", param, ctx)
