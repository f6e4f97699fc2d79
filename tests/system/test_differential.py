"""Differential mode through the command line and the public API: the budget is spent before
anything is computed and never overspent (also by 8 racing processes, also when one dies
mid-answer), what noise cannot serve is refused by name, every figure states its noise, the
stated intervals hold, and the attacks of issue 13 no longer give a withheld cell exactly."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import pytest
from _demo import fresh_copy
from _engine_fixtures import AIRLINE_ATTRS, BRAND_ATTRS, write_collab, write_party
from conftest import invoke_cli
from test_engine import scenario

import cleanroom
from cleanroom.config import read_toml, write_toml

JOIN = "FROM airline a JOIN brand b ON a.entity_id = b.entity_id"
SPEND_BY_TIER = (f"SELECT a.tier, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS "
                 f"spend, AVG(b.spend) AS avg_spend {JOIN} GROUP BY 1 ORDER BY 1")


def differential(collab: Path, epsilon: float, per_query: float) -> Path:
    """Turn a collaboration to differential mode; the brand bounds its spend to [0, 2000]."""
    doc = read_toml(str(collab))
    doc["privacy"] = {"mode": "differential", "epsilon": epsilon, "epsilon_per_query": per_query}
    write_toml(collab, doc)
    policy_path = collab.parent / "brand.policy.toml"
    policy = read_toml(str(policy_path))
    for entry in policy["aggregate_columns"]:
        if "spend" in entry["columns"]:
            entry["bounds"] = [0, 2000]
    write_toml(policy_path, policy)
    return collab


@pytest.fixture
def demo(demo_run: Path, tmp_path: Path) -> Path:
    """The demo collaboration in differential mode, ε = 10, 0.5 per query."""
    return differential(fresh_copy(demo_run, tmp_path), 10.0, 0.5)


def cli(*args: Any) -> Any:
    return invoke_cli(*[str(a) for a in args])


def budget(collab: Path) -> dict[str, Any]:
    r = cli("budget", collab, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def audit(collab: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (collab.parent / "audit.jsonl").read_text().splitlines()]


# -- the budget ---------------------------------------------------------------------------
def test_budget_is_spent_per_answer_and_never_overspent(demo_run, tmp_path):
    collab = differential(fresh_copy(demo_run, tmp_path), 2.0, 0.5)  # four answers
    assert budget(collab) == {"mode": "differential", "epsilon": 2.0, "spent": 0.0,
                              "remaining": 2.0, "queries": 0, "epsilon_per_query": 0.5,
                              "queries_remaining": 4}
    asked = [("overlap", collab, "--as", "airline", "--json"),
             ("overlap", collab, "--as", "airline", "--by", "brand.category", "--json"),
             ("query", collab, "--as", "airline", "--json", "--sql", SPEND_BY_TIER),
             ("overlap", collab, "--as", "airline", "--metric", "AVG(brand.spend)", "--json")]
    for args in asked:
        r = cli(*args)
        assert r.exit_code == 0, r.output
    r = cli("query", collab, "--as", "airline", "--sql", SPEND_BY_TIER)
    assert r.exit_code == 3
    assert r.stderr.strip() == ("error: refused by rule privacy_budget: this query needs "
                                "ε=0.5 but only 0 of the collaboration's ε=2 remains")
    assert budget(collab) | {"epsilon_per_query": 0.5} == {
        "mode": "differential", "epsilon": 2.0, "spent": 2.0, "remaining": 0.0, "queries": 4,
        "epsilon_per_query": 0.5, "queries_remaining": 0}
    entries = audit(collab)
    assert [(e["decision"], e["rule"]) for e in entries] == \
        [("accepted", "differential_privacy")] * 4 + [("refused", "privacy_budget")]
    assert [e.get("epsilon") for e in entries[:4]] == [0.5] * 4
    assert [e.get("budget_spent") for e in entries[:4]] == [0.5, 1.0, 1.5, 2.0]
    r = cli("budget", collab)
    assert "2 spent by 4 queries, 0 remaining" in r.output


def test_refusals_name_the_rule_and_spend_nothing(demo):
    attempts = {
        "dp_unsupported": f"SELECT MAX(b.spend) {JOIN}",
        "dp_bounds": f"SELECT SUM(a.miles_flown) {JOIN}",
    }
    for rule, sql in attempts.items():
        r = cli("query", demo, "--as", "airline", "--sql", sql)
        assert r.exit_code == 3 and f"refused by rule {rule}:" in r.stderr, r.output
    r = cli("overlap", demo, "--as", "airline", "--metric", "SUM(airline.miles_flown)")
    assert r.exit_code == 3 and "refused by rule dp_bounds:" in r.stderr
    assert budget(demo)["spent"] == 0.0
    assert {e["rule"] for e in audit(demo)} == {"dp_unsupported", "dp_bounds"}


def test_count_distinct_of_a_column_is_refused_even_when_the_policy_allows_it(demo):
    path = demo.parent / "brand.policy.toml"
    policy = read_toml(str(path))
    policy["aggregate_columns"][0]["functions"].append("COUNT_DISTINCT")
    write_toml(path, policy)
    r = cli("query", demo, "--as", "airline", "--sql", f"SELECT COUNT(DISTINCT b.spend) {JOIN}")
    assert r.exit_code == 3 and "refused by rule dp_unsupported:" in r.stderr
    assert budget(demo)["spent"] == 0.0


def _race(path: str, results: Any) -> None:  # pragma: no cover - runs in a child process
    try:
        cleanroom.run_query(path, "airline", SPEND_BY_TIER)
        results.put("answered")
    except cleanroom.PolicyRefusal as exc:
        results.put(exc.rule)


def test_eight_racing_processes_against_a_budget_for_four_answer_exactly_four(demo_run,
                                                                              tmp_path):
    collab = differential(fresh_copy(demo_run, tmp_path), 2.0, 0.5)
    with cleanroom.open_collaboration(collab) as room:
        room.resolution()  # resolved once, so the race is about the budget only
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(collab), results)) for _ in range(8)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert outcomes == ["answered"] * 4 + ["privacy_budget"] * 4
    assert budget(collab)["spent"] == 2.0 and budget(collab)["queries"] == 4


def _die_after_charging(path: str) -> None:  # pragma: no cover - runs in a child process
    from cleanroom.analyst import _run

    def crash(*args: Any, **kwargs: Any) -> Any:
        os._exit(9)  # killed between spending ε and answering

    _run.execute_checked = crash  # type: ignore[assignment]
    cleanroom.run_query(path, "airline", SPEND_BY_TIER)


def test_a_process_killed_after_charging_leaves_the_budget_charged(demo):
    proc = mp.get_context("fork").Process(target=_die_after_charging, args=(str(demo),))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 9
    assert budget(demo)["spent"] == 0.5 and budget(demo)["queries"] == 1
    assert not (demo.parent / "audit.jsonl").exists() or \
        all(e["decision"] != "accepted" for e in audit(demo))


# -- what an answer says ------------------------------------------------------------------
def test_every_figure_states_its_noise(demo):
    r = cli("query", demo, "--as", "airline", "--json", "--sql", SPEND_BY_TIER)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["privacy"]["mode"] == "differential" and doc["privacy"]["epsilon"] == 0.5
    assert doc["rows"] and len(doc["noise"]) == len(doc["rows"])
    for row, noise in zip(doc["rows"], doc["noise"], strict=True):
        assert noise[0] is None  # the tier: a group key, not a figure
        for value, said in zip(row[1:], noise[1:], strict=True):
            assert said["ci95_low"] <= value <= said["ci95_high"] and said["scale"] > 0
        assert [n["mechanism"] for n in noise[1:]] == ["discrete_laplace", "laplace",
                                                       "laplace_ratio"]
    text = cli("query", demo, "--as", "airline", "--sql", SPEND_BY_TIER).output
    assert " ± " in text and "differential privacy: ε = 0.5 spent" in text
    by = cli("overlap", demo, "--as", "airline", "--by", "airline.tier", "--by",
             "brand.category", "--metric", "SUM(brand.spend)", "--json")
    doc = json.loads(by.stdout)
    assert set(doc["noise"]) >= {"tables.airline.entities", "overlap.entities"}
    assert "rows" not in doc["tables"]["airline"]  # record counts are not released
    for seg in doc["segments"]:
        assert set(seg["noise"]) == {"entities", "SUM(brand.spend)"}
        assert seg["entities"] >= doc["threshold"]  # the minimum applies after the noise
    text = cli("overlap", demo, "--as", "airline", "--by", "airline.tier").output
    assert "overlap: " in text and " ± " in text


def test_the_report_shows_intervals_and_the_budget(demo, tmp_path):
    out = tmp_path / "report.html"
    r = cli("report", demo, "--as", "airline", "--out", out)
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert " ± " in page and 'aria-label="privacy budget"' in page
    assert "ε spent <strong>1</strong> of 10" in page  # the report's two analyses
    assert budget(demo)["queries"] == 2


def test_attacks_no_longer_give_a_withheld_cell_exactly(demo):
    """Basic ∪ Platinum minus Basic used to give the withheld Platinum x Apparel cell (its
    people and spend) exactly; now both answers are noisy and the difference is not it."""
    with cleanroom.open_collaboration(demo) as room:
        con = room.analyst_connection()  # the operator's truth (the room's cut, no noise)
        truth = con.execute(f"SELECT COUNT(DISTINCT a.entity_id), SUM(b.spend) {JOIN} WHERE "
                            "a.tier = 'Platinum' AND b.category = 'Apparel'").fetchone()
        con.close()
    assert truth is not None and 0 < truth[0] < 50
    answers = []
    for tiers in ("'Basic', 'Platinum'", "'Basic'"):
        doc = json.loads(cli("query", demo, "--as", "airline", "--json", "--sql",
                             f"SELECT COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS "
                             f"spend {JOIN} WHERE a.tier IN ({tiers}) AND "
                             "b.category = 'Apparel'").stdout)
        assert len(doc["rows"]) == 1  # no difference check here: the noise protects
        answers.append(doc)
    spend = answers[0]["rows"][0][1] - answers[1]["rows"][0][1]
    assert spend != truth[1]
    noise = answers[0]["noise"][0][1]
    assert noise["mechanism"] == "laplace" and noise["scale"] >= 2000  # ≥ one person's max


# -- the intervals hold -------------------------------------------------------------------
def test_stated_intervals_cover_the_truth(tmp_path):
    """60 overlaps on a small collaboration: the overlap's stated 95% interval covers the
    true count in at least 45 of them (P(fewer) < 1e-6), and the mean is within six standard
    errors of the truth."""
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS)
    collab = write_collab(tmp_path, min_a=2, min_b=2)
    with cleanroom.open_collaboration(collab) as room:
        truth = room.resolution().overlap_entities
    doc = read_toml(str(collab))
    doc["privacy"] = {"mode": "differential", "epsilon": 1000.0, "epsilon_per_query": 1.5}
    write_toml(collab, doc)
    values, covered, scale = [], 0, 0.0
    with cleanroom.open_collaboration(collab) as room:
        for _ in range(60):
            got = room.overlap("airline").to_dict()
            if not got["overlap"]:
                values.append(0)  # below the minimum after noise: counts as far off
                continue
            said = got["noise"]["overlap.entities"]
            scale = said["scale"]
            values.append(got["overlap"]["entities"])
            covered += said["ci95_low"] <= truth <= said["ci95_high"]
    assert scale == pytest.approx(2.0)  # ε 1.5 over three measurements: 1 / 0.5
    assert covered >= 45
    mean = sum(values) / len(values)
    assert abs(mean - truth) <= 6 * (2 ** 0.5 * scale) / len(values) ** 0.5


@pytest.mark.parametrize("limit", [1, 2])
def test_contributions_are_cut_and_clamped_before_aggregation(demo, limit):
    path = demo.parent / "brand.policy.toml"
    policy = read_toml(str(path))
    policy["user_contribution_limit"] = limit
    policy["aggregate_columns"][0]["bounds"] = [10, 100]
    write_toml(path, policy)
    with cleanroom.open_collaboration(demo) as room:
        con = room.analyst_connection()
        most, lo, hi, people = con.execute(
            "SELECT max(n), min(lo), max(hi), count(*) FROM (SELECT entity_id, count(*) AS n, "
            "min(spend) AS lo, max(spend) AS hi FROM brand GROUP BY entity_id)").fetchone()
        again = con.execute("SELECT list(_cr_rid ORDER BY _cr_rid) FROM brand").fetchone()
        con.close()
        con = room.analyst_connection()  # the same records are kept every time
        assert con.execute("SELECT list(_cr_rid ORDER BY _cr_rid) FROM brand").fetchone() \
            == again
        con.close()
    assert most == limit and lo >= 10 and hi <= 100 and people > 5_000
