"""People semantics: each record of a table counts at most once in each output row, whatever
the other side's duplicates, so analyst SQL and the built-in analyses give the same COUNT, SUM
and AVG for the same question. Checked against pandas computed per person on generated data
where many people have several records on both sides, and on the demo."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from _engine_fixtures import write_party
from conftest import collaboration_doc, policy_doc, write_collaboration

import cleanroom

TIERS = ("gold", "silver", "blue")
SEGMENTS = ("sports", "travel")
MINIMUM = 5


def _people(seed: int = 11) -> tuple[list[dict], list[dict]]:
    """200 people in both tables with 1-3 airline and 1-3 brand records each (emails differ
    per record, all carry the person's phone), plus people on one side only."""
    rnd = random.Random(seed)
    airline, brand = [], []
    for p in range(260):
        phone = f"+1650555{p:04d}"
        if p < 230:
            for k in range(rnd.choice((1, 1, 2, 3))):
                airline.append({"email": f"p{p}.a{k}@example.com", "phone": phone,
                                "tier": rnd.choice(TIERS), "miles": rnd.randrange(100, 9000),
                                "person": p})
        if p >= 30:
            for k in range(rnd.choice((1, 2, 2, 3))):
                brand.append({"email": f"p{p}.b{k}@example.com", "phone": phone,
                              "segment": rnd.choice(SEGMENTS),
                              "spend": round(rnd.uniform(1, 500), 2), "person": p})
    return airline, brand


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    d: Path = tmp_path_factory.mktemp("people")
    airline, brand = _people()
    kinds = ("email", "phone")
    write_party(d / "airline.tokens.parquet", "airline", airline, kinds=kinds, seed=1,
                attributes={"tier": pa.string(), "miles": pa.int64()})
    write_party(d / "brand.tokens.parquet", "brand", brand, kinds=kinds, seed=2,
                attributes={"segment": pa.string(), "spend": pa.float64()})
    joins = list(kinds)
    path = write_collaboration(d, collaboration_doc(
        "6f1c2a9e-0d5b-4f7e-9a51-2c4d8e7b1f03", members={"airline": (True, True),
                                                         "brand": (False, True)},
        tables={"airline": "airline", "brand": "brand"}, rules=joins, cap=5), {
        "airline": policy_doc(joins, dimensions=["tier"], aggregates={"miles": ["SUM", "AVG"]},
                              minimum=MINIMUM),
        "brand": policy_doc(joins, dimensions=["segment"],
                            aggregates={"spend": ["SUM", "AVG", "COUNT"]}, minimum=MINIMUM)})
    with cleanroom.open_collaboration(path) as r:
        yield r, airline, brand


def _truth(airline: list[dict], brand: list[dict]) -> pd.DataFrame:
    """Per (tier, segment): people with an airline record of that tier and a brand record of
    that segment; each such brand record's spend once, each such airline record's miles once."""
    a, b = pd.DataFrame(airline), pd.DataFrame(brand)
    rows = []
    for tier in TIERS:
        for seg in SEGMENTS:
            who = set(a[a.tier == tier].person) & set(b[b.segment == seg].person)
            if len(who) < MINIMUM:
                continue
            br = b[(b.segment == seg) & b.person.isin(who)]
            ar = a[(a.tier == tier) & a.person.isin(who)]
            rows.append({"tier": tier, "segment": seg, "people": len(who),
                         "spend": br.spend.sum(), "avg_spend": br.spend.mean(),
                         "spend_rows": len(br), "miles": int(ar.miles.sum())})
    return pd.DataFrame(rows).set_index(["tier", "segment"]).sort_index()


def test_many_multi_record_people(room):
    r, airline, brand = room
    a, b = pd.DataFrame(airline), pd.DataFrame(brand)
    assert (a.groupby("person").size() > 1).sum() > 50
    assert (b.groupby("person").size() > 1).sum() > 80


def test_sql_counts_each_record_once_as_pandas_does_per_person(room):
    r, airline, brand = room
    truth = _truth(airline, brand)
    got = cleanroom.run_query(r, "airline", """
        SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS spend,
               AVG(b.spend) AS avg_spend, COUNT(b.spend) AS spend_rows, SUM(a.miles) AS miles
        FROM airline a JOIN brand b ON a.entity_id = b.entity_id
        GROUP BY a.tier, b.segment""")
    df = pd.DataFrame(got.rows, columns=got.columns).set_index(["tier", "segment"]).sort_index()
    assert list(df.index) == list(truth.index)
    assert (df.people == truth.people).all() and (df.spend_rows == truth.spend_rows).all()
    assert (df.miles == truth.miles).all()
    assert ((df.spend - truth.spend).abs() < 1e-6).all()
    assert ((df.avg_spend - truth.avg_spend).abs() < 1e-9).all()


def test_sql_and_the_built_in_analysis_give_the_same_numbers(room):
    r, airline, brand = room
    seg = r.overlap("airline", by=["airline.tier", "brand.segment"],
                    metrics=["SUM(brand.spend)", "AVG(brand.spend)", "SUM(airline.miles)"])
    got = cleanroom.run_query(r, "airline", """
        SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS s,
               AVG(b.spend) AS av, SUM(a.miles) AS m
        FROM airline a JOIN brand b ON a.entity_id = b.entity_id GROUP BY 1, 2""")
    sql = {(t, s): (n, sp, av, m) for t, s, n, sp, av, m in got.rows}
    assert len(seg.segments) == len(sql) > 0
    for row in seg.segments:
        n, sp, av, m = sql[(row["airline.tier"], row["brand.segment"])]
        assert row["entities"] == n and row["SUM(airline.miles)"] == m
        assert abs(float(row["SUM(brand.spend)"]) - float(sp)) < 1e-6
        assert abs(float(row["AVG(brand.spend)"]) - float(av)) < 1e-9


def test_the_demo_grid_is_the_same_through_sql_and_overlap(tmp_path, runner):
    out = tmp_path / "demo"
    assert runner("demo", "--rows", 8000, "--out", out, "--json").exit_code == 0
    collab = out / "cleanroom" / "collaboration.toml"
    ov = runner("overlap", collab, "--as", "airline", "--by", "airline.tier",
                "--by", "brand.category", "--metric", "SUM(brand.spend)", "--json")
    assert ov.exit_code == 0, ov.output
    cells = {(s["airline.tier"], s["brand.category"]): s
             for s in json.loads(ov.stdout)["segments"]}
    q = runner("query", collab, "--as", "airline", "--json", "--sql",
               "SELECT a.tier, b.category, COUNT(DISTINCT a.entity_id) AS people, "
               "SUM(b.spend) AS spend FROM airline a JOIN brand b ON a.entity_id = b.entity_id "
               "GROUP BY 1, 2")
    assert q.exit_code == 0, q.output
    rows = json.loads(q.stdout)["rows"]
    assert len(rows) == len(cells) > 0
    for tier, cat, people, spend in rows:
        cell = cells[(tier, cat)]
        assert cell["entities"] == people
        assert abs(cell["SUM(brand.spend)"] - spend) < 1e-6 * max(1.0, abs(spend))
