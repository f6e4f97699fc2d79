"""protocols.c3r Python API: seal/unseal round trips, padding, NULLs, schemas, C3R-style CSV."""

import base64
import datetime as dt
import json

import pytest

from protocols import ConfigError, DecryptionError, InputError, KeyMaterialError, c3r
from protocols.c3r._csv import format_csv, parse_csv

KEY = bytes(range(32))
SALT = "00000000-1111-2222-3333-444444444444"
LOW = c3r.Settings(True, True, True, True)
HIGH = c3r.Settings()


@pytest.mark.parametrize("value", [
    "jane.doe@example.com", "", "Zoë Ångström 🎉", 0, -1, 2**63 - 1, -(2**63), True, False,
    dt.date(1999, 12, 31), dt.date(1901, 1, 1), 2.5,
])
@pytest.mark.parametrize("pad", [c3r.Pad(), c3r.Pad("fixed", 64), c3r.Pad("max", 10)])
def test_seal_unseal_round_trip(value, pad):
    token = c3r.seal(value, secret=KEY, salt=SALT, column="notes", settings=HIGH, pad=pad)
    assert token.startswith("02:enc:")
    back = c3r.unseal(token, secret=KEY, salt=SALT)
    assert back == value and type(back) is type(value)


def test_seal_is_deterministic_given_the_nonce_and_random_without():
    nonce = bytes(range(32))
    kw = {"secret": KEY, "salt": SALT, "column": "city", "settings": HIGH}
    assert c3r.seal("Paris", nonce=nonce, **kw) == c3r.seal("Paris", nonce=nonce, **kw)
    assert c3r.seal("Paris", **kw) != c3r.seal("Paris", **kw)
    raw = base64.b64decode(c3r.seal("Paris", nonce=nonce, **kw)[len("02:enc:"):])
    assert raw[:32] == nonce and len(raw) == 32 + 12 + (1 + 5 + 2) + 16


def test_fixed_padding_hides_length_and_max_pads_to_the_longest():
    kw = {"secret": KEY, "salt": SALT, "column": "title", "settings": HIGH}
    fixed = c3r.Pad("fixed", 40)
    assert len(c3r.seal("CEO", pad=fixed, **kw)) == len(c3r.seal("Chief Officer", pad=fixed, **kw))
    with pytest.raises(InputError, match="no room for padding"):
        c3r.seal("x" * 40, pad=fixed, **kw)
    assert c3r.unseal_bytes(c3r.seal("ab", pad=c3r.Pad("max", 3), max_value_length=10, **kw),
                            secret=KEY, salt=SALT) == b"\x02ab"
    with pytest.raises(ConfigError):
        c3r.Pad("max", 10001)
    with pytest.raises(ConfigError):
        c3r.Pad("none", 4)


def test_nulls_follow_preserve_nulls():
    kw = {"secret": KEY, "salt": SALT, "column": "email"}
    assert c3r.fingerprint(None, settings=LOW, **kw) is None
    assert c3r.seal(None, settings=LOW, **kw) is None
    a = c3r.fingerprint(None, settings=HIGH, **kw)
    b = c3r.fingerprint(None, settings=HIGH, **kw)
    assert a.startswith("02:hmac:") and a != b  # a random token that never matches
    sealed_null = c3r.seal(None, settings=HIGH, **kw)
    assert c3r.unseal_bytes(sealed_null, secret=KEY, salt=SALT) == b"\x03"
    assert c3r.unseal(sealed_null, secret=KEY, salt=SALT) is None


def test_wrong_key_or_tampering_fails_closed_without_detail():
    token = c3r.seal("secret value", secret=KEY, salt=SALT, column="c", settings=HIGH)
    with pytest.raises(DecryptionError) as err:
        c3r.unseal(token, secret=bytes(32), salt=SALT)
    assert "secret value" not in str(err.value)
    with pytest.raises(DecryptionError):
        c3r.unseal(token, secret=KEY, salt="00000000-1111-2222-3333-444444444445")
    body = bytearray(base64.b64decode(token[7:]))
    body[-1] ^= 1
    with pytest.raises(DecryptionError):
        c3r.unseal("02:enc:" + base64.b64encode(bytes(body)).decode(), secret=KEY, salt=SALT)
    with pytest.raises(DecryptionError):
        c3r.unseal("02:hmac:abc", secret=KEY, salt=SALT)


def test_fingerprint_rejects_unsupported_types():
    with pytest.raises(InputError, match="DOUBLE"):
        c3r.fingerprint(1.5, secret=KEY, salt=SALT, column="c", settings=HIGH)
    with pytest.raises(InputError, match="out of range"):
        c3r.fingerprint(2**63, secret=KEY, salt=SALT, column="c", settings=HIGH)
    with pytest.raises(KeyMaterialError):
        c3r.fingerprint("x", secret=KEY, salt="", column="c", settings=HIGH)


def test_secret_from_env_checks_base64_and_length_and_never_echoes_it():
    good = base64.b64encode(KEY).decode()
    assert c3r.secret_from_env({"C3R_SHARED_SECRET": good}) == KEY
    assert c3r.secret_from_env({"C3R_SHARED_SECRET": good.rstrip("=")}) == KEY
    for bad in ("BadKey", "!!!notbase64!!!", base64.b64encode(b"short").decode()):
        with pytest.raises(KeyMaterialError) as err:
            c3r.secret_from_env({"C3R_SHARED_SECRET": bad})
        assert bad not in str(err.value)
    with pytest.raises(KeyMaterialError, match="C3R_SHARED_SECRET"):
        c3r.secret_from_env({})


def test_mapped_schema_defaults_and_header_normalization():
    schema = c3r.Schema.from_dict({"headerRow": True, "columns": [
        {"sourceHeader": " Email ", "type": "FINGERPRINT"},
        {"sourceHeader": "Notes", "type": "sealed", "pad": {"type": "MAX", "length": 8}},
        {"sourceHeader": "Tier", "targetHeader": "Loyalty Tier", "type": "cleartext"},
    ]})
    assert [(c.source, c.target, c.type) for c in schema.columns] == [
        ("email", "email_fingerprint", "fingerprint"), ("notes", "notes_sealed", "sealed"),
        ("tier", "loyalty tier", "cleartext")]
    assert schema.columns[1].pad == c3r.Pad("max", 8)


def test_positional_schema():
    schema = c3r.Schema.from_dict({"headerRow": False, "columns": [
        [{"targetHeader": "email", "type": "fingerprint"}], [],
        [{"targetHeader": "a", "type": "cleartext"}, {"targetHeader": "b", "type": "sealed",
                                                     "pad": {"type": "none"}}]]})
    assert [(c.source, c.target) for c in schema.columns] == [("_c0", "email"), ("_c2", "a"),
                                                               ("_c2", "b")]
    assert schema.source_count == 3


@pytest.mark.parametrize("doc, key", [
    ({"columns": []}, "headerRow"),
    ({"headerRow": True, "columns": [{"sourceHeader": "a", "type": "sealed"}]}, "pad"),
    ({"headerRow": True, "columns": [{"sourceHeader": "a", "type": "fingerprint",
                                      "pad": {"type": "none"}}]}, "pad"),
    ({"headerRow": True, "columns": [{"sourceHeader": "a", "type": "hashed"}]}, "type"),
    ({"headerRow": True, "columns": [{"sourceHeader": "e-mail", "type": "cleartext"}]},
     "sourceHeader"),
    ({"headerRow": True, "columns": [{"sourceHeader": "a" * 129, "type": "cleartext"}]},
     "sourceHeader"),
    ({"headerRow": True, "columns": [{"sourceHeader": "a", "type": "cleartext"},
                                     {"sourceHeader": "A", "type": "cleartext"}]},
     "targetHeader"),
    ({"headerRow": False, "columns": [[{"sourceHeader": "a", "targetHeader": "a",
                                        "type": "cleartext"}]]}, "sourceHeader"),
])
def test_invalid_schemas_name_the_key(doc, key, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as err:
        c3r.Schema.from_path(path)
    assert key in str(err.value) and "schema.json" in str(err.value)


def test_csv_reading_follows_c3r():
    text = 'a,b,c\r\n  x  , " y " ,\n"",   ,"q""uote"\n\n"multi\nline",2,3'
    assert parse_csv(text, file="f.csv") == [
        ["a", "b", "c"], ["x", " y ", None], [None, None, 'q"uote'], ["multi\nline", "2", "3"]]
    assert format_csv(["h", "k"], [["a b", None], ["", 'x,"y"']]) == \
        'h,k\n"a b",\n"",' + '"x,""y"""\n'


def test_csv_fast_path_equals_the_quote_aware_parser():
    from protocols.c3r._csv import parse_csv_reference

    rng = __import__("random").Random(3)
    pieces = ["a", "Zoë", "x y", " ", "\t", ",", "", "42", "é🎉", '"q"', '"a,b"', '" s "',
              '"l\nm"', '"x""y"', "  v  "]
    for _ in range(300):
        lines = [",".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
                 for _ in range(rng.randint(1, 6))]
        text = rng.choice(["\n", "\r\n", "\r"]).join(lines) + rng.choice(["", "\n"])
        try:
            expected = parse_csv_reference(text, file="f.csv")
        except InputError:
            with pytest.raises(InputError):
                parse_csv(text, file="f.csv")
            continue
        assert parse_csv(text, file="f.csv") == expected, text


def test_seal_takes_the_pad_in_c3r_json_form():
    nonce = bytes(32)
    kw = {"secret": KEY, "salt": SALT, "column": "title", "settings": HIGH, "nonce": nonce}
    assert c3r.seal("CEO", pad={"type": "FIXED", "length": 128}, **kw) == \
        c3r.seal("CEO", pad=c3r.Pad("fixed", 128), **kw)
    assert c3r.seal("CEO", pad="none", **kw) == c3r.seal("CEO", **kw)
