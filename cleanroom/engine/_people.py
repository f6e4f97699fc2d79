"""Stable person ids: the same people get the same ids after any re-upload, so difference
checks compare people, not rows.

Entity ids belong to one resolution (scrambled with a fresh key from record positions), so
they cannot be compared across re-uploads. Instead, for each table t and each entity e with
records in t, a person key K_t(e) is derived from e's tokens in t: the smallest, over e's
records in t, of a 64-bit hash of the record's join-column tokens, salted with a secret the
engine keeps in the collaboration's state folder. It depends only on tokens, never on row
positions, so dropping or reordering other rows leaves it unchanged. Two entities can share a
key only if records of both hold exactly the same tokens — tokens that linked no one (over-
shared, or all missing); such entities fall back to a key of their record's random `row_id`.

Keys are mapped to dense ids (0, 1, 2, … in key order as they are first seen) by a registry
per table in the state folder, which only grows; so people sets are compact roaring bitmaps,
and an id says nothing about a token, a row or an entity. Each table has its own id space: a
row's people are given per table (see `DifferenceGuard`), so an owner rewriting its own table
cannot disguise who is in a row as the other tables know them.

Per resolution, each table's person ids by entity label (see `PeopleIndex`) and the people of
the summary rows are kept beside the registries, in `.cleanroom-privacy/people/r4-<key>/`
(derived from them, so they live and go with them); the registry, the salt and the
difference memories live in `.cleanroom-privacy/` and must not be deleted.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyroaring import FrozenBitMap64

from cleanroom.config import Collaboration, Roster
from cleanroom.privacy import PeopleSet, file_lock, people_set, write_durably
from protocols import KeyMaterialError, PolicyRefusal, atomic_path, fsync_path

from ._resolve import NODE_SHIFT, Resolution, unscramble
from ._sql import Sql, execute, quote_ident

STATE_DIR = ".cleanroom-privacy"
KEY_VERSION = "cleanroom-person-key/v1"
_SECRET = "secret"
_SECRET_BYTES = 32
KEEP_OLD_SECONDS = 3600


class RowsRoom(Protocol):
    """What reading a room's rows needs: its collaboration, connection and resolution."""

    collaboration: Collaboration

    @property
    def connection(self) -> Any: ...

    def resolution(self, *, refresh: bool = False) -> Resolution: ...

    def entity_rows_sql(self, name: str, columns: Sequence[str], *, overlap_only: bool,
                        record_id: str | None = None,
                        token_columns: Sequence[str] = ()) -> Sql: ...


def state_folder(collaboration: Collaboration | Roster) -> Path:
    """The collaboration's privacy state: salt, person registries, memories, budget."""
    return collaboration.path.parent / STATE_DIR


def engine_secret(folder: Path) -> bytes:
    """The engine's own 32-byte secret for this collaboration (made once, mode 0600)."""
    path = folder / _SECRET
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(_SECRET_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
    for _ in range(100):  # a racing creator may still be writing its 32 bytes
        data = path.read_bytes()
        if len(data) == _SECRET_BYTES:
            return data
        if data:
            break
    raise KeyMaterialError(f"{STATE_DIR}/{_SECRET} is damaged (not {_SECRET_BYTES} bytes)")


class PeopleIndex:
    """The stable person ids of one resolution, per table, and the summary rows' people.

    An entity's id is its label (a record position: table index << 40 + row number) put
    through the resolution's keyed bijection, so the engine inverts it and reads the entity's
    person ids at the label's position: for each label table s, an array over s's rows with
    one column per table (`by<s>.npy`; the dtype's largest value where that row labels no
    entity with records in that table). No search, no sort: an answer's people cost one
    gather, every table's ids side by side in one cache line."""

    def __init__(self, folder: Path, tables: Sequence[str], rules: Sequence[str],
                 scramble: Sequence[int]) -> None:
        self.folder, self.tables, self.rules = folder, tuple(tables), tuple(rules)
        self.scramble = tuple(scramble)
        self._arrays: dict[int, np.ndarray | None] = {}
        self._sets: dict[str, PeopleSet] = {}
        self._answers: OrderedDict[Hashable, dict[Hashable, dict[str, PeopleSet]]] = \
            OrderedDict()
        self._lock = threading.Lock()

    def answered(self, question: Hashable) -> dict[Hashable, dict[str, PeopleSet]] | None:
        """The people of the rows of a question answered before in this resolution (by row
        key), or None. The rows' people depend only on the tokens and the attributes, which
        the resolution's key covers; so asking again checks the same sets against the
        memory without listing everyone again."""
        with self._lock:
            known = self._answers.get(question)
            if known is not None:
                self._answers.move_to_end(question)
            return known

    def forget_answers(self) -> None:
        """Drop the kept questions' people: the next answers list their people again."""
        with self._lock:
            self._answers.clear()

    def remember_answer(self, question: Hashable,
                        rows: dict[Hashable, dict[str, PeopleSet]]) -> None:
        """Keep a question's rows' people (the last `ANSWERS_KEPT` questions)."""
        frozen: dict[Hashable, dict[str, PeopleSet]] = {
            key: {t: FrozenBitMap64(people) for t, people in sets.items()}
            for key, sets in rows.items()}
        with self._lock:
            self._answers[question] = frozen
            self._answers.move_to_end(question)
            while len(self._answers) > ANSWERS_KEPT:
                self._answers.popitem(last=False)

    def _by(self, s: int) -> np.ndarray | None:
        """Person ids (one column per table) of the entities labelled by table s's rows,
        mapped read-only rather than read (a new process's first answer gathers from the
        page cache instead of copying 80 MB per 10M rows first: 0.18 s against 0.46 s)."""
        if s not in self._arrays:
            path = self.folder / f"by{s}.npy"
            self._arrays[s] = np.load(path, mmap_mode="r") if path.exists() else None
        return self._arrays[s]

    def _people(self, entity_ids: np.ndarray) -> np.ndarray:
        """Person ids of these entities, one column per table (unchecked: the dtype's largest
        value where an entity has no records in that table)."""
        labels = unscramble(np.asarray(entity_ids, dtype=np.int64), self.scramble)
        sources, rows = labels >> NODE_SHIFT, labels & ((1 << NODE_SHIFT) - 1)
        if not labels.size:
            return np.zeros((0, len(self.tables)), dtype=np.uint64)
        if bool(np.all(sources == sources[0])):  # the usual case: one label table
            return self._gather(int(sources[0]), rows)
        parts = [(np.flatnonzero(sources == s), s) for s in np.unique(sources).tolist()]
        got = [self._gather(s, rows[where]) for where, s in parts]
        out = np.empty((labels.size, len(self.tables)), dtype=got[0].dtype)
        for (where, _), people in zip(parts, got, strict=True):
            out[where] = people
        return out

    def _gather(self, s: int, rows: np.ndarray) -> np.ndarray:
        """The person-id rows at these row numbers of label table s (refused if outside)."""
        by = self._by(s) if 0 <= s < len(self.tables) else None
        if by is None or int(rows.max()) >= len(by):
            raise _unindexed()
        return np.take(by, rows, axis=0)  # (by[rows] copies row by row: 6x slower)

    def ids(self, table: str, entity_ids: np.ndarray) -> np.ndarray:
        """Person ids in `table` of these entities (each must have records there)."""
        return _column(self._people(entity_ids), self.tables.index(table))

    def _set(self, name: str) -> PeopleSet:
        """A summary row's people, written when the index was built."""
        if name not in self._sets:
            self._sets[name] = FrozenBitMap64.deserialize((self.folder / f"{name}.roaring")
                                                          .read_bytes())
        return self._sets[name]

    def row(self, entity_ids: np.ndarray, tables: Iterable[str]) -> dict[str, PeopleSet]:
        """The people of a row of these entities, as each of `tables` knows them."""
        return self.rows([entity_ids], tables)[0]

    def rows(self, entity_ids: Sequence[np.ndarray],
             tables: Iterable[str]) -> list[dict[str, PeopleSet]]:
        """`row` for many rows, their sets built on every core (numpy releases the GIL)."""
        names = tuple(tables)
        at = [self.tables.index(t) for t in names]
        rows = [np.asarray(ents, dtype=np.int64) for ents in entity_ids]

        def build(ents: np.ndarray) -> dict[str, PeopleSet]:
            people = self._people(ents)
            return {t: people_set(_column(people, i)) for t, i in zip(names, at, strict=True)}

        workers = min(len(rows), os.cpu_count() or 1)
        if workers > 1 and sum(e.size for e in rows) > _PARALLEL_AFTER:
            for s in range(len(self.tables)):  # read the arrays once, not in racing threads
                self._by(s)
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(build, rows))
        return [build(ents) for ents in rows]

    def table(self, table: str) -> dict[str, PeopleSet]:
        """Everyone with records in `table` (the `tables.<t>` summary row)."""
        return {table: self._set(f"table{self.tables.index(table)}")}

    def overlap(self) -> dict[str, PeopleSet]:
        """The people in every table (the `overlap` row), as each table knows them."""
        return {t: self._set(f"overlap{i}") for i, t in enumerate(self.tables)}

    def links(self, rule: str) -> dict[str, PeopleSet]:
        """The overlapping people linked by `rule` (a `links_by_rule` row)."""
        r = self.rules.index(rule)
        return {t: self._set(f"links{r}.{i}") for i, t in enumerate(self.tables)}


def _column(people: np.ndarray, i: int) -> np.ndarray:
    """Column i of a person-id matrix, refused if an entity has no records in that table."""
    column = people[:, i]
    if bool(np.any(column == np.iinfo(people.dtype).max)):
        raise _unindexed()
    return column


def _unindexed() -> PolicyRefusal:
    return PolicyRefusal("difference_check", "an answer's people are not in the people index "
                         "of this resolution; nothing can be checked")


ANSWERS_KEPT = 32  # questions whose rows' people an index keeps (a dashboard's worth)
_PARALLEL_AFTER = 100_000  # entity ids in all rows together, from which threads pay off
_INDEXES: weakref.WeakKeyDictionary[Any, PeopleIndex] = weakref.WeakKeyDictionary()


def people_index(room: RowsRoom) -> PeopleIndex:
    """The people index of the room's current resolution: loaded, or built once (and the
    registries grown) under the state folder's lock."""
    res = room.resolution()
    collab = room.collaboration
    tables = tuple(collab.tables)
    state = state_folder(collab) / "people"
    folder = state / f"r4-{res.cache_key[:24]}"
    known = _INDEXES.get(room)
    if known is not None and known.folder == folder:
        return known
    index = PeopleIndex(folder, tables, tuple(res.links_by_rule), res.scramble)
    if not (folder / "done").exists():
        with file_lock(state / "lock", exclusive=True):
            if not (folder / "done").exists():
                _build(room, res, state, index)
                write_durably(folder / "done", b"")
                for old in state.glob("r*-*"):  # an hour's grace for answers still reading
                    if old != folder and old.is_dir() and \
                            time.time() - old.stat().st_mtime > KEEP_OLD_SECONDS:
                        _remove(old)
    _INDEXES[room] = index
    return index


def _build(room: RowsRoom, res: Resolution, state: Path, index: PeopleIndex) -> None:
    """Compute every table's person ids (growing its registry), write them by label, and
    the summary rows' people (so answers only read)."""
    con = room.connection
    collab = room.collaboration
    salt = engine_secret(state.parent)
    _check_key_function(con, state, salt)
    folder = index.folder
    folder.mkdir(parents=True, exist_ok=True)
    sets: dict[str, PeopleSet] = {}
    found: list[dict[int, tuple[np.ndarray, np.ndarray]]] = []
    for i, (name, table) in enumerate(collab.tables.items()):
        joins = list(table.policy.join_columns)
        fallback = "row_id" if "row_id" in pq.read_schema(table.tokens).names else None
        rows = room.entity_rows_sql(name, [], overlap_only=False, record_id="_cr_rid",
                                    token_columns=joins + ([fallback] if fallback else []))
        toks = ", ".join(f"r.{quote_ident(c, joins)}" for c in joins)
        row = f"r.{quote_ident(fallback)}" if fallback else "r._cr_rid"
        got = execute(con, Sql(
            "SELECT r.entity_id AS eid, "
            f"min(hash(CAST(? AS BLOB), ?, {toks})) AS k, "
            f"min(hash(CAST(? AS BLOB), ?, 'row', {row})) AS k2 "
            f"FROM ({rows.text}) r GROUP BY r.entity_id",
            (salt, name, salt, name, *rows.params))).fetchnumpy()
        eids = np.asarray(got["eid"], dtype=np.int64)
        keys = person_keys(np.asarray(got["k"], dtype=np.uint64),
                           np.asarray(got["k2"], dtype=np.uint64))
        del got
        registry = state / f"{name}.parquet"
        ids, grown = assign_ids(*keys, read_registry(registry))
        if grown is not None:  # new people: the registry grows (ids never change)
            write_registry(registry, grown)
        found.append(_by_label(unscramble(eids, res.scramble), ids, len(collab.tables)))
        sets[f"table{i}"] = people_set(ids)
    for s, array in _positional(found).items():
        _save(folder / f"by{s}.npy", array)
    got = execute(con, Sql(
        "SELECT entity_id AS eid, CAST(coalesce(min(rule), -1) AS SMALLINT) AS rule "
        "FROM read_parquet(?) WHERE n_tables = ? GROUP BY entity_id",
        (os.fspath(res.path), len(collab.tables)))).fetchnumpy()
    ents = np.asarray(got["eid"], dtype=np.int64)
    rules = np.asarray(got["rule"], dtype=np.int16)
    for i, t in enumerate(collab.tables):
        ids = index.ids(t, ents)
        sets[f"overlap{i}"] = people_set(ids)
        sets.update({f"links{r}.{i}": people_set(ids[rules == r])
                     for r in range(len(index.rules))})
    for set_name, people in sets.items():
        write_durably(folder / f"{set_name}.roaring", people.serialize())


def _by_label(labels: np.ndarray, ids: np.ndarray,
             tables: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Split entities by the table of their label: table index → (row numbers, person ids)."""
    sources = labels >> NODE_SHIFT
    if labels.size and (int(sources.min()) < 0 or int(sources.max()) >= tables):
        raise PolicyRefusal("difference_check", "an entity id of this resolution has no "
                            "record position; the people index cannot be built")
    rows = labels & ((1 << NODE_SHIFT) - 1)
    return {s: (rows[sources == s], ids[sources == s]) for s in np.unique(sources).tolist()}


def _positional(found: Sequence[dict[int, tuple[np.ndarray, np.ndarray]]]
                ) -> dict[int, np.ndarray]:
    """Per label table s, an array over s's row numbers with each table's person id in its
    column (the dtype's largest value elsewhere; uint32 while ids fit: half the size)."""
    top = max((int(ids.max()) for per in found for _, ids in per.values() if ids.size),
              default=0)
    dtype = np.uint32 if top < 2**32 - 1 else np.uint64
    out = {}
    for s in sorted({s for per in found for s in per}):
        size = max(int(rows.max()) + 1 for per in found if s in per for rows, _ in [per[s]])
        array = np.full((size, len(found)), np.iinfo(dtype).max, dtype=dtype)
        for t, per in enumerate(found):
            if s in per:
                array[per[s][0], t] = per[s][1]
        out[s] = array
    return out


@dataclass(frozen=True)
class Registry:
    """A table's person keys and their ids, sorted by key."""

    keys: np.ndarray  # uint64
    ids: np.ndarray  # uint64

    @property
    def next_id(self) -> int:
        """The first id not yet given (ids are dense: 0, 1, 2, …)."""
        return int(self.ids.max()) + 1 if self.ids.size else 0


def person_keys(keys: np.ndarray, row_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each entity's key, as the sorted distinct keys and each entity's position in them;
    entities sharing a key (records with identical, unlinking tokens) use their row key."""
    distinct, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    shared = counts[inverse] > 1
    if shared.any():
        distinct, inverse = np.unique(np.where(shared, row_keys, keys), return_inverse=True)
    return distinct, inverse


def assign_ids(distinct: np.ndarray, inverse: np.ndarray,
               known: Registry) -> tuple[np.ndarray, Registry | None]:
    """The person id of each entity (`distinct[inverse]` its key): the registry's, else a
    new one (new keys numbered from the registry's next id in key order); and the grown
    registry, or None if no key is new."""
    at = np.searchsorted(known.keys, distinct)
    found = np.zeros(distinct.size, dtype=bool)
    inside = at < known.keys.size
    found[inside] = known.keys[at[inside]] == distinct[inside]
    ids = np.empty(distinct.size, dtype=np.uint64)
    ids[found] = known.ids[at[found]]
    fresh = np.flatnonzero(~found)
    if not fresh.size:
        return ids[inverse], None
    ids[fresh] = known.next_id + np.arange(fresh.size, dtype=np.uint64)
    merged_keys = np.concatenate([known.keys, distinct[fresh]])
    order = np.argsort(merged_keys, kind="stable")  # two sorted runs: merged in one pass
    grown = Registry(merged_keys[order], np.concatenate([known.ids, ids[fresh]])[order])
    return ids[inverse], grown


def read_registry(path: Path) -> Registry:
    """A table's registry (empty if none yet), sorted by key."""
    if not path.exists():
        return Registry(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64))
    table = pq.read_table(path, columns=["k", "id"])
    keys = table.column("k").to_numpy().astype(np.uint64)
    ids = table.column("id").to_numpy().astype(np.uint64)
    if keys.size > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")  # written by an earlier engine: unsorted
        keys, ids = keys[order], ids[order]
    return Registry(keys, ids)


def write_registry(path: Path, registry: Registry) -> None:
    """Replace a table's registry atomically (mode 0600), sorted by key."""
    table = pa.table({"k": pa.array(registry.keys, type=pa.uint64()),
                      "id": pa.array(registry.ids, type=pa.uint64())})
    with atomic_path(path, 0o600) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        fsync_path(tmp)


def _check_key_function(con: Any, state: Path, salt: bytes) -> None:
    """Refuse if the registries were made by another hash function (a changed engine would
    give everyone new ids, silently emptying the memory)."""
    got = execute(con, Sql("SELECT hash(CAST(? AS BLOB), ?)", (salt, KEY_VERSION))).fetchone()
    check = str(got[0]) if got else ""
    meta_path = state / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("check") != check:
            raise PolicyRefusal(
                "difference_check", "the person keys of this collaboration were made by "
                "another version of the engine; the difference-check memory cannot be "
                "matched with today's people until the operator resets it")
        return
    write_durably(meta_path, json.dumps({"version": KEY_VERSION, "check": check}).encode())


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, 0o600) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
        fsync_path(tmp)


def _remove(folder: Path) -> None:
    """Remove an old index folder; one still mapped by another process where the system
    refuses that (Windows) is left for a later build to remove."""
    try:
        for p in folder.iterdir():
            p.unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        return

