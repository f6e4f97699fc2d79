"""RFC 9380 hashing to curve25519 (Montgomery form), the encoding under ECDH PSI blinding.

Suites (RFC 9380 section 8.5): `curve25519_XMD:SHA-512_ELL2_RO_` (random oracle: two Elligator 2
maps, one point addition, cofactor clearing) and `curve25519_XMD:SHA-512_ELL2_NU_` (one map,
cofactor clearing; cheaper, but its outputs are only a fraction of the group and are not
indistinguishable from a random oracle). PSI uses the RO suite.

Two implementations that must agree exactly (tests/protocols/test_h2c.py proves it):

* the reference path (`hash_to_curve`, `map_to_curve_elligator2`, ...) follows the RFC's
  straight-line steps with plain Python integers and full (x, y) points; it is what the RFC's
  test vectors check;
* the fast path (`hash_to_curve_u`, `hash_to_curve_u_many`) returns only the u-coordinate as
  the 32 little-endian bytes X25519 takes. It uses gmpy2 (GMP) because the maps need square
  roots: a 255-bit modular exponentiation measured ~10 us with gmpy2 against ~110 us with
  Python's pow() on the development VM, and a gmpy2 inversion ~1.5 us against ~15 us. Each
  map is the RFC's straight-line Elligator 2 for curve25519 (appendix G.2.1): x as a fraction,
  y affine from one exponentiation that is both the inversion and the square root (and that of
  g(x2) = Z*u^2*g(x1) too). The two points are added with x kept as a fraction, the cofactor
  is cleared with three x-only projective doublings, and one inversion at the end gives u:
  ~35 us per value, most of it the two exponentiations the RO suite's y-coordinates need (NU
  would need one, or none with a Legendre symbol, but is not a random-oracle encoding, which
  the DDH-based PSI argument assumes). When the two maps give points with the same x
  (probability ~2^-250), the reference path adds them.

The output point lies in the prime-order subgroup of the curve (never on the twist), so
X25519 blinding keeps it there and leaks no curve/twist bit per identifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import gmpy2

SUITE_RO = "curve25519_XMD:SHA-512_ELL2_RO_"
SUITE_NU = "curve25519_XMD:SHA-512_ELL2_NU_"

P = 2**255 - 19
A = 486662  # J of the Montgomery curve K*t^2 = s^3 + J*s^2 + s, K = 1
Z = 2  # the Elligator 2 non-square of the suite
H_EFF = 8
L = 48  # ceil((ceil(log2(p)) + k) / 8) with k = 128
_B_IN_BYTES, _S_IN_BYTES = 64, 128  # SHA-512 output and block size
_SQRT_M1 = pow(2, (P - 1) // 4, P)
_E38 = (P + 3) // 8
_C2 = pow(2, _E38, P)  # 2^((p+3)/8): turns gx1^((p+3)/8) into (2*gx1)^((p+3)/8)

Point = tuple[int, int] | None  # affine (x, y) on the Montgomery curve; None is the identity


def _oversize(dst: bytes) -> bytes:
    """RFC 9380 5.3.3: a DST longer than 255 bytes is replaced by its hash."""
    if len(dst) > 255:
        return hashlib.sha512(b"H2C-OVERSIZE-DST-" + dst).digest()
    return dst


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 5.3.1 expand_message_xmd with SHA-512: `len_in_bytes` uniform bytes."""
    dst = _oversize(dst)
    ell = -(-len_in_bytes // _B_IN_BYTES)
    if ell > 255 or len_in_bytes > 65535 or len(dst) == 0:
        raise ValueError("expand_message_xmd: requested length or DST out of range")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(_S_IN_BYTES) + msg + len_in_bytes.to_bytes(2, "big") + b"\0" + dst_prime
    b0 = hashlib.sha512(msg_prime).digest()
    out = [hashlib.sha512(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, out[-1], strict=True))
        out.append(hashlib.sha512(mixed + bytes([i]) + dst_prime).digest())
    return b"".join(out)[:len_in_bytes]


def hash_to_field(msg: bytes, dst: bytes, count: int) -> list[int]:
    """RFC 9380 5.2 hash_to_field for GF(p), m = 1: `count` field elements."""
    uniform = expand_message_xmd(msg, dst, count * L)
    return [int.from_bytes(uniform[L * i: L * (i + 1)], "big") % P for i in range(count)]


# ---- reference path: the RFC's steps, plain integers, full points --------------------------

def _is_square(x: int) -> bool:
    return x % P == 0 or pow(x, (P - 1) // 2, P) == 1


def _sqrt(x: int) -> int:
    """A square root of a square x (RFC 9380 I.2 sqrt for p = 5 mod 8)."""
    r = pow(x, _E38, P)
    if r * r % P != x % P:
        r = r * _SQRT_M1 % P
    if r * r % P != x % P:
        raise ValueError("not a square")
    return r


def _inv0(x: int) -> int:
    return pow(x, P - 2, P)


def map_to_curve_elligator2(u: int) -> tuple[int, int]:
    """RFC 9380 6.7.1 Elligator 2 for curve25519 (J = 486662, K = 1, Z = 2): a curve point."""
    x1 = (-A * _inv0(1 + Z * u * u)) % P
    if x1 == 0:
        x1 = -A % P
    gx1 = (x1**3 + A * x1**2 + x1) % P
    x2 = (-x1 - A) % P
    gx2 = (x2**3 + A * x2**2 + x2) % P
    if _is_square(gx1):
        x, y = x1, _sqrt(gx1)
        if y % 2 != 1:
            y = -y % P
    else:
        x, y = x2, _sqrt(gx2)
        if y % 2 != 0:
            y = -y % P
    return x, y


def point_add(p1: Point, p2: Point) -> Point:
    """Add two points of the Montgomery curve y^2 = x^3 + A*x^2 + x (affine; None = identity)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 + 2 * A * x1 + 1) * _inv0(2 * y1) % P
    else:
        lam = (y2 - y1) * _inv0(x2 - x1) % P
    x3 = (lam * lam - A - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def clear_cofactor(p: Point) -> Point:
    """Multiply by h_eff = 8 (three doublings)."""
    for _ in range(3):
        p = point_add(p, p)
    return p


def is_on_curve(u: int) -> bool:
    """Whether the u-coordinate lies on curve25519 (u^3 + A*u^2 + u is a square), not the twist."""
    return _is_square((u**3 + A * u * u + u) % P)


def hash_to_curve(msg: bytes, dst: bytes, suite: str = SUITE_RO) -> Point:
    """RFC 9380 hash_to_curve (RO suite) or encode_to_curve (NU suite): an affine point."""
    if suite == SUITE_RO:
        u0, u1 = hash_to_field(msg, dst, 2)
        r = point_add(map_to_curve_elligator2(u0), map_to_curve_elligator2(u1))
    elif suite == SUITE_NU:
        (u0,) = hash_to_field(msg, dst, 1)
        r = map_to_curve_elligator2(u0)
    else:
        raise ValueError(f"unknown hash-to-curve suite {suite!r}")
    return clear_cofactor(r)


# ---- fast path: gmpy2, u-coordinate only -----------------------------------------------------

_MP, _MA = gmpy2.mpz(P), gmpy2.mpz(A)
_M_SQRT_M1, _M_C2 = gmpy2.mpz(_SQRT_M1), gmpy2.mpz(_C2)
_M_C4 = gmpy2.mpz((P - 5) // 8)
_M_X1N, _M_JJ = gmpy2.mpz(P - A), gmpy2.mpz(A * A % P)  # -J, J^2
_ZPAD = hashlib.sha512(bytes(_S_IN_BYTES))  # the first compression block of every b_0


def _map_fast(u: gmpy2.mpz) -> tuple[gmpy2.mpz, gmpy2.mpz, gmpy2.mpz]:
    """Elligator 2 as RFC 9380 G.2.1 writes it (branches where it has CMOVs): (xn, xd, y)
    with x = xn / xd and y affine; one exponentiation, no inversion."""
    p = _MP
    t1 = 2 * u * u % p
    xd = t1 + 1  # never 0: -1/2 is not a square
    xd2 = xd * xd % p
    gxd = xd2 * xd % p
    gx1 = (xd2 - _M_JJ * t1) * _M_X1N % p  # g(x1) * xd^3, x1 = -J / xd
    gxd2 = gxd * gxd % p
    t3 = gxd2 * gxd * gx1 % p  # gx1 * gxd^3
    y = gmpy2.powmod(gxd2 * gxd2 * t3 % p, _M_C4, p) * t3 % p  # sqrt(gx1/gxd) or * sqrt(-1)
    r = y * y * gxd % p
    if r == gx1 or r + gx1 == p:  # g(x1) is a square: x = x1, sgn0(y) = 1
        if r != gx1:
            y = y * _M_SQRT_M1 % p
        return _M_X1N, xd, (p - y if not y & 1 and y else y)
    y = y * u * _M_C2 % p  # g(x2) = 2 * u^2 * g(x1) is a square: x = x2, sgn0(y) = 0
    if y * y * gxd % p != gx1 * t1 % p:
        y = y * _M_SQRT_M1 % p
    return _M_X1N * t1 % p, xd, (p - y if y & 1 else y)


def _double_x(x: gmpy2.mpz, z: gmpy2.mpz) -> tuple[gmpy2.mpz, gmpy2.mpz]:
    """x-only projective doubling on the Montgomery curve."""
    p = _MP
    xx, zz, xz = x * x % p, z * z % p, x * z % p
    return (xx - zz) ** 2 % p, 4 * xz * (xx + _MA * xz + zz) % p


def _sum_x(uniform: bytes) -> tuple[gmpy2.mpz, gmpy2.mpz] | None:
    """x = X / Z of map(u0) + map(u1) (RO suite), or None when the two x coincide (doubling
    or the identity, probability ~2^-250: the caller takes the reference path)."""
    p = _MP
    n0, d0, y0 = _map_fast(gmpy2.mpz(int.from_bytes(uniform[:L], "big")) % p)
    n1, d1, y1 = _map_fast(gmpy2.mpz(int.from_bytes(uniform[L:2 * L], "big")) % p)
    dn = (n1 * d0 - n0 * d1) % p  # (x1 - x0) * d0 * d1
    if not dn:
        return None
    dd = d0 * d1 % p
    dy = y1 - y0
    dn = dn * dn % p
    # lambda = dy * dd / dn;  x = lambda^2 - A - x0 - x1, over the denominator dn^2 * dd
    return (dy * dy * (dd * dd % p) * dd - dn * (_MA * dd + n0 * d1 + n1 * d0)) % p, dn * dd % p


def hash_to_curve_u(msg: bytes, dst: bytes, suite: str = SUITE_RO) -> bytes:
    """The u-coordinate of hash_to_curve(msg) as 32 little-endian bytes (X25519 input)."""
    return hash_to_curve_u_many([msg], dst, suite)[0]


def hash_to_curve_u_many(msgs: Iterable[bytes], dst: bytes,
                         suite: str = SUITE_RO) -> list[bytes]:
    """`hash_to_curve_u` of every message under one DST, sharing the per-DST set-up."""
    if suite not in (SUITE_RO, SUITE_NU):
        raise ValueError(f"unknown hash-to-curve suite {suite!r}")
    ro = suite == SUITE_RO
    dst = _oversize(dst)
    if not dst:
        raise ValueError("hash_to_curve: empty DST")
    dst_prime = dst + bytes([len(dst)])
    length = (2 if ro else 1) * L
    tail = length.to_bytes(2, "big") + b"\0" + dst_prime
    sep1, sep2 = b"\x01" + dst_prime, b"\x02" + dst_prime
    sha512, zpad, p = hashlib.sha512, _ZPAD, _MP
    out = []
    for msg in msgs:
        h = zpad.copy()
        h.update(msg)
        h.update(tail)
        b0 = h.digest()
        b1 = sha512(b0 + sep1).digest()
        if ro:
            mixed = (int.from_bytes(b0, "little") ^ int.from_bytes(b1, "little")).to_bytes(
                64, "little")
            xz = _sum_x(b1 + sha512(mixed + sep2).digest())
            if xz is None:  # Q0 and Q1 share their x: let the reference path add them
                out.append(_reference_u(msg, dst, suite))
                continue
            x, z = xz
        else:
            x, z, _ = _map_fast(gmpy2.mpz(int.from_bytes(b1[:L], "big")) % p)
        for _ in range(3):  # clear the cofactor
            x, z = _double_x(x, z)
        if not z:
            raise ValueError("hash_to_curve reached the identity point")  # probability ~2^-250
        out.append(int(x * gmpy2.invert(z, p) % p).to_bytes(32, "little"))
    return out


def _reference_u(msg: bytes, dst: bytes, suite: str) -> bytes:
    point = hash_to_curve(msg, dst, suite)
    if point is None:
        raise ValueError("hash_to_curve reached the identity point")
    return point[0].to_bytes(32, "little")


def u_on_curve(values: Sequence[bytes]) -> list[bool]:
    """For each 32-byte little-endian u-coordinate: whether it lies on the curve (not the twist)."""
    p = _MP
    result = []
    for v in values:
        u = gmpy2.mpz(int.from_bytes(v, "little") & ((1 << 255) - 1)) % p
        g = u * (u * (u + _MA) + 1) % p
        result.append(g == 0 or gmpy2.legendre(g, p) == 1)
    return result


def first_off_curve(values: Sequence[bytes]) -> int:
    """The index of the first 32-byte u-coordinate that lies on the twist, or -1 if none does."""
    p, a, mask, legendre, mpz = _MP, _MA, (1 << 255) - 1, gmpy2.legendre, gmpy2.mpz
    for i, v in enumerate(values):
        u = mpz(int.from_bytes(v, "little") & mask)
        if legendre(u * (u * (u + a) + 1) % p, p) < 0:
            return i
    return -1
