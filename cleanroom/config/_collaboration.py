"""The collaboration file (TOML): id, members, tables with their policies, matching rules.

    [collaboration]  id, name, audit_log (relative to this file; default "audit.jsonl")
    [members.NAME]   can_query, can_receive_results
    [tables.NAME]    owner, tokens, policy (paths relative to this file)
    [matching]       rules (token columns, priority order), max_records_per_token

`Collaboration.from_path` validates the file strictly, loads every table's policy and checks
it against the token file's manifest. Errors are ConfigError naming file, key and reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocols import ConfigError, InputError, Manifest, read_manifest

from ._names import valid_name
from ._policy import Policy, read_toml

_TOP = {"collaboration", "members", "tables", "matching"}
_COLLAB = {"id", "name", "audit_log"}
_MEMBER = {"can_query", "can_receive_results"}
_TABLE = {"owner", "tokens", "policy"}
_MATCHING = {"rules", "max_records_per_token"}
DEFAULT_MAX_RECORDS_PER_TOKEN = 5


@dataclass(frozen=True)
class Member:
    """A party of the collaboration and what it may do."""

    name: str
    can_query: bool = False
    can_receive_results: bool = False


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
    """How records are linked into entities."""

    rules: tuple[str, ...]
    max_records_per_token: int = DEFAULT_MAX_RECORDS_PER_TOKEN


@dataclass(frozen=True)
class Collaboration:
    """A validated collaboration: members, tables (with policies), matching rules."""

    id: str
    name: str
    path: Path
    audit_log: Path
    members: Mapping[str, Member]
    tables: Mapping[str, Table]
    matching: Matching

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Collaboration:
        """Read and validate a collaboration file, its policies and its token manifests."""
        p = Path(path)
        f = os.fspath(path)
        data = read_toml(f)
        _only(data, _TOP, f, None)
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
            flags = {k: m.get(k, False) for k in _MEMBER}
            for k, v in flags.items():
                if not isinstance(v, bool):
                    raise ConfigError("must be true or false", file=f, key=f"{key}.{k}")
            members[mname] = Member(mname, **flags)

        msec2 = _section(data["matching"], f, "matching", _MATCHING)
        rules = msec2.get("rules")
        if not isinstance(rules, list) or not rules or not all(
                isinstance(r, str) and valid_name(r) for r in rules):
            raise ConfigError("must be a non-empty list of token column names", file=f,
                              key="matching.rules")
        if len(set(rules)) != len(rules):
            raise ConfigError("a rule is listed twice", file=f, key="matching.rules")
        cap = msec2.get("max_records_per_token", DEFAULT_MAX_RECORDS_PER_TOKEN)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigError(f"must be a positive integer, not {cap!r}", file=f,
                              key="matching.max_records_per_token")
        matching = Matching(tuple(rules), cap)

        tables: dict[str, Table] = {}
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
            tokens = inside_folder(p, t["tokens"], f"{key}.tokens")
            policy_path = inside_folder(p, t["policy"], f"{key}.policy")
            try:
                manifest = read_manifest(tokens)
            except InputError as exc:
                raise ConfigError(f"token file: {exc}", file=f, key=f"{key}.tokens") from None
            if manifest.party != t["owner"]:
                # a table belongs to whoever made its tokens: an edited collaboration file must
                # not let one member own (and query alone) another party's table
                raise ConfigError(f"the token file was made by party {manifest.party!r}, not by "
                                  f"the table's owner {t['owner']!r}", file=f,
                                  key=f"{key}.owner")
            policy = Policy.from_path(policy_path)
            policy.check_against(manifest, members)
            tables[tname] = Table(tname, t["owner"], tokens, policy_path, policy, manifest)

        for rule in matching.rules:
            if not any(rule in t.policy.join_columns for t in tables.values()):
                raise ConfigError(f"rule {rule!r} is not a join column of any table's policy",
                                  file=f, key="matching.rules")
        return cls(cid, name, p, audit_path, members, tables, matching)

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
