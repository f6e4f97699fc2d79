"""The vectorized token path (DuckDB HMAC, Arrow joins) equals the per-value reference."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols

# Published RFC 4231 HMAC-SHA256 test cases 2 and 3 (key, data, digest).
RFC4231 = [
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
]


@pytest.mark.parametrize("key, data, digest", RFC4231)
def test_reference_matches_rfc4231(key, data, digest):
    assert hmac.digest(key, data, hashlib.sha256).hex() == digest
    # the fast path takes text: case 3 is not text, so only case 2 goes through it
    if data.isascii():
        assert protocols.hmac_tokens(key, pa.array([data.decode()]))[0].as_py().hex() == digest


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=1, max_size=100), values=st.lists(st.none() | text, max_size=40))
def test_hmac_tokens_equal_hmac_token(key, values):
    fast = protocols.hmac_tokens(key, pa.array(values, pa.string())).to_pylist()
    assert fast == [None if v is None else protocols.hmac_token(key, v) for v in values]


def test_realistic_values_and_a_large_batch():
    key = bytes(range(32))
    values = [f"user.{i}@exämple-{i % 97}.com" if i % 11 else None for i in range(20_000)]
    values += ["", " ", "+16505550101", "josé", "ß", "\u00e9", "e\u0301", "日本語"]
    fast = protocols.hmac_tokens(key, pa.array(values, pa.string())).to_pylist()
    assert fast == [None if v is None else protocols.hmac_token(key, v) for v in values]
    assert all(len(t) == 32 for t in fast if t is not None)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.lists(st.none() | text, min_size=5, max_size=5), min_size=1,
                      max_size=4))
def test_join_match_parts_equals_python_join(parts):
    joined, bad = protocols.hazmat.join_match_parts([pa.array(p, pa.string()) for p in parts])
    for row in range(5):
        cells = [p[row] for p in parts]
        has_control = any(c is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in c)
                          for c in cells)
        assert bad[row].as_py() is has_control
        if has_control or None in cells:
            assert joined[row].as_py() is None
        else:
            assert joined[row].as_py() == protocols.MATCH_SEPARATOR.join(cells)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.none() | text, min_size=1, max_size=40), data=st.data())
def test_hmac_tokens_on_a_slice_of_a_larger_array(values, data):
    """Batches are slices of the file's arrays: offsets and validity bitmaps must be honoured."""
    start = data.draw(st.integers(0, len(values) - 1))
    stop = data.draw(st.integers(start, len(values)))
    key = bytes(range(7, 39))
    fast = protocols.hmac_tokens(key, pa.array(values, pa.string()).slice(start, stop - start))
    assert fast.type == pa.binary()
    assert fast.to_pylist() == [None if v is None else protocols.hmac_token(key, v)
                                for v in values[start:stop]]


_reason = st.none() | st.sampled_from(["empty", "syntax", "date", "postal", "placeholder"])


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.lists(_reason, min_size=3, max_size=3), st.booleans()),
                     min_size=1, max_size=30))
def test_match_reasons_equal_the_rule_row_by_row(rows):
    """First invalid part as kind:reason, else empty, else control_char, else valid (null)."""
    from protocols._tokenize import _match_reasons

    kinds = ("first_name", "last_name", "dob")
    reasons = [pa.array([r[0][i] for r in rows], pa.string()) for i in range(3)]
    bad = pa.array([r[1] for r in rows], pa.bool_())
    expected = []
    for parts, is_bad in rows:
        invalid = [f"{k}:{p}" for k, p in zip(kinds, parts, strict=True)
                   if p is not None and p != "empty"]
        expected.append(invalid[0] if invalid else "empty" if "empty" in parts
                        else "control_char" if is_bad else None)
    assert _match_reasons(kinds, reasons, bad).to_pylist() == expected
