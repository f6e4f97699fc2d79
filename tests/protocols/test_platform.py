"""Platform hash exports: published UID2/Meta vectors, the export CLI, and the DuckDB hash path."""

import csv
import hashlib
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _vectors import vectors
from click.testing import CliRunner

import normalize
import protocols
from cleanroom.cli import main
from protocols import ConfigError, platform


@pytest.mark.parametrize("case", vectors("platform_published"))
def test_published_platform_hashes(case):
    got = protocols.platform_hash(case["kind"], case["input"], case["platform"],
                                  region=case["region"])
    if "expected" in case:
        assert got == case["expected"]
    else:
        assert got != case["not_expected"]


def test_unhashed_fields_come_back_normalized():
    assert protocols.platform_hash("country", "us", "google") == "US"
    assert protocols.platform_hash("postal_code", "94105", "google") == "94105"
    madid = "AB12CD34-56EF-7890-ABCD-EF1234567890"
    assert protocols.platform_hash("maid", madid, "meta") == madid.lower()
    assert protocols.platform_hash("mobile_ad_id", madid, "meta") == madid.lower()
    # Meta hashes its country code; Google takes it in clear
    assert protocols.platform_hash("country", "US", "meta") == hashlib.sha256(b"us").hexdigest()


def test_platform_hash_refuses_what_a_platform_does_not_take():
    with pytest.raises(ConfigError, match="uid2 does not take 'first_name'"):
        protocols.platform_hash("first_name", "Mary", "uid2")
    with pytest.raises(ConfigError, match="unknown platform"):
        protocols.platform_hash("email", "a@example.com", "tiktok")
    with pytest.raises(normalize.InvalidIdentifier) as err:
        protocols.platform_hash("email", "not an email", "meta")
    assert "not an email" not in str(err.value)


@pytest.mark.parametrize("name", ["uid2", "google", "meta"])
def test_duckdb_hash_path_equals_hashlib_reference(name):
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz.+@_-0123456789éßツ🎉 "
    values = [None if rng.random() < 0.1 else
              "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
              for _ in range(5000)]
    fast = platform.hash_column(pa.array(values, pa.string()), name).to_pylist()
    assert fast == platform.hash_column_reference(values, name)


CUSTOMERS = '''\
id,email,mobile,first,last,zip,country
1, Jane.Doe+Shop@GMail.com ,(650) 555-1212,Jane,Doe,94105-1234,us
2,raj.patel@example.org,+44 20 7946 0958,Raj,Patel,SW1A 1AA,GB
3,not-an-email,415-555-0199,Ann,Lee,94110,US
4,,,,,,
5,li.wei@example.com,,Wei,Li,10001,US
6,sam@example.com,12,Sam,Ray,60601,US
'''


def _export(tmp_path, platform_name, ids, name="customers.csv"):
    src = tmp_path / name
    if name.endswith(".csv"):
        src.write_text(CUSTOMERS, encoding="utf-8")
    out = tmp_path / f"{platform_name}.csv"
    args = ["export-hashes", str(src), "--platform", platform_name, "--out", str(out), "--json"]
    for pair in ids:
        args += ["--id", pair]
    r = CliRunner().invoke(main, args)
    return r, out


def _read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_export_uid2(tmp_path):
    r, out = _export(tmp_path, "uid2", ["email=email", "phone=mobile"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["rows_in"] == 6 and doc["rows_out"] == 3
    assert doc["rejected"] == {"email:syntax": 1, "no_identifier": 1, "phone:too_short": 1}
    rows = _read(out)
    assert rows[0] == ["email_hash", "phone_hash"]
    jane = protocols.platform_hash("email", "janedoe@gmail.com", "uid2")
    assert rows[1:] and jane in {r[0] for r in rows[1:]}
    assert all(len(v) == 44 for r in rows[1:] for v in r if v)
    assert "@" not in out.read_text() and "example" not in out.read_text()
    li = [r for r in rows[1:] if r[0] == protocols.platform_hash("email", "li.wei@example.com",
                                                                  "uid2")]
    assert li == [[li[0][0], ""]]  # a missing phone stays blank, the row is kept


def test_export_google_and_meta_use_their_upload_columns(tmp_path):
    ids = ["email=email", "phone=mobile", "first_name=first", "last_name=last",
           "postal_code=zip", "country=country"]
    r, out = _export(tmp_path, "google", ids)
    assert r.exit_code == 0, r.output
    rows = _read(out)
    assert rows[0] == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    first = next(r for r in rows[1:] if r[4] == "US" and r[5].startswith("94105"))
    assert first[0] == hashlib.sha256(b"janedoe@gmail.com").hexdigest()
    assert first[1] == hashlib.sha256(b"+16505551212").hexdigest()
    r, out = _export(tmp_path, "meta", ids)
    assert r.exit_code == 0, r.output
    rows = _read(out)
    assert rows[0] == ["email", "phone", "fn", "ln", "zip", "country"]
    assert hashlib.sha256(b"jane.doe+shop@gmail.com").hexdigest() in {r[0] for r in rows}
    assert hashlib.sha256(b"16505551212").hexdigest() in {r[1] for r in rows}
    assert hashlib.sha256(b"94105").hexdigest() in {r[4] for r in rows}


def test_export_reads_parquet(tmp_path):
    pq.write_table(pa.table({"e": ["MyEmail@example.com", None, "USER@example.com"]}),
                   tmp_path / "list.parquet")
    r, out = _export(tmp_path, "uid2", ["email=e"], name="list.parquet")
    assert r.exit_code == 0, r.output
    assert _read(out)[1:] == [["FsGNM28LJQ8OLZB0Us65ZYp07NrovJSGTCMSKnLMJ6U="],
                              ["tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="]]


def test_export_errors_are_one_line(tmp_path):
    r, out = _export(tmp_path, "meta", ["email=e_mail"])
    assert r.exit_code == 1 and not out.exists()
    assert r.stderr == f"error: {tmp_path / 'customers.csv'}, column 'e_mail': column not found\n"
    r, _ = _export(tmp_path, "uid2", ["first_name=first"])
    assert r.exit_code == 1
    assert r.stderr.startswith("error: kind: uid2 does not take 'first_name'")
    r, _ = _export(tmp_path, "uid2", ["passport=first"])
    assert r.exit_code == 2 and "unknown kind 'passport'" in r.stderr
    r, _ = _export(tmp_path, "uid2", ["email=email", "email=first"])
    assert r.exit_code == 2 and "each KIND may be given once" in r.stderr


def test_unknown_region_is_a_usage_error(tmp_path, runner):
    with pytest.raises(ConfigError, match="region"):
        protocols.platform_hash("phone", "415 555 0100", "meta", region="ZZ")
    src = tmp_path / "c.csv"
    src.write_text(CUSTOMERS, encoding="utf-8")
    r = runner("export-hashes", str(src), "--platform", "meta", "--id",
               "phone=mobile", "--out", str(tmp_path / "o.csv"),
               "--region", "ZZ")
    assert r.exit_code == 1 and r.stderr.startswith("error: region: unknown region 'ZZ'")


def test_malformed_csv_names_the_row_and_never_echoes_data(tmp_path, runner):
    src = tmp_path / "bad.csv"
    src.write_text("email,phone\na@example.com,1\nsecret.person@example.com\n", encoding="utf-8")
    r = runner("export-hashes", str(src), "--platform", "meta", "--id",
               "email=email", "--out", str(tmp_path / "o.csv"))
    assert r.exit_code == 1
    assert r.stderr == f"error: {src}, row 3: expected 2 columns, found 1\n"
    notes = tmp_path / "notes.csv"
    notes.write_text('\ufeffemail,note\n"a@example.com","two\nlines"\n', encoding="utf-8")
    r = runner("export-hashes", str(notes), "--platform", "meta", "--id",
               "email=email", "--out", str(tmp_path / "o.csv"))
    assert r.exit_code == 0, r.output
