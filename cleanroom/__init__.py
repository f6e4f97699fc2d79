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

from ._collab import Collaboration, Matching, Member, Table
from ._policy import AggregateColumns, EffectivePolicy, OutputConstraint, Policy

__all__ = [
    "AggregateColumns",
    "AuditError",
    "CleanroomBug",
    "CleanroomError",
    "Collaboration",
    "ConfigError",
    "DecryptionError",
    "EffectivePolicy",
    "InputError",
    "KeyMaterialError",
    "ManifestMismatch",
    "Matching",
    "Member",
    "OutputConstraint",
    "Policy",
    "PolicyRefusal",
    "Table",
]
