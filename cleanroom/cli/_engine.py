"""CLI of the engine: `policy check`, `overlap`, `audit show | verify` (thin layer over the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cleanroom.config import Collaboration
from cleanroom.engine import AuditLog, open_collaboration, policy_report

from ._output import emit_json
from ._params import COLLAB_PATH, DimensionParam, MetricParam


@click.group("policy")
def policy() -> None:
    """Read and check the rules in force in a collaboration."""


@policy.command("check")
@click.argument("collab", type=COLLAB_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def policy_check(collab: Path, as_json: bool) -> None:
    """Validate COLLAB, its policies and token files; say what each member can learn.

    Fails (exit 1) with one line naming the file, key and reason if anything is invalid,
    or saying what differs if the token files cannot be matched together.
    """
    with open_collaboration(collab) as room:
        report = policy_report(room)
    if as_json:
        emit_json({"valid": True, **report}, sort_keys=False)
        return
    c = report["collaboration"]
    click.echo(f"Collaboration {c['name']} ({c['id']}): valid.")
    m = report["matching"]
    click.echo(f"Records are linked by {', '.join(m['rules'])} (in that order); a token shared "
               f"by more than {m['max_records_per_token']} records of one table is ignored.")
    if report["joint_minimum"] is not None:
        click.echo(f"Every number from a joint analysis stands for at least "
                   f"{report['joint_minimum']} distinct people (the highest minimum wins).")
    for mname, mem in report["members"].items():
        rights = [w for w, ok in (("run queries", mem["can_query"]),
                                  ("receive results", mem["can_receive_results"])) if ok]
        owns = f"; owns {', '.join(mem['owns'])}" if mem["owns"] else ""
        click.echo("")
        may = " and ".join(rights) if rights else "neither run queries nor receive results"
        click.echo(f"Member {mname}: may {may}{owns}.")
        for tname, what in mem["tables"].items():
            click.echo(f"  From table {tname}:")
            for line in what["can_learn"]:
                click.echo(f"    can learn: {line}")
            for line in what["cannot_learn"]:
                click.echo(f"    cannot learn: {line}")


@click.command("overlap")
@click.argument("collab", type=COLLAB_PATH)
@click.option("--as", "as_member", required=True, metavar="MEMBER",
              help="The member asking (must be allowed to query and receive results).")
@click.option("--by", "by", multiple=True, type=DimensionParam(),
              help="Group the overlap by this dimension column (repeatable).")
@click.option("--metric", "metrics", multiple=True, type=MetricParam(),
              help="Aggregate of the overlapping audience, e.g. 'SUM(airline.miles)' "
                   "(repeatable).")
@click.option("--memory-limit", default=None, metavar="SIZE",
              help="DuckDB memory limit, e.g. 4GB.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def overlap_cmd(collab: Path, as_member: str, by: tuple[str, ...], metrics: tuple[str, ...],
                memory_limit: str | None, as_json: bool) -> None:
    """How the tables of COLLAB overlap: people per table, overlap, match rates, links by
    rule, and optionally the overlap by segment. Numbers standing for fewer people than the
    policies' minimum are left out.
    """
    with open_collaboration(collab, memory_limit=memory_limit) as room:
        result = room.overlap(as_member, by=by, metrics=metrics)
    data = result.to_dict()
    if as_json:
        emit_json(data, sort_keys=False)
        return
    click.echo(f"Minimum crowd behind every number: {data['threshold']} people.")
    for name, t in data["tables"].items():
        rate = data["match_rate"].get(name)
        extra = f", match rate {rate:.1%}" if rate is not None else ""
        click.echo(f"{name}: {t['rows']} records, {t['entities']} people{extra}")
    if data["overlap"]:
        click.echo(f"overlap: {data['overlap']['entities']} people")
    for rule, n in data["links_by_rule"].items():
        click.echo(f"  linked by {rule}: {n}")
    if data["segments"]:
        cols = list(data["segments"][0])
        click.echo("")
        click.echo("\t".join(cols))
        for seg in data["segments"]:
            click.echo("\t".join(_fmt(seg[c]) for c in cols))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return "" if v is None else str(v)


@click.group("audit")
def audit() -> None:
    """Show or verify the collaboration's hash-chained audit log."""


def _log(collab: Path) -> AuditLog:
    return AuditLog(Collaboration.audit_log_path(collab))


@audit.command("show")
@click.argument("collab", type=COLLAB_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a JSON list).")
def audit_show(collab: Path, as_json: bool) -> None:
    """Print every entry of the audit log of COLLAB (verifying the chain first)."""
    entries = _log(collab).entries()
    if as_json:
        emit_json(entries, sort_keys=False)
        return
    if not entries:
        click.echo("The audit log is empty.")
    for e in entries:
        req = e.get("request", {})
        what = req.get("analysis", "?")
        detail = " ".join(f"{k}={v}" for k, v in req.items() if k != "analysis" and v)
        click.echo(f"#{e['seq']} {e['time']} {e['member']} {what}{' ' + detail if detail else ''}"
                   f" -> {e['decision']} ({e['rule']}), {e['rows_returned']} rows returned, "
                   f"{e['rows_suppressed']} suppressed")


@audit.command("verify")
@click.argument("collab", type=COLLAB_PATH)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def audit_verify(collab: Path, as_json: bool) -> None:
    """Check the hash chain of the audit log of COLLAB; exit 1 if an entry was edited,
    deleted, inserted or reordered. Prints the head hash: keep it to detect truncation."""
    res = _log(collab).verify()
    if as_json:
        emit_json({"ok": True, "entries": res.entries, "head_sha256": res.head_sha256},
                  sort_keys=False)
    else:
        click.echo(f"audit log OK: {res.entries} entries, head {res.head_sha256}")
