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

__all__ = [
    "AuditError",
    "CleanroomBug",
    "CleanroomError",
    "ConfigError",
    "DecryptionError",
    "InputError",
    "KeyMaterialError",
    "ManifestMismatch",
    "PolicyRefusal",
]
