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
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cleanroom.config import toml_text
from cleanroom.engine import CACHE_DIR
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


# Where each party's files live, relative to the demo directory ({p}: the party's name).
_PARTY_FILES = {
    "csv": "{p}/{p}.csv", "prefix": "{p}/{p}", "key": "{p}/{p}.key", "pub": "{p}/{p}.pub",
    "secret": "{p}/secret.json", "quality": "{p}/quality.json",
    "policy": "cleanroom/{p}.policy.toml", "tokens": "cleanroom/{p}.tokens.parquet",
    "psi_prefix": "{p}/psi", "psi_key": "{p}/psi.key", "psi_pub": "{p}/psi.pub",
    "r1": "exchange/{p}.r1", "attrs": "cleanroom-psi/{p}.attrs", "r2": "cleanroom-psi/{p}.r2",
    "psi_tokens": "cleanroom-psi/{p}.tokens.parquet",
    "psi_policy": "cleanroom-psi/{p}.policy.toml",
}
PARTIES = ("airline", "brand")


@dataclass(frozen=True)
class PartyFiles:
    """One party's files in the demo directory."""

    csv: Path
    prefix: Path
    key: Path
    pub: Path
    secret: Path
    quality: Path
    policy: Path
    tokens: Path
    psi_prefix: Path
    psi_key: Path
    psi_pub: Path
    r1: Path
    attrs: Path
    r2: Path
    psi_tokens: Path
    psi_policy: Path


@dataclass(frozen=True)
class Layout:
    """Where each file of the demo lives: the shared files, and each party's."""

    root: Path

    @property
    def collab(self) -> Path:
        return self.root / "cleanroom/collaboration.toml"

    @property
    def audit(self) -> Path:
        return self.root / "cleanroom/audit.jsonl"

    @property
    def truth(self) -> Path:
        return self.root / "ground_truth/truth.csv"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def psi_collab(self) -> Path:
        return self.root / "cleanroom-psi/collaboration.toml"

    @property
    def psi_audit(self) -> Path:
        return self.root / "cleanroom-psi/audit.jsonl"

    def party(self, name: str) -> PartyFiles:
        """The files of party `name`."""
        return PartyFiles(**{k: self.root / v.format(p=name) for k, v in _PARTY_FILES.items()})

    def files(self) -> list[Path]:
        """Every file the demo writes (a new run removes them first)."""
        shared = [self.collab, self.audit, self.truth, self.report, self.psi_collab,
                  self.psi_audit]
        return shared + [f for p in PARTIES for f in astuple(self.party(p))]


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


def _policy(dimensions: list[str], aggregate: str, minimum: int,
            rules: Sequence[str]) -> dict[str, Any]:
    return {
        "analysis_rule": "aggregation",
        "join_columns": list(rules),
        "dimension_columns": dimensions,
        "aggregate_columns": [{"columns": [aggregate], "functions": ["SUM", "AVG"]}],
        "output_constraints": [{"column": "entity_id", "type": "COUNT_DISTINCT",
                                "minimum": minimum}],
        "join_required": "query_runner",
        "allowed_result_receivers": ["airline", "brand"],
    }


def airline_policy(rules: Sequence[str] = RULES) -> str:
    """The airline's policy on its loyalty table (TOML)."""
    doc = _policy(["tier", "home_airport", "country"], "miles_flown", AIRLINE_MIN, rules)
    return toml_text(doc, header="The airline's rules on its loyalty members table.")


def brand_policy(rules: Sequence[str] = RULES) -> str:
    """The brand's policy on its CRM table (TOML)."""
    doc = _policy(["category"], "spend", BRAND_MIN, rules)
    return toml_text(doc, header="The brand's rules on its CRM table.")


def collaboration_toml(collaboration_id: str, rules: Sequence[str] = RULES) -> str:
    """The collaboration file both parties sign up to (TOML)."""
    return toml_text({
        "collaboration": {"id": collaboration_id, "name": "Airline x Brand",
                          "audit_log": "audit.jsonl"},
        "members": {"airline": {"can_query": True, "can_receive_results": True},
                    "brand": {"can_query": False, "can_receive_results": True}},
        "tables": {p: {"owner": p, "tokens": f"{p}.tokens.parquet",
                       "policy": f"{p}.policy.toml"} for p in PARTIES},
        "matching": {"rules": list(rules), "max_records_per_token": MAX_RECORDS_PER_TOKEN},
    })


_IDENTIFIERS = (("email", "email"), ("phone", "phone"))
_MATCH_KEYS = (("name_dob", (("first_name", "first_name"), ("last_name", "last_name"),
                             ("dob", "dob"))),)
_ATTRIBUTES = {"airline": ("tier", "home_airport", "country", "miles_flown"),
               "brand": ("category", "spend")}
_ID_COLUMN = {"airline": "member_id", "brand": "customer_id"}


def tokenize_args(party: str, lay: Layout) -> list[Any]:
    """The `cleanroom tokenize` arguments each party runs on its own machine."""
    files = lay.party(party)
    return party_tokenize_args(party, csv=files.csv, secret=files.secret, out=files.tokens,
                               report=files.quality)


def party_tokenize_args(party: str, *, csv: Path, secret: Path, out: Path,
                        report: Path) -> list[Any]:
    """The demo's `cleanroom tokenize` arguments for `party`, with its files' paths."""
    args: list[Any] = [csv, "--party", party, "--secret-file", secret]
    for kind, column in _IDENTIFIERS:
        args += ["--id", f"{kind}={column}"]
    for name, parts in _MATCH_KEYS:
        args += ["--match-key", f"{name}={'+'.join(f'{k}:{c}' for k, c in parts)}"]
    for a in _ATTRIBUTES[party]:
        args += ["--attr", a]
    return args + ["--profile", PROFILE, "--region", "US", "--out", out, "--report", report]


def _party_sources(lay: Layout) -> dict[str, Any]:
    """The same tokenize settings as `tokenize_args`, for the scoring copies."""
    from examples.score import PartySource

    return {party: PartySource(lay.party(party).csv, lay.party(party).secret,
                               _ID_COLUMN[party], _IDENTIFIERS, _MATCH_KEYS, PROFILE, "US")
            for party in ("airline", "brand")}


class StepUnavailable(Exception):
    """A subcommand this step needs is not part of this build yet."""


class _Walk:
    """Prints each step as a walk-through and runs the real subcommand in-process."""

    def __init__(self, root: Path, echo: Callable[[str], None], group: click.Group) -> None:
        self.root, self.echo, self.group = root, echo, group
        self.n = 0
        self.steps: list[str] = []

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
        shown = shlex.join(["cleanroom", *command, *(self.shown(a) for a in args)])
        self.echo(click.style(f"   $ {shown}", fg="cyan"))
        cmd = self.group.get_command(click.Context(self.group), command[0])
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
        lines = text.rstrip("\n").splitlines()
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
    for path in lay.files():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for sub in ("airline", "brand", "cleanroom", "ground_truth", "exchange", "cleanroom-psi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
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
    group: click.Group,
) -> DemoResult:
    """Run the walk-through end to end on whatever parts this build has; see the module doc.

    `group` is the `cleanroom` command group whose subcommands the walk-through runs.
    """
    from examples.generate import generate

    start = time.perf_counter()
    root = Path(out_dir).resolve()
    lay = _prepare(root)
    walk = _Walk(root, echo, group)
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
        parties.write(lay.party("airline").csv, lay.party("brand").csv, lay.truth)
        counts = {"airline": len(parties.airline), "brand": len(parties.brand)}
        walk.say(f"airline/airline.csv: {counts['airline']:,} loyalty members "
                 f"(email, phone, name, date of birth, country, home airport, tier, miles)")
        walk.say(f"brand/brand.csv: {counts['brand']:,} CRM customers "
                 f"(email, phone, name, birthday, postal code, category, spend)")
        walk.say(f"ground_truth/truth.csv: who is who, for scoring only "
                 f"({parties.true_overlap():,} people are really in both) — it never goes "
                 f"into the clean room")

        walk.title("Each party makes an X25519 key pair and sends the other its .pub")
        walk.run(["keys", "pair"], ["--out", lay.party("airline").prefix])
        walk.run(["keys", "pair"], ["--out", lay.party("brand").prefix])

        cid = collaboration_id_for(seed)
        walk.title("Both derive the same collaboration secret; it is never sent")
        for me, them in (("airline", "brand"), ("brand", "airline")):
            walk.run(["keys", "agree"], ["--private", lay.party(me).key,
                                         "--public", lay.party(them).pub,
                                         "--collaboration-id", cid,
                                         "--out", lay.party(me).secret])
        if lay.party("airline").secret.read_bytes() != lay.party("brand").secret.read_bytes():
            raise ConfigError("the two parties did not derive the same secret",
                              file=str(lay.party("brand").secret))
        walk.say("same key fingerprint on both sides: the secrets match")

        walk.title("Each party tokenizes locally; only the token file leaves")
        for party in ("airline", "brand"):
            walk.run(["tokenize"], tokenize_args(party, lay))
        walk.say("what leaves the building — tokens, a random row id, the shared attributes:")
        walk.run(["inspect"], [lay.party("brand").tokens])

        walk.title("The collaboration and each owner's policy are written down")
        write_bytes_atomic(lay.collab, collaboration_toml(cid).encode())
        write_bytes_atomic(lay.party("airline").policy, airline_policy().encode())
        write_bytes_atomic(lay.party("brand").policy, brand_policy().encode())
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
        walk.run(["keys", "pair"], ["--out", lay.party(party).psi_prefix])
    for party in ("airline", "brand"):
        args: list[Any] = [lay.party(party).csv, "--party", party,
                           "--key", lay.party(party).psi_key, "--collaboration-id", cid]
        for kind in PSI_RULES:
            args += ["--id", f"{kind}={kind}"]
        for a in _ATTRIBUTES[party]:
            args += ["--attr", a]
        args += ["--profile", PROFILE, "--region", "US",
                 "--out-round1", lay.party(party).r1,
                 "--out-attrs", lay.party(party).attrs]
        walk.run(["psi", "blind"], args)
    for me, them in (("airline", "brand"), ("brand", "airline")):
        walk.run(["psi", "reblind"], [lay.party(them).r1,
                                      "--key", lay.party(me).psi_key,
                                      "--out", lay.party(them).r2])
    for me, them in (("airline", "brand"), ("brand", "airline")):
        walk.run(["psi", "finish"], ["--round2", lay.party(me).r2,
                                     "--attrs", lay.party(me).attrs, "--party", me,
                                     "--peer-round2", lay.party(them).r2,
                                     "--out", lay.party(me).psi_tokens])
    write_bytes_atomic(lay.psi_collab, collaboration_toml(cid, PSI_RULES).encode())
    write_bytes_atomic(lay.party("airline").psi_policy, airline_policy(PSI_RULES).encode())
    write_bytes_atomic(lay.party("brand").psi_policy, brand_policy(PSI_RULES).encode())
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
