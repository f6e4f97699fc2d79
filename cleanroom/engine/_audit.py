"""The audit log: append-only JSON Lines, one entry per analysis or query, hash-chained.

Each entry holds `seq`, `time`, `member`, `request` (what was asked: analysis name and its
parameters, never a token or identifier), `decision` ("accepted" | "refused"), `rule` (the rule
that decided), `rows_returned`, `rows_suppressed`, `prev_sha256` (the previous entry's
`sha256`, zeros for the first) and `sha256` (of the entry's canonical JSON without it).
`AuditLog.verify` recomputes the chain, so an edited, inserted, deleted or reordered entry is
found (removing the newest entries is only visible to whoever remembers the head hash, which
`verify` returns). Appends take a lock and rewrite the file atomically, so no reader ever sees
a half-written line.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from protocols import AuditError, CleanroomBug, atomic_path

GENESIS = "0" * 64
Decision = Literal["accepted", "refused"]
_RESERVED = {"seq", "prev_sha256", "sha256"}


def _canonical(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _digest(entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "sha256"}
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """A verified log: how many entries, and the head hash to remember."""

    entries: int
    head_sha256: str


class AuditLog:
    """A hash-chained JSON Lines audit log at `path`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

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
            old = self.path.read_bytes() if self.path.exists() else b""
            lines = old.splitlines()
            prev, seq = GENESIS, 0
            if lines:
                try:
                    last = json.loads(lines[-1])
                    prev, seq = last["sha256"], int(last["seq"]) + 1
                except (ValueError, KeyError, TypeError, RecursionError):
                    raise AuditError(f"{self.path.name}: last entry is unreadable; "
                                     "run `cleanroom audit verify`") from None
            t = entry.get("time") or (now or _dt.datetime.now(_dt.UTC)).isoformat(
                timespec="seconds")
            full: dict[str, Any] = {**entry, "time": t, "seq": seq, "prev_sha256": prev}
            full["sha256"] = _digest(full)
            with atomic_path(self.path, 0o600) as tmp:
                with open(tmp, "wb") as fh:
                    fh.write(old if old.endswith(b"\n") or not old else old + b"\n")
                    fh.write(_canonical(full).encode() + b"\n")
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
    ) -> dict[str, Any]:
        """Append an entry for one analysis or query, accepted or refused."""
        if decision not in ("accepted", "refused"):
            raise CleanroomBug(f"unknown decision {decision!r}")
        return self.append({
            "member": member, "request": dict(request), "decision": decision, "rule": rule,
            "rows_returned": int(rows_returned), "rows_suppressed": int(rows_suppressed),
        }, now=now)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, verified; raises AuditError if the log was tampered with."""
        return self._read(verify=True)[0]

    def verify(self) -> VerifyResult:
        """Check the whole chain; raise AuditError naming the first bad entry."""
        items, head = self._read(verify=True)
        return VerifyResult(len(items), head)

    def _read(self, *, verify: bool) -> tuple[list[dict[str, Any]], str]:
        name = self.path.name
        if not self.path.exists():
            return [], GENESIS
        if self.path.is_dir():
            raise AuditError(f"{name} is a folder, not an audit log file")
        items: list[dict[str, Any]] = []
        prev = GENESIS
        for n, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                e = json.loads(line)
                if not isinstance(e, dict):
                    raise ValueError
            except (ValueError, RecursionError):
                raise AuditError(f"{name}: line {n} is not a JSON entry") from None
            if verify:
                if e.get("seq") != n - 1:
                    raise AuditError(f"{name}: line {n}: entry out of sequence (seq "
                                     f"{e.get('seq')!r}, expected {n - 1}): deleted or reordered")
                if e.get("prev_sha256") != prev:
                    raise AuditError(f"{name}: line {n}: chain broken (previous entry hash "
                                     "does not match): deleted, inserted or reordered entry")
                if e.get("sha256") != _digest(e):
                    raise AuditError(f"{name}: line {n}: entry was edited (hash does not match)")
            prev = e.get("sha256", "")
            items.append(e)
        return items, prev


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
