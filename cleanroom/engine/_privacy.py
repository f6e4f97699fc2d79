"""The room's privacy mode and state: difference checks (threshold mode) or the ε budget
(differential mode), kept in the collaboration's state folder `.cleanroom-privacy/`:

    secret           the engine's own 32 random bytes (person keys, contribution sampling)
    people/          the per-table registries of stable person ids (see `_people`)
    differences/     one difference-check memory per table, one lock over all
    budget/          the ε ledger (differential mode)

None of it may be deleted while the collaboration runs: the memories and the ledger are what
stop many answers from adding up to what no single answer may reveal.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from cleanroom.config import Collaboration, Policy, Roster
from cleanroom.privacy import BudgetLedger, Charge, DifferenceGuard, PrivacySettings
from protocols import CleanroomBug

from ._people import engine_secret, state_folder
from ._sql import Sql, quote_ident


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


def bounded_rows_sql(rows: Sql, *, columns: Sequence[str], record_id: str | None, limit: int,
                     clamp: Mapping[str, tuple[float, float]], salt: bytes) -> Sql:
    """Differential mode: at most `limit` records per person, chosen deterministically but
    unpredictably (by a hash of the record with the engine's secret), and the columns in
    `clamp` clamped to their public bounds — before anything is aggregated.

    `rows` is an `entity_rows_sql` with the record id selected as `_cr_rid`."""
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
    select = ", ".join(["b.entity_id", *picks])
    return Sql(f"SELECT {select} FROM ({rows.text}) b QUALIFY row_number() OVER (PARTITION BY "
               "b.entity_id ORDER BY hash(CAST(? AS BLOB), b._cr_rid), b._cr_rid) <= ?",
               (*bound, *rows.params, salt, int(limit)))


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
