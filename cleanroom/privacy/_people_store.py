"""The on-disk form of the difference-check memory: immutable, versioned segment files.

Each transaction that remembers rows writes one new segment `rows-<seq>.bin` atomically; when
segments pile up they are merged into one `base-<seq>.bin` (covering every segment up to
`seq`) and the merged segments are deleted. Every file is written to a temporary name,
fsync'd and renamed, so a crash leaves either the old state or the new one, never a torn
file; readers take the newest base plus the segments after it.

Layout (little-endian), column by column so that opening a file is a handful of array views
over its mapping, with no work per row; a set is decoded only when an exact comparison needs
it. After the 8-byte magic `CRPSET2\\n` and the row count n (u64):
cardinalities n × u64, digests n × 16 bytes, sketches n × 64 × u32, signatures n × 64 × u64,
set offsets (n + 1) × u64 (from the start of the sets), then the sets' roaring64 portable
bytes one after another. Files of the first format (`CRPSET1\\n`: per record cardinality
u64, digest, sketch 64 × u32, length u32, set) are still read; merging rewrites them.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyroaring import BitMap64

from protocols import PolicyRefusal

from ._files import write_durably
from ._people import SIGNATURE_WORDS, SKETCH_BUCKETS, signature

MAGIC = b"CRPSET2\n"
MAGIC_V1 = b"CRPSET1\n"
_HEADER_V1 = struct.Struct(f"<Q16s{SKETCH_BUCKETS}II")
_PREFIX_V1 = struct.Struct("<Q16s")  # the v1 header's cardinality and digest
_NAME = re.compile(r"^(rows|base)-(\d{12})\.bin$")
COMPACT_AFTER = 64  # segments beyond the base before they are merged into a new base


@dataclass(frozen=True)
class StoredRow:
    """One output row to remember: its people, their count, digest, sketch and signature."""

    cardinality: int
    digest: bytes
    sketch: np.ndarray
    signature: np.ndarray
    people: BitMap64


@dataclass
class Block:
    """Remembered rows column by column: those of one file (sets left in the mapping until
    `people` decodes one), or rows made in memory (`made`)."""

    cardinalities: np.ndarray  # int64 (n,)
    digests: list[bytes]
    sketches: np.ndarray  # int64 (n, SKETCH_BUCKETS)
    signatures: np.ndarray  # uint64 (n, SIGNATURE_WORDS)
    buffer: mmap.mmap | None = None
    starts: np.ndarray | None = None  # (n,) where each set's bytes start and end in `buffer`
    ends: np.ndarray | None = None
    name: str = ""
    made: list[BitMap64] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.digests)

    def take(self, rows: list[int]) -> Block:
        """These rows only (the same file mapping)."""
        if len(rows) == len(self):
            return self
        at = np.asarray(rows, dtype=np.intp)
        return Block(self.cardinalities[at], [self.digests[i] for i in rows],
                     self.sketches[at], self.signatures[at], self.buffer,
                     None if self.starts is None else self.starts[at],
                     None if self.ends is None else self.ends[at], self.name,
                     [self.made[i] for i in rows] if self.made else [])

    def people(self, i: int) -> BitMap64:
        """Row i's set, decoded from the file (a damaged one fails closed)."""
        if self.made:
            return self.made[i]
        assert self.buffer is not None and self.starts is not None and self.ends is not None
        start, end = int(self.starts[i]), int(self.ends[i])
        try:
            people = BitMap64.deserialize(self.buffer[start:end])
        except (ValueError, OverflowError) as exc:
            raise _unreadable(self.name, "damaged set") from exc
        if len(people) != int(self.cardinalities[i]):
            raise _unreadable(self.name, "cardinality does not match its set")
        return people

    def serialized(self, i: int) -> bytes:
        """Row i's portable bytes (straight from the file when it came from one)."""
        if self.made:
            return bytes(self.made[i].serialize())
        assert self.buffer is not None and self.starts is not None and self.ends is not None
        return self.buffer[int(self.starts[i]):int(self.ends[i])]


def block_of(rows: list[StoredRow]) -> Block:
    """Rows made in memory, as a Block."""
    n = len(rows)
    return Block(
        np.array([r.cardinality for r in rows], dtype=np.int64),
        [r.digest for r in rows],
        np.array([r.sketch for r in rows], dtype=np.int64).reshape(n, SKETCH_BUCKETS),
        np.array([r.signature for r in rows], dtype=np.uint64).reshape(n, SIGNATURE_WORDS),
        made=[r.people for r in rows],
    )


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


def encode(blocks: list[Block]) -> bytes:
    """Serialize the rows of these blocks into one file's bytes."""
    blocks = [b for b in blocks if len(b)]
    n = sum(len(b) for b in blocks)
    sets = [b.serialized(i) for b in blocks for i in range(len(b))]
    offsets = np.zeros(n + 1, dtype="<u8")
    np.cumsum([len(s) for s in sets], out=offsets[1:])
    if not blocks:
        return MAGIC + struct.pack("<Q", 0) + offsets.tobytes()

    def column(name: str, dtype: str) -> bytes:
        return np.concatenate([getattr(b, name) for b in blocks]).astype(dtype).tobytes()

    return b"".join([
        MAGIC, struct.pack("<Q", n), column("cardinalities", "<u8"),
        b"".join(d for b in blocks for d in b.digests), column("sketches", "<u4"),
        column("signatures", "<u8"), offsets.tobytes(), *sets])


def decode(buffer: mmap.mmap, name: str) -> Block:
    """Parse a file into a Block; anything malformed fails closed."""
    if buffer[: len(MAGIC)] == MAGIC_V1:
        return _decode_v1(buffer, name)
    if buffer[: len(MAGIC)] != MAGIC:
        raise _unreadable(name, "unknown format or version")
    size = len(buffer)
    if size < len(MAGIC) + 8:
        raise _unreadable(name, "truncated file")
    (n,) = struct.unpack_from("<Q", buffer, len(MAGIC))
    per_row = 8 + 16 + 4 * SKETCH_BUCKETS + 8 * SIGNATURE_WORDS + 8
    pos = len(MAGIC) + 8
    if n > (size - pos - 8) // per_row:
        raise _unreadable(name, "truncated record")

    def take(count: int, dtype: str) -> np.ndarray:
        nonlocal pos
        out = np.frombuffer(buffer, dtype, count, pos)
        pos += out.nbytes
        return out

    cards = take(n, "<u8").astype(np.int64)
    digests = take(n * 16, "u1").tobytes()
    sketches = take(n * SKETCH_BUCKETS, "<u4").astype(np.int64).reshape(n, SKETCH_BUCKETS)
    signatures = take(n * SIGNATURE_WORDS, "<u8").astype(np.uint64).reshape(n, SIGNATURE_WORDS)
    offsets = take(n + 1, "<u8").astype(np.int64) + pos
    if offsets[0] != pos or np.any(np.diff(offsets) < 0) or offsets[-1] != size:
        raise _unreadable(name, "truncated record")
    return Block(cards, [digests[16 * i:16 * i + 16] for i in range(n)], sketches, signatures,
                 buffer=buffer, starts=offsets[:-1], ends=offsets[1:], name=name)


def _decode_v1(buffer: mmap.mmap, name: str) -> Block:
    """A file of the first format, record by record; its sets are decoded at once (for their
    signatures) and kept, until a merge rewrites them in the current format."""
    cards, digests, sketches, sets = [], [], [], []
    pos, size = len(MAGIC_V1), len(buffer)
    while pos < size:
        if pos + _HEADER_V1.size > size:
            raise _unreadable(name, "truncated record")
        cardinality, digest = _PREFIX_V1.unpack_from(buffer, pos)
        sketches.append(np.frombuffer(buffer, "<u4", SKETCH_BUCKETS, pos + _PREFIX_V1.size))
        (length,) = struct.unpack_from("<I", buffer, pos + _HEADER_V1.size - 4)
        pos += _HEADER_V1.size
        if pos + length > size:
            raise _unreadable(name, "truncated record")
        try:
            people = BitMap64.deserialize(buffer[pos:pos + length])
        except (ValueError, OverflowError) as exc:
            raise _unreadable(name, "damaged set") from exc
        if len(people) != cardinality:
            raise _unreadable(name, "cardinality does not match its set")
        cards.append(cardinality)
        digests.append(digest)
        sets.append(people)
        pos += length
    n = len(cards)
    return Block(np.array(cards, dtype=np.int64), digests,
                 np.array(sketches, dtype=np.int64).reshape(n, SKETCH_BUCKETS),
                 np.array([signature(p) for p in sets], dtype=np.uint64).reshape(
                     n, SIGNATURE_WORDS), name=name, made=sets)


def read_blocks(folder: Path, listing: Listing, after: int) -> list[Block]:
    """The base (when `after` precedes it) and every segment numbered above `after`."""
    names = []
    if listing.base > after:
        names.append(file_name("base", listing.base))
        after = listing.base
    names.extend(file_name("rows", seq) for seq in listing.segments if seq > after)
    return [decode(_map(folder / name, name), name) for name in names]


def _map(path: Path, name: str) -> mmap.mmap:
    """Map a segment read-only; the mapping outlives a later merge that deletes the file."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < len(MAGIC):
            raise _unreadable(name, "truncated file")
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def write_segment(folder: Path, seq: int, rows: list[StoredRow]) -> None:
    """Durably write a new segment (caller holds the exclusive lock)."""
    write_durably(folder / file_name("rows", seq), encode([block_of(rows)]))


def compact(folder: Path, listing: Listing, blocks: list[Block]) -> None:
    """Merge everything into `base-<last>.bin`, then delete what it covers and stale temps.

    The new base is durable before anything is deleted, so a crash in between only leaves
    extra files that the next listing ignores.
    """
    last = listing.last
    write_durably(folder / file_name("base", last), encode(blocks))
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
