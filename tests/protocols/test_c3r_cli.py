"""`cleanroom c3r encrypt|decrypt` end to end on a realistic CRM extract (CSV and Parquet)."""

import base64
import csv
import datetime as dt
import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cleanroom.cli import main
from protocols import c3r

KEY = bytes(range(1, 33))
ENV = {"C3R_SHARED_SECRET": base64.b64encode(KEY).decode()}
CID = "3f1b8a52-6c0e-4d2a-9b7e-1a2b3c4d5e6f"

CRM = '''\
Customer ID,Email,Phone,First Name,Tier,Notes
C-1001, Jane.Doe@Example.com ,(415) 555-0132,Jane,gold,"Prefers window seat, vegetarian"
C-1002,raj.patel@example.org,+44 20 7946 0958,Raj,silver,
C-1003,MARIA.GARCIA@EXAMPLE.NET,415.555.0199,María,bronze,"Moved to ""Oakland"""
C-1004,li.wei@example.com,,Wei,gold,VIP
C-1005,not-an-email,212-555-0147,Sam,silver,
C-1006,o.connor@example.ie,+353 1 555 0100,Siobhán,gold,  trailing spaces trimmed
C-1007,chris@example.co.uk,020 7946 0000,Chris,bronze,
'''


def _schema(tmp_path, doc):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(doc))
    return str(path)


MAPPED = {"headerRow": True, "columns": [
    {"sourceHeader": "Email", "targetHeader": "email", "type": "fingerprint"},
    {"sourceHeader": "Phone", "targetHeader": "phone", "type": "fingerprint"},
    {"sourceHeader": "First Name", "targetHeader": "first_name", "type": "sealed",
     "pad": {"type": "max", "length": 4}},
    {"sourceHeader": "Notes", "type": "sealed", "pad": {"type": "fixed", "length": 64}},
    {"sourceHeader": "Tier", "targetHeader": "tier", "type": "cleartext"},
]}


def _run(args, env=ENV):
    return CliRunner().invoke(main, args, env=env)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_encrypt_normalize_then_decrypt_round_trip(tmp_path):
    src = tmp_path / "crm.csv"
    src.write_text(CRM, encoding="utf-8")
    out, back = tmp_path / "crm_c3r.csv", tmp_path / "crm_back.csv"
    r = _run(["c3r", "encrypt", str(src), "--schema", _schema(tmp_path, MAPPED), "--id", CID,
              "--out", str(out), "--allow-cleartext", "--allow-duplicates",
              "--normalize", "Email=email", "--normalize", "Phone=phone", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["rows"] == 7
    assert doc["columns"] == ["email", "phone", "first_name", "notes_sealed", "tier"]
    assert doc["normalization_rejected"]["email"] == {"syntax": 1}
    rows = _rows(out)
    assert list(rows[0]) == doc["columns"]
    assert all(r["email"].startswith("02:hmac:") and len(r["email"]) == 52 for r in rows)
    settings = c3r.Settings(True, True, False, False)
    expected = c3r.fingerprint("jane.doe@example.com", secret=KEY, salt=CID, column="email",
                               settings=settings)
    assert expected in {r["email"] for r in rows}
    phone = c3r.fingerprint("+14155550132", secret=KEY, salt=CID, column="phone",
                            settings=settings)
    assert phone in {r["phone"] for r in rows}
    assert "Jane" not in out.read_text() and "example.com" not in out.read_text()
    assert len({len(r["notes_sealed"]) for r in rows}) == 1  # fixed pad hides lengths
    assert len({len(r["first_name"]) for r in rows}) == 1  # max pad too

    r = _run(["c3r", "decrypt", str(out), "--id", CID, "--out", str(back)])
    assert r.exit_code == 0, r.output
    assert back.stat().st_mode & 0o777 == 0o600  # decrypted personal data
    clear = _rows(back)
    assert Counter((r["first_name"], r["tier"], r["notes_sealed"]) for r in clear) == Counter([
        ("Jane", "gold", "Prefers window seat, vegetarian"), ("Raj", "silver", ""),
        ("María", "bronze", 'Moved to "Oakland"'), ("Wei", "gold", "VIP"), ("Sam", "silver", ""),
        ("Siobhán", "gold", "trailing spaces trimmed"), ("Chris", "bronze", "")])
    assert {r["email"] for r in clear} == {r["email"] for r in rows}  # fingerprints pass through


def test_duplicates_after_normalization_are_refused_without_allow_duplicates(tmp_path):
    src = tmp_path / "dupes.csv"
    src.write_text("Email\nJane.Doe@Example.com\n jane.doe@example.com\n", encoding="utf-8")
    schema = _schema(tmp_path, {"headerRow": True, "columns": [
        {"sourceHeader": "Email", "type": "fingerprint"}]})
    out = tmp_path / "out.csv"
    base = ["c3r", "encrypt", str(src), "--schema", schema, "--id", CID, "--out", str(out)]
    r = _run(base)
    assert r.exit_code == 0  # C3R does not normalize: two different strings
    assert len({row["email_fingerprint"] for row in _rows(out)}) == 2
    out.unlink()
    r = _run(base + ["--normalize", "Email=email"])
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"error: {src}: duplicate entries found in fingerprint column(s) "
                                "email_fingerprint but allowDuplicates is false")
    assert not out.exists()
    r = _run(base + ["--normalize", "Email=email", "--allow-duplicates"])
    assert r.exit_code == 0
    assert len({row["email_fingerprint"] for row in _rows(out)}) == 1


def test_more_than_one_null_is_refused_unless_nulls_are_preserved(tmp_path):
    src = tmp_path / "nulls.csv"
    src.write_text("id,email\n1,\n2,\"\"\n3,a@example.com\n", encoding="utf-8")
    schema = _schema(tmp_path, {"headerRow": True, "columns": [
        {"sourceHeader": "email", "type": "fingerprint"},
        {"sourceHeader": "id", "type": "sealed", "pad": {"type": "none"}}]})
    out = tmp_path / "out.csv"
    base = ["c3r", "encrypt", str(src), "--schema", schema, "--id", CID, "--out", str(out)]
    r = _run(base)
    assert r.exit_code == 1 and "more than one NULL" in r.stderr and not out.exists()
    r = _run(base + ["--preserve-nulls"])
    assert r.exit_code == 0
    assert sorted(row["email_fingerprint"] == "" for row in _rows(out)) == [False, True, True]


@pytest.mark.parametrize("args, env, code, message", [
    ([], {}, 1, "error: set C3R_SHARED_SECRET to the collaboration's shared secret"),
    ([], {"C3R_SHARED_SECRET": base64.b64encode(b"too short").decode()}, 1,
     "error: C3R_SHARED_SECRET must decode to at least 32 bytes, found 9"),
    (["--allow-cleartext"], None, 0, ""),
])
def test_secret_and_settings_errors(tmp_path, args, env, code, message):
    src = tmp_path / "crm.csv"
    src.write_text(CRM, encoding="utf-8")
    out = tmp_path / "out.csv"
    r = _run(["c3r", "encrypt", str(src), "--schema", _schema(tmp_path, MAPPED), "--id", CID,
              "--out", str(out), "--allow-duplicates", *args],
             env={"C3R_SHARED_SECRET": None} | (ENV if env is None else env))
    assert r.exit_code == code
    if code:
        assert r.stderr.startswith(message) and "\n" == r.stderr[-1]
        assert r.stderr.count("\n") == 1 and not out.exists()


def test_user_mistakes_get_one_line(tmp_path):
    src = tmp_path / "crm.csv"
    src.write_text(CRM, encoding="utf-8")
    schema = _schema(tmp_path, {"headerRow": True, "columns": [
        {"sourceHeader": "Loyalty ID", "type": "fingerprint"}]})
    out = str(tmp_path / "o.csv")
    r = _run(["c3r", "encrypt", str(src), "--schema", schema, "--id", CID, "--out", out])
    assert r.exit_code == 1
    assert r.stderr == f"error: {src}: source column(s) not found: loyalty id\n"
    r = _run(["c3r", "encrypt", str(src), "--schema", _schema(tmp_path, MAPPED), "--id", CID,
              "--out", out])
    assert r.stderr == ("error: allow_cleartext: cleartext columns found but allowCleartext is "
                        "false: tier\n")
    r = _run(["c3r", "encrypt", str(src), "--schema", schema, "--id", "not-a-uuid", "--out", out])
    assert r.exit_code == 2 and "UUID" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("Email,Phone\na@example.com,1\nb@example.com\n", encoding="utf-8")
    r = _run(["c3r", "encrypt", str(bad), "--schema", _schema(tmp_path, {"headerRow": True,
              "columns": [{"sourceHeader": "Email", "type": "fingerprint"}]}), "--id", CID,
              "--out", out])
    assert r.stderr == f"error: {bad}, row 3: expected 2 columns, found 1\n"


def test_decrypt_with_the_wrong_key_fails_closed(tmp_path):
    src = tmp_path / "n.csv"
    src.write_text("name\nAda Lovelace\n", encoding="utf-8")
    schema = _schema(tmp_path, {"headerRow": True, "columns": [
        {"sourceHeader": "name", "type": "sealed", "pad": {"type": "none"}}]})
    enc, dec = tmp_path / "e.csv", tmp_path / "d.csv"
    assert _run(["c3r", "encrypt", str(src), "--schema", schema, "--id", CID, "--out",
                 str(enc)]).exit_code == 0
    other = {"C3R_SHARED_SECRET": base64.b64encode(bytes(32)).decode()}
    r = _run(["c3r", "decrypt", str(enc), "--id", CID, "--out", str(dec)], env=other)
    assert r.exit_code == 1
    assert r.stderr == (f"error: {enc}, row 2, column 'name_sealed': decryption failed: "
                        "wrong key or tampered data\n")
    assert not dec.exists() and "Ada" not in r.output


def test_positional_schema_on_a_headerless_file(tmp_path):
    src = tmp_path / "noheader.csv"
    src.write_text("a@example.com,gold\nb@example.com,silver\n", encoding="utf-8")
    schema = _schema(tmp_path, {"headerRow": False, "columns": [
        [{"targetHeader": "email", "type": "fingerprint"}],
        [{"targetHeader": "tier", "type": "cleartext"}]]})
    out = tmp_path / "o.csv"
    r = _run(["c3r", "encrypt", str(src), "--schema", schema, "--id", CID, "--out", str(out),
              "--allow-cleartext"])
    assert r.exit_code == 0, r.output
    rows = _rows(out)
    assert sorted(r["tier"] for r in rows) == ["gold", "silver"]
    fp = c3r.fingerprint("a@example.com", secret=KEY, salt=CID, column="email",
                         settings=c3r.Settings(allow_cleartext=True))
    assert fp in {r["email"] for r in rows}


def test_parquet_types_are_classed_like_c3r(tmp_path):
    table = pa.table({
        "member_id": pa.array([1001, 1002, 1003], pa.int64()),
        "points": pa.array([120, 75, 3000], pa.int32()),
        "email": pa.array(["a@example.com", "b@example.com", None]),
        "active": pa.array([True, False, True]),
        "joined": pa.array([dt.date(2019, 5, 1), dt.date(2021, 1, 9), dt.date(2023, 7, 30)]),
        "spend": pa.array([10.5, 99.0, 0.25]),
    })
    src, out, back = (tmp_path / n for n in ("m.parquet", "m_c3r.parquet", "m_back.parquet"))
    pq.write_table(table, src)
    schema = _schema(tmp_path, {"headerRow": True, "columns": [
        {"sourceHeader": "member_id", "type": "fingerprint"},
        {"sourceHeader": "points", "type": "fingerprint"},
        {"sourceHeader": "email", "type": "fingerprint"},
        {"sourceHeader": "active", "type": "sealed", "pad": {"type": "none"}},
        {"sourceHeader": "joined", "type": "sealed", "pad": {"type": "max", "length": 0}},
        {"sourceHeader": "spend", "type": "cleartext"},
        {"sourceHeader": "points", "targetHeader": "points_clear", "type": "cleartext"},
    ]})
    r = _run(["c3r", "encrypt", str(src), "--schema", schema, "--id", CID, "--out", str(out),
              "--allow-cleartext", "--preserve-nulls"])
    assert r.exit_code == 0, r.output
    enc = pq.read_table(out)
    assert enc.schema.field("member_id_fingerprint").type == pa.string()
    assert enc.schema.field("spend").type == pa.float64()
    assert enc.schema.field("points_clear").type == pa.int32()
    s = c3r.Settings(allow_cleartext=True, preserve_nulls=True)
    got = enc.to_pylist()
    assert c3r.fingerprint(1002, secret=KEY, salt=CID, column="member_id_fingerprint",
                           settings=s) in {row["member_id_fingerprint"] for row in got}
    # INT32 and BIGINT share C3R's integral class: 75 as INT fingerprints like 75 as BIGINT
    assert c3r.fingerprint(75, secret=KEY, salt=CID, column="points_fingerprint",
                           settings=s) in {row["points_fingerprint"] for row in got}
    assert None in {row["email_fingerprint"] for row in got}
    assert _run(["c3r", "decrypt", str(out), "--id", CID, "--out", str(back)]).exit_code == 0
    dec = pq.read_table(back)
    assert dec.schema.field("active_sealed").type == pa.bool_()
    assert dec.schema.field("joined_sealed").type == pa.date32()
    pairs = {(row["points_clear"], row["active_sealed"], row["joined_sealed"])
             for row in dec.to_pylist()}
    assert pairs == {(120, True, dt.date(2019, 5, 1)), (75, False, dt.date(2021, 1, 9)),
                     (3000, True, dt.date(2023, 7, 30))}
    bad = _schema(tmp_path, {"headerRow": True, "columns": [
        {"sourceHeader": "spend", "type": "fingerprint"}]})
    r = _run(["c3r", "encrypt", str(src), "--schema", bad, "--id", CID, "--out", str(out)])
    assert r.exit_code == 1
    assert r.stderr == f"error: {src}, column 'spend': DOUBLE columns cannot be fingerprinted\n"


def test_normalization_usage_mistakes_are_one_line(tmp_path):
    src = tmp_path / "crm.csv"
    src.write_text(CRM, encoding="utf-8")
    base = ["c3r", "encrypt", str(src), "--schema", _schema(tmp_path, MAPPED), "--id", CID,
            "--out", str(tmp_path / "o.csv"), "--allow-cleartext", "--allow-duplicates"]
    r = _run(base + ["--normalize", "Phone=phone", "--region", "ZZ"])
    assert r.exit_code == 1 and r.stderr.startswith("error: normalize: unknown region 'ZZ'")
    r = _run(base + ["--normalize", "First Name=first_name", "--profile", "uid2"])
    assert r.stderr == "error: normalize: profile uid2 does not take identifier kind first_name\n"
    r = _run(base + ["--normalize", "Email=passport"])
    assert r.exit_code == 2 and "unknown kind 'passport'" in r.stderr


def test_parquet_decimals_and_timestamps_seal_and_decrypt(tmp_path):
    from decimal import Decimal

    ts = pa.array([1_700_000_000_123_456, None, 0], pa.int64()).cast(pa.timestamp("us"))
    table = pa.table({"amount": pa.array([Decimal("12.50"), Decimal("-0.05"), None],
                                         pa.decimal128(9, 2)),
                      "seen": ts, "k": ["a", "b", "c"]})
    src, enc, dec = (tmp_path / n for n in ("t.parquet", "t_c3r.parquet", "t_back.parquet"))
    pq.write_table(table, src)
    schema = _schema(tmp_path, {"headerRow": True, "columns": [
        {"sourceHeader": "amount", "type": "sealed", "pad": {"type": "max", "length": 0}},
        {"sourceHeader": "seen", "type": "sealed", "pad": {"type": "none"}},
        {"sourceHeader": "k", "type": "fingerprint"}]})
    assert _run(["c3r", "encrypt", str(src), "--schema", schema, "--id", CID, "--out",
                 str(enc)]).exit_code == 0
    sealed = pq.read_table(enc).to_pylist()
    # C3R layout: info byte, precision and scale as 4-byte ints, then the plain string
    plain = {c3r.unseal_bytes(r["amount_sealed"], secret=KEY, salt=CID) for r in sealed}
    assert b"\x0c\x00\x00\x00\x09\x00\x00\x00\x0212.50" in plain
    assert b"\x0d\x00\x00\x00\x09\x00\x00\x00\x02" in plain  # NULL keeps its metadata
    # info byte, UTC flag, unit ordinal (MICROS = 1), 8-byte ticks
    stamps = {c3r.unseal_bytes(r["seen_sealed"], secret=KEY, salt=CID) for r in sealed}
    assert b"\x16\x00\x00\x00\x00\x01" + (1_700_000_000_123_456).to_bytes(8, "big") in stamps
    assert _run(["c3r", "decrypt", str(enc), "--id", CID, "--out", str(dec)]).exit_code == 0
    back = pq.read_table(dec)
    assert back.schema.field("amount_sealed").type == pa.decimal128(9, 2)
    assert back.schema.field("seen_sealed").type == pa.timestamp("us")
    assert Counter(back.column("amount_sealed").to_pylist()) == Counter(
        [Decimal("12.50"), Decimal("-0.05"), None])
    assert Counter(back.column("seen_sealed").cast(pa.int64()).to_pylist()) == Counter(
        [1_700_000_000_123_456, None, 0])
    # the same sealed values in a CSV result file decrypt to C3R's text forms
    csv_in, csv_out = tmp_path / "r.csv", tmp_path / "r_back.csv"
    csv_in.write_text("amount,seen\n" + "\n".join(f"{r['amount_sealed']},{r['seen_sealed']}"
                                                  for r in sealed) + "\n", encoding="utf-8")
    assert _run(["c3r", "decrypt", str(csv_in), "--id", CID, "--out", str(csv_out)]).exit_code == 0
    assert Counter((r["amount"], r["seen"]) for r in _rows(csv_out)) == Counter([
        ("12.50", "2023-11-14 22:13:20.123456"), ("-0.05", ""), ("", "1970-01-01 00:00:00.000000")])
