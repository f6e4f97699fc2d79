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

Per resolution, the entity → id map of each table (sorted numpy arrays) and the people of the
overlap summary rows are kept beside the registries, in `.cleanroom-privacy/people/r2-<key>/`
(derived from them, so they live and go with them); the registry, the salt and the
difference memories live in `.cleanroom-privacy/` and must not be deleted.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Iterable, Sequence
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

from ._resolve import Resolution
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


@dataclass(frozen=True)
class _Map:
    """Entity id → person id for one table (both sorted by entity id)."""

    entities: np.ndarray
    people: np.ndarray

    def at(self, entity_ids: np.ndarray) -> np.ndarray:
        """Positions of these entities (sorted first unless they come sorted: a set's order
        does not matter, and sorted needles make the binary searches walk the array once)."""
        needles = entity_ids
        if needles.size > 1 and not bool(np.all(needles[1:] >= needles[:-1])):
            needles = np.sort(needles)
        at = np.searchsorted(self.entities, needles)
        at[at >= len(self.entities)] = 0
        if needles.size and not np.array_equal(self.entities[at], needles):
            raise PolicyRefusal("difference_check", "an answer's people are not in the "
                                "people index of this resolution; nothing can be checked")
        return at

    def ids(self, entity_ids: np.ndarray) -> np.ndarray:
        """Person ids of these entities (each must have records in the table)."""
        return self.people[self.at(entity_ids)]


class PeopleIndex:
    """The stable person ids of one resolution, per table, and the summary rows' people."""

    def __init__(self, folder: Path, tables: Sequence[str], rules: Sequence[str]) -> None:
        self.folder, self.tables, self.rules = folder, tuple(tables), tuple(rules)
        self._maps: dict[str, _Map] = {}
        self._sets: dict[str, PeopleSet] = {}
        self._overlap: tuple[np.ndarray, dict[str, np.ndarray]] | None = None

    def _overlap_map(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The overlapping entities (sorted) and their person ids in each table."""
        if self._overlap is None:
            ents = np.load(self.folder / "overlap.entities.npy", mmap_mode="r")
            self._overlap = ents, {t: np.load(self.folder / f"overlap.p{i}.npy", mmap_mode="r")
                                   for i, t in enumerate(self.tables)}
        return self._overlap

    def _map(self, table: str) -> _Map:
        if table not in self._maps:
            i = self.tables.index(table)
            self._maps[table] = _Map(np.load(self.folder / f"t{i}.entities.npy", mmap_mode="r"),
                                     np.load(self.folder / f"t{i}.people.npy", mmap_mode="r"))
        return self._maps[table]

    def _set(self, name: str, make: Any) -> PeopleSet:
        """A summary row's people: from its file (written when the index was built)."""
        if name not in self._sets:
            path = self.folder / f"{name}.roaring"
            self._sets[name] = FrozenBitMap64.deserialize(path.read_bytes()) \
                if path.exists() else FrozenBitMap64(make())
        return self._sets[name]

    def save_summaries(self) -> None:
        """Write the overlap's person ids and every summary row's people once, at build time
        (so answers only read)."""
        ents = np.load(self.folder / "overlap.entities.npy")
        for i, t in enumerate(self.tables):
            _save(self.folder / f"overlap.p{i}.npy", self._map(t).ids(ents))
        sets = {**{f"table{i}": self.table(t)[t] for i, t in enumerate(self.tables)},
                **{f"overlap{i}": v for i, v in enumerate(self.overlap().values())}}
        for r, rule in enumerate(self.rules):
            sets.update({f"links{r}.{i}": v for i, v in enumerate(self.links(rule).values())})
        for name, people in sets.items():
            write_durably(self.folder / f"{name}.roaring", people.serialize())

    def row(self, entity_ids: np.ndarray, tables: Iterable[str]) -> dict[str, PeopleSet]:
        """The people of a row of these entities, as each of `tables` knows them."""
        ents = np.asarray(entity_ids, dtype=np.int64)
        names = tuple(tables)
        if set(names) == set(self.tables):  # in every table: the overlap's smaller map
            overlap, ids = self._overlap_map()
            at = _Map(overlap, overlap).at(ents)
            return {t: people_set(ids[t][at]) for t in names}
        return {t: people_set(self._map(t).ids(ents)) for t in names}

    def table(self, table: str) -> dict[str, PeopleSet]:
        """Everyone with records in `table` (the `tables.<t>` summary row)."""
        i = self.tables.index(table)
        return {table: self._set(f"table{i}", lambda: people_set(
            np.asarray(self._map(table).people)))}

    def overlap(self) -> dict[str, PeopleSet]:
        """The people in every table (the `overlap` row), as each table knows them."""
        _, ids = self._overlap_map()
        return {t: self._set(f"overlap{i}", lambda t=t: people_set(np.asarray(ids[t])))
                for i, t in enumerate(self.tables)}

    def links(self, rule: str) -> dict[str, PeopleSet]:
        """The overlapping people linked by `rule` (a `links_by_rule` row)."""
        r = self.rules.index(rule)
        _, ids = self._overlap_map()
        mine = np.load(self.folder / "overlap.rules.npy", mmap_mode="r") == r
        return {t: self._set(f"links{r}.{i}", lambda t=t: people_set(np.asarray(ids[t][mine])))
                for i, t in enumerate(self.tables)}


_INDEXES: weakref.WeakKeyDictionary[Any, PeopleIndex] = weakref.WeakKeyDictionary()


def people_index(room: RowsRoom) -> PeopleIndex:
    """The people index of the room's current resolution: loaded, or built once (and the
    registries grown) under the state folder's lock."""
    res = room.resolution()
    collab = room.collaboration
    tables = tuple(collab.tables)
    state = state_folder(collab) / "people"
    folder = state / f"r2-{res.cache_key[:24]}"
    known = _INDEXES.get(room)
    if known is not None and known.folder == folder:
        return known
    index = PeopleIndex(folder, tables, tuple(res.links_by_rule))
    if not (folder / "done").exists():
        with file_lock(state / "lock", exclusive=True):
            if not (folder / "done").exists():
                _build(room, res, state, folder)
                index.save_summaries()
                write_durably(folder / "done", b"")
                for old in state.glob("r*-*"):  # an hour's grace for answers still reading
                    if old != folder and old.is_dir() and \
                            time.time() - old.stat().st_mtime > KEEP_OLD_SECONDS:
                        _remove(old)
    _INDEXES[room] = index
    return index


def _build(room: RowsRoom, res: Resolution, state: Path, folder: Path) -> None:
    """Compute every table's person ids (growing its registry) and the overlap's entities."""
    con = room.connection
    collab = room.collaboration
    salt = engine_secret(state.parent)
    _check_key_function(con, state, salt)
    folder.mkdir(parents=True, exist_ok=True)
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
            f"FROM ({rows.text}) r GROUP BY r.entity_id ORDER BY eid",  # sorted in parallel
            (salt, name, salt, name, *rows.params))).fetchnumpy()
        eids = np.asarray(got["eid"], dtype=np.int64)
        keys = person_keys(np.asarray(got["k"], dtype=np.uint64),
                           np.asarray(got["k2"], dtype=np.uint64))
        del got
        registry = state / f"{name}.parquet"
        ids, grown = assign_ids(*keys, read_registry(registry))
        if grown is not None:  # new people: the registry grows (ids never change)
            write_registry(registry, grown)
        _save(folder / f"t{i}.entities.npy", eids)
        _save(folder / f"t{i}.people.npy", ids)
    got = execute(con, Sql(
        "SELECT entity_id AS eid, CAST(coalesce(min(rule), -1) AS SMALLINT) AS rule "
        "FROM read_parquet(?) WHERE n_tables = ? GROUP BY entity_id ORDER BY entity_id",
        (os.fspath(res.path), len(collab.tables)))).fetchnumpy()
    _save(folder / "overlap.entities.npy", np.asarray(got["eid"], dtype=np.int64))
    _save(folder / "overlap.rules.npy", np.asarray(got["rule"], dtype=np.int16))


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
    for p in folder.iterdir():
        p.unlink(missing_ok=True)
    folder.rmdir()

