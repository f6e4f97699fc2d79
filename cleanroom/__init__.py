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
from ._engine import CleanRoom, open_collaboration, verify_tables
from ._policy import AggregateColumns, EffectivePolicy, OutputConstraint, Policy
from ._resolve import Resolution

__all__ = [
    "AggregateColumns",
    "AuditError",
    "AuditLog",
    "CleanRoom",
    "CleanroomBug",
    "CleanroomError",
    "Collaboration",
    "ConfigError",
    "DecryptionError",
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
    "Resolution",
    "Table",
    "VerifyResult",
    "open_collaboration",
    "overlap",
    "policy_report",
    "verify_tables",
]
