"""Keyed HMAC-SHA256 tokens: the per-value reference and the vectorized (DuckDB) fast path.

token = HMAC-SHA256(key, UTF-8 bytes of the normalized value), 32 bytes. The fast path builds
HMAC from DuckDB's `sha256` on BLOBs, H((K^opad) || H((K^ipad) || m)), and must equal the
reference `hmac_token` on every value (tests/test_tokenize_fast.py proves it).
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ._errors import CleanroomBug

TOKEN_BYTES = 32
TOKEN_TYPE = pa.binary()
# Fields of a match key are joined by the ASCII unit separator; normalized values never hold
# control characters, and a part that does is rejected (reason "control_char") rather than
# joined, so two different tuples of parts can never give the same joined text.
MATCH_SEPARATOR = "\x1f"
_BLOCK = 64


def hmac_token(key: bytes, value: str) -> bytes:
    """The reference token of one normalized value."""
    return hmac.digest(key, value.encode("utf-8"), hashlib.sha256)


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x5C for b in key), bytes(b ^ 0x36 for b in key)


_HMAC_SQL = (
    "SELECT unhex(sha256(?::BLOB || unhex(sha256(?::BLOB || encode(v))))) AS t FROM _values"
)


def hmac_tokens(key: bytes, values: pa.Array, *,
                con: duckdb.DuckDBPyConnection | None = None) -> pa.Array:
    """Tokens of a string array (null stays null), computed in DuckDB without a Python loop."""
    if len(values) == 0:
        return pa.array([], TOKEN_TYPE)
    if not pa.types.is_string(values.type):
        raise CleanroomBug(f"hmac_tokens needs a string array, got {values.type}")
    opad, ipad = _pads(key)
    own = con is None
    con = con if con is not None else duckdb.connect(config={"threads": 1})
    try:
        con.register("_values", pa.table({"v": values}))
        out = con.sql(_HMAC_SQL, params=[opad, ipad]).to_arrow_table().column("t")
        con.unregister("_values")
    finally:
        if own:
            con.close()
    out = out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
    if out.type != TOKEN_TYPE:
        out = out.cast(TOKEN_TYPE)
    if len(out) != len(values):
        raise CleanroomBug("token count differs from value count")
    return out


def join_match_parts(parts: list[pa.Array]) -> tuple[pa.Array, pa.Array]:
    """Join normalized parts with MATCH_SEPARATOR (null if any part is null); also return a
    boolean mask of rows where a part holds a control character and so cannot be joined."""
    bad = None
    for part in parts:
        has = pc.fill_null(pc.match_substring_regex(part, r"[\x00-\x1f\x7f]"), False)
        bad = has if bad is None else pc.or_(bad, has)
    joined = pc.binary_join_element_wise(*parts, MATCH_SEPARATOR)
    joined = pc.if_else(bad, pa.scalar(None, pa.string()), joined)
    return joined, bad
