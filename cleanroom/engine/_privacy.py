"""The room's privacy mode and state: difference checks (threshold mode) or the ε budget
(differential mode), kept in the collaboration's state folder `.cleanroom-privacy/`:

    secret           the engine's own 32 random bytes (person keys, contribution sampling)
    people/          the per-table registries of stable person ids (see `_people`)
    cuts/            per resolution, the records the contribution cut drops (derived)
    differences/     one difference-check memory per table, one lock over all
    budget/          the ε ledger (differential mode)

None of it may be deleted while the collaboration runs: the memories and the ledger are what
stop many answers from adding up to what no single answer may reveal.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from cleanroom.config import Collaboration, Policy, Roster
from cleanroom.privacy import BudgetLedger, Charge, DifferenceGuard, PrivacySettings, file_lock
from protocols import CleanroomBug, atomic_path, fsync_path

from ._people import KEEP_OLD_SECONDS, RowsRoom, engine_secret, state_folder
from ._resolve import Resolution
from ._sql import Sql, execute, quote_ident


class RoomPrivacy:
    """What a room's privacy mode asks of each answer, and where its state lives."""

    def __init__(self, collaboration: Collaboration | Roster, *,
                 difference_checks: bool = True) -> None:
        self.collaboration = collaboration
        self.settings = PrivacySettings.from_dict(collaboration.privacy,
                                                  file=os.fspath(collaboration.path))
        self.folder = state_folder(collaboration)
        self.difference_checks = difference_checks and not self.settings.differential
        self._guard: DifferenceGuard | None = None
        self._ledger: BudgetLedger | None = None
        # the contribution cut's dropped records by (resolution, table, limit); see `cut_rows_sql`
        self.cuts: dict[tuple[str, int, int], Path | None] = {}

    @property
    def differential(self) -> bool:
        """True when answers get noise and spend the budget."""
        return self.settings.differential

    @property
    def guard(self) -> DifferenceGuard:
        """The per-table difference-check memories."""
        if self._guard is None:
            self._guard = DifferenceGuard(self.folder / "differences")
        return self._guard

    @property
    def ledger(self) -> BudgetLedger:
        """The collaboration's ε ledger (differential mode only)."""
        if not self.differential or self.settings.epsilon is None:
            raise CleanroomBug("the budget ledger exists in differential mode only")
        if self._ledger is None:
            self._ledger = BudgetLedger(self.folder / "budget", self.settings.epsilon)
        return self._ledger

    @property
    def epsilon_per_query(self) -> float:
        """ε spent by each accepted query or analysis."""
        if self.settings.epsilon_per_query is None:
            raise CleanroomBug("no ε per query outside differential mode")
        return self.settings.epsilon_per_query

    def contribution_limit(self, table: str) -> int:
        """Records per person per query of `table` in differential mode."""
        if not isinstance(self.collaboration, Collaboration):
            raise CleanroomBug("contribution limits need the policies (a Collaboration)")
        return contribution_limit(self.collaboration.tables[table].policy)

    def salt(self) -> bytes:
        """The engine's secret (for deterministic, unpredictable record sampling)."""
        return engine_secret(self.folder)

    def charge(self, member: str, query_id: str) -> Charge:
        """Spend ε for one accepted query, durably, before anything is computed (or refuse
        with rule `privacy_budget`)."""
        return self.ledger.charge(self.epsilon_per_query, query_id, member)

    def budget(self) -> dict[str, Any]:
        """`cleanroom budget --json`: mode, epsilon, spent, remaining, queries (charged so far),
        epsilon_per_query and queries_remaining (how many more the budget pays for)."""
        s = self.settings
        if not self.differential:
            return {"mode": s.mode, "epsilon": None, "spent": 0.0, "remaining": None,
                    "queries": 0, "epsilon_per_query": None, "queries_remaining": None}
        entries = self.ledger.entries()
        spent = entries[-1].spent_after if entries else 0.0
        remaining = self.ledger.remaining()
        per = self.epsilon_per_query
        left = max(0, math.floor(Fraction(repr(remaining)) / Fraction(repr(per))))
        return {"mode": s.mode, "epsilon": s.epsilon, "spent": spent, "remaining": remaining,
                "queries": len(entries), "epsilon_per_query": per, "queries_remaining": left}


def budget_report(collaboration: str | os.PathLike[str] | Collaboration | Roster) -> dict[str, Any]:
    """The privacy budget of a collaboration (`cleanroom budget --json`): from its file (only
    the collaboration file is read: no token file, no policy), or an already read one."""
    if isinstance(collaboration, Collaboration | Roster):
        return RoomPrivacy(collaboration).budget()
    return RoomPrivacy(Roster.from_path(collaboration)).budget()


def _bounded_select(columns: Sequence[str], record_id: str | None,
                    clamp: Mapping[str, tuple[float, float]]) -> tuple[str, list[float]]:
    """The select list of a cut table: entity_id, the columns (those in `clamp` clamped to
    their public bounds) and the record id; with the bounds as parameters."""
    picks, bound = [], []
    for c in columns:
        q = quote_ident(c, columns)
        if c in clamp:
            picks.append(f"least(greatest(CAST(b.{q} AS DOUBLE), ?), ?) AS {q}")
            bound += [float(clamp[c][0]), float(clamp[c][1])]
        else:
            picks.append(f"b.{q}")
    if record_id is not None:
        picks.append(f"b._cr_rid AS {quote_ident(record_id)}")
    return ", ".join(["b.entity_id", *picks]), bound


def bounded_rows_sql(rows: Sql, *, columns: Sequence[str], record_id: str | None, limit: int,
                     clamp: Mapping[str, tuple[float, float]], salt: bytes) -> Sql:
    """Differential mode: at most `limit` records per person, chosen deterministically but
    unpredictably (by a hash of the record with the engine's secret), and the columns in
    `clamp` clamped to their public bounds — before anything is aggregated.

    `rows` is an `entity_rows_sql` with the record id selected as `_cr_rid`. This is the
    reference form (a window over every read); `cut_rows_sql` gives the same rows from the
    cut cached per resolution."""
    select, bound = _bounded_select(columns, record_id, clamp)
    return Sql(f"SELECT {select} FROM ({rows.text}) b QUALIFY row_number() OVER (PARTITION BY "
               "b.entity_id ORDER BY hash(CAST(? AS BLOB), b._cr_rid), b._cr_rid) <= ?",
               (*bound, *rows.params, salt, int(limit)))


class _CutRoom(RowsRoom, Protocol):
    """A room whose rows are cut: `RowsRoom` and its privacy state."""

    @property
    def privacy(self) -> RoomPrivacy: ...


def cut_rows_sql(room: _CutRoom, name: str, columns: Sequence[str], *, overlap_only: bool,
                 record_id: str | None = None) -> Sql:
    """The rows `bounded_rows_sql` gives, without a window on every read: the records the
    cut drops are listed once per resolution (`dropped_records`) and left out (NOT IN that
    list) — or, when the cut drops none (no one has more records than the limit), no filter
    at all. Columns in the policy's bounds are clamped as there."""
    p = room.collaboration.tables[name].policy
    rows = room.entity_rows_sql(name, columns, overlap_only=overlap_only, record_id="_cr_rid")
    select, bound = _bounded_select(columns, record_id, clamps(p, columns))
    dropped = dropped_records(room, name)
    if dropped is None:
        return Sql(f"SELECT {select} FROM ({rows.text}) b", (*bound, *rows.params))
    # NOT IN, not ANTI JOIN: DuckDB keeps the row source's own join and filters as planned
    # (an anti join placed below them made the read of 10M rows twice as slow)
    return Sql(f"SELECT {select} FROM ({rows.text}) b WHERE b._cr_rid NOT IN (SELECT rn FROM "
               "read_parquet(?) WHERE rn IS NOT NULL)",
               (*bound, *rows.params, os.fspath(dropped)))


CUT_VERSION = "c1"


def dropped_records(room: _CutRoom, name: str) -> Path | None:
    """The Parquet list (`rn`, sorted) of the records of table `name` that the contribution
    cut drops in the current resolution, or None when it drops none: made once per
    resolution, limit and secret, kept in the privacy state folder (mode 0600).

    A person's records in a table are those of one entity; the cut keeps the `limit` with
    the smallest keyed hash of their row number (ties by row number), exactly as
    `bounded_rows_sql` ranks them. Records the resolution did not map are their own entity,
    alone, so never dropped."""
    res = room.resolution()
    limit = room.privacy.contribution_limit(name)
    i = list(room.collaboration.tables).index(name)
    key = (res.cache_key, i, limit)
    if key in room.privacy.cuts:
        return room.privacy.cuts[key]
    state = room.privacy.folder / "cuts"
    folder = state / f"{CUT_VERSION}-{res.cache_key[:24]}"
    path = folder / f"t{i}-l{limit}.parquet"
    if not path.exists():
        with file_lock(state / "lock", exclusive=True):
            if not path.exists():
                _write_cut(room.connection, res, i, limit, room.privacy.salt(), path)
                for old in state.glob(f"{CUT_VERSION}-*"):  # an hour's grace, as people ids
                    if old != folder and old.is_dir() and \
                            time.time() - old.stat().st_mtime > KEEP_OLD_SECONDS:
                        shutil.rmtree(old, ignore_errors=True)
    got = path if pq.ParquetFile(path).metadata.num_rows else None
    room.privacy.cuts[key] = got
    return got


def _write_cut(con: Any, res: Resolution, table: int, limit: int, salt: bytes,
               path: Path) -> None:
    """Rank each multi-record person's records of one table and write those past `limit`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    src = Sql("SELECT entity_id, CAST(rn AS BIGINT) AS rn FROM read_parquet(?) WHERE t = ?",
              (os.fspath(res.path), table))
    query = Sql(
        f"WITH m AS ({src.text}), many AS (SELECT entity_id FROM m GROUP BY entity_id "
        "HAVING count(*) > ?) SELECT rn FROM m SEMI JOIN many USING (entity_id) "
        "QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY hash(CAST(? AS BLOB), rn), "
        "rn) > ? ORDER BY rn", (*src.params, int(limit), salt, int(limit)))
    with atomic_path(path, 0o600) as tmp:
        execute(con, Sql(f"COPY ({query.text}) TO ? (FORMAT parquet, COMPRESSION zstd)",
                         (*query.params, os.fspath(tmp))))
        fsync_path(tmp)
    fsync_path(path.parent)


DEFAULT_CONTRIBUTION_LIMIT = 1


def contribution_limit(policy: Policy) -> int:
    """Records per person per query in differential mode (the policy's, else 1)."""
    return policy.user_contribution_limit or DEFAULT_CONTRIBUTION_LIMIT


def clamps(policy: Policy, columns: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The public bounds of those `columns` that are aggregated (not dimensions) and have them."""
    out = {}
    for c in columns:
        b = policy.bounds_for(c)
        if b is not None and c not in policy.dimension_columns:
            out[c] = b
    return out
