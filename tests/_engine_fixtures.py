"""Builders for engine tests: token files of known people, collaboration and policy files."""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path

import pyarrow as pa
from conftest import collaboration_doc, policy_doc, write_collaboration

from protocols import PROTOCOL_HMAC, Manifest, write_token_file

COLLAB_ID = "6f1c2a9e-0d5b-4f7e-9a51-2c4d8e7b1f03"
SECRET = b"s" * 32
KINDS = ("email", "phone", "name_dob")


def fingerprint(secret: bytes) -> str:
    """A test stand-in for the key fingerprint: not secret, derived from the secret."""
    return hashlib.sha256(b"fp" + secret).hexdigest()[:16]


def token(secret: bytes, kind: str, value: str) -> bytes:
    """HMAC token of a normalized value, 32 bytes."""
    return hmac.new(secret, kind.encode() + b"\x00" + value.encode(), hashlib.sha256).digest()


def write_party(
    path: Path,
    party: str,
    records: list[dict],
    *,
    attributes: dict[str, pa.DataType],
    secret: bytes = SECRET,
    collaboration_id: str = COLLAB_ID,
    kinds: tuple[str, ...] = KINDS,
    seed: int = 0,
) -> Path:
    """Write a token file for `records` (dicts of raw identifiers and attributes)."""
    recs = list(records)
    random.Random(seed).shuffle(recs)
    cols: dict[str, pa.Array] = {
        "row_id": pa.array(random.Random(seed + 1).sample(range(10**9), len(recs)), pa.int64())
    }
    for kind in kinds:
        cols[kind] = pa.array(
            [token(secret, kind, r[kind]) if r.get(kind) else None for r in recs], pa.binary(32))
    for name, typ in attributes.items():
        cols[name] = pa.array([r.get(name) for r in recs], typ)
    manifest = Manifest(
        party=party, collaboration_id=collaboration_id, protocol=PROTOCOL_HMAC,
        key_fingerprint=fingerprint(secret), profile="strict", region="US",
        row_count=len(recs), identifiers={k: {"kinds": [k]} for k in kinds},
        attributes={n: str(t) for n, t in attributes.items()},
    )
    write_token_file(pa.table(cols), manifest, path)
    return path


def airline_policy(min_a: int, joins: list[str] | None = None) -> dict:
    """The airline's aggregation policy (tier and home airport, miles summed)."""
    return policy_doc(list(joins or KINDS), dimensions=["tier", "home_airport"],
                      aggregates={"miles": ["SUM", "AVG"]}, minimum=min_a,
                      join_required="query_runner",
                      allowed_result_receivers=["airline", "brand"])


def brand_policy(min_b: int, joins: list[str] | None = None) -> dict:
    """The brand's aggregation policy (segment, spend summed or counted)."""
    return policy_doc(list(joins or KINDS), dimensions=["segment"],
                      aggregates={"spend": ["SUM", "COUNT"]}, minimum=min_b,
                      scalar_functions=["UPPER"])


def collab_doc(cid: str = COLLAB_ID, cap: int = 5, rules: list[str] | None = None) -> dict:
    """Airline (queries), brand (receives) and agency (queries, receives nothing)."""
    return collaboration_doc(
        cid, members={"airline": (True, True), "brand": (False, True), "agency": (True, False)},
        tables={"airline": "airline", "brand": "brand"}, rules=list(rules or KINDS), cap=cap)


def write_collab(
    d: Path, *, min_a: int = 2, min_b: int = 2, cap: int = 5, cid: str = COLLAB_ID
) -> Path:
    """Write the collaboration and both policies into `d`; return the collaboration path."""
    return write_collaboration(d, collab_doc(cid, cap), {"airline": airline_policy(min_a),
                                                     "brand": brand_policy(min_b)})


AIRLINE_ATTRS = {"tier": pa.string(), "home_airport": pa.string(), "miles": pa.int64()}
BRAND_ATTRS = {"segment": pa.string(), "spend": pa.float64()}
