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
minimum−1 of its own (|A Δ B| ≥ ||A| − |B||); when that still leaves many, their 64-bucket
sketches bound |A Δ B| from below in one vectorized step; identical sets are recognised by
digest.
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
from ._people import SKETCH_BUCKETS, PeopleSet, canonical, digest_of, sketch

_SKETCH_AFTER = 8  # candidates after the cardinality filter before sketches are consulted


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
    """A row being checked; its canonical copy, digest and sketch are computed only if needed."""

    def __init__(self, people: PeopleSet) -> None:
        self.people = people
        self.cardinality = len(people)
        self._canonical: BitMap64 | None = None
        self._digest: bytes | None = None
        self._sketch: np.ndarray | None = None

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
    def stored_people(self) -> BitMap64:
        """The compact copy that is remembered."""
        if self._canonical is None:
            self._canonical = canonical(self.people)
        return self._canonical

    def stored(self) -> store.StoredRow:
        """The row as it is written to the memory."""
        return store.StoredRow(
            self.cardinality, self.digest, self.sketch, people=self.stored_people
        )


class _Index:
    """Remembered rows with their cardinalities and sketches in growable numpy buffers."""

    def __init__(self) -> None:
        self.rows: list[store.StoredRow] = []
        self.digests: set[bytes] = set()
        self._cards = np.zeros(16, dtype=np.int64)
        self._sketches = np.zeros((16, SKETCH_BUCKETS), dtype=np.int64)

    def add(self, row: store.StoredRow) -> None:
        """Append a row (callers skip rows whose digest is already present)."""
        n = len(self.rows)
        if n == len(self._cards):
            self._cards = np.resize(self._cards, 2 * n)
            self._sketches = np.resize(self._sketches, (2 * n, SKETCH_BUCKETS))
        self._cards[n] = row.cardinality
        self._sketches[n] = row.sketch
        self.rows.append(row)
        self.digests.add(row.digest)

    def conflicts(self, probe: _Probe, minimum: int) -> bool:
        """True if some row's people differ from the probe's by 1..minimum−1."""
        n = len(self.rows)
        if n == 0 or minimum <= 1:
            return False
        near = np.flatnonzero(np.abs(self._cards[:n] - probe.cardinality) < minimum)
        if near.size > _SKETCH_AFTER:
            lower_bounds = np.abs(self._sketches[near] - probe.sketch).sum(axis=1)
            near = near[lower_bounds < minimum]
        for i in near.tolist():
            row = self.rows[i]
            if row.cardinality == probe.cardinality and row.digest == probe.digest:
                continue  # the same people: asking again reveals nothing
            differ = probe.people.symmetric_difference_cardinality(row.people)
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
        return len(self._index.rows)

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
        for row in fresh:
            self._index.add(row)
        self._seq = seq
        if len(listing.segments) + 1 > store.COMPACT_AFTER:
            merged = store.Listing(listing.base, (*listing.segments, seq))
            store.compact(self.folder, merged, self._index.rows)

    def _refresh(self) -> None:
        """Load what other processes (or instances) remembered since this one last looked."""
        listing = store.list_folder(self.folder)
        if listing.base > self._seq or listing.last < self._seq:
            self._index, self._seq = _Index(), 0  # merged past us, or reset: read it all
        if listing.last == self._seq:
            return
        for row in store.read_rows(self.folder, listing, self._seq):
            if row.digest not in self._index.digests:
                self._index.add(row)
        self._seq = listing.last
