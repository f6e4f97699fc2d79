"""File helpers shared by every command: atomic writes with chosen permissions, and the one
bounded, mode-checked reader of key files (collaboration secrets, X25519 and identity keys)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ._errors import InputError, KeyMaterialError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success chmod it to `mode` and rename it
    over `path`, on any error remove it, so readers never see a partial file."""
    target = Path(path)
    ensure_parent(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror})", file=os.fspath(target)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o600)
        yield tmp_path
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def ensure_parent(path: str | os.PathLike[str]) -> None:
    """Create the folder `path` goes in; an error names the file, not a traceback."""
    target = Path(path)
    if target.is_dir():
        raise InputError("is a folder; name a file to write", file=os.fspath(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create its folder ({exc.strerror})",
                         file=os.fspath(target)) from None


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file, or a folder's entries (after a rename or a new file), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` atomically with permissions `mode`."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def read_key_file(name: str, *, what: str, private: bool, limit: int) -> bytes:
    """The bytes of a small key file, or KeyMaterialError naming the file and `what` it is.

    Refuses a missing or non-regular file, one over `limit` bytes, and (with `private`) one
    readable by group or others. The message never holds a byte of the file.
    """
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise KeyMaterialError(f"{name}: {what} not found") from None
    except OSError as exc:
        raise KeyMaterialError(f"{name}: cannot read {what} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyMaterialError(f"{name}: {what} is not a regular file")
    if private and st.st_mode & 0o077:
        raise KeyMaterialError(
            f"{name}: {what} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o});"
            f" run: chmod 600 {name}"
        )
    try:
        with open(name, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise KeyMaterialError(f"{name}: cannot read {what} ({exc.strerror})") from None
    if len(raw) > limit:
        raise KeyMaterialError(f"{name}: {what} is too large to be a key file")
    return raw
