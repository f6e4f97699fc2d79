"""Builders for engine tests: token files of known people, collaboration and policy files."""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path

import pyarrow as pa

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


AIRLINE_POLICY = """\
analysis_rule = "aggregation"
join_columns = ["email", "phone", "name_dob"]
dimension_columns = ["tier", "home_airport"]
aggregate_columns = [{ columns = ["miles"], functions = ["SUM", "AVG"] }]
output_constraints = [{ column = "entity_id", type = "COUNT_DISTINCT", minimum = %(min_a)d }]
join_required = "query_runner"
allowed_result_receivers = ["airline", "brand"]
"""

BRAND_POLICY = """\
analysis_rule = "aggregation"
join_columns = ["email", "phone", "name_dob"]
dimension_columns = ["segment"]
aggregate_columns = [{ columns = ["spend"], functions = ["SUM", "COUNT"] }]
output_constraints = [{ column = "entity_id", type = "COUNT_DISTINCT", minimum = %(min_b)d }]
scalar_functions = ["UPPER"]
"""

COLLAB = """\
[collaboration]
id = "%(cid)s"
name = "Airline x Brand"
audit_log = "audit.jsonl"

[members.airline]
can_query = true
can_receive_results = true
[members.brand]
can_query = false
can_receive_results = true
[members.agency]
can_query = true
can_receive_results = false

[tables.airline]
owner = "airline"
tokens = "airline.tokens.parquet"
policy = "airline.policy.toml"
[tables.brand]
owner = "brand"
tokens = "brand.tokens.parquet"
policy = "brand.policy.toml"

[matching]
rules = ["email", "phone", "name_dob"]
max_records_per_token = %(cap)d
"""


def write_collab(
    d: Path, *, min_a: int = 2, min_b: int = 2, cap: int = 5, cid: str = COLLAB_ID
) -> Path:
    """Write the collaboration and both policies into `d`; return the collaboration path."""
    (d / "airline.policy.toml").write_text(AIRLINE_POLICY % {"min_a": min_a})
    (d / "brand.policy.toml").write_text(BRAND_POLICY % {"min_b": min_b})
    path = d / "collab.toml"
    path.write_text(COLLAB % {"cid": cid, "cap": cap})
    return path


AIRLINE_ATTRS = {"tier": pa.string(), "home_airport": pa.string(), "miles": pa.int64()}
BRAND_ATTRS = {"segment": pa.string(), "spend": pa.float64()}
