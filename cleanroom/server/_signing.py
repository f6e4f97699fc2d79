"""Signed audit heads: the operator's Ed25519 signature over an audit chain's head and length.

A member who keeps a signed (head, count) from an answer can later prove what the log held:
a log rewritten or truncated by its own writer no longer reaches that head at that count, and
the operator cannot deny having signed it. The signed message is versioned and
domain-separated, so this signature can never be mistaken for a request signature:

    b"cleanroom-audit-head-v1\\x00" + head (64 lowercase hex, ASCII) + b"\\x00"
        + count (8 bytes, big-endian)

The signature travels as base64 (standard alphabet) of the 64 Ed25519 signature bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocols import CleanroomBug

HEAD_DOMAIN = b"cleanroom-audit-head-v1\x00"
_HEAD = re.compile(r"[0-9a-f]{64}")
_MAX_COUNT = (1 << 64) - 1


def _message(head: str, count: int) -> bytes | None:
    if not isinstance(head, str) or _HEAD.fullmatch(head) is None:
        return None
    if type(count) is not int or not 0 <= count <= _MAX_COUNT:
        return None
    return HEAD_DOMAIN + head.encode("ascii") + b"\x00" + count.to_bytes(8, "big")


def sign_head(private_key: Ed25519PrivateKey, head: str, count: int) -> str:
    """Sign an audit chain head (64 lowercase hex digits) and its entry count."""
    message = _message(head, count)
    if message is None:
        raise CleanroomBug("an audit head is 64 lowercase hex digits and a count >= 0")
    if not isinstance(private_key, Ed25519PrivateKey):
        raise CleanroomBug("audit heads are signed with an Ed25519 private key")
    return base64.b64encode(private_key.sign(message)).decode("ascii")


def verify_head(public_key: Ed25519PublicKey, head: str, count: int, signature: str) -> bool:
    """True only if `signature` is the operator's signature of exactly this head and count.

    Fails closed: any malformed argument gives False, never an exception.
    """
    message = _message(head, count)
    if message is None or not isinstance(public_key, Ed25519PublicKey):
        return False
    if not isinstance(signature, str) or len(signature) != 88:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, message)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
