"""SHA-256 of normalized identifiers, encoded per platform: one value, or a column in DuckDB."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import duckdb
import pyarrow as pa

import normalize

from .._errors import ConfigError
from ._columns import column_for


def encode(digest: bytes, platform: str) -> str:
    """A SHA-256 digest as the platform takes it: uid2 Base64, the others lowercase hex."""
    return base64.b64encode(digest).decode("ascii") if platform == "uid2" else digest.hex()


def platform_hash(kind: str, value: str, platform: str, region: str = "US") -> str:
    """`value` normalized with the platform's profile, hashed and encoded as it expects.

    Raises normalize.InvalidIdentifier (a ValueError with `.reason`) for a value that cannot
    be normalized, and ConfigError for a kind the platform does not take.
    """
    col = column_for(platform, kind)
    try:
        normalized = normalize.normalize(col.kind, value, profile=platform, region=region)
    except normalize.InvalidIdentifier:
        raise
    except ValueError as exc:  # unknown region: a usage mistake, not a bad value
        raise ConfigError(str(exc), key="region") from None
    if not col.hashed:
        return normalized
    return encode(hashlib.sha256(normalized.encode("utf-8")).digest(), platform)


def hash_column(values: pa.Array, platform: str) -> pa.Array:
    """SHA-256 of each non-null string, encoded for the platform, computed in DuckDB."""
    sql = ("SELECT to_base64(unhex(sha256(v))) AS h FROM t" if platform == "uid2"
           else "SELECT sha256(v) AS h FROM t")
    con = duckdb.connect()
    try:
        con.register("t", pa.table({"v": values.cast(pa.string())}))
        return con.sql(sql).to_arrow_table().column("h").combine_chunks()
    finally:
        con.close()


def hash_column_reference(values: Sequence[str | None], platform: str) -> list[str | None]:
    """The per-value reference of `hash_column` (hashlib), for differential tests."""
    return [None if v is None else encode(hashlib.sha256(v.encode("utf-8")).digest(), platform)
            for v in values]
