"""Differential test of the one-table segment query (dimensions and metrics all from one
table, one pass) against the general query (distinct entity segments joined back to the
metric table), of the public API against a pandas computation, and of the listing form
(each segment's members, for difference checks) against both."""

from __future__ import annotations

import random

import pytest
from _engine_fixtures import AIRLINE_ATTRS, BRAND_ATTRS, write_collab, write_party

import cleanroom
from cleanroom.engine._analyses import Dimension, Metric, _segments, segments_with_people


def person(i: int) -> dict:
    return {"email": f"person{i}@example.com", "phone": f"+1650555{i:04d}"}


@pytest.fixture
def collab(tmp_path):
    """Duplicate profiles with different values (people in several segments), missing
    dimension and metric values, people on one side only."""
    rnd = random.Random(11)
    airline, brand = [], []
    for i in range(500):
        p = person(i)
        if i < 380:
            for _ in range(rnd.choice([1, 1, 2, 3])):
                airline.append({**p, "tier": rnd.choice(["gold", "blue", "silver", None]),
                                "home_airport": rnd.choice(["SFO", "JFK", None]),
                                "miles": rnd.choice([None, *range(0, 1000, 7)])})
        if i >= 120:
            for _ in range(rnd.choice([1, 2])):
                brand.append({"email": p["email"], "segment": rnd.choice(["a", "b", None]),
                              "spend": rnd.choice([None, 1.25, 2.5, 10.0, 99.75])})
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS, seed=3)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS,
                seed=4)
    return write_collab(tmp_path, min_a=2, min_b=2)


CASES = [
    (["airline.tier"], ["SUM(airline.miles)"]),
    (["airline.tier", "airline.home_airport"], ["SUM(airline.miles)", "AVG(airline.miles)"]),
    (["airline.home_airport", "airline.tier", "airline.home_airport"], []),
    ([], ["SUM(airline.miles)", "AVG(airline.miles)"]),
    (["brand.segment"], ["SUM(brand.spend)", "COUNT(brand.spend)"]),
    ([], ["COUNT(brand.spend)"]),
]


@pytest.mark.parametrize(("by", "metrics"), CASES)
def test_one_table_segments_equal_general_query(collab, by, metrics):
    with cleanroom.open_collaboration(collab) as room:
        dims, mets = [Dimension.parse(b) for b in by], [Metric.parse(m) for m in metrics]
        fast = _segments(room, dims, mets)
        general = _segments(room, dims, mets, fast=False)
    assert len(fast) >= (1 if not by else 3)
    assert [{k: v for k, v in r.items() if not k.startswith(("AVG", "SUM(brand"))}
            for r in fast] == \
        [{k: v for k, v in r.items() if not k.startswith(("AVG", "SUM(brand"))}
         for r in general]
    for f, g in zip(fast, general, strict=True):  # floating-point sums: any order
        for k in f:
            if k.startswith(("AVG", "SUM(brand")):
                assert f[k] == pytest.approx(g[k])


def test_one_table_segments_equal_pandas(collab):
    import pandas as pd

    with cleanroom.open_collaboration(collab) as room:
        got = room.overlap("airline", by=["airline.tier"], metrics=["SUM(airline.miles)"])
        con = room.analyst_connection()
        a, b = con.execute("SELECT * FROM airline").df(), con.execute("SELECT * FROM brand").df()
    a = a[a.entity_id.isin(set(b.entity_id))]
    want = []
    for tier, g in a.groupby("tier", dropna=False):
        want.append({"airline.tier": None if pd.isna(tier) else tier,
                     "entities": g.entity_id.nunique(),
                     "SUM(airline.miles)": int(g.miles.sum())})
    want.sort(key=lambda r: (r["airline.tier"] is None, r["airline.tier"] or ""))
    assert len(want) == 4 and got.segments == want


MIXED = [*CASES, (["airline.tier", "brand.segment"], ["SUM(brand.spend)", "AVG(airline.miles)"]),
         (["brand.segment", "airline.home_airport"], []), ([], ["COUNT(airline.miles)",
                                                                "SUM(brand.spend)"])]


@pytest.mark.parametrize(("by", "metrics"), MIXED)
@pytest.mark.parametrize("fast", [True, False])
def test_listing_gives_the_answer_and_each_segments_members(collab, by, metrics, fast):
    """The listing query (each segment's entity ids beside its figures) answers exactly what
    the plain query answers, in the same order, and a segment's members are the overlapping
    entities whose records carry its values (duplicate profiles in several segments, None)."""
    import pandas as pd

    with cleanroom.open_collaboration(collab) as room:
        dims, mets = [Dimension.parse(b) for b in by], [Metric.parse(m) for m in metrics]
        plain, none = segments_with_people(room, dims, mets, fast=fast, people=False)
        listed, members = segments_with_people(room, dims, mets, fast=fast, people=True)
        con = room.analyst_connection()
        frames = {t: con.execute(f"SELECT * FROM {t}").df() for t in ("airline", "brand")}
    assert none == [] and len(members) == len(listed) == len(plain) >= 1
    assert [{k: v for k, v in r.items() if not k.startswith(("AVG", "SUM"))} for r in listed] \
        == [{k: v for k, v in r.items() if not k.startswith(("AVG", "SUM"))} for r in plain]
    for got, want in zip(listed, plain, strict=True):
        assert all(got[k] == pytest.approx(want[k]) for k in got)
    both = set(frames["airline"].entity_id) & set(frames["brand"].entity_id)
    for row, ids in zip(listed, members, strict=True):
        want = set(both)
        for t, f in frames.items():  # a table's values come from one of its records
            for d in (d for d in dims if d.table == t):
                value = row[str(d)]
                f = f[f[d.column].isna()] if value is None or pd.isna(value) else \
                    f[f[d.column] == value]
            want &= set(f.entity_id)
        assert set(ids.tolist()) == want and len(want) == row["entities"]
