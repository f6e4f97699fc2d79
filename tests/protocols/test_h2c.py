"""RFC 9380 hash_to_curve for curve25519: published vectors, fast path == reference path,
outputs always on the curve (never the twist)."""

import hashlib
import random

import pytest
from _vectors import vectors
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocols import expand_message_xmd, hash_to_curve, hash_to_curve_u
from protocols.hazmat import _h2c as h2c

ALL = vectors("rfc9380_curve25519")
H2C = [c for c in ALL if c.values[0]["kind"] == "hash_to_curve"]
XMD = [c for c in ALL if c.values[0]["kind"] == "expand_message_xmd"]


def _hex(n: int) -> str:
    return f"{n:064x}"


def test_vector_file_covers_both_suites_and_the_expander():
    suites = {c.values[0]["suite"] for c in H2C}
    assert suites == {h2c.SUITE_RO, h2c.SUITE_NU}
    assert len(H2C) == 10 and len(XMD) == 10


@pytest.mark.parametrize("case", XMD)
def test_expand_message_xmd_sha512(case):
    out = expand_message_xmd(case["msg"].encode(), case["dst"].encode(), case["len_in_bytes"])
    assert out.hex() == case["uniform_bytes"]


@pytest.mark.parametrize("case", H2C)
def test_hash_to_curve_vectors(case):
    msg, dst, suite = case["msg"].encode(), case["dst"].encode(), case["suite"]
    us = h2c.hash_to_field(msg, dst, len(case["u"]))
    assert [_hex(u) for u in us] == case["u"]
    qs = [case["Q0"], case["Q1"]] if "Q0" in case else [case["Q"]]
    for u, q in zip(us, qs, strict=True):
        x, y = h2c.map_to_curve_elligator2(u)
        assert (_hex(x), _hex(y)) == (q["x"], q["y"])
    px, py = hash_to_curve(msg, dst, suite)
    assert (_hex(px), _hex(py)) == (case["P"]["x"], case["P"]["y"])
    # the fast path gives the same point's u-coordinate, little-endian, as X25519 wants it
    assert hash_to_curve_u(msg, dst, suite) == bytes.fromhex(case["P"]["x"])[::-1]


@pytest.mark.parametrize("suite", [h2c.SUITE_RO, h2c.SUITE_NU])
def test_fast_path_equals_reference_path(suite):
    rng = random.Random(9380)
    msgs = [b"", b"jane.doe@example.com", b"16505551212", "zoë@exämple.de".encode()]
    msgs += [rng.randbytes(rng.randrange(0, 300)) for _ in range(150)]
    dst = b"cleanroom-psi-v1:test:email"
    fast = h2c.hash_to_curve_u_many(msgs, dst, suite)
    ref = [hash_to_curve(m, dst, suite)[0].to_bytes(32, "little") for m in msgs]
    assert fast == ref


def test_equal_x_sums_take_the_reference_path(monkeypatch):
    # two maps of one field element give the same point: the fast sum declines to add them
    uniform = bytes(range(48)) * 2
    assert h2c._sum_x(uniform) is None
    # and when it declines, the reference path gives the same bytes as the fast path would
    msgs = [b"jane.doe@example.com", b"", b"16505551212"]
    fast = h2c.hash_to_curve_u_many(msgs, b"dst")
    monkeypatch.setattr(h2c, "_sum_x", lambda uniform: None)
    assert h2c.hash_to_curve_u_many(msgs, b"dst") == fast


def test_first_off_curve_finds_the_first_twist_point():
    points = h2c.hash_to_curve_u_many([b"a", b"b", b"c"], b"dst")
    twist = next(u for u in (bytes([i]) * 32 for i in range(1, 100))
                 if not h2c.u_on_curve([u])[0])
    assert h2c.first_off_curve(points) == -1
    assert h2c.first_off_curve([points[0], twist, points[1], twist]) == 1
    assert h2c.first_off_curve([]) == -1


def test_oversize_dst_is_hashed_the_same_way_on_both_paths():
    dst = b"D" * 300
    short = hashlib.sha512(b"H2C-OVERSIZE-DST-" + dst).digest()
    assert expand_message_xmd(b"abc", dst, 32) == expand_message_xmd(b"abc", short, 32)
    assert hash_to_curve_u(b"abc", dst) == hash_to_curve(b"abc", dst)[0].to_bytes(32, "little")
    assert hash_to_curve_u(b"abc", dst) == hash_to_curve_u(b"abc", short)


def test_outputs_and_their_blindings_are_on_the_curve_but_raw_hashes_are_not():
    rng = random.Random(7748)
    msgs = [rng.randbytes(16) for _ in range(200)]
    points = h2c.hash_to_curve_u_many(msgs, b"dst")
    key = X25519PrivateKey.from_private_bytes(rng.randbytes(32))
    blinded = [key.exchange(X25519PublicKey.from_public_bytes(p)) for p in points]
    assert all(h2c.u_on_curve(points)) and all(h2c.u_on_curve(blinded))
    assert all(h2c.is_on_curve(int.from_bytes(b, "little")) for b in blinded[:20])
    # the naive encoding the RFC replaces: about half of SHA-256 outputs lie on the twist,
    # and blinding keeps them there; the check above would catch it
    naive = [hashlib.sha256(m).digest() for m in msgs]
    naive_flags = h2c.u_on_curve(naive)
    assert 60 < sum(naive_flags) < 140
    naive_blinded = [key.exchange(X25519PublicKey.from_public_bytes(p)) for p in naive]
    assert h2c.u_on_curve(naive_blinded) == naive_flags


def test_outputs_lie_in_the_prime_order_subgroup():
    order = 2**252 + 27742317777372353535851937790883648493
    for msg in (b"", b"abc", b"x" * 100):
        point = hash_to_curve(msg, b"dst")
        acc, add = None, point
        k = order
        while k:  # order * P must be the identity
            if k & 1:
                acc = h2c.point_add(acc, add)
            add = h2c.point_add(add, add)
            k >>= 1
        assert acc is None


def test_unknown_suite_is_refused():
    with pytest.raises(ValueError):
        hash_to_curve_u(b"abc", b"dst", "P256_XMD:SHA-256_SSWU_RO_")
