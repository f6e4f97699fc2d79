"""`cleanroom demo` (a walk-through on synthetic data) and `cleanroom report` (the HTML report)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._demo import DEFAULT_OUT, DEFAULT_ROWS, DEFAULT_SEED, run_demo
from ._report import build_report, render_report


@click.command("demo")
@click.option("--rows", type=click.IntRange(min=200), default=DEFAULT_ROWS, show_default=True,
              help="Airline loyalty rows to generate (the brand gets 60% as many).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=DEFAULT_OUT,
              show_default=True, help="Directory for the parties' files, the clean room and "
              "the report (reused if it holds a previous demo).")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Seed of the synthetic data: the same seed gives the same people.")
@click.option("--psi", is_flag=True, help="Also match the parties by ECDH private set "
              "intersection (no shared secret); slower.")
@click.option("--json", "as_json", is_flag=True,
              help="After the walk-through, print the headline numbers and the ground-truth "
              "score as one JSON line.")
def demo(rows: int, out_dir: str, seed: int, psi: bool, as_json: bool) -> None:
    """Walk through a whole collaboration on synthetic airline x brand data.

    Generates both parties' extracts (with realistic mess and a ground truth), agrees a secret
    with X25519, tokenizes each party locally, writes the collaboration and both policies,
    checks them, measures the overlap and the overlap by tier x category, runs analyst SQL,
    verifies the audit log and writes report.html. Each step prints the command you would
    run yourself; finally the matching is scored against the ground truth.
    """
    result = run_demo(out_dir, rows=rows, seed=seed, psi=psi)
    if as_json:
        click.echo(json.dumps({
            "steps": list(result.steps), "stopped_at": result.stopped_at,
            "summary": result.summary, "psi_summary": result.psi_summary,
            "score": result.score.to_dict() if result.score else None,
            "report": str(result.report) if result.report else None,
            "seconds": round(result.seconds, 2)}, sort_keys=True))


@click.command("report")
@click.argument("collaboration", type=click.Path(dir_okay=False))
@click.option("--as", "member", required=True, help="The member the report is for (must be "
              "allowed to query and receive results).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="HTML file to write (self-contained: no network needed to view it).")
@click.option("--by", "by", multiple=True, metavar="TABLE.COLUMN",
              help="Segment dimension of the heatmap (up to two; default: the first dimension "
              "of your table and of the other).")
@click.option("--metric", default=None, metavar="FUNC(TABLE.COLUMN)",
              help="Aggregate shown in each heatmap cell (default: SUM of the other table's "
              "first aggregate column).")
@click.option("--json", "as_json", is_flag=True, help="Also print the report's numbers as JSON.")
def report(collaboration: str, member: str, out: str, by: tuple[str, ...], metric: str | None,
           as_json: bool) -> None:
    """Write the audience overlap report (one HTML file) for a member.

    Runs the overlap and the segment analysis under the policies (both are audited), then
    renders the overlap, match rates both ways, links by rule, the segment heatmap (groups
    below the minimum shown as "< minimum"), the rules in force and the audit trail.
    """
    if len(by) > 2:
        raise click.UsageError("at most two --by dimensions fit a heatmap")
    data = build_report(collaboration, member, by=by, metric=metric)
    from protocols import write_bytes_atomic

    write_bytes_atomic(out, render_report(data).encode("utf-8"))
    seg = data.get("segments") or {}
    shown = len(seg.get("rows") or [])
    if as_json:
        click.echo(json.dumps({"report": out, "summary": data["summary"],
                               "segments": seg or None}, sort_keys=True, default=str))
    else:
        click.echo(f"wrote {Path(out)} for {member}: overlap, match rates, "
                   f"{shown} segment(s) shown, rules in force, "
                   f"{len(data['audit']['entries'])} audit entries")
