"""Difference checks (threshold mode): never answer a row whose people differ from an answered
row's people by 1 to minimum−1.

Two answers about sets A and B subtract to an answer about the people in A Δ B (the symmetric
difference). When A ⊂ B (Basic vs Basic ∪ Platinum), |A Δ B| = |B \\ A| is exactly the
withheld group, so the size of the symmetric difference is the one measure that catches the
subset, superset and OR-victim attacks alike. Identical sets (|A Δ B| = 0) reveal nothing new.
A row is compared with every row answered before (all members, all sessions) and with the
rows of its own result accepted before it; suppressed rows are not remembered (they were not
answered). What this does not stop: reconstruction from three or more overlapping answers.

Speed: a row is compared exactly only with remembered rows whose cardinality is within
minimum−1 of its own (|A Δ B| ≥ ||A| − |B||); when that still leaves many, two lower bounds
of |A Δ B| computed for all of them in one vectorized step leave out most: the L1 distance of
64-bucket counts (good for large sets) and the popcount of the XOR of 4096-bit signatures
(good for small sets). Identical sets are recognised by digest. The memory is read from its
files as columns (no work per row) and a remembered set is decoded only for an exact
comparison.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from pyroaring import AbstractBitMap64, BitMap64

from . import _people_store as store
from ._files import locked
from ._people import (
    SIGNATURE_WORDS,
    SKETCH_BUCKETS,
    PeopleSet,
    canonical,
    digest_of,
    has_signature,
    signature,
    sketch,
)

_BOUNDS_AFTER = 8  # candidates after the cardinality filter before the lower bounds are used


@dataclass(frozen=True)
class DifferenceVerdict:
    """Which rows of a result may be answered (`accepted`) and which are withheld, by index."""

    accepted: tuple[int, ...]
    suppressed: tuple[int, ...]

    @property
    def suppressed_count(self) -> int:
        """How many rows the difference check withheld (for the answer's metadata and audit)."""
        return len(self.suppressed)


class _Probe:
    """A row being checked; its canonical copy, digest, sketch and signature are computed
    only if needed."""

    def __init__(self, people: PeopleSet) -> None:
        self.people = people
        self.cardinality = len(people)
        self._canonical: BitMap64 | None = None
        self._digest: bytes | None = None
        self._sketch: np.ndarray | None = None
        self._signature: np.ndarray | None = None

    @property
    def digest(self) -> bytes:
        """Content digest (of the canonical copy)."""
        if self._digest is None:
            self._digest = digest_of(self.people)
        return self._digest

    @property
    def sketch(self) -> np.ndarray:
        """Bucket counts for the L1 lower bound."""
        if self._sketch is None:
            self._sketch = sketch(self.people)
        return self._sketch

    @property
    def signature(self) -> np.ndarray:
        """Signature bits for the XOR lower bound (all zero for large sets)."""
        if self._signature is None:
            self._signature = signature(self.people)
        return self._signature

    @property
    def stored_people(self) -> BitMap64:
        """The compact copy that is remembered."""
        if self._canonical is None:
            self._canonical = canonical(self.people)
        return self._canonical

    def stored(self) -> store.StoredRow:
        """The row as it is written to the memory."""
        return store.StoredRow(self.cardinality, self.digest, self.sketch, self.signature,
                               self.stored_people)


class _Index:
    """Remembered rows: cardinalities, sketches and signatures in growable numpy buffers, the
    sets in their blocks (decoded on first exact comparison)."""

    def __init__(self) -> None:
        self.blocks: list[store.Block] = []
        self.digests: set[bytes] = set()
        self.n = 0
        self._digest_at: list[bytes] = []
        self._cards = np.zeros(16, dtype=np.int64)
        self._sketches = np.zeros((16, SKETCH_BUCKETS), dtype=np.int64)
        self._signatures = np.zeros((16, SIGNATURE_WORDS), dtype=np.uint64)
        self._where = np.zeros((16, 2), dtype=np.int64)  # (block, row in block)
        self._decoded: dict[int, BitMap64] = {}

    def extend(self, block: store.Block) -> None:
        """Append a block's rows, but those whose digest is already present."""
        keep = []
        for i, d in enumerate(block.digests):
            if d not in self.digests:
                self.digests.add(d)
                keep.append(i)
        if not keep:
            return
        block = block.take(keep)
        n, k = self.n, len(block)
        if n + k > len(self._cards):
            size = max(2 * len(self._cards), n + k)
            self._cards = np.resize(self._cards, size)
            self._sketches = np.resize(self._sketches, (size, SKETCH_BUCKETS))
            self._signatures = np.resize(self._signatures, (size, SIGNATURE_WORDS))
            self._where = np.resize(self._where, (size, 2))
        self._cards[n:n + k] = block.cardinalities
        self._sketches[n:n + k] = block.sketches
        self._signatures[n:n + k] = block.signatures
        self._where[n:n + k, 0] = len(self.blocks)
        self._where[n:n + k, 1] = np.arange(k)
        self._digest_at.extend(block.digests)
        self.blocks.append(block)
        self.n = n + k

    def add(self, row: store.StoredRow) -> None:
        """Append one row made in memory (skipped if its digest is present)."""
        self.extend(store.block_of([row]))

    def people(self, i: int) -> BitMap64:
        """Row i's set (decoded from its file once)."""
        got = self._decoded.get(i)
        if got is None:
            b, j = self._where[i].tolist()
            got = self._decoded[i] = self.blocks[b].people(j)
        return got

    def conflicts(self, probe: _Probe, minimum: int) -> bool:
        """True if some row's people differ from the probe's by 1..minimum−1."""
        n = self.n
        if n == 0 or minimum <= 1:
            return False
        near = np.flatnonzero(np.abs(self._cards[:n] - probe.cardinality) < minimum)
        if near.size > _BOUNDS_AFTER:
            lower = np.abs(self._sketches[near] - probe.sketch).sum(axis=1)
            if has_signature(probe.cardinality):
                bits = np.bitwise_count(self._signatures[near] ^ probe.signature).sum(axis=1)
                both = has_signature(self._cards[near])
                lower = np.maximum(lower, np.where(both, bits, 0))
            near = near[lower < minimum]
        for i in near.tolist():
            if self._cards[i] == probe.cardinality and self._digest_at[i] == probe.digest:
                continue  # the same people: asking again reveals nothing
            differ = probe.people.symmetric_difference_cardinality(self.people(i))
            if 0 < differ < minimum:
                return True
        return False


class DifferenceMemory:
    """The people behind every answered row of a collaboration, kept in a folder of its own.

    Safe for concurrent processes: a check holds a shared lock, a check-and-remember an
    exclusive one, so two racing answers can never both slip past each other.

    A row identical to a remembered one is answered at once: it cannot differ from any other
    remembered row by 1..minimum−1 (or it would not have been remembered after it, nor it
    after them), and any later row close to it is caught by the memory itself. A dry run's
    work on a row (digest, sketch) is reused by a check-and-remember of the same set object.
    """

    def __init__(self, folder: str | PathLike[str]) -> None:
        self.folder = Path(folder)
        self._lock = self.folder / "lock"
        self._index = _Index()
        self._seq = 0
        self._threads = threading.Lock()  # the file lock orders processes; this, threads
        self._probes: dict[int, _Probe] = {}  # the last dry run's rows, by set identity
        self._made: list[_Probe] = []

    def check(self, rows: Sequence[PeopleSet], minimum: int) -> DifferenceVerdict:
        """Say which rows would be answered, without remembering anything (a dry run)."""
        with self._threads, locked(self._lock, exclusive=False):
            self._refresh()
            verdict, _ = self._screen(rows, minimum)
            self._probes = {id(p.people): p for p in self._made}
        return verdict

    def check_and_remember(self, rows: Sequence[PeopleSet], minimum: int) -> DifferenceVerdict:
        """Check the rows of one result and durably remember the accepted ones, atomically.

        `minimum` is the owners' minimum of distinct people; rows are expected to have passed
        that threshold already. The accepted rows are on disk before this returns.
        """
        with self._threads, locked(self._lock, exclusive=True):
            self._refresh()
            verdict, accepted = self._screen(rows, minimum)
            self._probes = {}
            self._remember(accepted)
        return verdict

    def __len__(self) -> int:
        """How many distinct people sets are remembered (as of the last check)."""
        return self._index.n

    def _screen(
        self, rows: Sequence[PeopleSet], minimum: int
    ) -> tuple[DifferenceVerdict, list[_Probe]]:
        """Compare each row with the memory and with the accepted rows before it."""
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
            raise ValueError(f"minimum must be a positive integer, not {minimum!r}")
        same_result = _Index()
        accepted: list[int] = []
        suppressed: list[int] = []
        probes: list[_Probe] = []
        self._made = []
        for i, people in enumerate(rows):
            if not isinstance(people, AbstractBitMap64):
                raise TypeError(f"row {i}: expected a BitMap64 of person ids")
            known = self._probes.get(id(people))
            probe = known if known is not None and known.people is people else _Probe(people)
            self._made.append(probe)
            if minimum > 1 and probe.digest in self._index.digests:
                accepted.append(i)  # asked before: answered, and the memory covers it
                probes.append(probe)
                continue
            if self._index.conflicts(probe, minimum) or same_result.conflicts(probe, minimum):
                suppressed.append(i)
                continue
            accepted.append(i)
            probes.append(probe)
            if minimum > 1 and len(rows) > 1:
                same_result.add(probe.stored())
        return DifferenceVerdict(tuple(accepted), tuple(suppressed)), probes

    def _remember(self, probes: list[_Probe]) -> None:
        """Write the new distinct sets as one segment, then merge segments if many."""
        fresh: list[store.StoredRow] = []
        seen = set(self._index.digests)
        for probe in probes:
            if probe.digest not in seen:
                seen.add(probe.digest)
                fresh.append(probe.stored())
        if not fresh:
            return
        listing = store.list_folder(self.folder)
        seq = listing.last + 1
        store.write_segment(self.folder, seq, fresh)
        self._index.extend(store.block_of(fresh))
        self._seq = seq
        if len(listing.segments) + 1 > store.COMPACT_AFTER:
            merged = store.Listing(listing.base, (*listing.segments, seq))
            store.compact(self.folder, merged, self._index.blocks)

    def _refresh(self) -> None:
        """Load what other processes (or instances) remembered since this one last looked."""
        listing = store.list_folder(self.folder)
        if listing.base > self._seq or listing.last < self._seq:
            self._index, self._seq = _Index(), 0  # merged past us, or reset: read it all
        if listing.last == self._seq:
            return
        for block in store.read_blocks(self.folder, listing, self._seq):
            self._index.extend(block)
        self._seq = listing.last
