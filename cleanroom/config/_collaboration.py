"""The collaboration file (TOML): id, members, tables with their policies, matching rules.

    [collaboration]   id, name, audit_log (relative to this file; default "audit.jsonl")
    [members.NAME]    can_query, can_receive_results, identity (optional)
    [auditors.NAME]   identity                       (optional section: compliance readers)
    [operator]        identity                       (optional section: who runs the server)
    [tables.NAME]     owner, tokens, policy (paths relative to this file)
    [matching]        rules (token columns, priority order), max_records_per_token,
                      method ("deterministic", the default, or "probabilistic"), threshold
                      (probabilistic only: the match probability that links two records;
                      there `rules` may be omitted: every shared join column is compared)
    [privacy]         mode ("threshold", the default, or "differential"), epsilon,
                      epsilon_per_query (optional section; validated by the engine's
                      `cleanroom.privacy.PrivacySettings`, which sits above this layer)

An `identity` is a public identity key: the name of a `.pub` file written by
`cleanroom keys identity` (relative to this file, inside its folder) or the one-line key
itself (`"cleanroom-identity-v1 <base64>"`). Identities are what the server knows its callers
by; a collaboration run only locally needs none.

`Roster.from_path` validates everything the file declares without opening a token file or a
policy (the server starts before the owners upload); `Collaboration.from_path` also loads every
table's policy and checks it against the token file's manifest. Errors are ConfigError naming
file, key and reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocols import (
    IDENTITY_PUBLIC_PREFIX,
    ConfigError,
    InputError,
    KeyMaterialError,
    Manifest,
    identity_fingerprint,
    load_identity_public,
    read_manifest,
)

from ._names import valid_name
from ._policy import Policy, read_toml

_TOP = {"collaboration", "members", "tables", "matching"}
_OPTIONAL_TOP = {"auditors", "operator", "privacy"}
_COLLAB = {"id", "name", "audit_log"}
_MEMBER = {"can_query", "can_receive_results", "identity"}
_AUDITOR = {"identity"}
_OPERATOR = {"identity"}
_TABLE = {"owner", "tokens", "policy"}
_MATCHING = {"rules", "max_records_per_token", "method", "threshold"}
DEFAULT_MAX_RECORDS_PER_TOKEN = 5
MATCHING_METHODS = ("deterministic", "probabilistic")
DEFAULT_MATCH_THRESHOLD = 0.9


@dataclass(frozen=True)
class Member:
    """A party of the collaboration and what it may do; `identity` is its public key, if
    declared (needed to reach a server)."""

    name: str
    can_query: bool = False
    can_receive_results: bool = False
    identity: Ed25519PublicKey | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Auditor:
    """A compliance reader: policies, their history and the audit log; never a query."""

    name: str
    identity: Ed25519PublicKey = field(repr=False, compare=False)


@dataclass(frozen=True)
class TableEntry:
    """A table as the collaboration file declares it; its files may not exist yet."""

    name: str
    owner: str
    tokens: Path
    policy_path: Path


@dataclass(frozen=True)
class Table:
    """One party's token file with the policy its owner set on it."""

    name: str
    owner: str
    tokens: Path
    policy_path: Path
    policy: Policy
    manifest: Manifest = field(repr=False)

    def link_columns(self, rules: tuple[str, ...]) -> tuple[str, ...]:
        """Matching-rule columns this table takes part in (rule order)."""
        return tuple(r for r in rules if r in self.policy.join_columns)


@dataclass(frozen=True)
class Matching:
    """How records are linked into entities: `deterministic` (records sharing a token of a
    rule) or `probabilistic` (a Fellegi-Sunter model over the token columns, linking pairs
    whose match probability reaches `threshold`; `rules`, if any, name the fields compared)."""

    rules: tuple[str, ...]
    max_records_per_token: int = DEFAULT_MAX_RECORDS_PER_TOKEN
    method: Literal["deterministic", "probabilistic"] = "deterministic"
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.method not in MATCHING_METHODS:
            raise ConfigError(f"method must be one of {', '.join(MATCHING_METHODS)}",
                              key="matching.method")
        if self.method == "deterministic" and (self.threshold is not None or not self.rules):
            raise ConfigError("deterministic matching takes rules and no threshold",
                              key="matching")
        if self.method == "probabilistic":
            if self.threshold is None:
                object.__setattr__(self, "threshold", DEFAULT_MATCH_THRESHOLD)
            elif not 0.0 < self.threshold < 1.0:
                raise ConfigError("threshold must be between 0 and 1 (exclusive)",
                                  key="matching.threshold")


@dataclass(frozen=True)
class Roster:
    """What a collaboration file declares: id, members, auditors, operator, tables (by name,
    owner and paths) and matching rules. Reading it opens no token file and no policy."""

    id: str
    name: str
    path: Path
    audit_log: Path
    members: Mapping[str, Member]
    auditors: Mapping[str, Auditor]
    operator: Ed25519PublicKey | None = field(repr=False, compare=False)
    tables: Mapping[str, TableEntry]
    matching: Matching
    privacy: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Roster:
        """Read and validate a collaboration file, without its token files and policies."""
        p = Path(path)
        f = os.fspath(path)
        data = read_toml(f)
        _only(data, _TOP | _OPTIONAL_TOP, f, None)
        for key in _TOP:
            if key not in data:
                raise ConfigError("missing section", file=f, key=key)
        head = _section(data["collaboration"], f, "collaboration", _COLLAB)
        cid = head.get("id")
        if not isinstance(cid, str) or not cid.strip():
            raise ConfigError("missing or empty collaboration id", file=f, key="collaboration.id")
        name = head.get("name", cid)
        if not isinstance(name, str):
            raise ConfigError("must be a string", file=f, key="collaboration.name")
        audit_path = _audit_path(p, head)

        members: dict[str, Member] = {}
        msec = _section(data["members"], f, "members", None)
        if not msec:
            raise ConfigError("at least one member is required", file=f, key="members")
        for mname, mval in msec.items():
            key = f"members.{mname}"
            if not valid_name(mname):
                raise ConfigError("member names use a-z, 0-9, _ and -", file=f, key=key)
            m = _section(mval, f, key, _MEMBER)
            flags = {k: m.get(k, False) for k in ("can_query", "can_receive_results")}
            for k, v in flags.items():
                if not isinstance(v, bool):
                    raise ConfigError("must be true or false", file=f, key=f"{key}.{k}")
            ident = _identity(p, m, f"{key}.identity") if "identity" in m else None
            members[mname] = Member(mname, **flags, identity=ident)

        auditors: dict[str, Auditor] = {}
        for aname, aval in _section(data.get("auditors", {}), f, "auditors", None).items():
            key = f"auditors.{aname}"
            if not valid_name(aname):
                raise ConfigError("auditor names use a-z, 0-9, _ and -", file=f, key=key)
            if aname in members:
                raise ConfigError("is also a member; give the auditor another name", file=f,
                                  key=key)
            a = _section(aval, f, key, _AUDITOR)
            if "identity" not in a:
                raise ConfigError("an auditor needs an identity", file=f, key=f"{key}.identity")
            auditors[aname] = Auditor(aname, _identity(p, a, f"{key}.identity"))
        operator = None
        if "operator" in data:
            o = _section(data["operator"], f, "operator", _OPERATOR)
            if "identity" not in o:
                raise ConfigError("missing", file=f, key="operator.identity")
            operator = _identity(p, o, "operator.identity")
        _distinct_identities(f, members, auditors, operator)

        matching = _matching(_section(data["matching"], f, "matching", _MATCHING), f)

        tables: dict[str, TableEntry] = {}
        tsec = _section(data["tables"], f, "tables", None)
        if not tsec:
            raise ConfigError("at least one table is required", file=f, key="tables")
        for tname, tval in tsec.items():
            key = f"tables.{tname}"
            if not valid_name(tname) or "-" in tname or " " in tname:
                raise ConfigError("table names use a-z, 0-9 and _", file=f, key=key)
            t = _section(tval, f, key, _TABLE)
            for k in _TABLE:
                if not isinstance(t.get(k), str) or not t[k]:
                    raise ConfigError("missing or not a string", file=f, key=f"{key}.{k}")
            if t["owner"] not in members:
                raise ConfigError(f"owner {t['owner']!r} is not a member", file=f,
                                  key=f"{key}.owner")
            tables[tname] = TableEntry(tname, t["owner"],
                                       inside_folder(p, t["tokens"], f"{key}.tokens"),
                                       inside_folder(p, t["policy"], f"{key}.policy"))
        privacy = data.get("privacy")
        if privacy is not None and not isinstance(privacy, dict):
            raise ConfigError("must be a table [privacy]", file=f, key="privacy")
        return cls(cid, name, p, audit_path, members, auditors, operator, tables, matching,
                   privacy)

    def owned_by(self, member: str) -> tuple[str, ...]:
        """Names of the tables `member` owns."""
        return tuple(n for n, t in self.tables.items() if t.owner == member)


@dataclass(frozen=True)
class Collaboration:
    """A validated collaboration: members, tables (with policies), matching rules; and, when
    the file declares them, auditors and the operator's identity."""

    id: str
    name: str
    path: Path
    audit_log: Path
    members: Mapping[str, Member]
    tables: Mapping[str, Table]
    matching: Matching
    auditors: Mapping[str, Auditor] = field(default_factory=dict)
    operator: Ed25519PublicKey | None = field(default=None, repr=False, compare=False)
    privacy: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Collaboration:
        """Read and validate a collaboration file, its policies and its token manifests."""
        roster = Roster.from_path(path)
        f = os.fspath(path)
        tables: dict[str, Table] = {}
        for tname, entry in roster.tables.items():
            key = f"tables.{tname}"
            try:
                manifest = read_manifest(entry.tokens)
            except InputError as exc:
                raise ConfigError(f"token file: {exc}", file=f, key=f"{key}.tokens") from None
            if manifest.party != entry.owner:
                # a table belongs to whoever made its tokens: an edited collaboration file must
                # not let one member own (and query alone) another party's table
                raise ConfigError(f"the token file was made by party {manifest.party!r}, not by "
                                  f"the table's owner {entry.owner!r}", file=f,
                                  key=f"{key}.owner")
            policy = Policy.from_path(entry.policy_path)
            policy.check_against(manifest, roster.members)
            tables[tname] = Table(tname, entry.owner, entry.tokens, entry.policy_path, policy,
                                  manifest)

        for rule in roster.matching.rules:
            if not any(rule in t.policy.join_columns for t in tables.values()):
                raise ConfigError(f"rule {rule!r} is not a join column of any table's policy",
                                  file=f, key="matching.rules")
        return cls(roster.id, roster.name, roster.path, roster.audit_log, roster.members,
                   tables, roster.matching, roster.auditors, roster.operator, roster.privacy)

    @staticmethod
    def audit_log_path(path: str | os.PathLike[str]) -> Path:
        """Where a collaboration's audit log lives, reading only its [collaboration] section
        (so the log can be checked even when token files are gone)."""
        f = os.fspath(path)
        head = _section(read_toml(f).get("collaboration"), f, "collaboration", _COLLAB)
        return _audit_path(Path(path), head)

    def owned_by(self, member: str) -> tuple[str, ...]:
        """Names of the tables `member` owns."""
        return tuple(n for n, t in self.tables.items() if t.owner == member)


def _matching(section: Mapping[str, Any], f: str) -> Matching:
    """The [matching] table: method (default deterministic), rules, cap, threshold."""
    method = section.get("method", "deterministic")
    if method not in MATCHING_METHODS:
        raise ConfigError(f"must be one of {', '.join(MATCHING_METHODS)}, not {method!r}",
                          file=f, key="matching.method")
    rules = section.get("rules", [] if method == "probabilistic" else None)
    if not isinstance(rules, list) or not all(isinstance(r, str) and valid_name(r)
                                              for r in rules) or (
            method == "deterministic" and not rules):
        raise ConfigError("must be a non-empty list of token column names", file=f,
                          key="matching.rules")
    if len(set(rules)) != len(rules):
        raise ConfigError("a rule is listed twice", file=f, key="matching.rules")
    cap = section.get("max_records_per_token", DEFAULT_MAX_RECORDS_PER_TOKEN)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ConfigError(f"must be a positive integer, not {cap!r}", file=f,
                          key="matching.max_records_per_token")
    threshold = section.get("threshold")
    if threshold is not None:
        if method != "probabilistic":
            raise ConfigError('applies to method = "probabilistic" only', file=f,
                              key="matching.threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                or not 0.0 < threshold < 1.0:
            raise ConfigError(f"must be a match probability between 0 and 1 (exclusive), "
                              f"not {threshold!r}", file=f, key="matching.threshold")
        threshold = float(threshold)
    return Matching(tuple(rules), cap, method, threshold)


def inside_folder(collab: Path, name: str, key: str) -> Path:
    """`name` relative to the collaboration file's folder, refused if it is absolute or leads
    outside that folder (`..`, or a link pointing elsewhere): the files a collaboration reads
    and writes stay in its folder."""
    folder = collab.parent.resolve()
    target = Path(name)
    if target.is_absolute() or not (folder / target).resolve().is_relative_to(folder):
        raise ConfigError("must be a path inside the collaboration's folder",
                          file=os.fspath(collab), key=key)
    return collab.parent / target


def _audit_path(collab: Path, head: Mapping[str, Any]) -> Path:
    audit = head.get("audit_log", "audit.jsonl")
    key = "collaboration.audit_log"
    if not isinstance(audit, str) or not audit:
        raise ConfigError("must be a file name", file=os.fspath(collab), key=key)
    path = inside_folder(collab, audit, key)
    if path.is_dir():
        raise ConfigError("is a folder; name a file", file=os.fspath(collab), key=key)
    return path


def _identity(collab: Path, section: Mapping[str, Any], key: str) -> Ed25519PublicKey:
    """A public identity: the one-line key inline, or a .pub file inside the folder."""
    value = section.get("identity")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("must be a .pub file name or a public identity line", file=os.fspath(
            collab), key=key)
    try:
        if value.strip().startswith(IDENTITY_PUBLIC_PREFIX):
            return load_identity_public(value)
        return load_identity_public(os.fspath(inside_folder(collab, value, key)))
    except KeyMaterialError as exc:
        raise ConfigError(f"not a usable public identity ({_reason(exc)})",
                          file=os.fspath(collab), key=key) from None


def _reason(exc: KeyMaterialError) -> str:
    """The reason of a key error without the file name it starts with."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def _distinct_identities(file: str, members: Mapping[str, Member],
                         auditors: Mapping[str, Auditor],
                         operator: Ed25519PublicKey | None) -> None:
    """One key, one role: a key shared by two names would make the caller ambiguous."""
    seen: dict[str, str] = {}
    named = [(f"members.{n}", m.identity) for n, m in members.items()]
    named += [(f"auditors.{n}", a.identity) for n, a in auditors.items()]
    named.append(("operator", operator))
    for key, ident in named:
        if ident is None:
            continue
        fp = identity_fingerprint(ident)
        if fp in seen:
            raise ConfigError(f"the same identity as {seen[fp]}; each needs its own key",
                              file=file, key=f"{key}.identity")
        seen[fp] = key


def _only(data: Mapping[str, Any], allowed: set[str], file: str, prefix: str | None) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown key (allowed: {', '.join(sorted(allowed))})", file=file,
                          key=key)


def _section(value: Any, file: str, key: str, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError("must be a table [...]", file=file, key=key)
    if allowed is not None:
        _only(value, allowed, file, key)
    return value
