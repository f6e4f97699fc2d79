"""Receipts: the signed audit heads a member keeps, to prove a later rewrite or truncation.

Every answer from a server carries the operator's signature of its audit log's head (entry
count and chain hash). The client keeps the latest head it saw per collaboration, with the
operator's public identity it was signed by, in a small JSON file beside the member's identity
key (`KEY.heads.json`, mode 0600). A later answer, or the whole log fetched by `audit verify`,
that does not extend a kept head is refused with AuditError: the kept head, signed by the
operator, is the proof. The first operator key seen for a collaboration is pinned (trust on
first use); a different one later is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols import AuditError, ServerError, write_bytes_atomic


@dataclass(frozen=True)
class Receipt:
    """A signed audit head kept by a member."""

    operator: str
    count: int
    head: str
    signature: str


def receipts_path(identity: str | os.PathLike[str]) -> Path:
    """Where the receipts of the member with this identity key are kept."""
    key = Path(identity)
    return key.with_name(f"{key.stem}.heads.json")


class Receipts:
    """The kept heads of one member, by collaboration id (a file, locked while updated)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Receipts({self.path.name!r})"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        lock = self.path.with_name(f".{self.path.name}.lock")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise ServerError(f"{self.path}: cannot keep signed audit heads ({exc.strerror})"
                              ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            doc: dict[str, Any] = {}
            if self.path.exists():
                with contextlib.suppress(ValueError, OSError, RecursionError):
                    loaded = json.loads(self.path.read_bytes())
                    doc = loaded if isinstance(loaded, dict) else {}
            yield doc
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def get(self, collaboration_id: str) -> Receipt | None:
        """The head kept for a collaboration, if any."""
        with self._locked() as doc:
            return _receipt(doc.get(collaboration_id))

    def pin(self, collaboration_id: str, operator: str) -> None:
        """Refuse an operator key other than the one first seen for this collaboration."""
        kept = self.get(collaboration_id)
        if kept is not None and kept.operator != operator:
            raise ServerError("the server signs with another operator key than the one you "
                              f"saw before for this collaboration (kept in {self.path}); "
                              "ask the operator why before trusting its answers")

    def observe(self, collaboration_id: str, new: Receipt) -> None:
        """Check a signed head from an answer against the kept one; keep the newer."""
        with self._locked() as doc:
            kept = _receipt(doc.get(collaboration_id))
            if kept is not None:
                if kept.operator != new.operator:
                    raise ServerError("the server signs with another operator key than the one "
                                      f"you saw before (kept in {self.path})")
                if new.count < kept.count or (new.count == kept.count
                                              and new.head != kept.head):
                    raise AuditError(_broken(kept, new.count, self.path))
                if new.count == kept.count:
                    return
            doc[collaboration_id] = {"operator": new.operator, "count": new.count,
                                     "head": new.head, "signature": new.signature}
            write_bytes_atomic(self.path, (json.dumps(doc, indent=2) + "\n").encode(),
                               mode=0o600)

    def check_log(self, kept: Receipt, entries: list[dict[str, Any]]) -> None:
        """Check a whole (already verified) log against a kept head: it must extend it."""
        if kept.count == 0:
            return
        if len(entries) < kept.count or entries[kept.count - 1].get("sha256") != kept.head:
            raise AuditError(_broken(kept, len(entries), self.path))


def _broken(kept: Receipt, count: int, path: Path) -> str:
    return (f"the server's audit log ({count} entries) does not extend the head the operator "
            f"signed at entry {kept.count} (head {kept.head[:12]}…, kept in {path}): entries "
            "were removed or rewritten")


def _receipt(value: Any) -> Receipt | None:
    if not isinstance(value, dict):
        return None
    try:
        return Receipt(str(value["operator"]), int(value["count"]), str(value["head"]),
                       str(value["signature"]))
    except (KeyError, TypeError, ValueError):
        return None
