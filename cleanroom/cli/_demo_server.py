"""`cleanroom demo --server`: the same collaboration, run through a server with walls.

Three folders, one per party, and no file ever sits in a folder it should not reach:

    airline/    its customers, its X25519 keys, the collaboration secret, its identity key,
                its token file, its policy, the report it receives
    brand/      the same for the brand
    operator/   the collaboration file, the members' public identities, its own identity key,
                and what the owners upload: token files and policies; the signed audit log

The parties agree a secret without sending it and tokenize locally, as in the plain demo; the
operator starts a server on loopback; each owner uploads its token file and puts its policy;
the airline measures the overlap and asks in SQL through the server with its identity key;
the brand verifies the signed audit log; the report is written in the airline's folder. Every
step runs the real subcommand in-process and prints the command line. The server stops with
the demo (a real one runs with `cleanroom serve`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cleanroom.config import toml_text
from cleanroom.server import ServerState, build_app, serving
from protocols import ConfigError, load_identity_private, write_bytes_atomic

from ._walkthrough import (
    _SQL_OK,
    _SQL_REFUSED,
    MAX_RECORDS_PER_TOKEN,
    PARTIES,
    RULES,
    DemoResult,
    StepUnavailable,
    _print_segments,
    _print_summary,
    _Walk,
    airline_policy,
    brand_policy,
    collaboration_id_for,
    party_tokenize_args,
)

_MARKER = ".cleanroom-demo-server"
_FOLDERS = (*PARTIES, "operator")


def _prepare(root: Path) -> None:
    """Create (or empty) the three folders; refuse a non-empty folder that is not ours."""
    if root.exists() and any(root.iterdir()) and not (root / _MARKER).exists():
        raise ConfigError("exists and is not empty (not a previous `demo --server` "
                          "directory); choose another --out", file=str(root))
    for folder in _FOLDERS:
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir(parents=True)
    write_bytes_atomic(root / _MARKER, b"directory written by `cleanroom demo --server`\n")


def _send(walk: _Walk, src: Path, dest: Path) -> None:
    """A public file handed to another party (a copy: nothing else moves)."""
    shutil.copyfile(src, dest)
    walk.say(f"sent {walk.shown(src)} → {walk.shown(dest)}")


def _collaboration(cid: str) -> str:
    return toml_text({
        "collaboration": {"id": cid, "name": "Airline x Brand", "audit_log": "audit.jsonl"},
        "members": {"airline": {"can_query": True, "can_receive_results": True,
                                "identity": "airline.pub"},
                    "brand": {"can_query": False, "can_receive_results": True,
                              "identity": "brand.pub"}},
        "operator": {"identity": "operator.pub"},
        "tables": {p: {"owner": p, "tokens": f"{p}.tokens.parquet",
                       "policy": f"{p}.policy.toml"} for p in PARTIES},
        "matching": {"rules": list(RULES), "max_records_per_token": MAX_RECORDS_PER_TOKEN},
    }, header="The collaboration the operator serves: members with their identities, tables "
              "(uploaded by their owners), matching rules.")


def _tokenize_args(root: Path, party: str) -> list[Any]:
    folder = root / party
    return party_tokenize_args(party, csv=folder / f"{party}.csv",
                               secret=folder / "secret.json",
                               out=folder / f"{party}.tokens.parquet",
                               report=folder / "quality.json")


def _walls(walk: _Walk, root: Path) -> None:
    """Who holds what at the end, and a check that nothing crossed a wall."""
    held = {f: sorted(p.name for p in (root / f).iterdir()
                      if p.is_file() and not p.name.startswith("."))
            for f in _FOLDERS}
    for folder, names in held.items():
        walk.say(f"{folder}/: {', '.join(names)}")
    for party in PARTIES:
        other = next(p for p in PARTIES if p != party)
        leaked = [n for n in held[party] if n.startswith(other) and not n.endswith(".pub")]
        if leaked:
            raise ConfigError(f"{party}/ holds {other}'s file {leaked[0]}", file=str(root))
    secret = [n for n in held["operator"] if n.endswith((".csv", "secret.json")) or
              n.endswith(".key") and n != "operator.key"]
    if secret:
        raise ConfigError(f"operator/ holds a party's file {secret[0]}", file=str(root))
    walk.say("no party's raw data, secret or key reached another folder; the operator holds "
             "token files and policies only")


def run_server_demo(out_dir: str | os.PathLike[str], *, rows: int, seed: int,
                    group: click.Group, echo: Callable[[str], None] = click.echo) -> DemoResult:
    """Run the served walk-through end to end; see the module docstring."""
    from examples.generate import generate

    start = time.perf_counter()
    root = Path(out_dir).resolve()
    _prepare(root)
    walk = _Walk(root, echo, group)
    echo(click.style("cleanroom demo --server: the airline and the brand reach a clean room "
                     "run by an operator; neither ever holds the other's file", bold=True))
    echo(f"   working in {out_dir} — three folders: airline/, brand/, operator/")
    summary = segments = None
    report = None
    stopped = None
    counts: dict[str, int] = {}
    try:
        walk.title("Each party exports its customers (synthetic data, seeded)")
        parties = generate(rows, seed=seed)
        with tempfile.TemporaryDirectory() as scratch:  # the ground truth is not needed here
            parties.write(root / "airline/airline.csv", root / "brand/brand.csv",
                          Path(scratch) / "truth.csv")
        counts = {"airline": len(parties.airline), "brand": len(parties.brand)}
        walk.say(f"airline/airline.csv: {counts['airline']:,} loyalty members; "
                 f"brand/brand.csv: {counts['brand']:,} CRM customers")

        walk.title("The parties agree a secret with X25519; only public keys travel")
        for party in PARTIES:
            walk.run(["keys", "pair"], ["--out", root / party / "x25519"])
        for me, them in (("airline", "brand"), ("brand", "airline")):
            _send(walk, root / me / "x25519.pub", root / them / f"{me}.x25519.pub")
        cid = collaboration_id_for(seed)
        for me, them in (("airline", "brand"), ("brand", "airline")):
            walk.run(["keys", "agree"], ["--private", root / me / "x25519.key",
                                         "--public", root / me / f"{them}.x25519.pub",
                                         "--collaboration-id", cid,
                                         "--out", root / me / "secret.json"])

        walk.title("Each member and the operator make an identity key; the operator gets the "
                   "public halves")
        for who in _FOLDERS:
            walk.run(["keys", "identity"], ["--out", root / who / who])
        for party in PARTIES:
            _send(walk, root / party / f"{party}.pub", root / "operator" / f"{party}.pub")

        walk.title("The operator writes the collaboration and starts the server")
        collab = root / "operator/collaboration.toml"
        write_bytes_atomic(collab, _collaboration(cid).encode())
        walk.say("operator/collaboration.toml: members with their identities, the two tables "
                 "(not uploaded yet), the matching rules")
        walk.echo(click.style("   $ " + shlex.join(
            ["cleanroom", "serve", "operator/collaboration.toml", "--identity",
             "operator/operator.key"]), fg="cyan"))
        state = ServerState(collab, load_identity_private(root / "operator/operator.key"))
        try:
            with serving(build_app(state)) as url:
                walk.say(f"serving at {url} (loopback only; with TLS it can face partners)")
                summary, segments, report = _served(walk, root, url)
        finally:
            state.close()
        walk.title("Who holds what")
        _walls(walk, root)
    except StepUnavailable as exc:
        stopped = walk.steps[-1] if walk.steps else "start"
        walk.say(click.style(f"{exc} is not in this build yet: the walk-through stops here.",
                             fg="yellow"))
    seconds = time.perf_counter() - start
    walk.echo("")
    walk.echo(click.style("Headline", bold=True))
    if summary:
        tables = summary.get("tables") or {}
        both = (summary.get("overlap") or {}).get("entities")
        walk.say(", ".join(f"{n} {t.get('entities', 0):,} people" for n, t in tables.items())
                 + (f"; {both:,} in both" if isinstance(both, int) else "")
                 + " — measured through the server")
    if report:
        walk.say(f"report: {Path(out_dir) / 'airline' / 'report.html'}")
    walk.say(f"done in {seconds:.1f} s")
    return DemoResult(root, tuple(walk.steps), stopped, summary, segments, None, report,
                      seconds, counts)


def _served(walk: _Walk, root: Path, url: str) -> tuple[Any, Any, Path]:
    """The steps that go through the server."""
    key = {p: root / p / f"{p}.key" for p in PARTIES}

    walk.title("Each owner tokenizes locally, then uploads its token file and puts its policy")
    for party, text in (("airline", airline_policy()), ("brand", brand_policy())):
        walk.run(["tokenize"], _tokenize_args(root, party))
        write_bytes_atomic(root / party / f"{party}.policy.toml", text.encode())
        walk.run(["upload"], [url, party, root / party / f"{party}.tokens.parquet",
                              "--identity", key[party]])
        walk.run(["policy", "put"], [url, party, root / party / f"{party}.policy.toml",
                                     "--identity", key[party]])

    walk.title("The brand reads the rules in force, from the server")
    walk.run(["policy", "check"], [url, "--identity", key["brand"]])

    walk.title("The airline measures the overlap through the server")
    summary = json.loads(walk.run(["overlap"], [url, "--identity", key["airline"], "--json"],
                                  show_output=False))
    _print_summary(walk, summary)
    segments = json.loads(walk.run(
        ["overlap"], [url, "--identity", key["airline"], "--by", "airline.tier",
                      "--by", "brand.category", "--metric", "SUM(brand.spend)", "--json"],
        show_output=False))
    _print_segments(walk, segments)

    walk.title("An analyst asks in SQL; the rules hold on the server too")
    walk.run(["query"], [url, "--identity", key["airline"], "--sql", _SQL_OK])
    walk.run(["query"], [url, "--identity", key["airline"], "--sql", _SQL_REFUSED],
             expect_refusal=True)
    walk.run(["overlap"], [url, "--identity", key["brand"]], expect_refusal=True)

    walk.title("The brand verifies the audit log: chained, and signed by the operator")
    walk.run(["audit", "verify"], [url, "--identity", key["brand"]])

    walk.title("The report the airline's marketer reads, written in the airline's folder")
    report = root / "airline" / "report.html"
    walk.run(["report"], [url, "--identity", key["airline"], "--out", report])
    walk.title("A one-time link opens the web console (while the server runs)")
    walk.run(["console-link"], [url, "--identity", key["airline"]], show_output=False)
    walk.say("printed a link valid once, for five minutes (not shown: it signs a browser in)")
    return summary, segments, report
