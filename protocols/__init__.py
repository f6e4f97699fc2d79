"""How identifiers leave a party: keys, keyed tokens, the token file, PSI, platform hashes, C3R."""

from ._errors import (
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
from ._io import atomic_path, write_bytes_atomic
from ._manifest import (
    FORMAT_VERSION,
    PROTOCOL_HMAC,
    PROTOCOL_PSI,
    Manifest,
    read_manifest,
    write_token_file,
)

__all__ = [
    "AuditError",
    "CleanroomBug",
    "CleanroomError",
    "ConfigError",
    "DecryptionError",
    "FORMAT_VERSION",
    "InputError",
    "KeyMaterialError",
    "Manifest",
    "ManifestMismatch",
    "PROTOCOL_HMAC",
    "PROTOCOL_PSI",
    "PolicyRefusal",
    "atomic_path",
    "read_manifest",
    "write_bytes_atomic",
    "write_token_file",
]
