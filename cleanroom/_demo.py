"""`cleanroom demo`: the whole journey on synthetic data, printed as a walk-through.

Two parties (an airline and a retail brand) generate their extracts, agree a secret with
X25519 without sending it, tokenize locally, write the collaboration and their policies; the
engine checks the policies, measures the overlap and the overlap by segment, runs an analyst
query and verifies the audit log; a report is written. Every step runs the real `cleanroom`
subcommand in-process and prints the equivalent command line, so the walk-through can be
copied step by step. A part that is not in this build yet stops the walk-through there, and
the demo says so. At the end the matching is scored against the generator's ground truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from protocols import ConfigError, PolicyRefusal, write_bytes_atomic

if TYPE_CHECKING:
    from examples.score import GroundTruthScore

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 7
DEFAULT_OUT = "demo-out"
AIRLINE_MIN = 50
BRAND_MIN = 25
RULES = ("email", "phone", "name_dob")
MAX_RECORDS_PER_TOKEN = 5
PROFILE = "strict"
_MARKER = ".cleanroom-demo"
_OUTPUT_LINES = 18


@dataclass(frozen=True)
class Layout:
    """Where each file of the demo lives, relative to the demo directory."""

    root: Path

    def __getattr__(self, name: str) -> Path:
        if name not in _FILES:
            raise AttributeError(name)
        return self.root / _FILES[name]


_FILES = {
    "airline_csv": "airline/airline.csv",
    "airline_prefix": "airline/airline",
    "airline_key": "airline/airline.key",
    "airline_pub": "airline/airline.pub",
    "airline_secret": "airline/secret.json",
    "airline_quality": "airline/quality.json",
    "brand_csv": "brand/brand.csv",
    "brand_prefix": "brand/brand",
    "brand_key": "brand/brand.key",
    "brand_pub": "brand/brand.pub",
    "brand_secret": "brand/secret.json",
    "brand_quality": "brand/quality.json",
    "collab": "cleanroom/collaboration.toml",
    "airline_policy": "cleanroom/airline.policy.toml",
    "brand_policy": "cleanroom/brand.policy.toml",
    "airline_tokens": "cleanroom/airline.tokens.parquet",
    "brand_tokens": "cleanroom/brand.tokens.parquet",
    "audit": "cleanroom/audit.jsonl",
    "truth": "ground_truth/truth.csv",
    "report": "report.html",
    "airline_psi_prefix": "airline/psi",
    "airline_psi_key": "airline/psi.key",
    "airline_psi_pub": "airline/psi.pub",
    "airline_r1": "exchange/airline.r1",
    "brand_psi_prefix": "brand/psi",
    "brand_psi_key": "brand/psi.key",
    "brand_psi_pub": "brand/psi.pub",
    "brand_r1": "exchange/brand.r1",
    "psi_collab": "cleanroom-psi/collaboration.toml",
    "psi_airline_policy": "cleanroom-psi/airline.policy.toml",
    "psi_brand_policy": "cleanroom-psi/brand.policy.toml",
    "airline_attrs": "cleanroom-psi/airline.attrs",
    "brand_attrs": "cleanroom-psi/brand.attrs",
    "airline_r2": "cleanroom-psi/airline.r2",
    "brand_r2": "cleanroom-psi/brand.r2",
    "psi_airline_tokens": "cleanroom-psi/airline.tokens.parquet",
    "psi_brand_tokens": "cleanroom-psi/brand.tokens.parquet",
    "psi_audit": "cleanroom-psi/audit.jsonl",
}
PSI_RULES = ("email", "phone")


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and found (numbers only; no identifiers, tokens or secrets)."""

    out_dir: Path
    steps: tuple[str, ...]
    stopped_at: str | None
    summary: dict[str, Any] | None
    segments: dict[str, Any] | None
    score: GroundTruthScore | None
    report: Path | None
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    psi_summary: dict[str, Any] | None = None


def collaboration_id_for(seed: int) -> str:
    """A collaboration id derived from the seed, so the walk-through is reproducible."""
    digest = hashlib.sha256(f"cleanroom demo collaboration {seed}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def airline_policy(rules: Sequence[str] = RULES) -> str:
    """The airline's policy on its loyalty table (TOML)."""
    return f"""\
# The airline's rules on its loyalty members table.
analysis_rule = "aggregation"
join_columns = {_toml_list(rules)}
dimension_columns = ["tier", "home_airport", "country"]
aggregate_columns = [{{ columns = ["miles_flown"], functions = ["SUM", "AVG"] }}]
output_constraints = [{{ column = "entity_id", type = "COUNT_DISTINCT", minimum = {AIRLINE_MIN} }}]
join_required = "query_runner"
allowed_result_receivers = ["airline", "brand"]
"""


def brand_policy(rules: Sequence[str] = RULES) -> str:
    """The brand's policy on its CRM table (TOML)."""
    return f"""\
# The brand's rules on its CRM table.
analysis_rule = "aggregation"
join_columns = {_toml_list(rules)}
dimension_columns = ["category"]
aggregate_columns = [{{ columns = ["spend"], functions = ["SUM", "AVG"] }}]
output_constraints = [{{ column = "entity_id", type = "COUNT_DISTINCT", minimum = {BRAND_MIN} }}]
join_required = "query_runner"
allowed_result_receivers = ["airline", "brand"]
"""


def collaboration_toml(collaboration_id: str, rules: Sequence[str] = RULES) -> str:
    """The collaboration file both parties sign up to (TOML)."""
    return f"""\
[collaboration]
id = "{collaboration_id}"
name = "Airline x Brand"
audit_log = "audit.jsonl"

[members.airline]
can_query = true
can_receive_results = true

[members.brand]
can_query = false
can_receive_results = true

[tables.airline]
owner = "airline"
tokens = "airline.tokens.parquet"
policy = "airline.policy.toml"

[tables.brand]
owner = "brand"
tokens = "brand.tokens.parquet"
policy = "brand.policy.toml"

[matching]
rules = {_toml_list(rules)}
max_records_per_token = {MAX_RECORDS_PER_TOKEN}
"""


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


_IDENTIFIERS = (("email", "email"), ("phone", "phone"))
_MATCH_KEYS = (("name_dob", (("first_name", "first_name"), ("last_name", "last_name"),
                             ("dob", "dob"))),)
_ATTRIBUTES = {"airline": ("tier", "home_airport", "country", "miles_flown"),
               "brand": ("category", "spend")}
_ID_COLUMN = {"airline": "member_id", "brand": "customer_id"}


def tokenize_args(party: str, lay: Layout) -> list[Any]:
    """The `cleanroom tokenize` arguments each party runs on its own machine."""
    args: list[Any] = [getattr(lay, f"{party}_csv"), "--party", party,
                       "--secret-file", getattr(lay, f"{party}_secret")]
    for kind, column in _IDENTIFIERS:
        args += ["--id", f"{kind}={column}"]
    for name, parts in _MATCH_KEYS:
        args += ["--match-key", f"{name}={'+'.join(f'{k}:{c}' for k, c in parts)}"]
    for a in _ATTRIBUTES[party]:
        args += ["--attr", a]
    args += ["--profile", PROFILE, "--region", "US",
             "--out", getattr(lay, f"{party}_tokens"),
             "--report", getattr(lay, f"{party}_quality")]
    return args


def _party_sources(lay: Layout) -> dict[str, Any]:
    """The same tokenize settings as `tokenize_args`, for the scoring copies."""
    from examples.score import PartySource

    return {party: PartySource(getattr(lay, f"{party}_csv"), getattr(lay, f"{party}_secret"),
                               _ID_COLUMN[party], _IDENTIFIERS, _MATCH_KEYS, PROFILE, "US")
            for party in ("airline", "brand")}


class StepUnavailable(Exception):
    """A subcommand this step needs is not part of this build yet."""


class _Walk:
    """Prints each step as a walk-through and runs the real subcommand in-process."""

    def __init__(self, root: Path, echo: Callable[[str], None]) -> None:
        self.root, self.echo, self.n, self.steps = root, echo, 0, []

    def title(self, text: str) -> None:
        self.n += 1
        self.steps.append(text)
        self.echo("")
        self.echo(click.style(f"{self.n}. {text}", bold=True))

    def say(self, text: str) -> None:
        self.echo(f"   {text}")

    def shown(self, arg: Any) -> str:
        if isinstance(arg, Path):
            with contextlib.suppress(ValueError):
                return str(arg.relative_to(self.root))
        return str(arg)

    def run(self, command: Sequence[str], args: Sequence[Any], *, show_output: bool = True,
            expect_refusal: bool = False) -> str:
        """Run `cleanroom COMMAND ARGS` in-process; return its stdout."""
        from .cli import main

        shown = shlex.join(["cleanroom", *command, *(self.shown(a) for a in args)])
        self.echo(click.style(f"   $ {shown}", fg="cyan"))
        cmd = main.commands.get(command[0])
        if cmd is None:
            raise StepUnavailable(f"`cleanroom {command[0]}`")
        argv = [*command[1:], *(str(a) for a in args)]
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                cmd.main(args=argv, prog_name=f"cleanroom {command[0]}", standalone_mode=False)
        except click.exceptions.NoSuchOption as exc:
            raise StepUnavailable(f"`cleanroom {' '.join(command)} {exc.option_name}`") from None
        except click.UsageError as exc:
            if "No such command" not in exc.format_message():
                raise
            raise StepUnavailable(f"`cleanroom {' '.join(command)}`") from None
        except PolicyRefusal as exc:
            if not expect_refusal:
                raise
            self.say(click.style(f"refused (exit 3): {exc}", fg="yellow"))
            return ""
        out = buf.getvalue()
        if show_output:
            self._indent(out)
        return out

    def _indent(self, text: str) -> None:
        lines = [ln for ln in text.rstrip("\n").splitlines()]
        for line in lines[:_OUTPUT_LINES]:
            self.echo(f"     {line}")
        if len(lines) > _OUTPUT_LINES:
            self.echo(f"     … ({len(lines) - _OUTPUT_LINES} more lines)")


def _prepare(root: Path) -> Layout:
    """Create (or reuse) the demo directory; refuse a non-empty directory that is not a demo's."""
    if root.exists() and any(root.iterdir()) and not (root / _MARKER).exists():
        raise ConfigError("exists and is not empty (not a previous demo directory); "
                          "choose another --out", file=str(root))
    lay = Layout(root)
    for name in _FILES:
        with contextlib.suppress(FileNotFoundError):
            getattr(lay, name).unlink()
    for sub in ("airline", "brand", "cleanroom", "ground_truth", "exchange", "cleanroom-psi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    from ._engine import CACHE_DIR

    for cache in (root / "cleanroom" / CACHE_DIR, root / "cleanroom-psi" / CACHE_DIR):
        if cache.is_dir():
            for f in cache.iterdir():
                if f.is_file():
                    f.unlink()
    write_bytes_atomic(root / _MARKER, b"directory written by `cleanroom demo`\n")
    return lay


def run_demo(
    out_dir: str | os.PathLike[str] = DEFAULT_OUT,
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    psi: bool = False,
    echo: Callable[[str], None] = click.echo,
) -> DemoResult:
    """Run the walk-through end to end on whatever parts this build has; see the module doc."""
    from examples.generate import generate

    start = time.perf_counter()
    root = Path(out_dir).resolve()
    lay = _prepare(root)
    walk = _Walk(root, echo)
    echo(click.style("cleanroom demo: an airline and a brand measure their overlap without "
                     "sharing a single email or phone number", bold=True))
    echo(f"   working in {out_dir} — run the same commands yourself from there: "
         f"cd {shlex.quote(str(out_dir))}")
    summary = segments = None
    score = None
    report = None
    stopped = None
    counts: dict[str, int] = {}
    psi_summary = None
    try:
        walk.title("Each party exports its customers (synthetic data, seeded)")
        walk.echo(click.style(
            f"   $ python -m examples.generate --rows {rows} --seed {seed} --out .", fg="cyan"))
        parties = generate(rows, seed=seed)
        parties.write(lay.airline_csv, lay.brand_csv, lay.truth)
        counts = {"airline": len(parties.airline), "brand": len(parties.brand)}
        walk.say(f"airline/airline.csv: {counts['airline']:,} loyalty members "
                 f"(email, phone, name, date of birth, country, home airport, tier, miles)")
        walk.say(f"brand/brand.csv: {counts['brand']:,} CRM customers "
                 f"(email, phone, name, birthday, postal code, category, spend)")
        walk.say(f"ground_truth/truth.csv: who is who, for scoring only "
                 f"({parties.true_overlap():,} people are really in both) — it never goes "
                 f"into the clean room")

        walk.title("Each party makes an X25519 key pair and sends the other its .pub")
        walk.run(["keys", "pair"], ["--out", lay.airline_prefix])
        walk.run(["keys", "pair"], ["--out", lay.brand_prefix])

        cid = collaboration_id_for(seed)
        walk.title("Both derive the same collaboration secret; it is never sent")
        for me, them in (("airline", "brand"), ("brand", "airline")):
            walk.run(["keys", "agree"], ["--private", getattr(lay, f"{me}_key"),
                                         "--public", getattr(lay, f"{them}_pub"),
                                         "--collaboration-id", cid,
                                         "--out", getattr(lay, f"{me}_secret")])
        if lay.airline_secret.read_bytes() != lay.brand_secret.read_bytes():
            raise ConfigError("the two parties did not derive the same secret",
                              file=str(lay.brand_secret))
        walk.say("same key fingerprint on both sides: the secrets match")

        walk.title("Each party tokenizes locally; only the token file leaves")
        for party in ("airline", "brand"):
            walk.run(["tokenize"], tokenize_args(party, lay))
        walk.say("what leaves the building — tokens, a random row id, the shared attributes:")
        walk.run(["inspect"], [lay.brand_tokens])

        walk.title("The collaboration and each owner's policy are written down")
        write_bytes_atomic(lay.collab, collaboration_toml(cid).encode())
        write_bytes_atomic(lay.airline_policy, airline_policy().encode())
        write_bytes_atomic(lay.brand_policy, brand_policy().encode())
        walk.say("cleanroom/collaboration.toml, cleanroom/airline.policy.toml, "
                 "cleanroom/brand.policy.toml")

        walk.title("Compliance checks the rules in plain words")
        walk.run(["policy", "check"], [lay.collab])

        walk.title("The airline measures the overlap")
        summary = json.loads(walk.run(["overlap"], [lay.collab, "--as", "airline", "--json"],
                                      show_output=False))
        _print_summary(walk, summary)

        walk.title("… and the overlap by tier × category, with the brand spend")
        segments = json.loads(walk.run(
            ["overlap"], [lay.collab, "--as", "airline", "--by", "airline.tier",
                          "--by", "brand.category", "--metric", "SUM(brand.spend)", "--json"],
            show_output=False))
        _print_segments(walk, segments)

        walk.title("An analyst asks in SQL; the rules apply to SQL too")
        walk.run(["query"], [lay.collab, "--as", "airline", "--sql", _SQL_OK])
        walk.run(["query"], [lay.collab, "--as", "airline", "--sql", _SQL_REFUSED],
                 expect_refusal=True)

        walk.title("Anyone can verify the audit log")
        walk.run(["audit", "verify"], [lay.collab])

        walk.title("The report a marketer reads")
        walk.run(["report"], [lay.collab, "--as", "airline", "--out", lay.report])
        report = lay.report
        if psi:
            psi_summary = _psi(walk, lay, cid, summary)
    except StepUnavailable as exc:
        stopped = walk.steps[-1] if walk.steps else "start"
        walk.say(click.style(f"{exc} is not in this build yet: the walk-through stops here "
                             f"(everything above ran for real).", fg="yellow"))

    if summary is not None or stopped is None:
        score = _score(walk, lay, root)
    seconds = time.perf_counter() - start
    _headline(walk, summary, score, report, seconds, out_dir)
    return DemoResult(root, tuple(walk.steps), stopped, summary, segments, score, report,
                      seconds, counts, psi_summary)


_SQL_OK = ("SELECT a.tier, COUNT(DISTINCT a.entity_id) AS people, AVG(a.miles_flown) AS "
           "avg_miles, AVG(b.spend) AS avg_spend FROM airline a JOIN brand b "
           "ON a.entity_id = b.entity_id GROUP BY a.tier ORDER BY people DESC")
_SQL_REFUSED = ("SELECT a.tier, b.spend, COUNT(DISTINCT a.entity_id) AS people FROM airline a "
                "JOIN brand b ON a.entity_id = b.entity_id GROUP BY a.tier, b.spend")


def _psi(walk: _Walk, lay: Layout, cid: str, hmac: dict[str, Any] | None) -> dict[str, Any]:
    """The same parties matched by ECDH PSI: no shared secret, each blinds with its own key."""
    walk.title("The same match without a shared secret (ECDH private set intersection)")
    walk.say("fresh key pairs; each party blinds its own emails and phones, the other blinds "
             "them again, and only the engine sees the doubly blinded values")
    for party in ("airline", "brand"):
        walk.run(["keys", "pair"], ["--out", getattr(lay, f"{party}_psi_prefix")])
    for party in ("airline", "brand"):
        args: list[Any] = [getattr(lay, f"{party}_csv"), "--party", party,
                           "--key", getattr(lay, f"{party}_psi_key"), "--collaboration-id", cid]
        for kind in PSI_RULES:
            args += ["--id", f"{kind}={kind}"]
        for a in _ATTRIBUTES[party]:
            args += ["--attr", a]
        args += ["--profile", PROFILE, "--region", "US",
                 "--out-round1", getattr(lay, f"{party}_r1"),
                 "--out-attrs", getattr(lay, f"{party}_attrs")]
        walk.run(["psi", "blind"], args)
    for me, them in (("airline", "brand"), ("brand", "airline")):
        walk.run(["psi", "reblind"], [getattr(lay, f"{them}_r1"),
                                      "--key", getattr(lay, f"{me}_psi_key"),
                                      "--out", getattr(lay, f"{them}_r2")])
    for me, them in (("airline", "brand"), ("brand", "airline")):
        walk.run(["psi", "finish"], ["--round2", getattr(lay, f"{me}_r2"),
                                     "--attrs", getattr(lay, f"{me}_attrs"), "--party", me,
                                     "--peer-round2", getattr(lay, f"{them}_r2"),
                                     "--out", getattr(lay, f"psi_{me}_tokens")])
    write_bytes_atomic(lay.psi_collab, collaboration_toml(cid, PSI_RULES).encode())
    write_bytes_atomic(lay.psi_airline_policy, airline_policy(PSI_RULES).encode())
    write_bytes_atomic(lay.psi_brand_policy, brand_policy(PSI_RULES).encode())
    walk.say("cleanroom-psi/: the same collaboration and policies, matching on email and phone")
    doc = json.loads(walk.run(["overlap"], [lay.psi_collab, "--as", "airline", "--json"],
                              show_output=False))
    _print_summary(walk, doc)
    both = (doc.get("overlap") or {}).get("entities")
    ref = ((hmac or {}).get("overlap") or {}).get("entities")
    if isinstance(both, int) and isinstance(ref, int):
        walk.say(f"keyed tokens found {ref:,} with name + date of birth as a third key; PSI on "
                 f"email and phone alone finds {both:,}")
    return doc


def _print_summary(walk: _Walk, s: dict[str, Any]) -> None:
    for name, t in (s.get("tables") or {}).items():
        walk.say(f"{name}: {t.get('rows', 0):,} records → {t.get('entities', 0):,} people")
    both = (s.get("overlap") or {}).get("entities")
    walk.say(f"in both: {both:,} people" if isinstance(both, int) else "in both: below minimum")
    for name, rate in (s.get("match_rate") or {}).items():
        walk.say(f"match rate of {name}: {100 * rate:.1f}%")
    links = s.get("links_by_rule") or {}
    if links:
        walk.say("linked by: " + ", ".join(f"{r} {n:,}" for r, n in links.items()))


def _print_segments(walk: _Walk, seg: dict[str, Any]) -> None:
    rows = seg.get("segments") or []
    walk.say(f"{len(rows)} combinations have at least {seg.get('threshold')} people; "
             "the others are withheld (shown as '< minimum' in the report)")
    for r in sorted(rows, key=lambda r: -r.get("entities", 0))[:6]:
        spend = r.get("SUM(brand.spend)") or 0
        walk.say(f"{r.get('airline.tier')!s:>9} × {r.get('brand.category')!s:<12} "
                 f"{r.get('entities', 0):>6,} people   spend {spend:>12,.0f}")


def _score(walk: _Walk, lay: Layout, root: Path) -> GroundTruthScore | None:
    walk.title("Score against the ground truth (the demo can; a real collaboration cannot)")
    walk.say("each party re-tokenizes a local copy that keeps its own customer ids, so the "
             "demo can map the engine's entities back to the true people")
    import pandas as pd

    from examples.score import entity_assignments, score

    assignments = entity_assignments(lay.collab, _party_sources(lay), lay.truth.parent)
    result = score(assignments, pd.read_csv(lay.truth, dtype=str))
    for line in result.lines():
        walk.say(line)
    return result


def _headline(walk: _Walk, summary: dict[str, Any] | None, score: GroundTruthScore | None,
              report: Path | None, seconds: float, out_dir: Any) -> None:
    walk.echo("")
    walk.echo(click.style("Headline", bold=True))
    if summary:
        tables = summary.get("tables") or {}
        both = (summary.get("overlap") or {}).get("entities")
        names = list(tables)
        parts = [f"{n} {tables[n].get('entities', 0):,} people" for n in names]
        walk.say(", ".join(parts) + (f"; {both:,} in both" if isinstance(both, int) else ""))
        rates = summary.get("match_rate") or {}
        walk.say("match rates: " + ", ".join(f"{n} {100 * r:.1f}%" for n, r in rates.items()))
    if score:
        walk.say(score.headline())
    if report:
        walk.say(f"report: {Path(out_dir) / 'report.html'}")
    walk.say(f"done in {seconds:.1f} s")
