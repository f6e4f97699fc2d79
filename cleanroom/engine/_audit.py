"""The audit log: append-only JSON Lines, one entry per analysis or query, hash-chained.

Each entry holds `seq`, `time`, `member`, `request` (what was asked: analysis name and its
parameters, never a token or identifier), `decision` ("accepted" | "refused"), `rule` (the rule
that decided), `rows_returned`, `rows_suppressed`, `prev_sha256` (the previous entry's
`sha256`, zeros for the first) and `sha256` (of the entry's canonical JSON without it).
`AuditLog.verify` recomputes the chain, so an edited, inserted, deleted or reordered entry is
found (removing the newest entries is only visible to whoever remembers the head hash, which
`verify` returns). Appends take a lock, add one line with one write and fsync it before
returning, so an append costs the same at the millionth entry as at the first. A line without
its newline is an append still being written (readers leave it out) or, after a crash, one
that never returned: the next append removes it unless it is a whole entry.

A log kept by a server is also signed: with a `signer`, each entry carries
`operator_signature`, the operator's signature of the chain head after it (its `sha256` and the
entry count), outside the hashed body. `verify(check=...)` then requires every signature, so a
writer without the operator's key cannot rewrite the log unseen, and a member who kept a
signed head can prove a later rewrite or truncation by the operator itself.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from protocols import AuditError, CleanroomBug, fsync_path

GENESIS = "0" * 64
Decision = Literal["accepted", "refused"]
SIGNATURE_FIELD = "operator_signature"
_RESERVED = {"seq", "prev_sha256", "sha256", SIGNATURE_FIELD}
_UNHASHED = {"sha256", SIGNATURE_FIELD}
HeadSigner = Callable[[str, int], str]  # (head sha256, entry count) -> signature
HeadCheck = Callable[[str, int, str], bool]  # (head sha256, entry count, signature) -> ok


def _canonical(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _digest(entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k not in _UNHASHED}
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """A verified log: how many entries, the head hash to remember, and the operator's
    signature of that head when the log is signed."""

    entries: int
    head_sha256: str
    head_signature: str | None = None


class AuditLog:
    """A hash-chained JSON Lines audit log at `path`; with `signer`, each append is signed."""

    def __init__(self, path: str | os.PathLike[str], *, signer: HeadSigner | None = None) -> None:
        self.path = Path(path)
        self.signer = signer

    def __repr__(self) -> str:
        return f"AuditLog({self.path.name!r})"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.path.is_dir():
            raise AuditError(f"{self.path.name} is a folder, not an audit log file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(
        self, entry: Mapping[str, Any], *, now: _dt.datetime | None = None
    ) -> dict[str, Any]:
        """Append one entry (adds seq, time if absent, prev_sha256, sha256); return it."""
        bad = _RESERVED & set(entry)
        if bad:
            raise CleanroomBug(f"audit entry may not set {sorted(bad)}")
        _check_plain(entry)
        with self._locked():
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                last = _last_line(fd)
                prev, seq = GENESIS, 0
                if last is not None:
                    try:
                        head = json.loads(last)
                        prev, seq = head["sha256"], int(head["seq"]) + 1
                    except (ValueError, KeyError, TypeError, RecursionError):
                        raise AuditError(f"{self.path.name}: last entry is unreadable; "
                                         "run `cleanroom audit verify`") from None
                t = entry.get("time") or (now or _dt.datetime.now(_dt.UTC)).isoformat(
                    timespec="seconds")
                full: dict[str, Any] = {**entry, "time": t, "seq": seq, "prev_sha256": prev}
                full["sha256"] = _digest(full)
                if self.signer is not None:
                    full[SIGNATURE_FIELD] = self.signer(full["sha256"], seq + 1)
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, _canonical(full).encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_path(self.path.parent)
        return full

    def record(
        self,
        *,
        member: str,
        request: Mapping[str, Any],
        decision: Decision,
        rule: str,
        rows_returned: int = 0,
        rows_suppressed: int = 0,
        now: _dt.datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append an entry for one analysis or query, accepted or refused. `extra` adds
        plain keys (what privacy did: `difference_suppressed`, `epsilon`, `budget_spent`)."""
        if decision not in ("accepted", "refused"):
            raise CleanroomBug(f"unknown decision {decision!r}")
        base = {
            "member": member, "request": dict(request), "decision": decision, "rule": rule,
            "rows_returned": int(rows_returned), "rows_suppressed": int(rows_suppressed),
        }
        if extra and set(extra) & set(base):
            raise CleanroomBug("audit extras may not replace the entry's own keys")
        return self.append({**base, **(extra or {})}, now=now)

    def entries(self, *, check: HeadCheck | None = None) -> list[dict[str, Any]]:
        """Every entry, verified; raises AuditError if the log was tampered with."""
        return self._read(verify=True, check=check)[0]

    def verify(self, *, check: HeadCheck | None = None) -> VerifyResult:
        """Check the whole chain (and, with `check`, the operator's signature of every entry);
        raise AuditError naming the first bad entry."""
        items, _ = self._read(verify=False)
        return verify_entries(items, check=check, name=self.path.name)

    def _read(self, *, verify: bool,
              check: HeadCheck | None = None) -> tuple[list[dict[str, Any]], str]:
        name = self.path.name
        if not self.path.exists():
            return [], GENESIS
        if self.path.is_dir():
            raise AuditError(f"{name} is a folder, not an audit log file")
        items: list[dict[str, Any]] = []
        for n, line in enumerate(_whole_lines(self.path.read_bytes()), start=1):
            try:
                e = json.loads(line)
                if not isinstance(e, dict):
                    raise ValueError
            except (ValueError, RecursionError):
                raise AuditError(f"{name}: line {n} is not a JSON entry") from None
            items.append(e)
        if verify:
            return items, verify_entries(items, check=check, name=name).head_sha256
        return items, str(items[-1].get("sha256", "")) if items else GENESIS


_BLOCK = 1 << 16


def _whole_lines(data: bytes) -> list[bytes]:
    """The log's lines, less a last one without its newline that is not a whole entry (an
    append still being written)."""
    lines = data.splitlines()
    if lines and not data.endswith(b"\n") and not _is_entry(lines[-1]):
        lines.pop()
    return lines


def _is_entry(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _last_line(fd: int) -> bytes | None:
    """The last entry line of an open log, read from its end (None when empty). A last line
    without its newline is completed when it is a whole entry, and cut off when it is not (an
    append a crash interrupted: it never returned, so no one holds it)."""
    size = os.fstat(fd).st_size
    tail, start = b"", size
    while start > 0 and tail.count(b"\n") < 2:
        step = min(_BLOCK, start)
        start -= step
        tail = os.pread(fd, step, start) + tail
    if tail and not tail.endswith(b"\n"):
        cut = tail.rfind(b"\n") + 1
        if _is_entry(tail[cut:]):
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, b"\n")
            tail += b"\n"
        else:
            os.ftruncate(fd, start + cut)
            tail = tail[:cut]
    lines = tail.splitlines()
    return lines[-1] if lines else None


def verify_entries(entries: list[dict[str, Any]], *, check: HeadCheck | None = None,
                   name: str = "audit log") -> VerifyResult:
    """Check a chain of entries (as read from a log, or as a server sent them): sequence,
    links, hashes and, with `check`, the operator's signature of every entry. Raises
    AuditError naming the first bad line (counted from 1)."""
    prev = GENESIS
    for n, e in enumerate(entries, start=1):
        if not isinstance(e, dict):
            raise AuditError(f"{name}: line {n} is not a JSON entry")
        if e.get("seq") != n - 1:
            raise AuditError(f"{name}: line {n}: entry out of sequence (seq "
                             f"{e.get('seq')!r}, expected {n - 1}): deleted or reordered")
        if e.get("prev_sha256") != prev:
            raise AuditError(f"{name}: line {n}: chain broken (previous entry hash "
                             "does not match): deleted, inserted or reordered entry")
        if e.get("sha256") != _digest(e):
            raise AuditError(f"{name}: line {n}: entry was edited (hash does not match)")
        if check is not None:
            sig = e.get(SIGNATURE_FIELD)
            if not isinstance(sig, str):
                raise AuditError(f"{name}: line {n}: not signed by the operator "
                                 "(written outside the server, or the signature removed)")
            if not check(e["sha256"], n, sig):
                raise AuditError(f"{name}: line {n}: the operator's signature does not "
                                 "verify (entry rewritten, or signed by another key)")
        prev = e["sha256"]
    signature = entries[-1].get(SIGNATURE_FIELD) if entries else None
    return VerifyResult(len(entries), prev, signature if isinstance(signature, str) else None)


def _check_plain(value: Any) -> None:
    """Audit entries hold only plain JSON values: never bytes (a token would be bytes)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CleanroomBug("audit entry keys must be strings")
            _check_plain(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_plain(v)
    elif not (value is None or isinstance(value, str | int | float | bool)):
        raise CleanroomBug(f"audit entries hold plain JSON values, not {type(value).__name__}")
