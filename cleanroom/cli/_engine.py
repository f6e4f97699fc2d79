"""CLI of the engine: `policy check`, `overlap`, `audit show | verify` (thin layer over the API)."""

from __future__ import annotations

from pathlib import Path

import click

from cleanroom.engine import open_collaboration, policy_report

from ._group import LazyGroup
from ._output import emit_json, privacy_note, with_noise
from ._params import DimensionParam, MetricParam
from ._remote import COLLAB_OR_URL, Server, connect, local_member, server_options, verify_local_log


@click.group("policy", cls=LazyGroup, lazy={"put": "._server:policy_put"})
def policy() -> None:
    """Read and check the rules in force in a collaboration."""


@policy.command("check")
@click.argument("collab", type=COLLAB_OR_URL)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@server_options
def policy_check(collab: Path | Server, as_json: bool, identity: str | None,
                 ca_cert: str | None) -> None:
    """Validate COLLAB, its policies and token files; say what each member can learn.

    Fails (exit 1) with one line naming the file, key and reason if anything is invalid,
    or saying what differs if the token files cannot be matched together. COLLAB may be a
    server URL (with --identity): the server checks the files it holds.
    """
    if isinstance(collab, Server):
        with connect(collab, identity, ca_cert) as client:
            report = {k: v for k, v in client.policy().items() if k != "valid"}
    else:
        with open_collaboration(collab) as room:
            report = policy_report(room)
    if as_json:
        emit_json({"valid": True, **report}, sort_keys=False)
        return
    c = report["collaboration"]
    click.echo(f"Collaboration {c['name']} ({c['id']}): valid.")
    m = report["matching"]
    if m.get("method") == "probabilistic":
        fields = ", ".join(m["rules"]) or "every join column the tables' policies name"
        click.echo(f"Records are linked probabilistically: a model trained on the tokens "
                   f"compares {fields} (and their fuzzy forms) and links two records at a "
                   f"match probability of at least {m['threshold']:.0%}; a token of an "
                   f"identifier shared by more than {m['max_records_per_token']} records of "
                   "one table is ignored.")
    else:
        click.echo(f"Records are linked by {', '.join(m['rules'])} (in that order); a token "
                   f"shared by more than {m['max_records_per_token']} records of one table "
                   "is ignored.")
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
@click.argument("collab", type=COLLAB_OR_URL)
@click.option("--as", "as_member", default=None, metavar="MEMBER",
              help="The member asking (must be allowed to query and receive results); "
                   "required with a collaboration file, optional with a server URL.")
@click.option("--by", "by", multiple=True, type=DimensionParam(),
              help="Group the overlap by this dimension column (repeatable).")
@click.option("--metric", "metrics", multiple=True, type=MetricParam(),
              help="Aggregate of the overlapping audience, e.g. 'SUM(airline.miles)' "
                   "(repeatable).")
@click.option("--memory-limit", default=None, metavar="SIZE",
              help="DuckDB memory limit, e.g. 4GB.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@server_options
def overlap_cmd(collab: Path | Server, as_member: str | None, by: tuple[str, ...],
                metrics: tuple[str, ...], memory_limit: str | None, as_json: bool,
                identity: str | None, ca_cert: str | None) -> None:
    """How the tables of COLLAB overlap: people per table, overlap, match rates, links by
    rule, and optionally the overlap by segment. Numbers standing for fewer people than the
    policies' minimum are left out. COLLAB may be a server URL (with --identity).
    """
    if isinstance(collab, Server):
        with connect(collab, identity, ca_cert) as client:
            data = client.overlap(as_member, by=by, metrics=metrics)
    else:
        member = local_member(as_member)
        with open_collaboration(collab, memory_limit=memory_limit) as room:
            data = room.overlap(member, by=by, metrics=metrics).to_dict()
    if as_json:
        emit_json(data, sort_keys=False)
        return
    click.echo(f"Minimum crowd behind every number: {data['threshold']} people.")
    noise = data.get("noise") or {}
    for name, t in data["tables"].items():
        rate = data["match_rate"].get(name)
        extra = f", match rate {rate:.1%}" if rate is not None else ""
        records = f"{t['rows']} records, " if "rows" in t else ""
        people = with_noise(t["entities"], noise.get(f"tables.{name}.entities"))
        click.echo(f"{name}: {records}{people} people{extra}")
    if data["overlap"]:
        ov = with_noise(data["overlap"]["entities"], noise.get("overlap.entities"))
        click.echo(f"overlap: {ov} people")
    for rule, n in data["links_by_rule"].items():
        click.echo(f"  linked by {rule}: {with_noise(n, noise.get(f'links_by_rule.{rule}'))}")
    matching = data.get("matching") or {}
    if matching.get("method") == "probabilistic":
        click.echo(f"matched probabilistically on {', '.join(matching.get('fields', []))} at a "
                   f"match probability of at least {matching.get('threshold', 0):.0%}")
    if data["segments"]:
        cols = [c for c in data["segments"][0] if c != "noise"]
        click.echo("")
        click.echo("\t".join(cols))
        for seg in data["segments"]:
            said = seg.get("noise") or {}
            click.echo("\t".join(with_noise(seg[c], said.get(c)) for c in cols))
    note = privacy_note(data.get("privacy") or {})
    if note:
        click.echo(note.lstrip("\n"))


@click.group("audit")
def audit() -> None:
    """Show or verify the collaboration's hash-chained audit log."""


@audit.command("show")
@click.argument("collab", type=COLLAB_OR_URL)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (a JSON list).")
@server_options
def audit_show(collab: Path | Server, as_json: bool, identity: str | None,
               ca_cert: str | None) -> None:
    """Print every entry of the audit log of COLLAB (verifying the chain first, and the
    operator's signatures where the collaboration has an operator). COLLAB may be a server
    URL (with --identity)."""
    if isinstance(collab, Server):
        with connect(collab, identity, ca_cert) as client:
            entries = client.audit()[0]
    else:
        entries = verify_local_log(collab)[0]
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
@click.argument("collab", type=COLLAB_OR_URL)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
@server_options
def audit_verify(collab: Path | Server, as_json: bool, identity: str | None,
                 ca_cert: str | None) -> None:
    """Check the hash chain of the audit log of COLLAB; exit 1 if an entry was edited,
    deleted, inserted or reordered. Prints the head hash: keep it to detect truncation.

    Where the collaboration has an operator (`[operator] identity`), every entry must carry
    the operator's signature. With a server URL (and --identity) the log is fetched and
    checked here, and against the signed heads of earlier answers kept beside your identity
    key, so a log the operator rewrote or truncated since is detected.
    """
    if isinstance(collab, Server):
        with connect(collab, identity, ca_cert) as client:
            doc = client.audit()[1]
        if as_json:
            emit_json(doc, sort_keys=False)
            return
        kept = doc["kept_head"]
        click.echo(f"audit log OK: {doc['entries']} entries, head {doc['head_sha256']}, "
                   f"every entry signed by the operator (key {doc['signed_by']})"
                   + (f"; it extends the head you kept at entry {kept}" if kept else ""))
        return
    _, res, signer = verify_local_log(collab)
    if as_json:
        doc = {"ok": True, "entries": res.entries, "head_sha256": res.head_sha256}
        emit_json({**doc, "signed_by": signer} if signer else doc, sort_keys=False)
    else:
        click.echo(f"audit log OK: {res.entries} entries, head {res.head_sha256}"
                   + (f", every entry signed by the operator (key {signer})" if signer
                      else ""))
