"""Property tests: no normalizer raises anything but InvalidIdentifier, on any string at all."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import normalize
from normalize import InvalidIdentifier
from normalize._fast import fast_path

ANY_TEXT = st.one_of(
    st.text(max_size=60),  # includes control characters and lone surrogates
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.text(alphabet=string.printable, max_size=60),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(1000, 1400)),
    st.sampled_from(["x" * 10_240, "1" * 10_240, "a@" + "b" * 10_240 + ".com", "\ud800" * 50]),
)


@settings(max_examples=120, deadline=None)
@given(
    value=ANY_TEXT,
    kind=st.sampled_from(normalize.KINDS),
    profile=st.sampled_from(normalize.PROFILES),
    region=st.sampled_from(["US", "GB", "IN", None]),
)
def test_never_raises_anything_but_invalid_identifier(value, kind, profile, region):
    try:
        out = normalize.normalize(kind, value, profile=profile, region=region)
    except InvalidIdentifier as exc:
        assert exc.kind == kind and exc.reason
        assert str(exc) == f"invalid {kind}: {exc.reason}"  # fixed words, never the value
    else:
        assert isinstance(out, str) and out
        out.encode("utf-8")  # hashable as UTF-8


@settings(max_examples=80, deadline=None)
@given(value=ANY_TEXT)
def test_strict_email_is_idempotent(value):
    try:
        once = normalize.email(value)
    except InvalidIdentifier:
        return
    assert normalize.email(once) == once


@settings(max_examples=80, deadline=None)
@given(value=ANY_TEXT, kind=st.sampled_from(["first_name", "last_name", "city", "street"]))
def test_strict_text_is_idempotent(value, kind):
    try:
        once = normalize.normalize(kind, value)
    except InvalidIdentifier:
        return
    assert normalize.normalize(kind, once) == once


@pytest.mark.parametrize("profile", normalize.PROFILES)
def test_phone_output_reparses_to_itself(profile):
    for raw in ["(650) 555-1212", "+44 20 7183 8750", "+65 6123 4567"]:
        once = normalize.phone(raw, profile=profile)
        again = "+" + once if profile == "meta" else once
        assert normalize.phone(again, profile=profile, region=None) == once


def test_fast_paths_claim_the_common_shapes():
    import pyarrow as pa

    emails = pa.array(["jane.doe@example.com", " John.Smith@GMail.com ", "élodie@exemple.fr"])
    decided, _, _ = fast_path("email", "strict", "US", emails)
    assert decided.to_pylist() == [True, True, False]
    for profile in ("uid2", "google", "meta"):
        decided, _, _ = fast_path("email", profile, "US", emails)
        assert decided.to_pylist() == [True, True, False]
    phones = pa.array(["(650) 555-1212", "+1 650 555 1212", "650.555.1212", "+44 20 7183 8750"])
    for profile in normalize.PROFILES:
        decided, _, _ = fast_path("phone", profile, "US", phones)
        # international numbers written with + are claimed except under uid2's own rules
        assert decided.to_pylist() == [True, True, True, profile != "uid2"]
    decided, _, _ = fast_path("phone", "strict", "GB", phones)
    assert decided.to_pylist() == [False, True, False, True]
    assert fast_path("phone", "uid2", "GB", phones) is None
