"""Signed audit heads: the operator's signature over (head, count) proves rewrite or truncation."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom.server import HEAD_DOMAIN, sign_head, verify_head
from protocols import CleanroomBug

OPERATOR = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
HEAD = hashlib.sha256(b"some audit entry").hexdigest()
# Ed25519 signatures are deterministic (RFC 8032): this pins the signed message format.
PINNED = ("Q+0Rk+VtqPc3o6JnlENs25vbtAEvMtwui1OdeX5HBp0ajB+irPvDgdHga2xAsiJdYy3p+WpdLBfxXw6Oda4eDQ"
          "==")


def test_signed_head_verifies():
    sig = sign_head(OPERATOR, HEAD, 7)
    assert verify_head(OPERATOR.public_key(), HEAD, 7, sig)
    assert len(base64.b64decode(sig)) == 64


def test_message_format_is_pinned():
    assert sign_head(OPERATOR, "0" * 64, 0) == PINNED
    assert HEAD_DOMAIN == b"cleanroom-audit-head-v1\x00"


def test_altered_head_or_count_fails():
    sig = sign_head(OPERATOR, HEAD, 7)
    other_head = ("1" if HEAD[0] != "1" else "2") + HEAD[1:]
    assert not verify_head(OPERATOR.public_key(), other_head, 7, sig)
    assert not verify_head(OPERATOR.public_key(), HEAD, 6, sig)   # truncated
    assert not verify_head(OPERATOR.public_key(), HEAD, 8, sig)
    assert not verify_head(Ed25519PrivateKey.generate().public_key(), HEAD, 7, sig)


def test_signature_is_domain_separated():
    bare = base64.b64encode(OPERATOR.sign(HEAD.encode())).decode()
    assert not verify_head(OPERATOR.public_key(), HEAD, 7, bare)


@pytest.mark.parametrize("head, count, signature", [
    (HEAD.upper(), 7, None),
    (HEAD[:-1], 7, None),
    (HEAD, -1, None),
    (HEAD, True, None),
    (HEAD, 7, "not base64 at all"),
    (HEAD, 7, "A" * 88),
    (HEAD, 7, ""),
])
def test_malformed_input_fails_closed(head, count, signature):
    sig = signature if signature is not None else sign_head(OPERATOR, HEAD, 7)
    assert verify_head(OPERATOR.public_key(), head, count, sig) is False


def test_signing_a_malformed_head_is_a_bug():
    with pytest.raises(CleanroomBug):
        sign_head(OPERATOR, "not-a-head", 1)
    with pytest.raises(CleanroomBug):
        sign_head(OPERATOR, HEAD, -1)
