"""Published normalization vectors (tests/vectors/*.json) through the per-value and column APIs."""

import base64
import hashlib

import pytest
from _vectors import vectors

import normalize

SOURCES = [
    "uid2_normalization",
    "uid2_operator_tests",
    "meta_customer_information",
    "platform_profiles",
    "email_validator_readme",
    "phonenumbers_readme",
]
ALL = [case for source in SOURCES for case in vectors(source)]


def _run(case):
    return normalize.normalize(
        case["kind"], case["input"], profile=case["profile"], region=case.get("region", "US")
    )


@pytest.mark.parametrize("case", [c for c in ALL if "expected" in c.values[0]])
def test_vector_normalizes_to_published_value(case):
    assert _run(case) == case["expected"]


@pytest.mark.parametrize("case", [c for c in ALL if "reason" in c.values[0]])
def test_vector_is_rejected_with_reason(case):
    with pytest.raises(normalize.InvalidIdentifier) as info:
        _run(case)
    assert info.value.reason == case["reason"]
    assert case["input"] not in str(info.value)


@pytest.mark.parametrize("case", [c for c in ALL if c.values[0].get("invalid")])
def test_vector_is_rejected(case):
    with pytest.raises(normalize.InvalidIdentifier):
        _run(case)


@pytest.mark.parametrize("case", [c for c in ALL if "sha256_hex" in c.values[0]])
def test_vector_hash_matches_published_hash(case):
    digest = hashlib.sha256(_run(case).encode("utf-8")).digest()
    assert digest.hex() == case["sha256_hex"]
    if "sha256_base64" in case:
        assert base64.b64encode(digest).decode() == case["sha256_base64"]


def test_unnormalized_uid2_hash_differs_from_normalized():
    (case,) = [c.values[0] for c in vectors("uid2_normalization") if c.id == "U7-unnormalized"]
    raw = base64.b64encode(hashlib.sha256(case["input"].encode()).digest()).decode()
    assert raw == case["raw_sha256_base64"]
    normalized = normalize.email(case["input"], profile="uid2")
    assert base64.b64encode(hashlib.sha256(normalized.encode()).digest()).decode() != raw


@pytest.mark.parametrize("profile", normalize.PROFILES)
def test_column_api_agrees_with_every_vector(profile):
    cases = [c.values[0] for c in ALL if c.values[0]["profile"] == profile]
    by_key = {}
    for case in cases:
        by_key.setdefault((case["kind"], case.get("region", "US")), []).append(case)
    for (kind, region), group in by_key.items():
        result = normalize.normalize_column(
            kind, [c["input"] for c in group], profile=profile, region=region
        )
        for case, value, reason in zip(
            group, result.values.to_pylist(), result.reasons.to_pylist(), strict=True
        ):
            if "expected" in case:
                assert (value, reason) == (case["expected"], None), case["id"]
            elif "reason" in case:
                assert (value, reason) == (None, case["reason"]), case["id"]
            elif case.get("invalid"):
                assert value is None and reason, case["id"]
