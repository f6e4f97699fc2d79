"""The local commands through the CLI: one clear line per mistake, no partial output."""

from __future__ import annotations

import json
import os
import stat

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import protocols
from cleanroom.cli import main

CID = "4a3b2c1d-0e9f-4a8b-8c7d-6e5f4a3b2c1d"
CRM = (
    "customer_id,email,phone,first_name,last_name,dob,segment\n"
    "C1,Jane.Doe@Example.com,(650) 555-0101,Jane,Doe,1984-03-02,gold\n"
    "C2,bob.smith@example.org,+44 20 7946 0958,Bob,Smith,03/15/1990,silver\n"
    "C3,not-an-email,,Ana,García,1975-12-31,gold\n"
    "C4,,650-555-0199,Li,Wei,,bronze\n"
)


@pytest.fixture
def work(tmp_path):
    (tmp_path / "crm.csv").write_text(CRM, encoding="utf-8")
    secret = tmp_path / "collab.secret"
    protocols.write_secret(protocols.new_secret(CID), secret)
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def tokenize_args(work, src, *extra):
    return ["tokenize", src, "--party", "brand", "--secret-file", work / "collab.secret",
            "--id", "email=email", "--id", "phone=phone", "--out", work / "out.parquet", *extra]


def assert_clean_failure(res, work, line, code=1):
    assert res.exit_code == code, res.output
    assert res.output.strip().splitlines() == [line]
    assert "Traceback" not in res.output
    leftovers = [p.name for p in work.iterdir() if p.name.startswith(".") or "out" in p.name]
    assert leftovers == []


def test_tokenize_prints_quality_and_writes_report(work):
    res = run(*tokenize_args(work, work / "crm.csv", "--attr", "segment",
                             "--match-key", "name_dob=first_name:first_name+last_name:last_name"
                             "+dob:dob", "--report", work / "report.json"))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"wrote {work / 'out.parquet'}: 4 rows, party brand")
    assert lines[1].split() == ["token", "kinds", "valid", "missing", "invalid", "(by",
                                "reason)", "rows", "sharing", "a", "token"]
    assert lines[2].split() == ["email", "email", "2", "1", "1", "(syntax", "1)", "0"]
    assert lines[3].split()[:4] == ["phone", "phone", "3", "1"]
    assert lines[4].split() == ["name_dob", "first_name+last_name+dob", "3", "1", "0", "0"]
    report = json.loads((work / "report.json").read_text())
    assert report["identifiers"]["email"]["invalid"] == {"syntax": 1}
    assert report["row_count"] == 4 and report["attributes"] == {"segment": "string"}
    res = run("inspect", work / "out.parquet", "--json")
    doc = json.loads(res.output)
    assert doc["manifest"]["party"] == "brand" and doc["rows"] == 4
    assert doc["columns"]["email"] == {"role": "token", "type": "binary", "nulls": 2,
                                       "non_null": 2, "distinct": 2}
    assert doc["columns"]["segment"]["distinct"] == 3
    text = run("inspect", work / "out.parquet")
    assert text.exit_code == 0 and "key_fingerprint: " in text.output
    assert "Jane" not in text.output and "example.com" not in text.output


def test_tokenize_json_output(work):
    res = run(*tokenize_args(work, work / "crm.csv", "--json"))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["identifiers"]["phone"]["valid"] == 3
    assert doc["key_fingerprint"] == protocols.load_secret(work / "collab.secret").fingerprint


@pytest.mark.parametrize(
    "content, line",
    [
        (b"", "file is empty"),
        (b"customer_id,email,phone\n", "file has a header but no data rows"),
        (b"customer_id,email,phone\nC1,a@example.com,1\nC2,b@example.com,2,extra\n",
         "row 3: malformed CSV line: expected 3 fields, found 4 (check the delimiter and quotes)"),
        (b"customer_id,email,phone\nC1,a@example.com,1\nC2,\xe9@example.com,2\n",
         "row 3, column 'email': bytes that are not valid UTF-8 text; pass the right --encoding"),
        (b"customer_id,email\nC1,a@example.com\n",
         "column 'phone': no such column (the file has: customer_id, email)"),
    ],
    ids=["empty", "header-only", "malformed-line", "undecodable", "missing-column"],
)
def test_bad_input_is_one_line_naming_where(work, content, line):
    src = work / "in.csv"
    src.write_bytes(content)
    res = run(*tokenize_args(work, src))
    assert_clean_failure(res, work, f"error: {src}, {line}" if line.startswith(("row", "column"))
                         else f"error: {src}: {line}")


def test_encoding_option_reads_latin1(work):
    src = work / "latin1.csv"
    src.write_bytes("customer_id,email,phone\nC1,josé@example.com,6505550101\n".encode("latin-1"))
    assert run(*tokenize_args(work, src)).exit_code == 1
    res = run(*tokenize_args(work, src, "--encoding", "latin-1", "--json"))
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["identifiers"]["email"]["valid"] == 1


def test_missing_input_file(work):
    res = run(*tokenize_args(work, work / "nope.csv"))
    assert_clean_failure(res, work, f"error: {work / 'nope.csv'}: file not found")


def test_secret_file_problems(work):
    secret = work / "collab.secret"
    os.chmod(secret, 0o644)
    res = run(*tokenize_args(work, work / "crm.csv"))
    assert_clean_failure(res, work, f"error: {secret}: secret file is readable by group or "
                         f"others (mode 0644); run: chmod 600 {secret}")
    doc = json.loads(secret.read_text())
    secret.write_text(json.dumps(dict(doc, version=7)))
    os.chmod(secret, 0o600)
    res = run(*tokenize_args(work, work / "crm.csv"))
    assert_clean_failure(res, work, f"error: {secret}: unsupported secret file version 7 "
                         "(expected 1)")
    assert doc["secret"] not in res.output
    secret.write_bytes(b"\x00\xffnot json")
    res = run(*tokenize_args(work, work / "crm.csv"))
    assert_clean_failure(res, work, f"error: {secret}: secret file is not valid JSON")
    secret.unlink()
    res = run(*tokenize_args(work, work / "crm.csv"))
    assert_clean_failure(res, work, f"error: {secret}: secret file not found")


def test_option_mistakes(work):
    res = run(*tokenize_args(work, work / "crm.csv", "--id", "shoe_size=email"))
    assert res.exit_code == 2 and "unknown kind 'shoe_size'" in res.output
    res = run(*tokenize_args(work, work / "crm.csv", "--id", "email"))
    assert res.exit_code == 2 and "is not KIND=COLUMN" in res.output
    res = run(*tokenize_args(work, work / "crm.csv", "--region", "XX"))
    assert res.exit_code == 1 and res.output.startswith("error: --region: unknown region 'XX'")
    res = run(*tokenize_args(work, work / "crm.csv", "--match-key", "nd=first_name+dob"))
    assert_clean_failure(res, work, "error: --match-key nd: part 'first_name' needs exactly one "
                         "--id first_name=COLUMN (found 0); or write it as first_name:COLUMN")
    res = run(*tokenize_args(work, work / "crm.csv", "--attr", "email"))
    assert res.exit_code == 3 and "refused by rule id_column_as_attribute" in res.output
    assert not (work / "out.parquet").exists()


def test_normalize_writes_private_output_and_report(work):
    out, report = work / "norm.parquet", work / "norm.json"
    res = run("normalize", work / "crm.csv", "--id", "email=email", "--id", "phone=phone",
              "--id", "dob=dob", "--keep", "customer_id", "--out", out, "--report", report)
    assert res.exit_code == 0, res.output
    assert "personal data" in res.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    table = pq.read_table(out)
    assert table.column_names == ["customer_id", "email", "email_reason", "phone",
                                  "phone_reason", "dob", "dob_reason"]
    assert table.column("email").to_pylist() == ["jane.doe@example.com",
                                                 "bob.smith@example.org", None, None]
    assert table.column("dob").to_pylist() == ["1984-03-02", "1990-03-15", "1975-12-31", None]
    assert table.column("phone").to_pylist()[1] == "+442079460958"
    doc = json.loads(report.read_text())
    assert doc["columns"]["email"] == {"kind": "email", "valid": 2, "missing": 1,
                                       "invalid": {"syntax": 1}, "repeated_rows": 0}
    assert "STILL PERSONAL DATA" in run("normalize", "--help").output


def test_normalize_csv_output_and_errors(work):
    out = work / "norm.csv"
    res = run("normalize", work / "crm.csv", "--id", "email=email", "--out", out, "--json")
    assert res.exit_code == 0, res.output
    assert out.read_text().splitlines()[1] == '"jane.doe@example.com",'
    res = run("normalize", work / "crm.csv", "--id", "email=mail", "--out", work / "out.csv")
    assert_clean_failure(res, work, f"error: {work / 'crm.csv'}, column 'mail': no such column "
                         "(the file has: customer_id, email, phone, first_name, last_name, dob, "
                         "segment)")


def test_normalize_refuses_bad_input_without_output(work):
    src = work / "bad.csv"
    src.write_bytes(b"customer_id,email\nC1,a@example.com\nC2,b\xff@example.com\n")
    res = run("normalize", src, "--id", "email=email", "--out", work / "out.parquet")
    assert_clean_failure(res, work, f"error: {src}, row 3, column 'email': bytes that are not "
                         "valid UTF-8 text; pass the right --encoding")
    res = run("normalize", work / "missing.csv", "--id", "email=email", "--out",
              work / "out.parquet")
    assert_clean_failure(res, work, f"error: {work / 'missing.csv'}: file not found")
    res = run("normalize", src, "--id", "email=email", "--profile", "acme", "--out",
              work / "out.parquet")
    assert res.exit_code == 2 and "'acme' is not one of" in res.output


def test_output_may_not_overwrite_the_input(work):
    before = (work / "crm.csv").read_bytes()
    res = run(*tokenize_args(work, work / "crm.csv")[:-1], work / "crm.csv")
    assert res.exit_code == 1
    assert res.output.strip() == (f"error: {work / 'crm.csv'}: the output would overwrite the "
                                  "input; choose another --out")
    assert (work / "crm.csv").read_bytes() == before
