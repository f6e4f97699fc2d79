"""AWS C3R-compatible output: fingerprint and sealed columns byte-compatible with the C3R client.

C3R (Cryptographic Computing for Clean Rooms) does no identifier normalization; put
`normalize` in front (see `encrypt_file(normalize=...)`) so that `Jane.Doe@Gmail.com` and
`jane.doe@gmail.com` give one fingerprint.

    from protocols import c3r
    s = c3r.Settings(allow_duplicates=True)
    c3r.fingerprint("jane@example.com", secret=key, salt=collab_id, column="email", settings=s)
    token = c3r.seal("Jane", secret=key, salt=collab_id, column="name", settings=s)
    c3r.unseal(token, secret=key, salt=collab_id)   # -> "Jane"
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Mapping
from typing import Any, cast

from . import _core
from ._core import (
    FINGERPRINT_PREFIX,
    SEALED_PREFIX,
    DataType,
    Pad,
    PadType,
    SealedDecimal,
    SealedTimestamp,
    Settings,
    normalize_header,
)
from ._files import (
    SECRET_ENV,
    EncryptReport,
    decrypt_file,
    encrypt_file,
    secret_from_env,
)
from ._schema import ColumnSpec, Schema

__all__ = [
    "ColumnSpec",
    "DataType",
    "EncryptReport",
    "FINGERPRINT_PREFIX",
    "Pad",
    "SEALED_PREFIX",
    "SECRET_ENV",
    "Schema",
    "SealedDecimal",
    "SealedTimestamp",
    "Settings",
    "decrypt_file",
    "encrypt_file",
    "fingerprint",
    "fingerprint_bytes",
    "normalize_header",
    "seal",
    "seal_bytes",
    "secret_from_env",
    "unseal",
    "unseal_bytes",
]


def fingerprint(value: object, *, secret: bytes, salt: str, column: str,
                settings: Settings) -> str | None:
    """The C3R fingerprint (`02:hmac:...`) of one value: str, int, bool, datetime.date or None.

    None gives None with `preserve_nulls`, else a random token that never matches (as C3R).
    """
    key = _core.fingerprint_key(secret, salt, column, settings)
    return _core.fingerprint_typed(value, _core.python_type(value), key=key, settings=settings)


def fingerprint_bytes(message: bytes, *, secret: bytes, salt: str, column: str,
                      settings: Settings) -> str:
    """The C3R HMAC core on raw bytes (no type byte appended): for checking published vectors."""
    key = _core.fingerprint_key(secret, salt, column, settings)
    return _core.hmac_token(key, bytes(message))


def _as_pad(pad: Pad | Mapping[str, Any] | str | None) -> Pad:
    """A Pad from a Pad, C3R's JSON form ({"type": "fixed", "length": 32}) or "none"."""
    if pad is None:
        return Pad()
    if isinstance(pad, Pad):
        return pad
    if isinstance(pad, str):
        return Pad(cast(PadType, pad.lower()))
    return Pad(cast(PadType, str(pad.get("type", "none")).lower()), pad.get("length"))


def seal(value: object, *, secret: bytes, salt: str, column: str, settings: Settings,
         pad: Pad | Mapping[str, Any] | str | None = None, nonce: bytes | None = None,
         max_value_length: int | None = None) -> str | None:
    """Seal one value as a C3R sealed column would (`02:enc:...`); `nonce` pins it for tests.

    `pad` defaults to none (a Pad, or C3R's JSON form); with a `max` pad, `max_value_length`
    is the longest encoded value of the column (default: this value's own length). None gives
    None with `preserve_nulls`, else an encrypted NULL.
    """
    if value is None and settings.preserve_nulls:
        return None
    dtype = _core.python_type(value)
    encoded = _core.encode_sealed(value, dtype)
    if max_value_length is None:
        max_value_length = len(encoded) if value is not None else 0
    label = normalize_header(column)
    return _core.seal_encoded(
        encoded, root=_core.root_key(secret, salt), column=label,
        nonce=_secrets.token_bytes(_core.NONCE_BYTES) if nonce is None else bytes(nonce),
        pad=_as_pad(pad), max_value_length=max_value_length)


def seal_bytes(message: bytes, *, secret: bytes, salt: str, column: str,
               pad: Pad | Mapping[str, Any] | str | None = None, nonce: bytes | None = None,
               max_value_length: int = 0) -> str:
    """The C3R sealing core on raw bytes (no info byte prepended): for published vectors."""
    return _core.seal_encoded(
        bytes(message), root=_core.root_key(secret, salt), column=column,
        nonce=_secrets.token_bytes(_core.NONCE_BYTES) if nonce is None else bytes(nonce),
        pad=_as_pad(pad), max_value_length=max_value_length)


def unseal_bytes(value: str, *, secret: bytes, salt: str) -> bytes:
    """Decrypt a sealed value to its raw plaintext bytes (padding removed, info byte kept)."""
    return _core.open_sealed(value, root=_core.root_key(secret, salt))


def unseal(value: str | None, *, secret: bytes, salt: str, column: str | None = None,
           settings: Settings | None = None) -> object:
    """Decrypt a C3R sealed value to its Python value (str, int, bool, date, float or None).

    Values sealed from Parquet DECIMAL / TIMESTAMP columns come back as SealedDecimal /
    SealedTimestamp (value plus the metadata C3R stores with it).

    Wrong key or tampered data raise DecryptionError without detail. `column` and `settings`
    are accepted for symmetry with `seal` and are not needed: the IV travels in the value.
    """
    if value is None:
        return None
    root = _core.root_key(secret, salt)
    _dtype, plain = _core.decode_sealed(_core.open_sealed(value, root=root))
    return plain
