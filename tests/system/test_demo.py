"""`cleanroom demo` end to end on a small synthetic collaboration, and the README walk-through."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cleanroom.cli import main

ROWS = 600
STEPS = [
    "Each party exports its customers",
    "X25519 key pair",
    "same collaboration secret",
    "tokenizes locally",
    "policy are written down",
    "rules in plain words",
    "measures the overlap",
    "overlap by tier × category",
    "asks in SQL",
    "verify the audit log",
    "report a marketer reads",
    "Score against the ground truth",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = CliRunner().invoke(main, ["demo", "--rows", str(ROWS), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").splitlines()
    return out, result.output, json.loads(lines[-1])


def test_every_step_runs_for_real_and_is_printed_with_its_command(demo):
    out, text, doc = demo
    assert doc["stopped_at"] is None
    assert "not in this build yet" not in text
    for i, step in enumerate(STEPS, start=1):
        assert re.search(rf"^{i}\. .*{re.escape(step)}", text, re.M), step
    for command in ("cleanroom keys pair", "cleanroom keys agree", "cleanroom tokenize",
                    "cleanroom policy check", "cleanroom overlap", "cleanroom query",
                    "cleanroom audit verify", "cleanroom report"):
        assert f"$ {command} " in text, command
    assert "refused (exit 3): refused by rule column_role" in text
    assert "audit log OK" in text
    for name in ("airline/airline.csv", "brand/brand.csv", "cleanroom/collaboration.toml",
                 "cleanroom/airline.tokens.parquet", "cleanroom/brand.tokens.parquet",
                 "cleanroom/audit.jsonl", "report.html"):
        assert (out / name).is_file(), name


def test_headline_numbers_agree_with_the_files_and_the_report(demo):
    out, text, doc = demo
    summary = doc["summary"]
    airline = pd.read_csv(out / "airline" / "airline.csv")
    brand = pd.read_csv(out / "brand" / "brand.csv")
    assert summary["tables"]["airline"]["rows"] == len(airline)
    assert summary["tables"]["brand"]["rows"] == len(brand)
    both = summary["overlap"]["entities"]
    assert summary["match_rate"]["brand"] == pytest.approx(
        both / summary["tables"]["brand"]["entities"], abs=1e-6)
    assert f"{both:,} in both" in text
    page = (out / "report.html").read_text("utf-8")
    assert f"{both:,}" in page and f"{summary['tables']['airline']['entities']:,}" in page


def test_the_matching_is_scored_against_the_ground_truth(demo):
    out, text, doc = demo
    score = doc["score"]
    truth = pd.read_csv(out / "ground_truth" / "truth.csv")
    people = truth.groupby("person_id")["party"].nunique()
    assert score["true_overlap"] == int((people == 2).sum())
    assert score["reported_overlap"] == doc["summary"]["overlap"]["entities"]
    assert score["recall"] > 0.85  # multi-key matching finds most of the true overlap
    assert score["precision"] > 0.97
    assert score["duplicate_people"]["airline"] > 0
    assert score["duplicates_resolved"]["airline"] / score["duplicate_people"]["airline"] > 0.7
    assert "found in both" in text and "false links" in text and "duplicates resolved" in text


def test_nothing_the_clean_room_or_a_reader_sees_holds_a_raw_identifier(demo):
    out, text, _ = demo
    airline = pd.read_csv(out / "airline" / "airline.csv", dtype=str)
    brand = pd.read_csv(out / "brand" / "brand.csv", dtype=str)
    needles = set()
    for frame in (airline, brand):
        needles |= {v.strip() for v in frame["email"].dropna() if "@" in v}
        digits = (re.sub(r"\D", "", v) for v in frame["phone"].dropna())
        needles |= {d for d in digits if len(d) >= 10 and len(set(d)) > 1}  # no placeholders
        needles |= {v.strip() for v in frame["last_name"].dropna() if len(v.strip()) >= 6}
    needles -= {"noemail@noemail.com", "none@none.com", "no.email@example.com", "na@na.com",
                "test@test.com"}
    blobs = [text, (out / "report.html").read_text("utf-8")]
    blobs += [p.read_bytes().decode("latin-1") for p in (out / "cleanroom").rglob("*")
              if p.is_file()]
    for blob in blobs:
        low = blob.lower()
        leaked = [n for n in needles if n.lower() in low]
        assert not leaked[:3]
    secret = json.loads((out / "airline" / "secret.json").read_text())["secret"]
    assert secret not in text


def test_the_demo_reruns_in_its_own_directory_and_refuses_a_foreign_one(demo, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["demo", "--rows", "200", "--out", str(foreign)])
    assert result.exit_code == 1
    assert "exists and is not empty" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"
    out, _, _ = demo  # a second run into the demo's own directory replaces it cleanly
    result = CliRunner().invoke(main, ["demo", "--rows", str(ROWS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "audit log OK: 4 entries" in result.output  # a fresh log, not the previous run's


def test_the_readme_walk_through_matches_what_the_demo_prints(demo):
    _, text, _ = demo
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    printed = [ln.split("$ ", 1)[1] for ln in text.splitlines() if "   $ cleanroom " in ln]
    documented = [ln.strip() for ln in section.splitlines() if ln.strip().startswith("cleanroom ")]
    assert printed == documented


def test_the_readme_shows_the_files_the_demo_writes(demo):
    out, _, _ = demo
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    for name in ("collaboration.toml", "airline.policy.toml", "brand.policy.toml"):
        assert (out / "cleanroom" / name).read_text("utf-8").rstrip() in section, name


def test_a_missing_part_stops_the_walk_through_there_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delitem(main.lazy, "query")
    monkeypatch.delitem(main.commands, "query", raising=False)
    result = CliRunner().invoke(main, ["demo", "--rows", "200", "--out", str(tmp_path / "d"),
                                       "--json"])
    assert result.exit_code == 0, result.output
    assert "`cleanroom query` is not in this build yet: the walk-through stops here" \
        in result.output
    doc = json.loads(result.output.rstrip("\n").splitlines()[-1])
    assert doc["stopped_at"].startswith("An analyst asks in SQL")
    assert doc["report"] is None and doc["summary"]["tables"]  # the steps before did run
    assert "cleanroom audit verify" not in result.output


def test_psi_finds_exactly_what_keyed_tokens_find_on_the_same_keys(tmp_path):
    from cleanroom.cli._walkthrough import (
        PSI_RULES,
        airline_policy,
        brand_policy,
        collaboration_toml,
    )

    out = tmp_path / "psi"
    result = CliRunner().invoke(main, ["demo", "--rows", str(ROWS), "--out", str(out), "--psi",
                                       "--json"])
    assert result.exit_code == 0, result.output
    assert "$ cleanroom psi blind " in result.output and "$ cleanroom psi finish " in result.output
    psi = json.loads(result.output.rstrip("\n").splitlines()[-1])["psi_summary"]
    # the keyed-token files of the same run, matched on the same two keys
    same = tmp_path / "same"
    same.mkdir()
    for party in ("airline", "brand"):
        (same / f"{party}.tokens.parquet").write_bytes(
            (out / "cleanroom" / f"{party}.tokens.parquet").read_bytes())
    cid = json.loads((out / "airline" / "secret.json").read_text())["collaboration_id"]
    (same / "collaboration.toml").write_text(collaboration_toml(cid, PSI_RULES))
    (same / "airline.policy.toml").write_text(airline_policy(PSI_RULES))
    (same / "brand.policy.toml").write_text(brand_policy(PSI_RULES))
    ov = CliRunner().invoke(main, ["overlap", str(same / "collaboration.toml"), "--as",
                                   "airline", "--json"])
    assert ov.exit_code == 0, ov.output
    hmac = json.loads(ov.output)
    for key in ("tables", "overlap", "match_rate", "links_by_rule"):
        assert psi[key] == hmac[key], key
    assert psi["overlap"]["entities"] > 50
