"""Sets of people as roaring bitmaps of uint64 person ids, with a digest, a sketch and a
signature.

The digest recognises an identical set without comparing it; the sketch (how many of the
set's ids fall in each of 64 buckets, by id mod 64) gives a cheap lower bound on the size
of the symmetric difference of two sets, because in every bucket the sets differ by at least
the difference of their counts. The signature (4096 bits, the bit of each id's hash set)
gives another, tight for small sets: where two signatures differ, a person hashed there is
in one set only, and distinct bits need distinct people.
"""

from __future__ import annotations

import array
import hashlib
import struct
import threading
from collections.abc import Iterable
from typing import TypeAlias

import numpy as np
from pyroaring import AbstractBitMap64, BitMap64, FrozenBitMap64

PeopleSet: TypeAlias = AbstractBitMap64  # BitMap64 or FrozenBitMap64 of uint64 person ids
SKETCH_BUCKETS = 64
SIGNATURE_WORDS = 64  # 4096 bits
SIGNATURE_UP_TO = 8192  # sets of more people fill most bits: no signature (all zero)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top 12 bits pick the bit


def people_set(ids: Iterable[int] | np.ndarray) -> BitMap64:
    """Build a PeopleSet from person ids (any iterable, or a numpy array taken in one copy)."""
    if isinstance(ids, AbstractBitMap64):
        return BitMap64(ids)
    if isinstance(ids, np.ndarray):
        if ids.size and (ids.dtype.kind not in "iu" or (ids.dtype.kind == "i" and ids.min() < 0)):
            raise ValueError("person ids must be non-negative integers")
        top = int(ids.max()) if ids.size else 0
        if ids.size >= _DENSE_AFTER and top < _DENSE_LIMIT and ids.size * 64 >= top:
            return _dense_people_set(ids)
        raw = np.ascontiguousarray(ids, dtype=np.uint64).tobytes()
        return BitMap64(array.array("Q", raw))
    return BitMap64(ids)


_DENSE_AFTER = 1 << 12  # ids in a numpy array from which the dense builder pays off, when
_DENSE_LIMIT = 1 << 28  # they are small (dense ids of a registry: at most 256 MiB of flags)
# and at least one in 64 of the ids below the largest is in the set
_COOKIE_NO_RUNS = 12346  # the roaring portable format's cookie without run containers


def _dense_people_set(ids: np.ndarray) -> BitMap64:
    """The set of many small ids, built as roaring's portable bytes with numpy (no per-id
    Python work): one flag per possible id, then one container per 2^16 ids — a bitmap
    container above 4096 members, else the sorted low 16 bits — under a single 64-bit bucket."""
    chunks = -(-(int(ids.max()) + 1) // 65536)
    flags = np.zeros(chunks * 65536, dtype=bool)
    flags[ids] = True
    members = np.flatnonzero(flags)  # sorted, distinct
    counts = np.bincount(members >> 16, minlength=chunks)
    keys = np.flatnonzero(counts)
    starts = np.concatenate([[0], np.cumsum(counts)])
    low = (members & 0xFFFF).astype("<u2")
    grid = flags.reshape(chunks, 65536)
    bodies = []
    for key in keys.tolist():
        if counts[key] > 4096:
            bodies.append(np.packbits(grid[key], bitorder="little").tobytes())
        else:
            bodies.append(low[starts[key]:starts[key + 1]].tobytes())
    header = np.empty((len(keys), 2), dtype="<u2")
    header[:, 0], header[:, 1] = keys, counts[keys] - 1
    sizes = [len(b) for b in bodies]
    offsets = np.cumsum([8 + 8 * len(keys), *sizes[:-1]]).astype("<u4")
    portable = b"".join([struct.pack("<II", _COOKIE_NO_RUNS, len(keys)), header.tobytes(),
                         offsets.tobytes(), *bodies])
    return BitMap64.deserialize(struct.pack("<QI", 1, 0) + portable)


def canonical(people: PeopleSet) -> BitMap64:
    """A compact copy whose serialization depends on the set's content (run-optimized)."""
    copy = BitMap64(people)
    copy.run_optimize()
    copy.shrink_to_fit()
    return copy


def digest(canonical_people: BitMap64) -> bytes:
    """16-byte BLAKE2b of the canonical serialization: equal digests mean equal sets."""
    return hashlib.blake2b(canonical_people.serialize(), digest_size=16).digest()


_FROZEN: dict[int, tuple[FrozenBitMap64, bytes]] = {}  # digests of immutable sets, by identity
_FROZEN_KEPT = 64
_FROZEN_LOCK = threading.Lock()


def digest_of(people: PeopleSet) -> bytes:
    """The digest of a set's canonical copy; remembered for a FrozenBitMap64 (an engine
    passes the same frozen summary rows with every answer)."""
    if not isinstance(people, FrozenBitMap64):
        return digest(canonical(people))
    with _FROZEN_LOCK:
        known = _FROZEN.get(id(people))
    if known is not None and known[0] is people:
        return known[1]
    value = digest(canonical(people))
    with _FROZEN_LOCK:
        if len(_FROZEN) >= _FROZEN_KEPT:
            _FROZEN.pop(next(iter(_FROZEN)))
        _FROZEN[id(people)] = (people, value)
    return value


def sketch(people: PeopleSet) -> np.ndarray:
    """Counts of ids per bucket (id mod 64); the L1 distance of two sketches is ≤ |A Δ B|."""
    if not len(people):
        return np.zeros(SKETCH_BUCKETS, dtype=np.int64)
    ids = np.frombuffer(people.to_array(), dtype=np.uint64)
    buckets = (ids & np.uint64(SKETCH_BUCKETS - 1)).astype(np.intp)
    return np.bincount(buckets, minlength=SKETCH_BUCKETS).astype(np.int64)


def signature(people: PeopleSet) -> np.ndarray:
    """64 uint64 words with bit hash(id) set for each id (all zero above SIGNATURE_UP_TO
    people): the popcount of two signatures' XOR is ≤ |A Δ B| when both sets have one."""
    words = np.zeros(SIGNATURE_WORDS, dtype=np.uint64)
    if not len(people) or len(people) > SIGNATURE_UP_TO:
        return words
    ids = np.frombuffer(people.to_array(), dtype=np.uint64)
    bits = np.zeros(SIGNATURE_WORDS * 64, dtype=bool)
    bits[((ids * _MIX) >> np.uint64(52)).astype(np.intp)] = True
    return np.packbits(bits, bitorder="little").view("<u8").astype(np.uint64)


def has_signature(cardinality: int | np.ndarray) -> bool | np.ndarray:
    """Whether sets of this size carry a signature."""
    return cardinality <= SIGNATURE_UP_TO
