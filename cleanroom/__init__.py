"""cleanroom: privacy-preserving clean-room matching (engine, policies, CLI, reports)."""

from protocols import (
    AuditError,
    CleanroomBug,
    CleanroomError,
    ConfigError,
    DecryptionError,
    InputError,
    KeyMaterialError,
    ManifestMismatch,
    PolicyRefusal,
)

from ._analyses import Dimension, Metric, OverlapResult, overlap, policy_report
from ._audit import AuditLog, VerifyResult
from ._collab import Collaboration, Matching, Member, Table
from ._demo import DemoResult, run_demo
from ._engine import CleanRoom, open_collaboration, verify_tables
from ._policy import AggregateColumns, EffectivePolicy, OutputConstraint, Policy
from ._query import QueryResult, run_query
from ._report import build_report, render_report, write_report
from ._resolve import Resolution
from ._sqlcheck import CheckedQuery, TableRules, check_sql

__all__ = [
    "AggregateColumns",
    "AuditError",
    "AuditLog",
    "CheckedQuery",
    "CleanRoom",
    "CleanroomBug",
    "CleanroomError",
    "Collaboration",
    "ConfigError",
    "DecryptionError",
    "DemoResult",
    "Dimension",
    "EffectivePolicy",
    "InputError",
    "KeyMaterialError",
    "ManifestMismatch",
    "Matching",
    "Member",
    "Metric",
    "OutputConstraint",
    "OverlapResult",
    "Policy",
    "PolicyRefusal",
    "QueryResult",
    "Resolution",
    "Table",
    "TableRules",
    "VerifyResult",
    "build_report",
    "check_sql",
    "open_collaboration",
    "overlap",
    "policy_report",
    "render_report",
    "run_demo",
    "run_query",
    "verify_tables",
    "write_report",
]
