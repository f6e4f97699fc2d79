"""Key material: collaboration secrets, X25519 key pairs and agreement, HKDF-derived keys.

Files (all JSON, all carrying `"version": 1`):

    secret     {"version", "collaboration_id", "secret": base64(32 bytes)}     mode 0600
    PREFIX.key {"version", "type": "x25519-private", "key": base64(32 bytes)}  mode 0600
    PREFIX.pub {"version", "type": "x25519-public",  "key": base64(32 bytes)}  mode 0644

Every key used for tokens is derived from the collaboration secret with HKDF-SHA256
(salt = collaboration id, info = purpose + format version + kind), so tokens of two kinds or
two collaborations are unrelated, and the fingerprint key is never a token key. No secret ever
appears in a message, a log or a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets as _secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import KeyMaterialError
from ._io import read_key_file, write_bytes_atomic

KEY_FILE_VERSION = 1
_MAX_KEY_FILE = 1 << 16
SECRET_BYTES = 32
_TOKEN_INFO = b"cleanroom/hmac-sha256/v1/token/"
_MATCH_INFO = b"cleanroom/hmac-sha256/v1/match-key/"
_FINGERPRINT_INFO = b"cleanroom/v1/key-fingerprint"
_AGREE_INFO = b"cleanroom/v1/keys-agree"


@dataclass(frozen=True, repr=False)
class CollaborationSecret:
    """A collaboration id and its 32-byte secret; repr and str never show the secret."""

    collaboration_id: str
    secret: bytes = field(compare=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "collaboration_id", parse_collaboration_id(self.collaboration_id))
        if not isinstance(self.secret, bytes) or len(self.secret) != SECRET_BYTES:
            raise KeyMaterialError(f"a collaboration secret must be {SECRET_BYTES} bytes")

    def __repr__(self) -> str:
        return f"CollaborationSecret(collaboration_id={self.collaboration_id!r}, secret=<hidden>)"

    __str__ = __repr__

    @property
    def fingerprint(self) -> str:
        """The non-secret fingerprint recorded in manifests (see `key_fingerprint`)."""
        return key_fingerprint(self)


def parse_collaboration_id(text: str) -> str:
    """Return `text` as a canonical lowercase UUID string, or raise KeyMaterialError."""
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        raise KeyMaterialError("a collaboration id must be a UUID") from None


def new_secret(collaboration_id: str | None = None, *, secret: bytes | None = None
               ) -> CollaborationSecret:
    """Make a fresh collaboration secret (random id unless given; `secret=` pins it for tests)."""
    cid = collaboration_id if collaboration_id is not None else str(uuid.uuid4())
    return CollaborationSecret(cid, secret if secret is not None else _secrets.token_bytes(32))


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise KeyMaterialError(f"{path}: already exists; refusing to overwrite (use --force)")


def write_secret(secret: CollaborationSecret, path: str | os.PathLike[str], *,
                 force: bool = False) -> Path:
    """Write a secret file atomically with mode 0600; refuse to overwrite unless `force`."""
    target = Path(path)
    _refuse_existing(target, force)
    doc = {
        "version": KEY_FILE_VERSION,
        "collaboration_id": secret.collaboration_id,
        "secret": base64.b64encode(secret.secret).decode("ascii"),
    }
    write_bytes_atomic(target, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)
    return target


def _read_json(path: str | os.PathLike[str], *, private: bool, what: str) -> dict[str, Any]:
    name = os.fspath(path)
    raw = read_key_file(name, what=what, private=private, limit=_MAX_KEY_FILE)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyMaterialError(f"{name}: {what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise KeyMaterialError(f"{name}: {what} is not a JSON object")
    if doc.get("version") != KEY_FILE_VERSION:
        raise KeyMaterialError(
            f"{name}: unsupported {what} version {doc.get('version')!r}"
            f" (expected {KEY_FILE_VERSION})"
        )
    return doc


def _b64_32(doc: dict[str, Any], field_name: str, name: str, what: str) -> bytes:
    value = doc.get(field_name)
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeyMaterialError(f"{name}: {what} field {field_name!r} is not base64 of 32 bytes")
    return raw


def load_secret(path: str | os.PathLike[str]) -> CollaborationSecret:
    """Load a secret file, refusing group/other-readable files, wrong versions, bad JSON."""
    name = os.fspath(path)
    doc = _read_json(name, private=True, what="secret file")
    raw = _b64_32(doc, "secret", name, "secret file")
    try:
        cid = parse_collaboration_id(doc.get("collaboration_id", ""))
    except KeyMaterialError:
        raise KeyMaterialError(f"{name}: secret file collaboration_id is not a UUID") from None
    return CollaborationSecret(cid, raw)


def write_keypair(prefix: str | os.PathLike[str], *, force: bool = False,
                  private_key: X25519PrivateKey | None = None) -> tuple[Path, Path]:
    """Write PREFIX.key (0600) and PREFIX.pub for a new X25519 key pair; return both paths."""
    key_path, pub_path = Path(f"{os.fspath(prefix)}.key"), Path(f"{os.fspath(prefix)}.pub")
    _refuse_existing(key_path, force)
    _refuse_existing(pub_path, force)
    priv = private_key or X25519PrivateKey.generate()
    raw_priv = priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption())
    raw_pub = _public_bytes(priv.public_key())
    for path, kind, raw, mode in ((key_path, "x25519-private", raw_priv, 0o600),
                                  (pub_path, "x25519-public", raw_pub, 0o644)):
        doc = {"version": KEY_FILE_VERSION, "type": kind,
               "key": base64.b64encode(raw).decode("ascii")}
        write_bytes_atomic(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=mode)
    return key_path, pub_path


def _public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _load_typed(path: str | os.PathLike[str], kind: str, private: bool) -> bytes:
    name = os.fspath(path)
    what = "private key file" if private else "public key file"
    doc = _read_json(name, private=private, what=what)
    if doc.get("type") != kind:
        raise KeyMaterialError(f"{name}: {what} has type {doc.get('type')!r}, expected {kind!r}")
    return _b64_32(doc, "key", name, what)


def load_private_key(path: str | os.PathLike[str]) -> X25519PrivateKey:
    """Load an X25519 private key file (mode 0600, version 1, type x25519-private)."""
    return X25519PrivateKey.from_private_bytes(_load_typed(path, "x25519-private", True))


def load_public_key(path: str | os.PathLike[str]) -> X25519PublicKey:
    """Load an X25519 public key file (version 1, type x25519-public)."""
    return X25519PublicKey.from_public_bytes(_load_typed(path, "x25519-public", False))


def agree_secret(private_key: X25519PrivateKey, their_public: X25519PublicKey,
                 collaboration_id: str) -> CollaborationSecret:
    """Derive the collaboration secret both parties get from X25519 + HKDF-SHA256.

    Salt binds the collaboration id; info binds both public keys in sorted order, so each
    side, using its own private key and the other's public key, gets identical bytes.
    """
    cid = parse_collaboration_id(collaboration_id)
    mine, theirs = _public_bytes(private_key.public_key()), _public_bytes(their_public)
    if hmac.compare_digest(mine, theirs):
        raise KeyMaterialError("the other party's public key is your own public key")
    try:
        shared = private_key.exchange(their_public)
    except ValueError:
        raise KeyMaterialError("the other party's public key is invalid (low order)") from None
    low, high = sorted((mine, theirs))
    okm = HKDF(algorithm=hashes.SHA256(), length=SECRET_BYTES,
               salt=b"cleanroom/v1/collaboration/" + cid.encode("ascii"),
               info=_AGREE_INFO + low + high).derive(shared)
    return CollaborationSecret(cid, okm)


def _hkdf(secret: CollaborationSecret, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32,
                salt=secret.collaboration_id.encode("ascii"), info=info).derive(secret.secret)


def _check_label(label: str) -> bytes:
    if not label or any(c in label for c in "=+/\x00\x1f") or not label.isprintable():
        raise KeyMaterialError(f"invalid key label {label!r}")
    return label.encode("utf-8")


def derive_token_key(secret: CollaborationSecret, kind: str) -> bytes:
    """The HMAC key for tokens of one identifier kind in this collaboration."""
    return _hkdf(secret, _TOKEN_INFO + _check_label(kind))


def derive_match_key(secret: CollaborationSecret, name: str, parts: tuple[str, ...]) -> bytes:
    """The HMAC key of a match key: bound to its name and its ordered parts."""
    if not parts:
        raise KeyMaterialError("a match key needs at least one part")
    info = _check_label(name) + b"=" + b"+".join(_check_label(p) for p in parts)
    return _hkdf(secret, _MATCH_INFO + info)


def key_fingerprint(secret: CollaborationSecret) -> str:
    """A short non-secret value (16 hex digits) proving two files used the same secret."""
    fp_key = _hkdf(secret, _FINGERPRINT_INFO)
    return hmac.new(fp_key, b"cleanroom key fingerprint v1", hashlib.sha256).hexdigest()[:16]
