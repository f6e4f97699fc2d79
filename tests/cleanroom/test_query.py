"""Analyst SQL end to end: legitimate queries checked against ground truth from known people,
the threshold enforced by the engine whatever the SQL says, the list rule, the audit log, CLI.

Also the home of `build_collaboration`, the fixture the adversarial suite uses.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest
from _engine_fixtures import COLLAB_ID, write_party
from click.testing import CliRunner
from conftest import collaboration_doc, policy_doc, write_collaboration

import cleanroom
from cleanroom import PolicyRefusal, run_query
from cleanroom.cli import main
from cleanroom.config import write_toml

KINDS = ("email", "phone")
ATTRS_A = {"tier": pa.string(), "home_airport": pa.string(), "birth_year": pa.int64(),
           "miles": pa.int64()}
ATTRS_B = {"segment": pa.string(), "spend": pa.float64()}
MIN_A, MIN_B = 5, 8
SCALARS = ["UPPER", "LOWER", "ROUND", "CAST", "COALESCE", "SUBSTRING"]

AIRLINE_POLICY = policy_doc(
    list(KINDS), dimensions=["tier", "home_airport", "birth_year"],
    aggregates={"miles": ["SUM", "AVG"]}, minimum=MIN_A, join_required="query_runner",
    scalar_functions=SCALARS, disallowed_output_columns=["birth_year"],
    allowed_result_receivers=["airline", "brand"])
BRAND_POLICY = policy_doc(
    list(KINDS), dimensions=["segment"], aggregates={"spend": ["SUM", "AVG", "COUNT"]},
    minimum=MIN_B, scalar_functions=["UPPER", "ROUND"])
AIRLINE_LIST = policy_doc(list(KINDS), rule="list", list_columns=["tier"])
BRAND_LIST = policy_doc(list(KINDS), rule="list", list_columns=["segment"])
COLLAB = collaboration_doc(
    COLLAB_ID, members={"airline": (True, True), "brand": (False, True), "agency": (True, True)},
    tables={"airline": "airline", "brand": "brand"}, rules=list(KINDS))


def people() -> tuple[list[dict], list[dict]]:
    """Known people: airline has P0..P119 (P61, P62 twice), brand P60..P149; 60 overlap.

    Airports: SFO P0..P59, JFK P60..P110, BOS P111..P116 (six people: above airline's minimum
    of 5, below brand's 8), OAK P117..P119 (three people: below any minimum).
    Brand segments: sports (even) / travel (odd) for P60..P139, golf for P140..P149 (brand
    only, so never among matched entities).
    """
    airline, brand = [], []
    for i in range(120):
        rec = {"email": f"person{i}@example.com", "phone": f"+1650555{i:04d}",
               "tier": ("gold", "silver", "blue")[i % 3],
               "home_airport": "SFO" if i < 60 else "JFK" if i < 111 else "BOS" if i < 117
               else "OAK",
               "birth_year": 1960 + i % 40, "miles": 100 * (i % 7 + 1), "person": i}
        if i in (61, 62):  # the same person twice: email on one row, phone on the other
            airline.append({**rec, "phone": None})
            airline.append({**rec, "email": None})
        else:
            airline.append(rec)
    for i in range(60, 150):
        brand.append({"email": f"person{i}@example.com", "phone": f"+1650555{i:04d}",
                      "segment": "golf" if i >= 140 else ("sports", "travel")[i % 2],
                      "spend": float(10 + i % 5), "person": i})
    return airline, brand


def build_collaboration(d: Path, *, rule: str = "aggregation") -> Path:
    """Token files of `people()`, both policies and the collaboration file in `d`."""
    airline, brand = people()
    write_party(d / "airline.tokens.parquet", "airline", airline, attributes=ATTRS_A,
                kinds=KINDS, seed=1)
    write_party(d / "brand.tokens.parquet", "brand", brand, attributes=ATTRS_B, kinds=KINDS,
                seed=2)
    agg = rule == "aggregation"
    return write_collaboration(d, COLLAB, {"airline": AIRLINE_POLICY if agg else AIRLINE_LIST,
                                           "brand": BRAND_POLICY if agg else BRAND_LIST})


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    # These tests pin the checker, the threshold and people semantics over many overlapping
    # queries on one collaboration; difference checks (on by default, which would withhold
    # some of those rows) are tested in tests/system/test_difference_checks.py.
    path = build_collaboration(tmp_path_factory.mktemp("query"))
    with cleanroom.open_collaboration(path, difference_checks=False) as r:
        yield r


@pytest.fixture(scope="module")
def list_room(tmp_path_factory):
    path = build_collaboration(tmp_path_factory.mktemp("list"), rule="list")
    with cleanroom.open_collaboration(path) as r:
        yield r


def truth_joined(min_people: int, key) -> dict:
    """Ground truth over matched people: key -> (people, sum of spend over brand records,
    airline records). People semantics: each record counts once per output row, however many
    records of the same person the other table holds (COUNT(*) counts the first table's)."""
    airline, brand = people()
    a_by = {r["person"]: r for r in airline}
    groups: dict = defaultdict(lambda: [set(), 0.0, 0])
    for b in brand:
        a = a_by.get(b["person"])
        if a is None:
            continue
        n_rows = sum(1 for r in airline if r["person"] == b["person"])
        g = groups[key(a, b)]
        g[0].add(b["person"])
        g[1] += b["spend"]  # once, although the join pairs it with each airline record
        g[2] += n_rows
    return {k: (len(v[0]), v[1], v[2]) for k, v in groups.items() if len(v[0]) >= min_people}


def rows(result) -> list[tuple]:
    return [tuple(r) for r in result.rows]


# -- ground truth -------------------------------------------------------------------------
def test_overlap_count_matches_ground_truth(room):
    r = run_query(room, "airline", "SELECT COUNT(DISTINCT a.entity_id) AS people FROM airline a "
                  "JOIN brand b ON a.entity_id = b.entity_id")
    assert r.columns == ("people",) and rows(r) == [(60,)]
    assert r.minimum == MIN_B and r.tables == ("airline", "brand")


def test_segments_by_tier_and_segment(room):
    r = run_query(room, "airline", """
        SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS spend,
               COUNT(*) AS joined_rows
        FROM airline AS a INNER JOIN brand AS b ON b.entity_id = a.entity_id
        GROUP BY a.tier, b.segment ORDER BY a.tier, b.segment""")
    truth = truth_joined(MIN_B, lambda a, b: (a["tier"], b["segment"]))
    expected = [(t, s, n, spend, cnt) for (t, s), (n, spend, cnt) in sorted(truth.items())]
    assert [(t, s, n, float(sp), c) for t, s, n, sp, c in rows(r)] == expected
    assert len(expected) == 6  # 3 tiers x 2 segments of matched people, 10 people each


def test_own_table_alone_rows_versus_people(room):
    r = run_query(room, "airline", "SELECT home_airport, COUNT(*) AS n_rows, "
                  "COUNT(DISTINCT entity_id) AS people, SUM(miles) AS miles FROM airline "
                  "GROUP BY home_airport ORDER BY home_airport")
    airline, _ = people()
    expected = []
    for airport in ("BOS", "JFK", "SFO"):  # OAK has three people: below the minimum of 5
        recs = [x for x in airline if x["home_airport"] == airport]
        expected.append((airport, len(recs), len({x["person"] for x in recs}),
                         sum(x["miles"] for x in recs)))
    assert rows(r) == expected
    last = cleanroom.AuditLog(room.collaboration.audit_log).entries()[-1]
    assert (last["rows_returned"], last["rows_suppressed"]) == (3, 1)  # OAK, in the log only


def test_scalar_functions_where_and_having(room):
    r = run_query(room, "airline", """
        SELECT UPPER(tier) AS t, ROUND(AVG(miles), 1) AS avg_miles
        FROM airline WHERE home_airport = 'SFO' AND birth_year >= 1980
        GROUP BY UPPER(tier) HAVING COUNT(DISTINCT entity_id) >= 5 ORDER BY t""")
    airline, _ = people()
    recs = [x for x in airline if x["home_airport"] == "SFO" and x["birth_year"] >= 1980]
    by: dict = defaultdict(list)
    for x in recs:
        by[x["tier"].upper()].append(x["miles"])
    expected = [(t, round(sum(v) / len(v), 1)) for t, v in sorted(by.items()) if len(v) >= 5]
    assert rows(r) == expected and len(expected) == 3


def test_other_tables_without_join_requirement(room):
    r = run_query(room, "airline", "SELECT segment, COUNT(DISTINCT entity_id) AS people "
                  "FROM brand GROUP BY ALL ORDER BY 2 DESC, 1")
    assert rows(r) == [("sports", 40), ("travel", 40), ("golf", 10)]


def test_disallowed_output_column_can_filter_but_not_group(room):
    r = run_query(room, "airline", "SELECT COUNT(DISTINCT entity_id) FROM airline "
                  "WHERE birth_year < 1970")
    airline, _ = people()
    assert rows(r) == [(len({x["person"] for x in airline if x["birth_year"] < 1970}),)]
    with pytest.raises(PolicyRefusal) as e:
        run_query(room, "airline", "SELECT birth_year, COUNT(*) FROM airline GROUP BY 1")
    assert e.value.rule == "disallowed_output_column"


# -- the threshold holds whatever the SQL says -------------------------------------------
@pytest.mark.parametrize("sql", [
    "SELECT home_airport, COUNT(*) FROM airline GROUP BY home_airport HAVING COUNT(*) < 5",
    "SELECT home_airport, COUNT(DISTINCT entity_id) AS n FROM airline GROUP BY 1 "
    "ORDER BY n ASC LIMIT 1 OFFSET 2",
    "SELECT COUNT(*) FROM airline WHERE home_airport = 'OAK'",
    "SELECT home_airport, SUM(miles) FROM airline GROUP BY home_airport "
    "HAVING SUM(miles) * 0 + COUNT(*) = 3",
    # an error for the small group only would answer a question about it: TRY() absorbs it
    "SELECT home_airport, COUNT(*) FROM airline GROUP BY 1 HAVING 1 / (COUNT(*) - 3) > 0",
    "SELECT home_airport, CAST(SUM(miles) / (COUNT(*) - 3) AS INTEGER) FROM airline "
    "GROUP BY 1 HAVING home_airport = 'OAK'",
    "SELECT COUNT(*) FROM airline WHERE CAST(home_airport AS INTEGER) = 1",
])
def test_small_groups_never_surface(room, sql):
    r = run_query(room, "airline", sql)
    assert all("OAK" not in r for r in rows(r))
    assert rows(r) == [] or all(c not in ((3,), 3) for row in rows(r) for c in row[1:])


def test_order_by_limit_sees_only_groups_above_minimum(room):
    r = run_query(room, "airline", "SELECT home_airport, COUNT(DISTINCT entity_id) AS n "
                  "FROM airline GROUP BY 1 ORDER BY n ASC LIMIT 1")
    assert rows(r) == [("BOS", 6)]


def test_most_restrictive_minimum_applies(room):
    # BOS has 6 matched people: enough for airline's minimum (5), not for brand's (8).
    alone = run_query(room, "airline", "SELECT home_airport, COUNT(DISTINCT entity_id) "
                      "FROM airline GROUP BY 1 ORDER BY 1")
    assert [r[0] for r in rows(alone)] == ["BOS", "JFK", "SFO"]
    joined = run_query(room, "airline", "SELECT a.home_airport, COUNT(DISTINCT b.entity_id) "
                       "FROM airline a JOIN brand b ON a.entity_id = b.entity_id GROUP BY 1")
    assert rows(joined) == [("JFK", 51)] and joined.minimum == MIN_B
    truth = truth_joined(MIN_B, lambda a, b: (a["tier"], b["segment"], a["home_airport"]))
    r = run_query(room, "airline", "SELECT a.tier, b.segment, a.home_airport, "
                  "COUNT(DISTINCT a.entity_id) FROM airline a JOIN brand b "
                  "ON a.entity_id = b.entity_id GROUP BY 1, 2, 3")
    assert sorted(rows(r)) == sorted((*k, v[0]) for k, v in truth.items())


# -- list rule ----------------------------------------------------------------------------
def test_list_rule_lists_matched_entities_only(list_room):
    r = run_query(list_room, "airline", "SELECT DISTINCT b.segment FROM airline a "
                  "JOIN brand b ON a.entity_id = b.entity_id ORDER BY 1")
    assert r.kind == "list" and rows(r) == [("sports",), ("travel",)]  # never golf
    r = run_query(list_room, "airline", "SELECT DISTINCT a.tier, b.segment AS seg FROM airline a"
                  " JOIN brand b ON a.entity_id = b.entity_id WHERE b.segment <> 'sports'")
    assert r.columns == ("tier", "seg")
    assert sorted(rows(r)) == [("blue", "travel"), ("gold", "travel"), ("silver", "travel")]


@pytest.mark.parametrize("sql,rule", [
    ("SELECT b.segment FROM airline a JOIN brand b ON a.entity_id = b.entity_id",
     "list_distinct"),
    ("SELECT DISTINCT segment FROM brand", "join_required"),
    ("SELECT DISTINCT b.segment, COUNT(*) FROM airline a JOIN brand b "
     "ON a.entity_id = b.entity_id GROUP BY 1", "list_aggregate"),
    ("SELECT DISTINCT a.entity_id FROM airline a JOIN brand b ON a.entity_id = b.entity_id",
     "entity_id"),
    ("SELECT DISTINCT b.email FROM airline a JOIN brand b ON a.entity_id = b.entity_id",
     "token_column"),
    ("SELECT DISTINCT UPPER(b.segment) FROM airline a JOIN brand b "
     "ON a.entity_id = b.entity_id", "scalar_function"),
    ("SELECT DISTINCT b.segment FROM airline a LEFT JOIN brand b "
     "ON a.entity_id = b.entity_id", "join_type"),
])
def test_list_rule_refusals(list_room, sql, rule):
    with pytest.raises(PolicyRefusal) as e:
        run_query(list_room, "airline", sql)
    assert rule in e.value.rules


def test_mixed_rules_refused(tmp_path):
    path = build_collaboration(tmp_path)
    write_toml(tmp_path / "brand.policy.toml", BRAND_LIST)
    with pytest.raises(PolicyRefusal) as e:
        run_query(path, "airline", "SELECT DISTINCT b.segment FROM airline a JOIN brand b "
                  "ON a.entity_id = b.entity_id")
    assert e.value.rule == "mixed_rules"


# -- members ------------------------------------------------------------------------------
def test_member_rights(room):
    with pytest.raises(PolicyRefusal) as e:
        run_query(room, "brand", "SELECT COUNT(*) FROM brand")
    assert e.value.rule == "can_query"
    with pytest.raises(PolicyRefusal) as e:  # agency owns no table; airline requires a join
        run_query(room, "agency", "SELECT COUNT(*) FROM airline")
    assert e.value.rule == "join_required"
    with pytest.raises(PolicyRefusal) as e:  # airline's receivers exclude agency
        run_query(room, "agency", "SELECT COUNT(*) FROM airline a JOIN brand b "
                  "ON a.entity_id = b.entity_id")
    assert e.value.rule in ("join_required", "allowed_result_receivers")
    assert rows(run_query(room, "agency", "SELECT COUNT(DISTINCT entity_id) FROM brand")) \
        == [(90,)]


# -- audit --------------------------------------------------------------------------------
def test_every_query_is_audited_without_identifiers(tmp_path):
    path = build_collaboration(tmp_path)
    run_query(path, "airline", "SELECT COUNT(*) FROM airline WHERE tier = 'gold'")
    with pytest.raises(PolicyRefusal):
        run_query(path, "airline", "SELECT COUNT(*) FROM airline a JOIN brand b "
                  "ON a.email = b.email WHERE a.tier = 'person7@example.com'")
    with pytest.raises(PolicyRefusal):
        run_query(path, "airline", "PRAGMA version")
    with pytest.raises(PolicyRefusal):
        run_query(path, "jane.doe@example.com", "SELECT COUNT(*) FROM airline")
    log = cleanroom.AuditLog(tmp_path / "audit.jsonl")
    log.verify()
    entries = log.entries()
    # a name that is not a member is refused before anything is logged under it
    assert [(e["decision"], e["rule"]) for e in entries] == [
        ("accepted", "aggregation_threshold"), ("refused", "join_condition"),
        ("refused", "single_select")]
    assert entries[0]["rows_returned"] == 1 and entries[0]["request"]["tables"] == ["airline"]
    assert entries[1]["request"]["rules"] == ["join_condition", "token_column"]
    text = (tmp_path / "audit.jsonl").read_text()
    assert "example.com" not in text and "gold" not in text
    assert "SELECT" in entries[0]["request"]["sql"]


# -- CLI ----------------------------------------------------------------------------------
def test_cli_json_csv_and_table(room):
    path = str(room.collaboration.path)
    sql = "SELECT segment, COUNT(DISTINCT entity_id) AS people FROM brand GROUP BY 1 ORDER BY 1"
    res = CliRunner().invoke(main, ["query", path, "--as", "airline", "--sql", sql, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {
        "columns": ["segment", "people"], "rows": [["golf", 10], ["sports", 40], ["travel", 40]],
        "privacy": {"mode": "threshold", "difference_check": {"suppressed": 0}}}
    res = CliRunner().invoke(main, ["query", path, "--as", "airline", "--sql", sql, "--csv"])
    assert res.output == "segment,people\ngolf,10\nsports,40\ntravel,40\n"
    res = CliRunner().invoke(main, ["query", path, "--as", "airline", "--sql", sql])
    assert res.exit_code == 0 and "sports" in res.output and "(3 rows)" in res.output


def test_cli_sql_file_and_refusal_line(room, tmp_path):
    path = str(room.collaboration.path)
    f = tmp_path / "q.sql"
    f.write_text("SELECT entity_id FROM airline")
    res = CliRunner().invoke(main, ["query", path, "--as", "airline", "--sql-file", str(f)])
    assert res.exit_code == 3
    lines = res.stderr.strip().splitlines() if hasattr(res, "stderr") else res.output
    assert len(lines) == 1 and lines[0].startswith("error: refused by rule entity_id:")
    res = CliRunner().invoke(main, ["query", path, "--as", "airline"])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["query", path, "--as", "airline", "--sql-file",
                                    str(tmp_path / "missing.sql")])
    assert res.exit_code == 1 and "missing.sql: file not found" in res.output
