"""Open a collaboration: verify the token files, resolve entities once, serve analyses.

The API that analyses and analyst SQL build on (kept stable):

    room = cleanroom.open_collaboration("collab.toml", memory_limit="4GB")
    room.collaboration                       # Collaboration: members, tables (with Policy)
    room.authorize(member, tables)           # raise PolicyRefusal(rule=...) unless allowed
    room.effective_policy(tables)            # EffectivePolicy: most restrictive of the tables
    room.effective_minimum(tables)           # int: the highest minimum of those tables
    room.resolution()                        # Resolution: stats; entity map cached as Parquet
    room.analyst_connection(tables=None)     # DuckDB connection: one table per collaboration
                                             # table, named after it, with `entity_id` plus the
                                             # policy's analyst columns only (never a token);
                                             # file access disabled and configuration locked
    room.audit.record(member=, request=, decision=, rule=, rows_returned=, rows_suppressed=)
    room.audit.append(entry)                 # lower level: any plain-JSON entry
    room.overlap(as_member, by=[...], metrics=[...])   # see _analyses.overlap
    room.policy_report()                     # what each member can and cannot learn
    room.privacy                             # RoomPrivacy: mode, difference checks, budget
    room.people_index()                      # stable person ids (difference checks)
    room.budget()                            # `cleanroom budget --json`

Opening verifies that every token file agrees with the collaboration (same collaboration id,
protocol, key fingerprint, normalization profile, identifier kinds) and raises
ManifestMismatch saying what differs — never a silent zero overlap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cleanroom.config import Collaboration, EffectivePolicy, Table
from protocols import (
    PROTOCOL_HMAC,
    PROTOCOL_PSI,
    ConfigError,
    InputError,
    ManifestMismatch,
    PolicyRefusal,
)

from ._analyses import Dimension, Metric, OverlapResult, overlap, policy_report
from ._audit import AuditLog
from ._members import not_a_member
from ._noisy import noisy_overlap
from ._people import PeopleIndex, people_index
from ._privacy import RoomPrivacy, cut_rows_sql
from ._probabilistic import probabilistic_plan, resolve_probabilistic_tables
from ._resolve import NODE_SHIFT, Resolution, ResolveInput, resolve, scramble_sql
from ._sql import Sql, connect, execute, quote_ident

CACHE_DIR = ".cleanroom-cache"
ANALYST_RECORD_ID = "_cr_rid"  # the record id column of analyst tables (never nameable)


def _short(fp: str) -> str:
    return f"{fp[:4]}…"


def verify_tables(collab: Collaboration) -> None:
    """Check that every token file can be matched with the others; say what differs."""
    tables = list(collab.tables.values())
    ref = tables[0]
    for t in tables:
        m, f = t.manifest, t.tokens.name
        if m.collaboration_id != collab.id:
            raise ManifestMismatch(
                f"{f} was made for another collaboration (id {m.collaboration_id[:8]}… ≠ "
                f"{collab.id[:8]}… in {collab.path.name})")
        if m.protocol not in (PROTOCOL_HMAC, PROTOCOL_PSI):
            raise ManifestMismatch(f"{f} uses an unknown protocol {m.protocol!r}")
        try:
            schema = pq.read_schema(t.tokens)
            rows = pq.ParquetFile(t.tokens).metadata.num_rows
        except (OSError, pa.ArrowInvalid):
            raise InputError("not a readable Parquet token file", file=str(t.tokens)) from None
        if rows != m.row_count:
            raise ManifestMismatch(f"{f} has {rows} rows but its manifest says {m.row_count}: "
                                   "the file was altered after tokenizing")
        for col in t.link_columns(collab.matching.rules):
            typ = schema.field(col).type if col in schema.names else None
            if typ is None or not (pa.types.is_binary(typ) or pa.types.is_fixed_size_binary(typ)
                                   or pa.types.is_large_binary(typ)):
                raise ManifestMismatch(f"{f}: token column {col!r} is missing or not binary")
    for t in tables[1:]:
        m, r, f = t.manifest, ref.manifest, t.tokens.name
        if m.protocol != r.protocol:
            raise ManifestMismatch(f"{f} uses protocol {m.protocol} but {ref.tokens.name} uses "
                                   f"{r.protocol}: tokens of different protocols never match")
        if m.key_fingerprint != r.key_fingerprint:
            raise ManifestMismatch(
                f"{f} was made with a different secret than {ref.tokens.name} (fingerprint "
                f"{_short(m.key_fingerprint)} ≠ {_short(r.key_fingerprint)})")
        if m.profile != r.profile:
            raise ManifestMismatch(
                f"{f} was normalized with profile {m.profile!r} but {ref.tokens.name} with "
                f"{r.profile!r}: the same identifier would give different tokens")
    if collab.matching.method == "probabilistic":
        probabilistic_plan(collab)  # raises ManifestMismatch if the compared columns differ
        return
    for rule in collab.matching.rules:
        kinds = {t.tokens.name: t.manifest.identifiers[rule].get("kinds")
                 for t in tables if rule in t.link_columns(collab.matching.rules)}
        if len({repr(k) for k in kinds.values()}) > 1:
            detail = "; ".join(f"{n}: {k}" for n, k in kinds.items())
            raise ManifestMismatch(f"token column {rule!r} holds different identifiers "
                                   f"({detail})")


class CleanRoom:
    """An opened, verified collaboration: resolution, analyses, analyst views, audit log."""

    def __init__(
        self,
        collaboration: Collaboration,
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
        difference_checks: bool = True,
    ) -> None:
        verify_tables(collaboration)
        self.collaboration = collaboration
        self.audit = AuditLog(collaboration.audit_log)
        # `difference_checks=False` only for measuring what they cost (bench/privacy.py)
        self.privacy = RoomPrivacy(collaboration, difference_checks=difference_checks)
        self.memory_limit, self.threads = memory_limit, threads
        self._con: duckdb.DuckDBPyConnection | None = None
        self._resolution: Resolution | None = None

    def __repr__(self) -> str:
        return f"CleanRoom({self.collaboration.path.name!r})"

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The engine's internal connection (token files readable; not for analysts)."""
        if self._con is None:
            self._con = connect(memory_limit=self.memory_limit, threads=self.threads)
        return self._con

    def close(self) -> None:
        """Close the engine's connection."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> CleanRoom:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- policy --------------------------------------------------------------------------
    def _tables(self, tables: Iterable[str] | None) -> tuple[str, ...]:
        names = tuple(self.collaboration.tables) if tables is None else tuple(tables)
        for n in names:
            if n not in self.collaboration.tables:
                raise PolicyRefusal("tables", f"{n!r} is not a table of the collaboration")
        return names

    def effective_policy(self, tables: Iterable[str] | None = None) -> EffectivePolicy:
        """The most restrictive combination of the named tables' policies."""
        names = self._tables(tables)
        return EffectivePolicy.combine({n: self.collaboration.tables[n].policy for n in names})

    def effective_minimum(self, tables: Iterable[str] | None = None) -> int:
        """The minimum number of distinct people behind every output row for these tables."""
        eff = self.effective_policy(tables)
        if eff.minimum is None:
            raise PolicyRefusal("analysis_rule", "these tables allow list queries only; "
                                "aggregates need an aggregation rule with a minimum")
        return eff.minimum

    def authorize(self, member: str, tables: Iterable[str] | None = None) -> None:
        """Refuse (PolicyRefusal naming the rule) unless `member` may query and receive."""
        collab = self.collaboration
        names = self._tables(tables)
        m = collab.members.get(member)
        if m is None:
            raise not_a_member(collab)
        if not m.can_query:
            raise PolicyRefusal("can_query", f"member {member!r} may not run queries")
        if not m.can_receive_results:
            raise PolicyRefusal("can_receive_results",
                                f"member {member!r} may not receive results")
        own = set(collab.owned_by(member))
        for n in names:
            p = collab.tables[n].policy
            if not p.receives(member):
                raise PolicyRefusal("allowed_result_receivers",
                                    f"table {n!r} does not allow {member!r} to receive results")
            if p.join_required == "query_runner" and not own & set(names):
                raise PolicyRefusal("join_required",
                                    f"table {n!r} must be joined to a table of {member!r}, "
                                    f"which owns none here")

    # -- matching ------------------------------------------------------------------------
    def resolution(self, *, refresh: bool = False) -> Resolution:
        """Entity resolution of all tables (computed once, then read from the cache)."""
        if self._resolution is None or refresh:
            collab = self.collaboration
            if collab.matching.method == "probabilistic":
                self._resolution = resolve_probabilistic_tables(
                    self.connection, probabilistic_plan(collab), collab.matching,
                    collab.path.parent / CACHE_DIR, use_cache=not refresh,
                    memory_limit=self.memory_limit, threads=self.threads)
                return self._resolution
            inputs = [ResolveInput(t.name, t.tokens, t.link_columns(collab.matching.rules),
                                   t.manifest.row_count) for t in collab.tables.values()]
            self._resolution = resolve(
                self.connection, inputs, collab.matching.rules,
                collab.matching.max_records_per_token, collab.path.parent / CACHE_DIR,
                use_cache=not refresh)
        return self._resolution

    def table_index(self, name: str) -> int:
        """Position of a table in the collaboration (its index in the entity map)."""
        return list(self.collaboration.tables).index(name)

    def entity_map(self, table: str) -> pa.Table:
        """`(row_number, entity_id)` of each linked record of `table`, by its row in the token
        file: for the operator's own checks (e.g. scoring against ground truth), never an
        answer to a member."""
        res = self.resolution()
        got = pq.read_table(res.path, columns=["rn", "entity_id"],
                            filters=[("t", "=", self.table_index(table))])
        return got.rename_columns(["row_number", "entity_id"]).sort_by("row_number")

    def entity_rows_sql(self, name: str, columns: Sequence[str], *, overlap_only: bool,
                        record_id: str | None = None, token_columns: Sequence[str] = ()) -> Sql:
        """SQL for a table's rows as (entity_id, columns...), optionally overlap only, and
        optionally with each record's row number under the name `record_id`.

        `token_columns` (join columns or `row_id`) are for the engine's own use only — the
        stable person keys of difference checks — and never reach an analyst."""
        t: Table = self.collaboration.tables[name]
        allowed = t.policy.analyst_columns()
        cols = "".join(f", p.{quote_ident(c, allowed)}" for c in columns)
        cols += "".join(f", p.{quote_ident(c, (*t.policy.join_columns, 'row_id'))}"
                        for c in token_columns)
        if record_id is not None:
            cols += f", p.file_row_number AS {quote_ident(record_id)}"
        res = self.resolution()
        i = self.table_index(name)
        src = "FROM read_parquet(?, file_row_number = true) p "
        if overlap_only:
            return Sql(
                f"SELECT m.entity_id{cols} {src}"
                "JOIN (SELECT rn, entity_id FROM read_parquet(?) WHERE t = ? AND n_tables = ?) m "
                "ON m.rn = p.file_row_number",
                (os.fspath(t.tokens), os.fspath(res.path), i, len(self.collaboration.tables)))
        own = scramble_sql(f"(CAST({i} AS BIGINT) << {NODE_SHIFT}) + p.file_row_number",
                           res.scramble)
        return Sql(
            f"SELECT coalesce(m.entity_id, {own}) AS entity_id{cols} {src}"
            "LEFT JOIN (SELECT rn, entity_id FROM read_parquet(?) WHERE t = ?) m "
            "ON m.rn = p.file_row_number", (os.fspath(t.tokens), os.fspath(res.path), i))

    def analyst_connection(self, tables: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh DuckDB connection holding one table per collaboration table (entity_id plus
        the columns its policy lets analysts use), with file access disabled. Each table also
        holds its records' row numbers (`_cr_rid`), which no analyst can name: the planner
        uses them so that a record counts once per output row."""
        names = self._tables(tables)
        con = connect(memory_limit=self.memory_limit, threads=self.threads)
        try:
            for n in names:
                p = self.collaboration.tables[n].policy
                sql = self.rows_sql(n, p.analyst_columns(), overlap_only=False,
                                    record_id=ANALYST_RECORD_ID)
                execute(con, Sql(f"CREATE TABLE {quote_ident(n, names)} AS {sql.text}",
                                 sql.params))
            execute(con, "SET enable_external_access = false")
            execute(con, "SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con

    def rows_sql(self, name: str, columns: Sequence[str], *, overlap_only: bool,
                 record_id: str | None = None) -> Sql:
        """`entity_rows_sql` as answers read it: in differential mode each person's records
        are cut to the policy's `user_contribution_limit` (the cut listed once per resolution,
        `cut_rows_sql`) and aggregate columns clamped to their public bounds, before any
        aggregation."""
        if not self.privacy.differential:
            return self.entity_rows_sql(name, columns, overlap_only=overlap_only,
                                        record_id=record_id)
        return cut_rows_sql(self, name, columns, overlap_only=overlap_only, record_id=record_id)

    def people_index(self) -> PeopleIndex:
        """Stable person ids of the current resolution (built once per resolution)."""
        return people_index(self)

    def budget(self) -> dict[str, Any]:
        """The privacy budget: mode, epsilon, spent, remaining, queries (see RoomPrivacy)."""
        return self.privacy.budget()

    # -- analyses ------------------------------------------------------------------------
    def overlap(
        self, as_member: str, by: Sequence[str] = (), metrics: Sequence[str] = ()
    ) -> OverlapResult:
        """Overlap, match rates, links by rule and segments; see `cleanroom.overlap`."""
        return overlap(self, as_member, by=by, metrics=metrics)

    def noisy_overlap(self, member: str, request: dict[str, Any], dims: Sequence[Dimension],
                      mets: Sequence[Metric], minimum: int) -> OverlapResult:
        """The overlap in differential mode (called by `overlap`, which checked the request)."""
        return noisy_overlap(self, member, request, dims, mets, minimum)

    def policy_report(self) -> dict[str, Any]:
        """What each member can and cannot learn from each table."""
        return policy_report(self)


def open_collaboration(
    path: str | os.PathLike[str], *, memory_limit: str | None = None, threads: int | None = None,
    difference_checks: bool = True,
) -> CleanRoom:
    """Load and validate a collaboration file, verify its token files, return the engine."""
    collab = Collaboration.from_path(path)
    if not collab.tables:
        raise ConfigError("no tables", file=os.fspath(path), key="tables")
    return CleanRoom(collab, memory_limit=memory_limit, threads=threads,
                     difference_checks=difference_checks)

