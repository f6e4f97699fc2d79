"""File primitives shared by the privacy state: an fcntl lock and durable (fsync'd) writes.

Both the difference-check memory and the budget ledger are read and written by several
processes at once (CLI invocations, server workers). Every read-modify-write happens under an
exclusive `flock`, and nothing is acknowledged before it is on disk.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from protocols import atomic_path, fsync_path


@contextmanager
def locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory lock on `path` (created if missing) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary name, fsync, rename, fsync the folder)."""
    with atomic_path(path, 0o600) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fsync_path(path.parent)
