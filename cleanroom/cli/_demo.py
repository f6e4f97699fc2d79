"""`cleanroom demo`: the whole collaboration walked through on synthetic data."""

from __future__ import annotations

import importlib.util

import click

from ._demo_server import run_server_demo
from ._output import emit_json
from ._walkthrough import DEFAULT_OUT, DEFAULT_ROWS, DEFAULT_SEED, run_demo


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
@click.option("--server", "server", is_flag=True,
              help="Run the collaboration through a clean-room server on loopback, with one "
              "folder per party (airline/, brand/, operator/) so no file reaches a folder it "
              "should not.")
@click.option("--json", "as_json", is_flag=True,
              help="After the walk-through, print the headline numbers and the ground-truth "
              "score as one JSON line.")
def demo(rows: int, out_dir: str, seed: int, psi: bool, server: bool, as_json: bool) -> None:
    """Walk through a whole collaboration on synthetic airline x brand data.

    Generates both parties' extracts (with realistic mess and a ground truth), agrees a secret
    with X25519, tokenizes each party locally, writes the collaboration and both policies,
    checks them, measures the overlap and the overlap by tier x category, runs analyst SQL,
    verifies the audit log and writes report.html. Each step prints the command you would
    run yourself; finally the matching is scored against the ground truth.
    """
    if importlib.util.find_spec("faker") is None:
        raise click.ClickException("the demo's synthetic data needs Faker: "
                                   "pip install 'cleanroom[demo]'")
    root = click.get_current_context().find_root().command
    assert isinstance(root, click.Group)
    if server:
        if psi:
            raise click.UsageError("--psi and --server cannot be combined")
        result = run_server_demo(out_dir, rows=rows, seed=seed, group=root)
    else:
        result = run_demo(out_dir, rows=rows, seed=seed, psi=psi, group=root)
    if as_json:
        emit_json({
            "steps": list(result.steps), "stopped_at": result.stopped_at,
            "summary": result.summary, "psi_summary": result.psi_summary,
            "score": result.score.to_dict() if result.score else None,
            "report": str(result.report) if result.report else None,
            "seconds": round(result.seconds, 2)}, indent=None)
