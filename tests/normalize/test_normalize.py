"""Per-value normalizers: the rules of each profile, kind by kind, and their refusals."""

import pytest

import normalize
from normalize import InvalidIdentifier


def norm(kind, value, profile="strict", region="US"):
    return normalize.normalize(kind, value, profile=profile, region=region)


def reason(kind, value, profile="strict", region="US"):
    with pytest.raises(InvalidIdentifier) as info:
        norm(kind, value, profile, region)
    assert isinstance(info.value, ValueError)
    assert info.value.kind == kind
    if isinstance(value, str) and len(value.strip()) > 1:
        assert value.strip() not in str(info.value) and value.strip() not in repr(info.value)
    return info.value.reason


def test_public_constants():
    assert normalize.KINDS == (
        "email", "phone", "first_name", "last_name", "street", "city", "state",
        "postal_code", "country", "dob", "gender", "maid", "external_id",
    )  # fmt: skip
    assert normalize.PROFILES == ("strict", "uid2", "google", "meta")


@pytest.mark.parametrize(
    "call",
    [
        lambda: norm("ssn", "x"),
        lambda: norm("email", "a@b.com", profile="tiktok"),
        lambda: norm("phone", "6505551212", region="ZZ"),
        lambda: normalize.normalize_column("nope", ["x"]),
        lambda: normalize.normalize_column("email", ["x"], profile="nope"),
    ],
)
def test_unknown_kind_profile_or_region_is_a_value_error_not_invalid_identifier(call):
    with pytest.raises(ValueError) as info:
        call()
    assert not isinstance(info.value, InvalidIdentifier)
    assert "expected" in str(info.value)


# --- email ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        (" Jane.Doe@Example.COM\t", "jane.doe@example.com"),
        ("Jane.Doe+Shop@GMail.com", "jane.doe+shop@gmail.com"),  # no provider aliasing
        ("ÉLODIE@Exemple.fr", "élodie@exemple.fr"),
        ("E\u0301lodie@exemple.fr", "élodie@exemple.fr"),  # NFC
        ("kim@Bücher.de", "kim@xn--bcher-kva.de"),  # IDNA-ASCII domain
        ("\u00a0ann@example.org\u2003", "ann@example.org"),  # Unicode whitespace trimmed
    ],
)
def test_email_strict(raw, expected):
    assert normalize.email(raw) == expected


@pytest.mark.parametrize(
    "raw, why",
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "empty"),
        ("jane.doe", "syntax"),
        ("jane@@example.com", "domain"),
        ("jane doe@example.com", "syntax"),
        ("jane@example", "domain"),
        ("jane@localhost", "domain"),
        ("jane@exa mple.com", "domain"),
        ("test@test.com", "placeholder"),
        ("NoEmail@Acme.com", "placeholder"),
        ("none@gmail.com", "placeholder"),
        ("no-reply@shop.example", "placeholder"),
        ("jane\ud800@example.com", "encoding"),
    ],
)
def test_email_strict_rejects(raw, why):
    assert reason("email", raw) == why


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Jane.Doe+Shop@GMail.com", "janedoe@gmail.com"),  # gmail rule after ASCII lowering
        ("Jane.Doe+Shop@googlemail.com", "jane.doe+shop@googlemail.com"),
        ("a.b+c+d@gmail.com", "ab@gmail.com"),  # from the first +
        ("ÉLODIE@Example.com", "Élodie@example.com"[0] + "lodie@example.com"),  # ASCII-only lower
        ("jane doe@example.com", "jane doe@example.com"),  # internal spaces kept
        ("jane@example.com   ", "jane@example.com"),  # trailing domain spaces dropped
        ("jane@exa mple.com", "jane@exa mple.com"),  # internal domain space kept
        ("jane@ツ.com", "jane@ツ.com"),  # no IDNA
    ],
)
def test_email_uid2_follows_the_operator(raw, expected):
    assert normalize.email(raw, profile="uid2") == expected


@pytest.mark.parametrize(
    "raw, why",
    [
        ("a@b@c.com", "syntax"),
        ("jane.example.com", "syntax"),
        ("jane@", "domain"),
        ("jane@   ", "domain"),
        ("@example.com", "syntax"),
        ("+work@gmail.com", "syntax"),  # empty after gmail processing
        ("\tjane@example.com", None),  # tabs are not skipped: kept as part of the local part
    ],
)
def test_email_uid2_rejects(raw, why):
    if why is None:
        assert normalize.email(raw, profile="uid2") == "\tjane@example.com"
    else:
        assert reason("email", raw, "uid2") == why


@pytest.mark.parametrize(
    "raw, expected",
    [
        (" Jane . Doe+Shop @ GoogleMail.com ", "janedoe@googlemail.com"),
        ("J.A.N.E@Gmail.Com", "jane@gmail.com"),
        ("Jane.Doe+Shop@Example.com", "jane.doe+shop@example.com"),
        ("E\u0301lodie@exemple.fr", "élodie@exemple.fr"),
    ],
)
def test_email_google(raw, expected):
    assert normalize.email(raw, profile="google") == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  John_Smith@GMail.com ", "john_smith@gmail.com"),
        ("J.Smith+x@gmail.com", "j.smith+x@gmail.com"),
        ("ÉLODIE@exemple.fr", "élodie@exemple.fr"),
    ],
)
def test_email_meta(raw, expected):
    assert normalize.email(raw, profile="meta") == expected


def test_email_meta_and_google_reject_non_addresses():
    assert reason("email", "john.smith", "meta") == "syntax"
    assert reason("email", "john@localhost", "meta") == "syntax"
    assert reason("email", "a@b@c.com", "google") == "syntax"
    assert reason("email", "+x@gmail.com", "google") == "syntax"


# --- phone ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("(650) 555-1212", "US", "+16505551212"),
        ("+1 650.555.1212 ext. 12", "US", "+16505551212"),
        ("07911 123456", "GB", "+447911123456"),
        ("+44 (0)20 7183 8750", None, "+442071838750"),
        ("01 42 68 53 00", "FR", "+33142685300"),
        ("030 1234567", "DE", "+49301234567"),
        ("098200 12345", "IN", "+919820012345"),
        ("6123 4567", "SG", "+6561234567"),
        ("0412 345 678", "AU", "+61412345678"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("６５０５５５１２１２", "US", "+16505551212"),  # fullwidth digits
    ],
)
def test_phone_strict_e164(raw, region, expected):
    assert normalize.phone(raw, region=region) == expected


@pytest.mark.parametrize(
    "raw, region, why",
    [
        ("0000000000", "US", "placeholder"),
        ("(123) 456-7890", "US", "placeholder"),
        ("+1 999 999 9999", None, "placeholder"),
        ("555-1212", "US", "too_short"),  # local-only: no area code
        ("555-12", "US", "too_short"),
        ("12", "US", "too_short"),
        ("6505551212", None, "country_code"),
        ("call me", "US", "syntax"),
        ("+1 650 555 1212 1212 1212 1212", None, "too_long"),
    ],
)
def test_phone_strict_rejects(raw, region, why):
    assert reason("phone", raw, "strict", region) == why


def test_phone_profiles_render_the_same_number():
    raw = "+44 20 7183 8750"
    assert normalize.phone(raw, profile="strict") == "+442071838750"
    assert normalize.phone(raw, profile="google") == "+442071838750"
    assert normalize.phone(raw, profile="uid2") == "+442071838750"
    assert normalize.phone(raw, profile="meta") == "442071838750"
    # placeholders are a strict rule only
    assert normalize.phone("0000000000", profile="meta") == "10000000000"


def test_phone_uid2_requires_10_to_15_digits():
    # +290 is Saint Helena: a legal 4-digit subscriber number, E.164 with only 7 digits
    assert normalize.phone("+290 2001", profile="strict") == "+2902001"
    assert reason("phone", "+290 2001", "uid2") == "too_short"
    assert normalize.phone("+65 6123 4567", profile="uid2") == "+6561234567"


# --- names, street, city -------------------------------------------------------------------

@pytest.mark.parametrize(
    "profile, raw, expected",
    [
        ("strict", "  Mary   Ann ", "mary ann"),
        ("strict", "O'Brien-Smith", "obriensmith"),
        ("strict", "JOSÉ", "josé"),
        ("strict", "Jose\u0301", "josé"),  # NFC, accents kept
        ("strict", "Zoë\u200b", "zoë"),  # format characters dropped
        ("meta", "Mary", "mary"),
        ("meta", "Dr. Mary-Jane", "dr maryjane"),
        ("google", "Mrs. Mary", "mary"),
        ("google", "Smith Jr.", "smith"),
        ("google", "Dr", "dr"),  # a name that is only a title stays
        ("google", "Müller, PhD", "müller"),
    ],
)
def test_names(profile, raw, expected):
    assert norm("first_name", raw, profile) == expected
    assert norm("last_name", raw, profile) == expected


def test_names_refused_by_uid2_and_empty_after_punctuation():
    assert reason("first_name", "Mary", "uid2") == "unsupported"
    assert reason("last_name", "...", "strict") == "empty"


def test_street_and_city():
    assert norm("street", " 123  Main St., Apt #4 ") == "123 main st apt 4"
    assert norm("street", " 123  Main St. ", "google") == "123 main st."
    assert reason("street", "123 Main St", "meta") == "unsupported"
    assert norm("city", "  St. Louis ") == "st louis"
    assert norm("city", "San Francisco", "meta") == "sanfrancisco"
    assert norm("city", "Saint-Étienne", "meta") == "saintétienne"
    assert norm("city", " New  York ", "google") == "new york"
    assert reason("city", "Paris", "uid2") == "unsupported"


# --- state, postal code, country -----------------------------------------------------------

def test_state():
    assert norm("state", "California") == "ca"
    assert norm("state", " N.Y. ") == "ny"
    assert norm("state", "Québec", region="CA") == "qc"
    assert norm("state", "Bavaria", region="DE") == "bavaria"
    assert norm("state", "California", "meta") == "ca"
    assert norm("state", "Nova Scotia", "meta", region="CA") == "novascotia"
    assert norm("state", "new york", "google") == "NY"
    assert reason("state", "Narnia") == "unknown_state"


@pytest.mark.parametrize(
    "profile, region, raw, expected",
    [
        ("strict", "US", "94105-1234", "94105"),
        ("strict", "US", " 02134 ", "02134"),
        ("strict", "GB", "sw1a1aa", "sw1a 1aa"),
        ("strict", "CA", "k1a-0b1", "k1a 0b1"),
        ("strict", "NL", "1234  ab", "1234 ab"),
        ("google", "US", "94105-1234", "94105-1234"),
        ("google", "US", "94105", "94105"),
        ("google", "GB", "ec1a1bb", "EC1A 1BB"),
        ("meta", "US", "94105-1234", "94105"),
        ("meta", "US", "941051234", "94105"),
        ("meta", "GB", "M1 1AE", "m11ae"),
        ("meta", "JP", "100-0001", "1000001"),
    ],
)
def test_postal_code(profile, region, raw, expected):
    assert norm("postal_code", raw, profile, region) == expected


@pytest.mark.parametrize(
    "region, raw", [("US", "2134"), ("US", "94105-12"), ("GB", "SW1A"), ("CA", "D1A 0B1"),
                    ("FR", "75 018 ÷")]
)  # fmt: skip
def test_postal_code_rejects(region, raw):
    assert reason("postal_code", raw, "strict", region) == "postal"


@pytest.mark.parametrize(
    "raw, expected",
    [("US", "us"), ("usa", "us"), ("United States of America", "us"), ("U.K.", "gb"),
     ("Deutschland", "de"), ("Côte d'Ivoire", "ci"), ("  france ", "fr"), ("DEU", "de"),
     ("España", "es")],
)  # fmt: skip
def test_country(raw, expected):
    assert norm("country", raw) == expected
    assert norm("country", raw, "meta") == expected
    assert norm("country", raw, "google") == expected.upper()


def test_country_unknown():
    assert reason("country", "Atlantis") == "unknown_country"
    assert reason("country", "US", "uid2") == "unsupported"


# --- dob, gender, maid, external id --------------------------------------------------------

@pytest.mark.parametrize(
    "raw", ["1990-07-04", "1990-7-4", "07/04/1990", "7/4/1990", "04.07.1990", "19900704",
            "1990/07/04", "1990-07-04T00:00:00", "1990-07-04 00:00:00"]
)  # fmt: skip
def test_dob_formats(raw):
    assert norm("dob", raw) == "1990-07-04"
    assert norm("dob", raw, "meta") == "19900704"


@pytest.mark.parametrize(
    "raw", ["1990-02-30", "02/30/1990", "31.04.1990", "19901301", "1899-12-31", "3000-01-01",
            "July 4, 1990", "90-07-04", "1990-07-04x", "１９９０-07-04"]
)  # fmt: skip
def test_dob_rejects(raw):
    assert reason("dob", raw) == "date"


def test_dob_refused_by_google_and_uid2():
    assert reason("dob", "1990-07-04", "google") == "unsupported"
    assert reason("dob", "1990-07-04", "uid2") == "unsupported"


def test_gender():
    assert [norm("gender", g) for g in ("F", "female", " Woman ", "m", "MALE")] == list("fffmm")
    assert norm("gender", "Female", "meta") == "f"
    assert reason("gender", "unspecified") == "unknown_gender"
    assert reason("gender", "f", "google") == "unsupported"


def test_maid():
    idfa = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
    assert norm("maid", idfa) == idfa.lower()
    assert norm("maid", idfa.replace("-", "")) == idfa.lower()
    assert norm("maid", idfa, "meta") == idfa.lower()
    assert norm("maid", f" {idfa} ", "google") == idfa
    assert reason("maid", "00000000-0000-0000-0000-000000000000") == "placeholder"
    assert reason("maid", "not-a-device-id") == "syntax"
    assert reason("maid", idfa, "uid2") == "unsupported"


def test_external_id_keeps_case():
    assert norm("external_id", "  CUST-0001a ") == "CUST-0001a"
    assert norm("external_id", "Ame\u0301lie-7") == "Amélie-7"
    assert norm("external_id", "Ame\u0301lie-7", "meta") == "Ame\u0301lie-7"
    assert reason("external_id", "x", "google") == "unsupported"
    assert reason("external_id", "CUST\x00-1") == "control_char"
    assert norm("street", "1 Main\x00St", "google") == "1 main st"


def test_library_versions_names_what_decides_output():
    versions = normalize.library_versions()
    assert set(versions) >= {"phonenumbers", "email-validator"}
    assert all(isinstance(v, str) and v for v in versions.values())


def test_foreign_postal_codes_are_read_without_the_regions_rules():
    raw = ["SW1A 1AA", "560001", "94107-1234", "!!!", None]
    strict = normalize.normalize_column("postal_code", raw, region="US")
    assert strict.reasons.to_pylist() == ["postal", "postal", None, "postal", "empty"]
    got = normalize.normalize_column("postal_code", raw, region="US", foreign_postal=True)
    assert got.values.to_pylist() == [
        normalize.normalize("postal_code", "SW1A 1AA", region=None),
        normalize.normalize("postal_code", "560001", region=None), "94107", None, None]
    assert got.reasons.to_pylist() == [None, None, None, "postal", "empty"]
