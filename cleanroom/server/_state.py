"""What a running server holds: who its callers are, the signed audit log, and opened rooms.

    state = ServerState("collaboration.toml", operator_key)
    principal = state.principal(keyid)           # Principal("member" | "auditor", name)
    with state.room() as room: ...               # a CleanRoom of the current files

Queries run concurrently: each takes a read lock and a `CleanRoom` of its own from a small
pool (DuckDB connections are not shared between threads), all sharing the resolution cached
on disk. `workers` rooms at most do heavy work (segments, SQL) at a time; light requests (the
overlap without segments, answered from the cached resolution) have slots of their own, so
they never queue behind a long query. An upload or a policy change takes the write lock for
its final rename only, then starts a new generation: rooms opened before it are closed, never
reused, so no query mixes an old entity map with a new file. Audit appends are serialized by
the log's own file lock, and each is signed with the operator's key.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleanroom.config import Roster
from cleanroom.engine import AuditLog, CleanRoom, open_collaboration
from protocols import (
    ConfigError,
    KeyMaterialError,
    NotAllowed,
    ServerError,
    format_identity_public,
    identity_fingerprint,
)

from ._signing import sign_head, verify_head
from ._storage import remove_stale_uploads

Role = Literal["member", "auditor"]
HeadCheck = Callable[[str, int, str], bool]
DEFAULT_WORKERS = 4


@dataclass(frozen=True)
class Principal:
    """Who signed a request: a member or an auditor of the collaboration, by name."""

    role: Role
    name: str


@dataclass(frozen=True)
class SignedHead:
    """The audit log's head as the operator signed it: every answer carries one."""

    count: int
    head: str
    signature: str | None


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _ServerLog(AuditLog):
    """The signed audit log, remembering the head of its latest append (this process is its
    only writer while it serves)."""

    def start(self, *, check: HeadCheck) -> None:
        self._head_lock = threading.Lock()
        res = self.verify(check=check)
        sig = res.head_signature
        if res.entries == 0 and self.signer is not None:
            sig = self.signer(res.head_sha256, 0)
        self.head = SignedHead(res.entries, res.head_sha256, sig)

    def append(self, entry: Mapping[str, Any], *,
               now: _dt.datetime | None = None) -> dict[str, Any]:
        full = super().append(entry, now=now)
        count = int(full["seq"]) + 1
        with self._head_lock:
            if count > self.head.count:
                self.head = SignedHead(count, full["sha256"], full.get("operator_signature"))
        return full


class ServerState:
    """A collaboration served to its members: identities, signed audit log, room pool."""

    def __init__(self, collaboration: str | Path, operator_key: Ed25519PrivateKey, *,
                 workers: int = DEFAULT_WORKERS, memory_limit: str | None = None) -> None:
        self.path = Path(collaboration)
        roster = Roster.from_path(self.path)
        if roster.operator is None:
            raise ConfigError("a served collaboration declares its operator: [operator] "
                              'identity = "operator.pub"', file=str(self.path),
                              key="operator.identity")
        if not isinstance(operator_key, Ed25519PrivateKey):
            raise KeyMaterialError("the operator's identity key must be an Ed25519 key")
        if identity_fingerprint(operator_key.public_key()) != identity_fingerprint(
                roster.operator):
            raise KeyMaterialError("this identity key is not the operator's declared in "
                                   f"{self.path.name} ([operator] identity)")
        self.roster = roster
        remove_stale_uploads(roster)  # what a server killed mid-upload left behind
        self.operator_public: Ed25519PublicKey = roster.operator
        self._key = operator_key
        self.principals: dict[str, Principal] = {}
        self.keys: dict[str, Ed25519PublicKey] = {}
        for name, member in roster.members.items():
            if member.identity is not None:
                self._add("member", name, member.identity)
        for name, auditor in roster.auditors.items():
            self._add("auditor", name, auditor.identity)
        if not self.principals:
            raise ConfigError("no member or auditor has an identity: nobody could reach the "
                              "server", file=str(self.path), key="members")
        self.audit = _ServerLog(roster.audit_log, signer=self._sign)
        # the log must be whole and signed throughout before anyone is answered from it
        self.audit.start(check=self.check_head)
        self.workers, self.memory_limit = max(1, workers), memory_limit
        self.started_at = time.time()
        self._lock = _ReadWriteLock()
        self._pool_lock = threading.Lock()
        self._resolve_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._light_slots = threading.BoundedSemaphore(self.workers)
        cpus = os.cpu_count() or 1
        self.threads = max(1, cpus // self.workers)  # DuckDB threads per room
        self._generation = 0
        self._idle: list[CleanRoom] = []

    def __repr__(self) -> str:
        return f"ServerState({self.path.name!r}, principals={len(self.principals)})"

    def _add(self, role: Role, name: str, key: Ed25519PublicKey) -> None:
        keyid = identity_fingerprint(key)
        self.principals[keyid] = Principal(role, name)
        self.keys[keyid] = key

    def _sign(self, head: str, count: int) -> str:
        return sign_head(self._key, head, count)

    @property
    def operator_line(self) -> str:
        """The operator's public identity, one line (what clients check heads against)."""
        return format_identity_public(self.operator_public)

    def check_head(self, head: str, count: int, signature: str) -> bool:
        """True if `signature` is the operator's signature of (head, count)."""
        return verify_head(self.operator_public, head, count, signature)

    # -- callers ---------------------------------------------------------------------------
    def principal(self, keyid: str) -> Principal:
        """The member or auditor a verified key id belongs to."""
        try:
            return self.principals[keyid]
        except KeyError:  # pragma: no cover - the verifier only knows these keys
            raise ServerError("a verified key id names no principal") from None

    def member_for(self, who: Principal, as_member: str | None) -> str:
        """The member a query runs as: the caller's own. An auditor never queries, and `--as`
        may only name the caller itself (it is never echoed: it could be anything)."""
        if who.role != "member":
            raise NotAllowed("auditor", "auditors read policies and the audit log; they never "
                             "query")
        if as_member is not None and as_member != who.name:
            raise NotAllowed("identity", f"--as names another member than this identity's "
                             f"({who.name})")
        return who.name

    def owner_of(self, who: Principal, table: str) -> None:
        """Refuse unless the caller is the member that owns `table`."""
        entry = self.roster.tables[table]
        if who.role != "member" or entry.owner != who.name:
            raise NotAllowed("owner", f"only {entry.owner}, the owner of table {table!r}, may "
                             "change it")

    # -- the audit head --------------------------------------------------------------------
    def signed_head(self) -> SignedHead:
        """The head of the audit log after the latest append, with the operator's signature."""
        return self.audit.head

    # -- rooms -----------------------------------------------------------------------------
    def missing(self) -> list[str]:
        """Names of the tables whose token file or policy is not there yet."""
        return [n for n, t in self.roster.tables.items()
                if not t.tokens.is_file() or not t.policy_path.is_file()]

    @contextlib.contextmanager
    def room(self, *, light: bool = False) -> Iterator[CleanRoom]:
        """A room of the current files for one request (read lock held throughout)."""
        with self._light_slots if light else self._slots, self._lock.read():
            with self._pool_lock:
                generation = self._generation
                room = self._idle.pop() if self._idle else None
            if room is None:
                room = self._open()
            try:
                yield room
            finally:
                keep = False
                with self._pool_lock:
                    if generation == self._generation and len(self._idle) < 2 * self.workers:
                        self._idle.append(room)
                        keep = True
                if not keep:
                    room.close()

    def _open(self) -> CleanRoom:
        missing = self.missing()
        if missing:
            what = ", ".join(repr(n) for n in missing)
            raise ServerError(f"not ready: table {what} has no token file or policy yet "
                              "(its owner sends them with `cleanroom upload` and "
                              "`cleanroom policy put`)")
        room = open_collaboration(self.path, memory_limit=self.memory_limit,
                                  threads=self.threads)
        try:
            room.audit = self.audit
            with self._resolve_lock:  # one thread resolves; the others read its cache
                room.resolution()
        except BaseException:
            room.close()
            raise
        return room

    @contextlib.contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the write lock for a change of files; rooms opened before it are retired."""
        with self._lock.write():
            try:
                yield
            finally:
                with self._pool_lock:
                    self._generation += 1
                    idle, self._idle = self._idle, []
                for room in idle:
                    room.close()

    def close(self) -> None:
        """Close every idle room."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for room in idle:
            room.close()
