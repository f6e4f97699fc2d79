"""`cleanroom report`: the audience overlap report, one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from cleanroom.report import build_report, render_report
from protocols import write_bytes_atomic

from ._output import emit_json
from ._remote import CollabOrUrlParam, Server, connect, local_member, server_options


@click.command("report")
@click.argument("collaboration", type=CollabOrUrlParam(click.Path(dir_okay=False)))
@click.option("--as", "member", default=None, help="The member the report is for (must be "
              "allowed to query and receive results); required with a collaboration file, "
              "optional with a server URL.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="HTML file to write (self-contained: no network needed to view it).")
@click.option("--by", "by", multiple=True, metavar="TABLE.COLUMN",
              help="Segment dimension of the heatmap (up to two; default: the first dimension "
              "of your table and of the other).")
@click.option("--metric", default=None, metavar="FUNC(TABLE.COLUMN)",
              help="Aggregate shown in each heatmap cell (default: SUM of the other table's "
              "first aggregate column).")
@click.option("--json", "as_json", is_flag=True, help="Also print the report's numbers as JSON.")
@server_options
def report(collaboration: Path | Server, member: str | None, out: str, by: tuple[str, ...],
           metric: str | None, as_json: bool, identity: str | None, ca_cert: str | None) -> None:
    """Write the audience overlap report (one HTML file) for a member.

    Runs the overlap and the segment analysis under the policies (both are audited), then
    renders the overlap, match rates both ways, links by rule, the segment heatmap (groups
    below the minimum shown as "< minimum"), the rules in force and the audit trail.
    COLLABORATION may be a server URL (with --identity): the analyses run there; the page is
    written here.
    """
    if len(by) > 2:
        raise click.UsageError("at most two --by dimensions fit a heatmap")
    if isinstance(collaboration, Server):
        with connect(collaboration, identity, ca_cert) as client:
            data = client.report(member, by=by, metric=metric)
            member = client.member
    else:
        member = local_member(member)
        data = build_report(collaboration, member, by=by, metric=metric)
    write_bytes_atomic(out, render_report(data).encode("utf-8"))
    seg = data.get("segments") or {}
    shown = len(seg.get("rows") or [])
    if as_json:
        emit_json({"report": out, "summary": data["summary"], "segments": seg or None},
                  indent=None)
    else:
        click.echo(f"wrote {Path(out)} for {member}: overlap, match rates, "
                   f"{shown} segment(s) shown, rules in force, "
                   f"{len(data['audit']['entries'])} audit entries")
