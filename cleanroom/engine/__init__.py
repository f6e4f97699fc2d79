"""The room: load and verify token files, resolve entities once, answer built-in analyses.

`open_collaboration` returns a `CleanRoom`; `execute`, `Sql` and `quote_ident` are the one
way the engine (and anything built on it) runs SQL: values bound as `?` parameters,
identifiers quoted against an allow-list, DuckDB errors mapped to cleanroom errors.
"""

from ._analyses import Dimension, Metric, OverlapResult, Room, overlap, policy_report
from ._audit import AuditLog, VerifyResult, verify_entries
from ._members import require_member
from ._people import STATE_DIR, PeopleIndex
from ._privacy import RoomPrivacy, budget_report
from ._resolve import Resolution, ResolveInput, resolve
from ._room import CACHE_DIR, CleanRoom, open_collaboration, verify_tables
from ._sql import Sql, connect, execute, fetch_arrow, fetch_one, quote_ident

__all__ = [
    "CACHE_DIR",
    "AuditLog",
    "CleanRoom",
    "Dimension",
    "Metric",
    "OverlapResult",
    "PeopleIndex",
    "Resolution",
    "ResolveInput",
    "Room",
    "RoomPrivacy",
    "STATE_DIR",
    "Sql",
    "VerifyResult",
    "budget_report",
    "connect",
    "execute",
    "fetch_arrow",
    "fetch_one",
    "open_collaboration",
    "overlap",
    "policy_report",
    "quote_ident",
    "require_member",
    "resolve",
    "verify_entries",
    "verify_tables",
]
