"""Sets of people as roaring bitmaps of uint64 person ids, with a digest and a sketch.

The digest recognises an identical set without comparing it; the sketch (how many of the
set's ids fall in each of 64 buckets, by id mod 64) gives a cheap lower bound on the size
of the symmetric difference of two sets, because in every bucket the sets differ by at least
the difference of their counts.
"""

from __future__ import annotations

import array
import hashlib
from collections.abc import Iterable
from typing import TypeAlias

import numpy as np
from pyroaring import AbstractBitMap64, BitMap64

PeopleSet: TypeAlias = AbstractBitMap64  # BitMap64 or FrozenBitMap64 of uint64 person ids
SKETCH_BUCKETS = 64


def people_set(ids: Iterable[int] | np.ndarray) -> BitMap64:
    """Build a PeopleSet from person ids (any iterable, or a numpy array taken in one copy)."""
    if isinstance(ids, AbstractBitMap64):
        return BitMap64(ids)
    if isinstance(ids, np.ndarray):
        if ids.size and (ids.dtype.kind not in "iu" or (ids.dtype.kind == "i" and ids.min() < 0)):
            raise ValueError("person ids must be non-negative integers")
        raw = np.ascontiguousarray(ids, dtype=np.uint64).tobytes()
        return BitMap64(array.array("Q", raw))
    return BitMap64(ids)


def canonical(people: PeopleSet) -> BitMap64:
    """A compact copy whose serialization depends on the set's content (run-optimized)."""
    copy = BitMap64(people)
    copy.run_optimize()
    copy.shrink_to_fit()
    return copy


def digest(canonical_people: BitMap64) -> bytes:
    """16-byte BLAKE2b of the canonical serialization: equal digests mean equal sets."""
    return hashlib.blake2b(canonical_people.serialize(), digest_size=16).digest()


def sketch(people: PeopleSet) -> np.ndarray:
    """Counts of ids per bucket (id mod 64); the L1 distance of two sketches is ≤ |A Δ B|."""
    if not len(people):
        return np.zeros(SKETCH_BUCKETS, dtype=np.int64)
    ids = np.frombuffer(people.to_array(), dtype=np.uint64)
    buckets = (ids & np.uint64(SKETCH_BUCKETS - 1)).astype(np.intp)
    return np.bincount(buckets, minlength=SKETCH_BUCKETS).astype(np.int64)
