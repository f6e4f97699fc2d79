"""Each derived form has its own HKDF key: no form compares with another, nor with exact."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pytest

from protocols import ConfigError, derive_token_key, new_secret
from protocols._fuzzy import FUZZY_FORMS, derive_fuzzy_key, fuzzy_tokens

CID = "0b6f3c1e-2a4d-4e8f-9c7b-5d1a2e3f4a5b"
SECRET = new_secret(CID, secret=bytes(range(32)))


def test_every_kind_and_form_has_a_distinct_key() -> None:
    keys = {(kind, form): derive_fuzzy_key(SECRET, kind, form)
            for kind, forms in FUZZY_FORMS.items() for form in forms}
    exact = {derive_token_key(SECRET, kind) for kind in FUZZY_FORMS}
    assert len(set(keys.values())) == len(keys)
    assert not exact & set(keys.values())
    assert all(len(k) == 32 for k in keys.values())


def test_key_is_deterministic_and_bound_to_the_collaboration() -> None:
    other = new_secret("1b6f3c1e-2a4d-4e8f-9c7b-5d1a2e3f4a5b", secret=bytes(range(32)))
    assert derive_fuzzy_key(SECRET, "last_name", "phonetic") == \
        derive_fuzzy_key(SECRET, "last_name", "phonetic")
    assert derive_fuzzy_key(SECRET, "last_name", "phonetic") != \
        derive_fuzzy_key(other, "last_name", "phonetic")


def test_same_derived_text_gives_unrelated_tokens_across_forms_and_kinds() -> None:
    # "1985" is the year form of a dob and could be a postal prefix: tokens must differ
    toks = [fuzzy_tokens(SECRET, "first_name", pa.array(["rob"]))["first_name__phonetic"],
            fuzzy_tokens(SECRET, "last_name", pa.array(["rob"]))["last_name__phonetic"],
            fuzzy_tokens(SECRET, "city", pa.array(["rob"]))["city__phonetic"]]
    values = [t[0].as_py() for t in toks]
    assert all(len(v) == 32 for v in values)
    assert all(a != b for a, b in itertools.combinations(values, 2))


def test_fuzzy_tokens_columns_and_nulls() -> None:
    out = fuzzy_tokens(SECRET, "dob", pa.array(["1985-03-07", None, "1985-07-03"]))
    assert list(out) == [f"dob__{f}" for f in FUZZY_FORMS["dob"]]
    swap = out["dob__swap"].to_pylist()
    assert swap[0] == swap[2] and swap[1] is None
    assert out["dob__year_month"][0] != out["dob__year_month"][2]


def test_unknown_form_refused() -> None:
    with pytest.raises(ConfigError):
        derive_fuzzy_key(SECRET, "dob", "phonetic")
