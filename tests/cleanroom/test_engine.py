"""Ground-truth scenarios for the engine: exact overlap counts, multi-key links, over-shared
tokens, thresholds, refusals, manifest mismatches, analyst views."""

from __future__ import annotations

import duckdb
import pytest
from _engine_fixtures import (
    AIRLINE_ATTRS,
    BRAND_ATTRS,
    write_collab,
    write_party,
)

import cleanroom
from cleanroom import ManifestMismatch, PolicyRefusal


def person(i: int) -> dict:
    return {"email": f"person{i}@example.com", "phone": f"+1650555{i:04d}",
            "name_dob": f"person {i}|1980-01-01"}


def scenario() -> tuple[list[dict], list[dict]]:
    """Airline and brand records with a known truth (see the numbers in the tests)."""
    airline, brand = [], []
    for i in range(30):  # O1: linked by email
        p = person(i)
        airline.append({"email": p["email"], "phone": p["phone"],
                        "tier": "gold" if i < 15 else "silver", "home_airport": "SFO",
                        "miles": 10})
        brand.append({"email": p["email"], "segment": "sports", "spend": 1.5})
    for i in range(30, 40):  # O2: linked by phone only
        p = person(i)
        airline.append({"email": p["email"], "phone": p["phone"], "tier": "gold",
                        "home_airport": "JFK", "miles": 10})
        brand.append({"phone": p["phone"], "segment": "travel", "spend": 2.0})
    for i in range(40, 45):  # M: email on one airline row, phone on another; brand has both
        p = person(i)
        airline.append({"email": p["email"], "tier": "silver", "home_airport": "SFO",
                        "miles": 10})
        airline.append({"phone": p["phone"], "tier": "silver", "home_airport": "SFO",
                        "miles": 10})
        brand.append({"email": p["email"], "phone": p["phone"], "segment": "travel",
                      "spend": 2.0})
    for i in range(100, 140):  # airline only
        p = person(i)
        airline.append({"email": p["email"], "phone": p["phone"], "tier": "blue",
                        "home_airport": "LAX", "miles": 10})
    for i in range(200, 220):  # brand only
        brand.append({"email": person(i)["email"], "segment": "sports", "spend": 1.0})
    for i in range(300, 306):  # strangers sharing a call-centre phone
        airline.append({"email": person(i)["email"], "phone": "+18005550100", "tier": "blue",
                        "home_airport": "LAX", "miles": 10})
    brand.append({"email": person(306)["email"], "phone": "+18005550100", "segment": "sports",
                  "spend": 1.0})
    return airline, brand


@pytest.fixture
def collab(tmp_path):
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS, seed=1)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS,
                seed=2)
    return write_collab(tmp_path)


def test_overlap_counts_exact(collab):
    with cleanroom.open_collaboration(collab) as room:
        r = room.overlap("airline")
    assert r.tables == {"airline": {"rows": 96, "entities": 91},
                        "brand": {"rows": 66, "entities": 66}}
    assert r.overlap == {"entities": 45}
    assert r.match_rate == {"airline": round(45 / 91, 6), "brand": round(45 / 66, 6)}
    # Multi-key entities are linked first by email (priority), O2 by phone.
    assert r.links_by_rule == {"email": 35, "phone": 10}
    assert r.threshold == 2 and r.segments == []


def test_over_shared_token_is_ignored_and_counted(collab):
    with cleanroom.open_collaboration(collab) as room:
        res = room.resolution()
    assert res.ignored_tokens["phone"] == {"tokens": 1, "records": 7}
    assert res.ignored_tokens["email"] == {"tokens": 0, "records": 0}
    # Six strangers stay six airline entities (91 = 30 + 10 + 5 + 40 + 6).
    assert res.tables["airline"]["entities"] == 91


def test_multi_key_links_resolve_to_one_entity(collab):
    with cleanroom.open_collaboration(collab) as room:
        con = room.analyst_connection()
        per_entity = con.execute(
            "SELECT a.entity_id, count(*) FROM airline a JOIN brand b USING (entity_id) "
            "WHERE a.tier = 'silver' AND b.segment = 'travel' GROUP BY 1").fetchall()
    assert len(per_entity) == 5 and all(n == 2 for _, n in per_entity)


def test_segments_and_metrics(collab):
    with cleanroom.open_collaboration(collab) as room:
        r = room.overlap("airline", by=["airline.tier", "brand.segment"],
                         metrics=["SUM(airline.miles)", "COUNT(brand.spend)"])
    assert r.segments == [
        {"airline.tier": "gold", "brand.segment": "sports", "entities": 15,
         "SUM(airline.miles)": 150, "COUNT(brand.spend)": 15},
        {"airline.tier": "gold", "brand.segment": "travel", "entities": 10,
         "SUM(airline.miles)": 100, "COUNT(brand.spend)": 10},
        {"airline.tier": "silver", "brand.segment": "sports", "entities": 15,
         "SUM(airline.miles)": 150, "COUNT(brand.spend)": 15},
        # 5 people with two airline profiles each: miles of both profiles, one brand row each.
        {"airline.tier": "silver", "brand.segment": "travel", "entities": 5,
         "SUM(airline.miles)": 100, "COUNT(brand.spend)": 5},
    ]


def test_segments_below_minimum_disappear(tmp_path):
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS)
    path = write_collab(tmp_path, min_a=5, min_b=21)  # the highest minimum wins
    with cleanroom.open_collaboration(path, difference_checks=False) as room:
        r = room.overlap("airline", by=["airline.tier"], metrics=["AVG(airline.miles)"])
        entries = room.audit.entries()
    assert r.threshold == 21
    assert r.segments == [{"airline.tier": "gold", "entities": 25, "AVG(airline.miles)": 10.0}]
    assert r.links_by_rule == {"email": 35}
    assert r.overlap == {"entities": 45}
    # silver (20), phone (10) and name_dob (0) were dropped; the audit log says how many.
    assert entries[-1]["rows_suppressed"] == 3
    assert entries[-1]["rows_returned"] == r.rows_returned == 5  # 2 tables, overlap, email, gold
    # With difference checks (the default), email (35) and gold (25) are withheld too: each
    # differs from the overlap (45) by fewer than 21 people (phone's 10, silver's 20).
    with cleanroom.open_collaboration(path) as room:
        r = room.overlap("airline", by=["airline.tier"], metrics=["AVG(airline.miles)"])
        entry = room.audit.entries()[-1]
    assert r.links_by_rule == {} and r.segments == [] and r.overlap == {"entities": 45}
    assert r.privacy == {"mode": "threshold", "difference_check": {"suppressed": 2}}
    assert (entry["rule"], entry["difference_suppressed"]) == ("difference_check", 2)
    assert entry["rows_suppressed"] == 5 and entry["rows_returned"] == 3


def test_overall_counts_are_thresholded_too(tmp_path):
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand[:3], attributes=BRAND_ATTRS)
    path = write_collab(tmp_path, min_a=5)
    with cleanroom.open_collaboration(path) as room:
        r = room.overlap("airline")
    assert r.overlap == {} and r.match_rate == {} and r.links_by_rule == {}
    assert set(r.tables) == {"airline"}


@pytest.mark.parametrize(
    "member, rule",
    [("brand", "can_query"), ("agency", "can_receive_results"), ("hotel", "members")],
)
def test_refused_members(collab, member, rule):
    with cleanroom.open_collaboration(collab) as room:
        with pytest.raises(PolicyRefusal) as info:
            room.overlap(member)
        assert info.value.rule == rule
        entries = room.audit.entries()
    if rule == "members":  # a name that is not a member is refused before anything is logged
        assert entries == []
        return
    last = entries[-1]
    assert last["decision"] == "refused" and last["rule"] == rule and last["member"] == member


def test_join_required_refuses_member_owning_no_table(collab):
    text = collab.read_text().replace("can_query = true\ncan_receive_results = false",
                                      "can_query = true\ncan_receive_results = true")
    collab.write_text(text)
    policy = collab.parent / "airline.policy.toml"
    policy.write_text(policy.read_text().replace('["airline", "brand"]',
                                                 '["airline", "brand", "agency"]'))
    with cleanroom.open_collaboration(collab) as room:
        with pytest.raises(PolicyRefusal, match="rule join_required"):
            room.overlap("agency")


@pytest.mark.parametrize(
    "by, metrics, rule",
    [
        (["airline.email"], [], "join_columns"),
        (["airline.miles"], [], "dimension_columns"),
        (["airline"], [], "dimension_columns"),
        ([], ["MAX(airline.miles)"], "aggregate_columns"),
        ([], ["COUNT(airline.miles)"], "aggregate_columns"),
        ([], ["SUM(brand.segment)"], "aggregate_columns"),
    ],
)
def test_disallowed_requests_name_the_rule(collab, by, metrics, rule):
    with cleanroom.open_collaboration(collab) as room:
        with pytest.raises(PolicyRefusal) as info:
            room.overlap("airline", by=by, metrics=metrics)
    assert info.value.rule == rule


def test_mismatched_secret_refused(tmp_path):
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS,
                secret=b"t" * 32)
    path = write_collab(tmp_path)
    with pytest.raises(ManifestMismatch, match=r"brand\.tokens\.parquet was made with a "
                                               r"different secret .*\(fingerprint \w{4}… ≠ "):
        cleanroom.open_collaboration(path)


def test_mismatched_collaboration_refused(tmp_path):
    airline, brand = scenario()
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS,
                collaboration_id="11111111-2222-3333-4444-555555555555")
    path = write_collab(tmp_path)
    with pytest.raises(ManifestMismatch, match=r"brand\.tokens\.parquet was made for another "
                                               r"collaboration \(id 11111111… ≠ 6f1c2a9e…"):
        cleanroom.open_collaboration(path)


def test_analyst_connection_exposes_no_tokens_and_no_files(collab):
    with cleanroom.open_collaboration(collab) as room:
        con = room.analyst_connection()
        cols = {t: [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()]
                for t in ("airline", "brand")}
        # entity_id, the policy's columns, and the hidden record id the planner counts records
        # by (people semantics), which no analyst can name
        assert cols == {"airline": ["entity_id", "tier", "home_airport", "miles", "_cr_rid"],
                        "brand": ["entity_id", "segment", "spend", "_cr_rid"]}
        with pytest.raises(PolicyRefusal) as refused:
            cleanroom.run_query(room, "airline", "SELECT a._cr_rid, COUNT(*) FROM airline a "
                                "JOIN brand b ON a.entity_id = b.entity_id GROUP BY 1")
        assert refused.value.rule == "unknown_column"
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_parquet(?)",
                        [str(room.collaboration.tables["airline"].tokens)])
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        assert room.effective_minimum(["airline", "brand"]) == 2
        # Entity ids: unlinked records get their own ids, distinct from every other.
        assert con.execute("SELECT count(DISTINCT entity_id) FROM airline").fetchone()[0] == 91
        assert con.execute("SELECT count(DISTINCT entity_id) FROM (SELECT entity_id FROM "
                           "airline UNION ALL SELECT entity_id FROM brand)").fetchone()[0] \
            == 91 + 66 - 45


def test_resolution_is_cached_by_content(collab):
    with cleanroom.open_collaboration(collab) as room:
        first = room.resolution()
    assert not first.from_cache
    with cleanroom.open_collaboration(collab) as room:
        again = room.resolution()
    assert again.from_cache and again == first
    airline, _ = scenario()
    write_party(collab.parent / "airline.tokens.parquet", "airline", airline[:-6],
                attributes=AIRLINE_ATTRS, seed=1)
    with cleanroom.open_collaboration(collab) as room:
        changed = room.resolution()
    assert not changed.from_cache and changed.tables["airline"]["rows"] == 90
    assert len(list(first.path.parent.glob("resolution-*.parquet"))) == 1


def test_segments_equal_pandas_reference(tmp_path):
    """Random tiers per profile (people in several segments), duplicate profiles on both
    sides: segment counts and metrics equal a pandas computation over the analyst tables."""
    import random

    import pandas as pd

    rnd = random.Random(5)
    airline, brand = [], []
    for i in range(400):
        p = person(i)
        for _ in range(rnd.choice([1, 1, 2])):
            if i < 300:
                airline.append({"email": p["email"], "tier": rnd.choice(["gold", "blue", None]),
                                "home_airport": rnd.choice(["SFO", "JFK"]),
                                "miles": rnd.randrange(1000)})
        for _ in range(rnd.choice([1, 2])):
            if i >= 100:
                brand.append({"email": p["email"], "segment": rnd.choice(["a", "b", "c"]),
                              "spend": float(rnd.randrange(100))})
    write_party(tmp_path / "airline.tokens.parquet", "airline", airline,
                attributes=AIRLINE_ATTRS)
    write_party(tmp_path / "brand.tokens.parquet", "brand", brand, attributes=BRAND_ATTRS)
    path = write_collab(tmp_path, min_a=3, min_b=3)
    with cleanroom.open_collaboration(path) as room:
        got = room.overlap("airline", by=["airline.tier", "brand.segment"],
                           metrics=["SUM(airline.miles)", "AVG(airline.miles)",
                                    "SUM(brand.spend)"]).segments
        con = room.analyst_connection()
        a, b = con.execute("SELECT * FROM airline").df(), con.execute("SELECT * FROM brand").df()
    both = set(a.entity_id) & set(b.entity_id)
    a, b = a[a.entity_id.isin(both)], b[b.entity_id.isin(both)]
    seg = a[["entity_id", "tier"]].merge(b[["entity_id", "segment"]], on="entity_id")
    seg = seg.drop_duplicates()
    want = []
    for (tier, segment), g in seg.groupby(["tier", "segment"], dropna=False):
        tier = None if pd.isna(tier) else tier
        ents = set(g.entity_id)
        if len(ents) < 3:
            continue
        same_tier = a.tier.isna() if tier is None else a.tier == tier
        miles = a[a.entity_id.isin(ents) & same_tier].miles
        spend = b[b.entity_id.isin(ents) & (b.segment == segment)].spend
        want.append({"airline.tier": tier, "brand.segment": segment, "entities": len(ents),
                     "SUM(airline.miles)": int(miles.sum()),
                     "AVG(airline.miles)": pytest.approx(float(miles.mean())),
                     "SUM(brand.spend)": float(spend.sum())})
    key = lambda r: (r["airline.tier"] is None, r["airline.tier"] or "", r["brand.segment"])  # noqa: E731
    assert len(want) > 6
    assert sorted(got, key=key) == sorted(want, key=key)
