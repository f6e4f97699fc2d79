"""The on-disk form of the difference-check memory: immutable, versioned segment files.

Each transaction that remembers rows writes one new segment `rows-<seq>.bin` atomically; when
segments pile up they are merged into one `base-<seq>.bin` (covering every segment up to
`seq`) and the merged segments are deleted. Every file is written to a temporary name,
fsync'd and renamed, so a crash leaves either the old state or the new one, never a torn
file; readers take the newest base plus the segments after it.

Record layout (little-endian), after the 8-byte magic `CRPSET1\\n`:
cardinality u64, digest 16 bytes, sketch 64 × u32, length u32, roaring64 portable bytes.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyroaring import BitMap64

from protocols import PolicyRefusal

from ._files import write_durably
from ._people import SKETCH_BUCKETS

MAGIC = b"CRPSET1\n"
_HEADER = struct.Struct(f"<Q16s{SKETCH_BUCKETS}II")
_PREFIX = struct.Struct("<Q16s")  # the header's cardinality and digest; the sketch follows
_NAME = re.compile(r"^(rows|base)-(\d{12})\.bin$")
COMPACT_AFTER = 64  # segments beyond the base before they are merged into a new base


class StoredRow:
    """One remembered output row: its people, their count, a content digest and a sketch.

    Rows read from disk keep only a pointer into the mapped file; the set itself is decoded
    the first time an exact comparison needs it, so opening a large memory stays cheap.
    """

    __slots__ = ("_people", "_source", "cardinality", "digest", "sketch")

    def __init__(
        self,
        cardinality: int,
        digest: bytes,
        sketch: np.ndarray,
        *,
        people: BitMap64 | None = None,
        source: tuple[mmap.mmap, int, int, str] | None = None,
    ) -> None:
        self.cardinality, self.digest, self.sketch = cardinality, digest, sketch
        self._people, self._source = people, source

    @property
    def people(self) -> BitMap64:
        """The set, decoded on first use (a damaged one fails closed)."""
        if self._people is None:
            assert self._source is not None
            buffer, start, end, name = self._source
            try:
                people = BitMap64.deserialize(buffer[start:end])
            except (ValueError, OverflowError) as exc:
                raise _unreadable(name, "damaged set") from exc
            if len(people) != self.cardinality:
                raise _unreadable(name, "cardinality does not match its set")
            self._people = people
        return self._people

    def serialized(self) -> bytes:
        """The set's portable bytes (straight from the file when it came from one)."""
        if self._people is None and self._source is not None:
            buffer, start, end, _ = self._source
            return buffer[start:end]
        return self.people.serialize()


@dataclass(frozen=True)
class Listing:
    """What a memory folder holds: the newest base and the segments after it, by number."""

    base: int  # 0 when there is no base yet
    segments: tuple[int, ...]

    @property
    def last(self) -> int:
        """The highest sequence number written so far (0 for an empty memory)."""
        return self.segments[-1] if self.segments else self.base


def list_folder(folder: Path) -> Listing:
    """Read the folder's file names into a Listing (stale files are simply not listed)."""
    bases: list[int] = [0]
    segments: list[int] = []
    if folder.is_dir():
        for entry in folder.iterdir():
            match = _NAME.match(entry.name)
            if match:
                (bases if match[1] == "base" else segments).append(int(match[2]))
    base = max(bases)
    return Listing(base, tuple(sorted(s for s in segments if s > base)))


def file_name(kind: str, seq: int) -> str:
    """`rows-000000000007.bin` / `base-000000000064.bin`."""
    return f"{kind}-{seq:012d}.bin"


def encode(rows: list[StoredRow]) -> bytes:
    """Serialize rows into one segment file's bytes."""
    parts = [MAGIC]
    for row in rows:
        data = row.serialized()
        parts.append(_HEADER.pack(row.cardinality, row.digest, *row.sketch.tolist(), len(data)))
        parts.append(data)
    return b"".join(parts)


def decode(buffer: mmap.mmap, name: str) -> list[StoredRow]:
    """Parse a segment's record headers; anything malformed fails closed."""
    if buffer[: len(MAGIC)] != MAGIC:
        raise _unreadable(name, "unknown format or version")
    rows, pos, size = [], len(MAGIC), len(buffer)
    while pos < size:
        if pos + _HEADER.size > size:
            raise _unreadable(name, "truncated record")
        cardinality, digest = _PREFIX.unpack_from(buffer, pos)
        sketch = np.frombuffer(buffer, "<u4", SKETCH_BUCKETS, pos + _PREFIX.size)
        (length,) = struct.unpack_from("<I", buffer, pos + _HEADER.size - 4)
        pos += _HEADER.size
        if pos + length > size:
            raise _unreadable(name, "truncated record")
        source = (buffer, pos, pos + length, name)
        rows.append(StoredRow(cardinality, digest, sketch.astype(np.int64), source=source))
        pos += length
    return rows


def read_rows(folder: Path, listing: Listing, after: int) -> list[StoredRow]:
    """Rows of the base (when `after` precedes it) and of every segment numbered above `after`."""
    names = []
    if listing.base > after:
        names.append(file_name("base", listing.base))
        after = listing.base
    names.extend(file_name("rows", seq) for seq in listing.segments if seq > after)
    rows: list[StoredRow] = []
    for name in names:
        rows.extend(decode(_map(folder / name, name), name))
    return rows


def _map(path: Path, name: str) -> mmap.mmap:
    """Map a segment read-only; the mapping outlives a later merge that deletes the file."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < len(MAGIC):
            raise _unreadable(name, "truncated file")
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def write_segment(folder: Path, seq: int, rows: list[StoredRow]) -> None:
    """Durably write a new segment (caller holds the exclusive lock)."""
    write_durably(folder / file_name("rows", seq), encode(rows))


def compact(folder: Path, listing: Listing, all_rows: list[StoredRow]) -> None:
    """Merge everything into `base-<last>.bin`, then delete what it covers and stale temps.

    The new base is durable before anything is deleted, so a crash in between only leaves
    extra files that the next listing ignores.
    """
    last = listing.last
    write_durably(folder / file_name("base", last), encode(all_rows))
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        stale_tmp = entry.name.startswith((".rows-", ".base-")) and entry.name.endswith(".tmp")
        if stale_tmp or (match and int(match[2]) <= last and entry.name != file_name("base", last)):
            entry.unlink(missing_ok=True)


def _unreadable(name: str, why: str) -> PolicyRefusal:
    """The memory cannot be read, so no row can be checked: refuse rather than answer."""
    return PolicyRefusal(
        "difference_check",
        f"the difference-check memory file {name} is unreadable ({why}); "
        "no answer can be checked until it is restored",
    )
