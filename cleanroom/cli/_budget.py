"""CLI of the privacy budget: `cleanroom budget COLLAB|URL [--json]` (reads the collaboration
file and the ledger only: no token file is opened, nothing is spent)."""

from __future__ import annotations

from pathlib import Path

import click

from cleanroom.engine import budget_report

from ._output import emit_json
from ._remote import COLLAB_OR_URL, Server, connect, server_options


@click.command("budget")
@click.argument("collab", type=COLLAB_OR_URL)
@click.option("--json", "as_json", is_flag=True,
              help='Print {"mode", "epsilon", "spent", "remaining", "queries", ...} on stdout.')
@server_options
def budget(collab: Path | Server, as_json: bool, identity: str | None,
           ca_cert: str | None) -> None:
    """How much of COLLAB's privacy budget is spent.

    In differential mode (`[privacy] mode = "differential"` in the collaboration file) every
    accepted query or analysis spends `epsilon_per_query` of the collaboration's `epsilon`,
    all members together; a query that would overspend is refused (exit 3, rule
    privacy_budget). In threshold mode there is no budget: difference checks apply instead.
    COLLAB may be a server URL (with --identity): members and auditors may read it.
    """
    if isinstance(collab, Server):
        with connect(collab, identity, ca_cert) as client:
            doc = client.budget()
    else:
        doc = budget_report(collab)
    if as_json:
        emit_json(doc, sort_keys=False)
        return
    if doc["mode"] != "differential":
        click.echo("Threshold mode: no privacy budget (every row stands for at least the "
                   "minimum of people, and difference checks withhold rows that differ from "
                   "an earlier answer's by fewer).")
        return
    click.echo(f"Differential privacy: ε = {doc['epsilon']:g} for the collaboration's lifetime, "
               f"{doc['spent']:g} spent by {doc['queries']} "
               f"quer{'ies' if doc['queries'] != 1 else 'y'}, {doc['remaining']:g} remaining "
               f"({doc['queries_remaining']} more at ε = {doc['epsilon_per_query']:g} each).")
