"""How identifiers leave a party: keys, keyed tokens, the token file, PSI, platform hashes, C3R.

Recipes at the top (key files, identity keys, `tokenize_file`, `psi_*_file`, `normalize_file`,
the manifest, `inspect_token_file`) make every algorithm choice for you. Below them:
`protocols.hazmat` (HMAC tokens, hash-to-curve, ECDH blinding; read its docstring before using
it), `protocols.c3r` (AWS C3R-compatible columns) and `protocols.platform` (ad-platform uploads).
Names load on first use, so each step imports only what it needs.
"""

from typing import TYPE_CHECKING

import lazy_loader

from ._errors import (
    AUTH_REASONS,
    AuditError,
    AuthReason,
    CleanroomBug,
    CleanroomError,
    ConfigError,
    DecryptionError,
    InputError,
    KeyMaterialError,
    ManifestMismatch,
    NotAllowed,
    NotAuthenticated,
    PolicyRefusal,
    ServerError,
)

if TYPE_CHECKING:
    from ._fuzzy import (
        FORM_SEPARATOR,
        FUZZY_FORMS,
        FUZZY_VERSION,
        derive_forms,
        derive_fuzzy_key,
        form_column,
        fuzzy_library_versions,
        fuzzy_tokens,
        parse_form_column,
    )
    from ._identity import (
        IDENTITY_PUBLIC_PREFIX,
        format_identity_public,
        identity_fingerprint,
        load_identity_private,
        load_identity_public,
        write_identity,
    )
    from ._inspect import (
        inspect_token_file,
    )
    from ._io import (
        atomic_path,
        fsync_path,
        write_bytes_atomic,
    )
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
        FUZZY_FORMAT_VERSION,
        MANIFEST_METADATA_KEY,
        PROTOCOL_HMAC,
        PROTOCOL_PSI,
        READABLE_FORMAT_VERSIONS,
        Manifest,
        read_manifest,
        write_token_file,
    )
    from ._normalize_file import (
        NormalizeReport,
        normalize_file,
    )
    from ._psi import (
        PsiBlindResult,
        PsiReblindResult,
        psi_blind_file,
        psi_finish_file,
        psi_reblind_file,
    )
    from ._readers import (
        read_input_table,
    )
    from ._tokenize import (
        TokenizeReport,
        tokenize_file,
    )
    from .hazmat import (
        MATCH_SEPARATOR,
        expand_message_xmd,
        hash_to_curve,
        hash_to_curve_u,
        hmac_token,
        hmac_tokens,
        psi_blind_values,
        psi_reblind_values,
    )
    from .platform import (
        platform_hash,
    )

# Each name is imported from its module the first time it is used.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submodules=["c3r", "hazmat", "platform"],
    submod_attrs={
        "_fuzzy": (
            "FORM_SEPARATOR", "FUZZY_FORMS", "FUZZY_VERSION", "derive_forms",
            "derive_fuzzy_key", "form_column", "fuzzy_library_versions", "fuzzy_tokens",
            "parse_form_column",
        ),
        "_identity": (
            "IDENTITY_PUBLIC_PREFIX", "format_identity_public", "identity_fingerprint",
            "load_identity_private", "load_identity_public", "write_identity",
        ),
        "_inspect": (
            "inspect_token_file",
        ),
        "_io": (
            "atomic_path", "fsync_path", "write_bytes_atomic",
        ),
        "_keys": (
            "CollaborationSecret", "agree_secret", "derive_match_key",
            "derive_token_key", "key_fingerprint", "load_private_key",
            "load_public_key", "load_secret", "new_secret", "parse_collaboration_id",
            "write_keypair", "write_secret",
        ),
        "_manifest": (
            "FORMAT_VERSION", "FUZZY_FORMAT_VERSION", "MANIFEST_METADATA_KEY",
            "PROTOCOL_HMAC", "PROTOCOL_PSI", "READABLE_FORMAT_VERSIONS", "Manifest",
            "read_manifest", "write_token_file",
        ),
        "_normalize_file": (
            "NormalizeReport", "normalize_file",
        ),
        "_psi": (
            "PsiBlindResult", "PsiReblindResult", "psi_blind_file", "psi_finish_file",
            "psi_reblind_file",
        ),
        "_readers": (
            "read_input_table",
        ),
        "_tokenize": (
            "TokenizeReport", "tokenize_file",
        ),
        "hazmat": (  # primitives, kept here for callers of earlier versions
            "MATCH_SEPARATOR", "expand_message_xmd", "hash_to_curve", "hash_to_curve_u",
            "hmac_token", "hmac_tokens", "psi_blind_values", "psi_reblind_values",
        ),
        "platform": (
            "platform_hash",
        ),
    },
)

__all__ = [
    "AUTH_REASONS",
    "AuditError",
    "AuthReason",
    "CleanroomBug",
    "CleanroomError",
    "CollaborationSecret",
    "ConfigError",
    "DecryptionError",
    "FORMAT_VERSION",
    "FORM_SEPARATOR",
    "FUZZY_FORMAT_VERSION",
    "FUZZY_FORMS",
    "FUZZY_VERSION",
    "IDENTITY_PUBLIC_PREFIX",
    "InputError",
    "KeyMaterialError",
    "MANIFEST_METADATA_KEY",
    "MATCH_SEPARATOR",
    "Manifest",
    "ManifestMismatch",
    "NormalizeReport",
    "NotAllowed",
    "NotAuthenticated",
    "PROTOCOL_HMAC",
    "PROTOCOL_PSI",
    "PolicyRefusal",
    "PsiBlindResult",
    "PsiReblindResult",
    "READABLE_FORMAT_VERSIONS",
    "ServerError",
    "TokenizeReport",
    "agree_secret",
    "atomic_path",
    "derive_forms",
    "derive_fuzzy_key",
    "derive_match_key",
    "derive_token_key",
    "expand_message_xmd",
    "form_column",
    "format_identity_public",
    "fsync_path",
    "fuzzy_library_versions",
    "fuzzy_tokens",
    "hash_to_curve",
    "hash_to_curve_u",
    "hmac_token",
    "hmac_tokens",
    "identity_fingerprint",
    "inspect_token_file",
    "key_fingerprint",
    "load_identity_private",
    "load_identity_public",
    "load_private_key",
    "load_public_key",
    "load_secret",
    "new_secret",
    "normalize_file",
    "parse_collaboration_id",
    "parse_form_column",
    "platform_hash",
    "psi_blind_file",
    "psi_blind_values",
    "psi_finish_file",
    "psi_reblind_file",
    "psi_reblind_values",
    "read_input_table",
    "read_manifest",
    "tokenize_file",
    "write_bytes_atomic",
    "write_identity",
    "write_keypair",
    "write_secret",
    "write_token_file",
]
