"""The walls hold in local mode too (red-team attempts kept as tests): a table's owner is the
party that made its tokens, the files a collaboration names stay in its folder, a name that
is not a member is refused before anything is logged, and bad inputs get one line, not a
traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _engine_fixtures import AIRLINE_ATTRS, BRAND_ATTRS, write_collab, write_party
from test_engine import scenario

import protocols


@pytest.fixture
def room_dir(tmp_path: Path) -> Path:
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS)
    write_collab(tmp_path, min_b=12)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_edited_owner_cannot_take_another_partys_table(room_dir, runner):
    # the airline claims the brand's table, to query it alone without a join
    collab = room_dir / "collab.toml"
    _edit(collab, 'owner = "brand"', 'owner = "airline"')
    r = runner("overlap", collab, "--as", "airline")
    assert r.exit_code == 1
    assert r.stderr.strip() == (
        f"error: {collab}: tables.brand.owner: the token file was made by party 'brand', "
        "not by the table's owner 'airline'")


@pytest.mark.parametrize("key, value", [
    ("tokens", "../elsewhere/brand.tokens.parquet"),
    ("tokens", "/etc/passwd"),
    ("policy", "../brand.policy.toml"),
])
def test_table_files_stay_in_the_collaboration_folder(room_dir, runner, key, value):
    collab = room_dir / "collab.toml"
    _edit(collab, f'{key} = "brand.{"tokens.parquet" if key == "tokens" else "policy.toml"}"',
          f'{key} = "{value}"')
    r = runner("overlap", collab, "--as", "airline")
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"error: {collab}: tables.brand.{key}: must be a path "
                                "inside the collaboration's folder")


def test_the_audit_log_stays_in_the_folder_and_no_folder_is_made_outside(room_dir, runner):
    collab = room_dir / "collab.toml"
    _edit(collab, 'audit_log = "audit.jsonl"', 'audit_log = "../outside/audit.jsonl"')
    r = runner("overlap", collab, "--as", "airline")
    assert r.exit_code == 1 and "collaboration.audit_log: must be a path inside" in r.stderr
    r = runner("audit", "show", collab)
    assert r.exit_code == 1
    assert not (room_dir.parent / "outside").exists()


def test_an_audit_log_that_is_a_folder_is_one_line(room_dir, runner):
    (room_dir / "audit.jsonl").mkdir()
    r = runner("overlap", room_dir / "collab.toml", "--as", "airline")
    assert r.exit_code == 1
    assert r.stderr.strip().endswith("collaboration.audit_log: is a folder; name a file")


@pytest.mark.parametrize("command", [["overlap"], ["query", "--sql",
                                                    "SELECT COUNT(*) FROM airline"]])
def test_a_name_that_is_not_a_member_is_refused_before_anything_is_logged(room_dir, runner,
                                                                         command):
    collab = room_dir / "collab.toml"
    evil = "jane.doe@example.com\x1b[2J"
    r = runner(command[0], collab, *command[1:], "--as", evil)
    assert r.exit_code == 3
    assert "rule members:" in r.stderr and "example.com" not in r.stderr and "\x1b" not in r.stderr
    assert not (room_dir / "audit.jsonl").exists()


def test_a_deeply_nested_audit_line_is_one_line_not_a_traceback(room_dir, runner):
    collab = room_dir / "collab.toml"
    assert runner("overlap", collab, "--as", "airline").exit_code == 0
    with open(room_dir / "audit.jsonl", "a") as fh:
        fh.write("[" * 100_000 + "]" * 100_000 + "\n")
    for args in (["overlap", collab, "--as", "airline"], ["audit", "verify", collab]):
        r = runner(*args)
        assert r.exit_code != 0 and r.exception is None or isinstance(r.exception, SystemExit)
        assert "Traceback" not in r.output and r.stderr.startswith("error: ")
        assert len(r.stderr.strip().splitlines()) == 1


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.json"
    protocols.write_secret(protocols.new_secret(), path)
    return path


def test_non_utf8_bytes_in_an_attribute_column(tmp_path, runner, secret_file):
    src = tmp_path / "crm.csv"
    src.write_bytes(b"email,segment\na@example.com,golf\nb@example.com,\xff\xfeabc\n")
    r = runner("tokenize", src, "--party", "brand", "--secret-file", secret_file,
               "--id", "email=email", "--attr", "segment", "--out", tmp_path / "t.parquet")
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"error: {src}, row 3, column 'segment': bytes that are not "
                                "valid utf-8 text; pass the right --encoding")
    assert not (tmp_path / "t.parquet").exists()


@pytest.mark.parametrize("column, typ", [("tags", "list<element: string>"),
                                         ("address", "struct<zip: string>")])
def test_nested_parquet_attributes_are_refused(tmp_path, runner, secret_file, column, typ):
    src = tmp_path / "crm.parquet"
    pq.write_table(pa.table({"email": ["a@example.com", "b@example.com"],
                             "tags": [["x"], ["y"]],
                             "address": [{"zip": "94105"}, {"zip": "10001"}]}), src)
    r = runner("tokenize", src, "--party", "brand", "--secret-file", secret_file,
               "--id", "email=email", "--attr", column, "--out", tmp_path / "t.parquet")
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"error: {src}, column {column!r}: attribute columns hold "
                                f"plain values (text, numbers, dates, true/false), not {typ}")


def test_an_unwritable_out_is_one_line(tmp_path, runner, secret_file):
    src = tmp_path / "crm.csv"
    src.write_text("email\na@example.com\n")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "t.parquet"
    r = runner("tokenize", src, "--party", "brand", "--secret-file", secret_file,
               "--id", "email=email", "--out", out)
    assert r.exit_code == 1
    assert r.stderr.strip().startswith(f"error: {out}: cannot create its folder")
    json.dumps(r.stderr)  # one plain line
