"""Identity keys: the Ed25519 key pair a member, an auditor or the operator is known by.

Files:

    PREFIX.key   PEM PKCS#8 Ed25519 private key, unencrypted             mode 0600
    PREFIX.pub   one line: "cleanroom-identity-v1 <base64 of the 32 raw bytes>"   mode 0644

The public line is short enough to paste inline into a collaboration file
(`identity = "cleanroom-identity-v1 ..."`), carries its format version, and is the only
public-key format we read. The fingerprint (32 hex digits, a domain-separated SHA-256 of the
raw public key) names a key on the wire: it is the `keyid` of a signed request.

An identity key signs requests and audit heads; it never derives tokens and is unrelated to
the X25519 keys of `_keys.py`. No key byte ever appears in a message, a log or a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._errors import KeyMaterialError
from ._io import read_key_file, write_bytes_atomic

IDENTITY_PUBLIC_PREFIX = "cleanroom-identity-v1"
_FINGERPRINT_DOMAIN = b"cleanroom-identity-fingerprint-v1\x00"
_MAX_KEY_FILE = 1 << 14


def format_identity_public(public_key: Ed25519PublicKey) -> str:
    """The one-line public form: `cleanroom-identity-v1 <base64 of 32 raw bytes>`."""
    return f"{IDENTITY_PUBLIC_PREFIX} {base64.b64encode(_raw_public(public_key)).decode('ascii')}"


def identity_fingerprint(public_key: Ed25519PublicKey) -> str:
    """A short, stable, non-secret name for a public key (32 lowercase hex digits)."""
    digest = hashlib.sha256(_FINGERPRINT_DOMAIN + _raw_public(public_key)).hexdigest()
    return digest[:32]


def write_identity(prefix: str | os.PathLike[str], *, force: bool = False,
                   private_key: Ed25519PrivateKey | None = None) -> tuple[Path, Path]:
    """Write PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (one line) for a new identity.

    Refuses to overwrite either file unless `force`; both are written to a temporary name and
    renamed. `private_key=` pins the key (tests). Returns (key_path, pub_path).
    """
    key_path = Path(f"{os.fspath(prefix)}.key")
    pub_path = Path(f"{os.fspath(prefix)}.pub")
    for path in (key_path, pub_path):
        if (path.exists() or path.is_symlink()) and not force:
            raise KeyMaterialError(f"{path}: already exists; refusing to overwrite (use --force)")
    key = private_key if private_key is not None else Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    line = format_identity_public(key.public_key()) + "\n"
    try:
        write_bytes_atomic(key_path, pem, mode=0o600)
        write_bytes_atomic(pub_path, line.encode("ascii"), mode=0o644)
    except OSError as exc:
        raise KeyMaterialError(f"{exc.filename or prefix}: cannot write identity key "
                               f"({exc.strerror})") from None
    return key_path, pub_path


def load_identity_private(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Load PREFIX.key; refuse a missing, non-regular, group/other-readable or foreign file."""
    name = os.fspath(path)
    raw = read_key_file(name, what="identity key", private=True, limit=_MAX_KEY_FILE)
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        raise KeyMaterialError(f"{name}: identity key is not an unencrypted PEM private key"
                               ) from None
    except UnsupportedAlgorithm:
        raise KeyMaterialError(f"{name}: identity key is not a supported private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyMaterialError(f"{name}: identity key is not an Ed25519 key")
    return key


def load_identity_public(source: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Load a public identity from its one-line text (inline) or from a file holding it.

    A `str` starting with `cleanroom-identity-v1` is the key itself; any other `str` or a
    path is a file name.
    """
    if isinstance(source, str) and source.strip().startswith(IDENTITY_PUBLIC_PREFIX):
        return _parse_public(source, where="inline identity")
    name = os.fspath(source)
    raw = read_key_file(name, what="public identity", private=False,
                        limit=_MAX_KEY_FILE)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise KeyMaterialError(f"{name}: public identity is not ASCII text") from None
    return _parse_public(text, where=name)


def _parse_public(text: str, *, where: str) -> Ed25519PublicKey:
    parts = text.strip().split(" ")
    if len(parts) != 2 or parts[0] != IDENTITY_PUBLIC_PREFIX:
        raise KeyMaterialError(
            f"{where}: not a public identity (expected '{IDENTITY_PUBLIC_PREFIX} <base64>')")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeyMaterialError(f"{where}: public identity is not base64 of 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise KeyMaterialError(f"{where}: public identity is not a valid Ed25519 key") from None


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    if not isinstance(public_key, Ed25519PublicKey):
        raise KeyMaterialError("an identity public key must be an Ed25519 public key")
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
