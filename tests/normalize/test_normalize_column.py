"""Differential tests: normalize_column equals the per-value functions on every input.

The column API has vectorized fast paths (plain emails, North American phone formats) and a
deduplicated per-value fallback; whatever path a value takes, the result must be identical.
"""

import random

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import normalize
from normalize import InvalidIdentifier
from normalize import _column as column_module

REGIONS = ["US", "CA", "GB", "FR", "DE", "IN", "SG", "AU", None]

EMAILS = [
    "jane.doe@example.com", " Jane.Doe@Example.COM ", "JANE.DOE+shop@GMail.com",
    "j.a.n.e+1@googlemail.com", "jane doe@example.com", "jane@exa mple.com", "\tjane@example.com\n",
    "élodie@exemple.fr", "E\u0301lodie@Exemple.fr", "kim@Bücher.de", "me@Ｄｏｍａｉｎ.com",
    "test@test.com", "noemail@acme.com", "NONE@shop.com", "x@localhost", "a@b", "a@b.c",
    "jane..doe@example.com", ".jane@example.com", "jane.@example.com", "jane@example..com",
    "jane@-example.com", "jane@example-.com", "jane@xn--bcher-kva.de", "jane@ex--ample.com",
    "jane@example.123", "jane@example.c0m", "o'brien@example.ie", "o_brien%x@example.ie",
    "a" * 64 + "@example.com", "a" * 65 + "@example.com", "x@" + "a" * 63 + ".com",
    "x@" + "a" * 64 + ".com", "x@" + ".".join(["a" * 60] * 4) + ".com", "postmaster@Example.com",
    "user@mail.onion", "user@my.test", "user@Mail.LOCAL", "user@example.arpa", "+tag@gmail.com",
    "@example.com", "jane@", "jane", "", "   ", None, "jane@example.com\x00",
    "ja\u200bne@example.com",
    "\u00a0jane@example.com", "jane@example.com\u2028", "\x1fjane@example.com", "Ⓙane@example.com",
    "jane@ツ.ⓁⒾⒻⒺ", "ツ-test@joshdata.me", "jane@[192.0.2.1]", '"jane doe"@example.com',
    "jane\ud800@example.com", "JANE.DOE@EXAMPLE.COM", "jane.doe@example.com",
]  # fmt: skip

PHONES = [
    "(650) 555-1212", "650-555-1212", "650.555.1212", "6505551212", "+1 650 555 1212",
    "1-650-555-1212", "+1 (650) 555-1212", "+16505551212", " 650 555 1212 ", "650 5551212",
    "(650)555-1212", "1 (234) 567-8901", "0000000000", "(123) 456-7890", "999-999-9999",
    "555-1212", "650-555-1212 x12", "+1 650-555-1212 ext. 3", "１６５０５５５１２１２",
    "+44 20 7183 8750", "020 7183 8750", "07911 123456", "+44 (0)7911 123456", "0044 7911 123456",
    "01 42 68 53 00", "+33 1 42 68 53 00", "06 12 34 56 78", "030 1234567", "+49 30 1234567",
    "0171 1234567", "+91 98200 12345", "098200 12345", "9820012345", "6123 4567", "+65 6123 4567",
    "(02) 1234 5678", "0412 345 678", "+61 412 345 678", "+1 800 FLOWERS", "call me", "12",
    "+", "", None, "+1 650 555 1212 1212 1212 1212", "1 650 555 12123", "+0 650 555 1212",
    "(650)-555-1212", "650--555-1212", "+1-650-555-1212", "1.650.555.1212", "+1 150 555 1212",
    "(050) 555-1212", "+1(650)5551212", "1(650)555-1212", "+16505551212\n", "\u00a0650-555-1212",
    "650\u2009555\u20091212", "+1 222 222 2222", "2222222222", "9876543210", "+290 2001",
]  # fmt: skip

TEXT = [
    "Mary", "  Mary   Ann ", "O'Brien-Smith", "JOSÉ", "Jose\u0301", "Mrs. Mary", "Smith Jr.", "Dr",
    "123 Main St., Apt #4", "San Francisco", "St. Louis", "Saint-Étienne", "California", "ny",
    "N.Y.", "Québec", "Ontario", "Bavaria", "94105-1234", "94105", "sw1a1aa", "M1 1AE", "k1a 0b1",
    "1234 ab", "100-0001", "US", "usa", "Deutschland", "U.K.", "Côte d'Ivoire", "Atlantis",
    "1990-07-04", "07/04/1990", "04.07.1990", "19900704", "1990-02-30", "3000-01-01", "F",
    "female", "Male", "unknown", "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    "6d92078a82464ba4ae5b76104861e7dc", "00000000-0000-0000-0000-000000000000", "CUST-0001",
    " cust 0001 ", "", " ", None, "\x00", "\ud800", "ß", "ﬀ", "İstanbul", "Ⅻ",
]  # fmt: skip


def _reference(kind, values, profile, region):
    out = []
    for v in values:
        try:
            out.append((normalize.normalize(kind, v, profile=profile, region=region), None))
        except InvalidIdentifier as exc:
            out.append((None, exc.reason))
    return out


def _column(kind, values, profile, region, **kw):
    result = normalize.normalize_column(kind, values, profile=profile, region=region, **kw)
    assert isinstance(result.values, pa.StringArray) and isinstance(result.reasons, pa.StringArray)
    assert len(result.values) == len(result.reasons) == len(values)
    return list(zip(result.values.to_pylist(), result.reasons.to_pylist(), strict=True))


def _check(kind, values, profile, region, **kw):
    assert _column(kind, values, profile, region, **kw) == _reference(kind, values, profile, region)


@pytest.mark.parametrize("profile", normalize.PROFILES)
@pytest.mark.parametrize("kind", normalize.KINDS)
def test_column_equals_per_value_on_corpus(kind, profile):
    corpus = EMAILS if kind == "email" else PHONES if kind == "phone" else TEXT
    corpus = corpus + TEXT[:10] + EMAILS[:5] + PHONES[:5]
    regions = REGIONS if kind in ("phone", "postal_code", "state") else ["US"]
    for region in regions:
        _check(kind, corpus * 2, profile, region)  # repeats exercise the dedupe


def _messy_email(rng: random.Random) -> str:
    first = rng.choice(["jane", "John", "ÉLODIE", "zoë", "o'neil", "li", "MARY-ann", "ツ"])
    last = rng.choice(["doe", "Smith", "müller", "NGUYEN", "", "o_brien"])
    sep = rng.choice([".", "", "_", "-", " ", ".."])
    tag = rng.choice(["", "", "+shop", "+1", "+a.b"])
    domain = rng.choice(["gmail.com", "GMail.com", "googlemail.com", "example.com",
                         "yahoo.co.uk", "Bücher.de", "outlook.com", "test", "mail.test",
                         "ex--ample.com"])  # fmt: skip
    pad = rng.choice(["", " ", "\t", "\u00a0", "  "])
    return f"{pad}{first}{sep}{last}{tag}@{domain}{rng.choice(['', ' ', pad])}"


def _messy_phone(rng: random.Random) -> str:
    d = "".join(rng.choice("0123456789") for _ in range(10))
    area = rng.choice("23456789") + d[1:3]
    fmt = rng.choice([
        "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a}{b}{c}", "+1 {a} {b} {c}",
        "1-{a}-{b}-{c}", "+1 ({a}) {b}-{c}", " {a} {b} {c} ", "{a}{b}-{c} x{x}", "+44 20 {b}{x}",
        "0{a} {b}{x}", "+33 {x}{b}{c}", "+49 {a} {b}{c}", "+91 9{b}{x} {c}", "+65 {c} {c}",
        "+61 4{b} {c}{x}", "00{a}{b}{c}", "{b}-{c}",
    ])  # fmt: skip
    return fmt.format(a=area, b=d[3:6], c=d[6:10], x=d[:2])


@pytest.mark.parametrize("profile", normalize.PROFILES)
def test_column_equals_per_value_on_generated_messy_data(profile):
    rng = random.Random(7)
    emails = [_messy_email(rng) for _ in range(1500)]
    phones = [_messy_phone(rng) for _ in range(1500)]
    _check("email", emails, profile, "US")
    for region in ("US", "CA", "GB"):
        _check("phone", phones, profile, region)


_PHONE_CHARS = st.sampled_from(list("0123456789  ()-.+xX#１") + ["ext", "EXT.", "\u00a0"])
_EMAIL_CHARS = st.sampled_from(list("abcXYZ09._%+-@ \t'ü") + ["gmail.com", "@", "..", "xn--"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(_EMAIL_CHARS, max_size=12).map("".join), min_size=1, max_size=20),
    profile=st.sampled_from(normalize.PROFILES),
)
def test_column_equals_per_value_hypothesis_email(values, profile):
    _check("email", values, profile, "US")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(_PHONE_CHARS, max_size=16).map("".join), min_size=1, max_size=20),
    profile=st.sampled_from(normalize.PROFILES),
    region=st.sampled_from(["US", "CA", "GB", None]),
)
def test_column_equals_per_value_hypothesis_phone(values, profile, region):
    _check("phone", values, profile, region)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=1, max_size=10),
    kind=st.sampled_from(normalize.KINDS),
    profile=st.sampled_from(normalize.PROFILES),
)
def test_column_equals_per_value_hypothesis_any_text(values, kind, profile):
    _check(kind, values, profile, "US")


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["SW1A 1AA", "560001", "94107"]),
                              st.text(max_size=12)), min_size=1, max_size=12),
    profile=st.sampled_from(normalize.PROFILES),
    region=st.sampled_from(["US", "GB", "CA"]),
)
def test_foreign_postal_equals_per_value_with_then_without_the_region(values, profile, region):
    """`foreign_postal` reads again, without region rules, exactly the values the region
    rejected (`postal`), and leaves every other value and reason as it was."""
    want = []
    for (value, reason), raw in zip(_reference("postal_code", values, profile, region), values,
                                    strict=True):
        want.append(_reference("postal_code", [raw], profile, None)[0] if reason == "postal"
                    else (value, reason))
    assert _column("postal_code", values, profile, region, foreign_postal=True) == want


def test_column_accepts_pandas_arrow_chunked_and_lists():
    values = ["(650) 555-1212", None, "0000000000", "bad"]
    expected = _reference("phone", values, "strict", "US")
    series = pd.Series(values, dtype=object)
    for given_values in (
        values,
        series,
        pd.Series(values, dtype="string"),
        pa.array(values),
        pa.chunked_array([values[:2], values[2:]]),
        pa.array(values).dictionary_encode(),
        pa.array(values, pa.large_string()),
    ):
        result = normalize.normalize_column("phone", given_values)
        got = list(zip(result.values.to_pylist(), result.reasons.to_pylist(), strict=True))
        assert got == expected
    assert "650" not in repr(result)


def test_numeric_column_is_read_as_text():
    result = normalize.normalize_column("phone", pd.Series([6505551212, 4155550100]))
    assert result.values.to_pylist() == ["+16505551212", "+14155550100"]


def test_empty_column():
    result = normalize.normalize_column("email", [])
    assert len(result.values) == 0 and len(result.reasons) == 0


def test_worker_processes_give_the_same_result(monkeypatch):
    monkeypatch.setattr(column_module, "PARALLEL_MIN_VALUES", 10)
    rng = random.Random(3)
    phones = [_messy_phone(rng) for _ in range(300)] + ["+44 20 7183 8750", None, "\ud800"]
    _check("phone", phones, "strict", "GB", workers=2)


# ---- fast paths for international phones, dates of birth and US postal codes ---------------


def _intl_phone(rng: random.Random, codes: list[int]) -> str:
    code = str(rng.choice(codes))
    digits = rng.choice("0123456789") + "".join(
        rng.choice("0123456789") for _ in range(rng.choice([rng.randint(1, 14), 8, 9, 10])))
    if rng.random() < 0.1:
        digits = rng.choice("123456789") * len(digits)  # placeholder-like runs
    sep = rng.choice(["", " ", "-", ".", " "])
    groups, i = [], 0
    while i < len(digits):
        step = rng.randint(1, 4)
        groups.append(digits[i : i + step])
        i += step
    pad = rng.choice(["", "", " ", "\t", "\u00a0"])
    return f"{pad}+{code}{rng.choice(['', ' ', sep])}{sep.join(groups)}{rng.choice(['', pad])}"


@pytest.mark.parametrize("profile", normalize.PROFILES)
def test_international_fast_path_equals_per_value_for_every_country_code(profile):
    import phonenumbers

    from normalize._fast import fast_path

    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    rng = random.Random(11)
    phones = [_intl_phone(rng, codes) for _ in range(4000)]
    phones += ["+44 7911 123456", "+44 1800 200 123", "+61 1831 234 567", "+39 06 1234 5678",
               "+81 3 1234 5678", "+55 11 91234 5678", "+7 912 345 67 89", "+33 6 12 34 56 78",
               "+33 6 12 34 56", "+49 151 2345 6789", "+91 98200 12345", "+65 6123 4567",
               "+44 0 7911 123456", "+1 650 555 1212", "+999 1234 5678", "+44 2222 222222"]
    for region in ("US", "GB", "FR", None):
        _check("phone", phones, profile, region)
    fast = fast_path("phone", profile, "GB", pa.array(phones))
    if profile == "uid2":  # uid2 holds + numbers to its own rule: always the reference
        assert fast is None
    else:  # the fast path is really taken, for many country codes
        assert sum(fast[0].to_pylist()) > 600


DATES = [
    "1990-07-04", "1990-7-4", "1990/07/04", "1990.07.04", "07/04/1990", "7/4/1990", "04.07.1990",
    "4.7.1990", "19900704", " 1990-07-04 ", "\t19900704\n", "2000-02-29", "1900-02-29",
    "2024-02-29", "2023-02-29", "1990-02-30", "1990-04-31", "1990-13-01", "1990-00-10",
    "1990-01-00", "1899-12-31", "1900-01-01", "0000-01-01", "9999-12-31", "3000-01-01",
    "12/31/1999", "31/12/1999", "31.12.1999", "12.31.1999", "19991231", "19991331", "1999-1-31",
    "1990-07-04T10:30:00Z", "1990-07-04 10:30", "1990-07-4x", "1990--07-04", "1990-07/04",
    "90-07-04", "7/4/90", "١٩٩٠-٠٧-٠٤", "1990-07-04\u00a0", "\u20031990-07-04", "", " ", None,
    "n/a", "01/01/0001", "02/29/2004", "02/29/2100", "29.02.2000", "123/4/1990", "1990-123-4",
]  # fmt: skip


def _messy_date(rng: random.Random) -> str:
    y = rng.choice([rng.randint(1890, 2030), rng.randint(0, 9999)])
    m, d = rng.randint(0, 13), rng.randint(0, 32)
    fmt = rng.choice(["{y:04d}-{m:02d}-{d:02d}", "{y:04d}-{m}-{d}", "{y:04d}/{m:02d}/{d:02d}",
                      "{y:04d}.{m}.{d}", "{m:02d}/{d:02d}/{y:04d}", "{m}/{d}/{y:04d}",
                      "{d:02d}.{m:02d}.{y:04d}", "{d}.{m}.{y:04d}", "{y:04d}{m:02d}{d:02d}",
                      " {y:04d}-{m:02d}-{d:02d}\t", "{m:03d}/{d}/{y}"])  # fmt: skip
    return fmt.format(y=y, m=m, d=d)


@pytest.mark.parametrize("profile", normalize.PROFILES)
def test_dob_fast_path_equals_per_value(profile):
    rng = random.Random(5)
    dates = DATES + [_messy_date(rng) for _ in range(3000)]
    _check("dob", dates, profile, "US")
    _check("dob", dates * 3, profile, "US")  # repeats: the fast path runs on distinct values


ZIPS = [
    "94105", "94105-1234", "94105 1234", "941051234", " 94105 ", "94105  1234", "94105--1234",
    "9410", "941055", "94105-123", "94105-12345", "ABCDE", "sw1a 1aa", "94105-abcd", "０９４１０５",
    "94105\u00a0", "\t94105\n", "94 105", "", " ", None, "-94105", "94105-", "00000", "99999-9999",
]  # fmt: skip


@pytest.mark.parametrize("profile", normalize.PROFILES)
def test_us_postal_fast_path_equals_per_value(profile):
    rng = random.Random(9)
    chars = "0123456789" * 4 + " -aZ\t"
    zips = ZIPS + ["".join(rng.choice(chars) for _ in range(rng.randint(1, 12)))
                   for _ in range(3000)]
    zips += [f"{rng.randint(0, 99999):05d}" + rng.choice(["", "-", " ", "  "])
             + rng.choice(["", f"{rng.randint(0, 9999):04d}"]) for _ in range(2000)]
    _check("postal_code", zips, profile, "US")
    _check("postal_code", zips * 3, profile, "US")


_DATE_CHARS = st.sampled_from(list("0123456789-/. T:") + ["19", "20", "1990", "2000", "02", "29"])
_ZIP_CHARS = st.sampled_from(list("0123456789 -\tA") + ["94105", "1234"])
_INTL_CHARS = st.sampled_from(list("0123456789 .-+") + ["+44", "+33", "+49", "+61", "+91", "+1",
                                                         "+39", "+81", "+7", "0"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(_DATE_CHARS, max_size=10).map("".join), min_size=1, max_size=20),
    profile=st.sampled_from(normalize.PROFILES),
)
def test_column_equals_per_value_hypothesis_dob(values, profile):
    _check("dob", values * 2, profile, "US")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(_ZIP_CHARS, max_size=6).map("".join), min_size=1, max_size=20),
    profile=st.sampled_from(normalize.PROFILES),
)
def test_column_equals_per_value_hypothesis_postal(values, profile):
    _check("postal_code", values * 2, profile, "US")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(_INTL_CHARS, max_size=10).map("".join), min_size=1, max_size=20),
    profile=st.sampled_from(normalize.PROFILES),
    region=st.sampled_from(["US", "GB", None]),
)
def test_column_equals_per_value_hypothesis_international_phone(values, profile, region):
    _check("phone", values, profile, region)
