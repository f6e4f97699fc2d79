"""Fuzzy-tolerant derived forms: published examples, nulls, determinism, never a crash."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import ConfigError
from protocols._fuzzy import FUZZY_FORMS, derive_forms, form_column, parse_form_column


def forms(kind: str, values: list[str | None]) -> dict[str, list[str | None]]:
    return {form: arr.to_pylist() for form, arr in derive_forms(kind, pa.array(values,
                                                                              pa.string())).items()}


def test_every_kind_gives_its_forms_in_table_order() -> None:
    for kind, names in FUZZY_FORMS.items():
        assert tuple(derive_forms(kind, pa.array(["x"], pa.string()))) == names


@pytest.mark.parametrize(("nick", "canonical"), [
    ("bob", "robert"), ("rob", "robert"), ("robert", "robert"), ("peggy", "margaret"),
    ("jim", "james"), ("liz", "elizabeth"),
])
def test_nickname_canonical(nick: str, canonical: str) -> None:
    assert forms("first_name", [nick])["nickname"] == [canonical]


def test_unknown_name_is_its_own_nickname_form() -> None:
    assert forms("first_name", ["zephyrine"])["nickname"] == ["zephyrine"]


# Soundex: the US National Archives' published examples; Metaphone: Lawrence Philips' rules.
@pytest.mark.parametrize(("name", "code"), [
    ("robert", "R163"), ("rupert", "R163"), ("rubin", "R150"), ("ashcraft", "A261"),
    ("tymczak", "T522"), ("pfister", "P236"), ("honeyman", "H555"),
])
def test_soundex_published(name: str, code: str) -> None:
    assert forms("last_name", [name])["soundex"] == [code]


@pytest.mark.parametrize("pair", [("smith", "smyth"), ("knight", "night"),
                                  ("catherine", "kathryn")])
def test_phonetic_agrees_on_sound_alikes(pair: tuple[str, str]) -> None:
    a, b = forms("last_name", list(pair))["phonetic"]
    assert a == b and a


def test_one_typo_keeps_head_or_tail() -> None:
    out = forms("first_name", ["fernando", "fenando", "monica", "moica"])
    assert out["tail"][0] == out["tail"][1] and out["tail"][2] == out["tail"][3]
    assert forms("last_name", ["martin", "amrtin"])["tail"] == ["tin", "tin"]
    assert forms("last_name", ["martin", "martni"])["head"] == ["mar", "mar"]


def test_accents_fold_for_phonetic_and_initial() -> None:
    out = forms("first_name", ["élise", "elise"])
    assert out["phonetic"][0] == out["phonetic"][1]
    assert out["initial"] == ["e", "e"]


def test_other_scripts_have_no_phonetic_but_an_initial() -> None:
    out = forms("first_name", ["李"])
    assert out["phonetic"] == [None] and out["initial"] == ["李"]


def test_dob_forms_strict_and_meta_formats() -> None:
    out = forms("dob", ["1985-03-07", "1985-07-03", "19850307", "not a date"])
    assert out["swap"] == ["1985-03-07", "1985-03-07", "1985-03-07", None]
    assert out["year_month"] == ["1985-03", "1985-07", "1985-03", None]
    assert out["month_day"] == ["03-07", "07-03", "03-07", None]
    assert out["year"] == ["1985", "1985", "1985", None]


def test_postal_prefix() -> None:
    assert forms("postal_code", ["94105", "sw1a 1aa", "k1a 0b1", "12"])["prefix"] == [
        "941", "sw1a", "k1a", "12"]


def test_street_forms() -> None:
    out = forms("street", ["12 main street", "12 mane street", "main street"])
    assert out["number_phonetic"][0] == out["number_phonetic"][1] == "12 MN STRT"
    assert out["number_phonetic"][2] is None
    assert out["phonetic"] == ["MN STRT"] * 3
    assert out["number"] == ["12", "12", None]


def test_email_mailbox_reads_gmail_rules() -> None:
    out = forms("email", ["jane.doe+shop@gmail.com", "janedoe@googlemail.com",
                          "jane.doe+x@aol.com", "janedoe@aol.com"])
    assert out["mailbox"] == ["janedoe@gmail.com", "janedoe@gmail.com", "jane.doe@aol.com",
                              "janedoe@aol.com"]


def test_null_and_empty_give_null() -> None:
    for kind in FUZZY_FORMS:
        for values in forms(kind, [None, "", "   "]).values():
            assert values[:2] == [None, None]


def test_chunked_and_empty_arrays() -> None:
    chunked = pa.chunked_array([["bob"], [None, "zephyrine"]], pa.string())
    assert derive_forms("first_name", chunked)["nickname"].to_pylist() == ["robert", None,
                                                                           "zephyrine"]
    assert len(derive_forms("dob", pa.array([], pa.string()))["year"]) == 0


def test_unknown_kind_or_form_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        derive_forms("phone", pa.array(["1"]))
    with pytest.raises(ConfigError):
        form_column("first_name", "soundex")


def test_column_names() -> None:
    assert form_column("first_name", "phonetic") == "first_name__phonetic"
    assert parse_form_column("first_name__phonetic") == ("first_name", "phonetic")
    assert parse_form_column("email") == ("email", None)


@given(st.lists(st.one_of(st.none(), st.text()), max_size=20))
def test_never_crashes_and_null_in_null_out(values: list[str | None]) -> None:
    arr = pa.array(values, pa.string())
    for kind in FUZZY_FORMS:
        out = derive_forms(kind, arr)
        again = derive_forms(kind, arr)
        for form, derived in out.items():
            assert len(derived) == len(values)
            assert derived.type == pa.string()
            assert derived.equals(again[form])  # deterministic
            for value, got in zip(values, derived.to_pylist(), strict=True):
                if value is None or value == "":
                    assert got is None
                else:
                    assert got is None or got != ""
