"""CLI of the engine through CliRunner: exit codes, exact error lines, JSON keys."""

from __future__ import annotations

import json

import pytest
from _engine_fixtures import AIRLINE_ATTRS, BRAND_ATTRS, write_collab, write_party
from click.testing import CliRunner
from test_engine import scenario

from cleanroom.cli import main


@pytest.fixture
def collab(tmp_path):
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS)
    return str(write_collab(tmp_path, min_b=12))


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_overlap_json_keys(collab):
    r = run("overlap", collab, "--as", "airline", "--by", "airline.tier",
            "--metric", "SUM(airline.miles)", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["tables"]["airline"] == {"rows": 96, "entities": 91}
    assert data["overlap"]["entities"] == 45
    assert data["match_rate"]["brand"] == round(45 / 66, 6)
    # phone (10) is below 12; email (35) is withheld by the difference check: its people
    # differ from the overlap's (45) by 10, the people linked by phone
    assert data["links_by_rule"] == {}
    assert data["privacy"] == {"mode": "threshold", "difference_check": {"suppressed": 1}}
    assert data["threshold"] == 12
    assert data["segments"] == [
        {"airline.tier": "gold", "entities": 25, "SUM(airline.miles)": 250},
        {"airline.tier": "silver", "entities": 20, "SUM(airline.miles)": 250},
    ]


def test_overlap_text(collab):
    r = run("overlap", collab, "--as", "airline")
    assert r.exit_code == 0
    assert "overlap: 45 people" in r.output
    assert "airline: 96 records, 91 people, match rate 49.5%" in r.output


@pytest.mark.parametrize("args, line", [
    (["--as", "brand"], "error: refused by rule can_query: member 'brand' may not run queries"),
    (["--as", "airline", "--by", "brand.email"],
     "error: refused by rule join_columns: brand.email is a join column; join columns are "
     "never output"),
    (["--as", "airline", "--metric", "AVG(brand.spend)"],
     "error: refused by rule aggregate_columns: AVG(brand.spend) is not allowed on table "
     "'brand' (allowed on spend: SUM, COUNT)"),
])
def test_refusals_exit_3_with_one_line(collab, args, line):
    r = run("overlap", collab, *args)
    assert r.exit_code == 3
    assert r.stderr.strip() == line


def test_bad_metric_syntax_is_usage_error(collab):
    r = run("overlap", collab, "--as", "airline", "--metric", "SUM(miles")
    assert r.exit_code == 2 and "is not FUNC(TABLE.COLUMN)" in r.stderr


def test_policy_check(collab, tmp_path):
    r = run("policy", "check", collab)
    assert r.exit_code == 0
    assert "valid." in r.output
    assert "at least 12 distinct people" in r.output
    assert "member 'brand' may not run queries (rule can_query)" in r.output
    data = json.loads(run("policy", "check", collab, "--json").stdout)
    assert data["valid"] and data["joint_minimum"] == 12
    assert data["tables"]["airline"]["aggregate_columns"] == {"miles": ["SUM", "AVG"]}


def test_policy_check_names_file_key_reason(collab, tmp_path):
    p = tmp_path / "brand.policy.toml"
    p.write_text(p.read_text().replace("minimum = 12", "minimum = 1"))
    r = run("policy", "check", collab)
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"error: {p}: output_constraints: minimum must be an integer "
                                "from 2 to 100000, not 1")
    assert "Traceback" not in r.output


def test_mismatch_exit_1(collab, tmp_path):
    _, brand = scenario()
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS,
                secret=b"x" * 32)
    r = run("overlap", collab, "--as", "airline")
    assert r.exit_code == 1
    assert r.stderr.startswith("error: brand.tokens.parquet was made with a different secret "
                               "than airline.tokens.parquet (fingerprint ")


def test_audit_show_and_verify_catch_tampering(collab, tmp_path):
    run("overlap", collab, "--as", "airline")
    run("overlap", collab, "--as", "brand")
    run("overlap", collab, "--as", "airline", "--by", "airline.tier")
    shown = json.loads(run("audit", "show", collab, "--json").stdout)
    assert [e["decision"] for e in shown] == ["accepted", "refused", "accepted"]
    assert shown[1]["rule"] == "can_query"
    text = run("audit", "show", collab).output
    assert "brand overlap -> refused (can_query)" in text
    ok = run("audit", "verify", collab)
    assert ok.exit_code == 0 and ok.output.startswith("audit log OK: 3 entries")
    log = tmp_path / "audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")
    bad = run("audit", "verify", collab)
    assert bad.exit_code == 1
    assert bad.stderr.strip() == ("error: audit.jsonl: line 2: entry out of sequence (seq 2, "
                                  "expected 1): deleted or reordered")


def test_no_identifier_or_token_in_outputs(collab, tmp_path):
    outs = [run("overlap", collab, "--as", "airline", "--by", "airline.tier", "--json").output,
            run("policy", "check", collab, "--json").output,
            run("audit", "show", collab, "--json").output,
            (tmp_path / "audit.jsonl").read_text()]
    for out in outs:
        assert "@example.com" not in out and "+1650555" not in out
