"""How identifiers leave a party: keys, keyed tokens, the token file, PSI, platform hashes, C3R.

Recipes at the top (key files, `tokenize_file`, `psi_*_file`, `normalize_file`, the manifest,
`inspect_token_file`) make every algorithm choice for you. Below them: `protocols.hazmat`
(HMAC tokens, hash-to-curve, ECDH blinding; read its docstring before using it),
`protocols.c3r` (AWS C3R-compatible columns) and `protocols.platform` (ad-platform uploads).
"""

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
from ._inspect import inspect_token_file
from ._io import atomic_path, write_bytes_atomic
from ._keys import (
    CollaborationSecret,
    agree_secret,
    derive_match_key,
    derive_token_key,
    key_fingerprint,
    load_private_key,
    load_public_key,
    load_secret,
    new_secret,
    parse_collaboration_id,
    write_keypair,
    write_secret,
)
from ._manifest import (
    FORMAT_VERSION,
    MANIFEST_METADATA_KEY,
    PROTOCOL_HMAC,
    PROTOCOL_PSI,
    Manifest,
    read_manifest,
    write_token_file,
)
from ._normalize_file import NormalizeReport, normalize_file
from ._psi import (
    PsiBlindResult,
    PsiReblindResult,
    psi_blind_file,
    psi_finish_file,
    psi_reblind_file,
)
from ._tokenize import TokenizeReport, tokenize_file
from .hazmat import (  # primitives, kept here for callers of earlier versions
    MATCH_SEPARATOR,
    expand_message_xmd,
    hash_to_curve,
    hash_to_curve_u,
    hmac_token,
    hmac_tokens,
    psi_blind_values,
    psi_reblind_values,
)
from .platform import platform_hash

__all__ = [
    "AuditError",
    "CleanroomBug",
    "CleanroomError",
    "CollaborationSecret",
    "ConfigError",
    "DecryptionError",
    "FORMAT_VERSION",
    "InputError",
    "KeyMaterialError",
    "MANIFEST_METADATA_KEY",
    "MATCH_SEPARATOR",
    "Manifest",
    "ManifestMismatch",
    "NormalizeReport",
    "PROTOCOL_HMAC",
    "PROTOCOL_PSI",
    "PolicyRefusal",
    "PsiBlindResult",
    "PsiReblindResult",
    "TokenizeReport",
    "agree_secret",
    "atomic_path",
    "derive_match_key",
    "derive_token_key",
    "expand_message_xmd",
    "hash_to_curve",
    "hash_to_curve_u",
    "hmac_token",
    "hmac_tokens",
    "inspect_token_file",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "load_secret",
    "new_secret",
    "normalize_file",
    "parse_collaboration_id",
    "platform_hash",
    "psi_blind_file",
    "psi_blind_values",
    "psi_finish_file",
    "psi_reblind_file",
    "psi_reblind_values",
    "read_manifest",
    "tokenize_file",
    "write_bytes_atomic",
    "write_keypair",
    "write_secret",
    "write_token_file",
]
