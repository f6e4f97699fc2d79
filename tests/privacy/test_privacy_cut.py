"""The contribution cut cached per resolution gives exactly the rows, and so the figures, of
the reference cut (a window on every read), on the demo's many multi-record people."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import cleanroom
from cleanroom.config import read_toml, write_toml
from cleanroom.engine import _analyses
from cleanroom.engine._privacy import (
    bounded_rows_sql,
    clamps,
    contribution_limit,
    cut_rows_sql,
    dropped_records,
)

BOUNDS = [10, 100]


def differential_demo(demo_run: Path, tmp: Path, limit: int) -> Path:
    """A fresh copy of the demo in differential mode, the brand's spend bounded, both tables
    cut to `limit` records per person."""
    target = tmp / "cleanroom"
    shutil.copytree(demo_run / "cleanroom", target,
                    ignore=shutil.ignore_patterns(".cleanroom-privacy", "audit.jsonl"))
    collab = target / "collaboration.toml"
    doc = read_toml(str(collab))
    doc["privacy"] = {"mode": "differential", "epsilon": 100.0, "epsilon_per_query": 1.0}
    write_toml(collab, doc)
    for name in ("airline", "brand"):
        path = target / f"{name}.policy.toml"
        policy = read_toml(str(path))
        policy["user_contribution_limit"] = limit
        if name == "brand":
            policy["aggregate_columns"][0]["bounds"] = BOUNDS
        write_toml(path, policy)
    return collab


def reference_rows_sql(room, name, columns, *, overlap_only, record_id=None):
    """The reference cut: a window over every read (`bounded_rows_sql`)."""
    p = room.collaboration.tables[name].policy
    raw = room.entity_rows_sql(name, columns, overlap_only=overlap_only, record_id="_cr_rid")
    return bounded_rows_sql(raw, columns=columns, record_id=record_id,
                            limit=contribution_limit(p), clamp=clamps(p, columns),
                            salt=room.privacy.salt())


def rows(room, sql) -> list[tuple]:
    return room.connection.execute(f"SELECT * FROM ({sql.text}) ORDER BY ALL",
                                   sql.params).fetchall()


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cached_cut_gives_the_reference_rows(demo_run, tmp_path, limit):
    collab = differential_demo(demo_run, tmp_path, limit)
    columns = {"airline": ["tier", "miles_flown"], "brand": ["category", "spend"]}
    with cleanroom.open_collaboration(collab) as room:
        for name, cols in columns.items():
            if limit == 1:  # the demo has people with two records in a table
                assert dropped_records(room, name) is not None
            for overlap_only in (True, False):
                for record_id in (None, "_cr_rid"):
                    ref = reference_rows_sql(room, name, cols, overlap_only=overlap_only,
                                        record_id=record_id)
                    fast = cut_rows_sql(room, name, cols, overlap_only=overlap_only,
                                        record_id=record_id)
                    assert "OVER" not in fast.text
                    got, want = rows(room, fast), rows(room, ref)
                    assert got == want and len(got) > 1000
        def most(sql) -> int:
            return room.connection.execute(
                f"SELECT max(n) FROM (SELECT count(*) AS n FROM ({sql.text}) GROUP BY "
                "entity_id)", sql.params).fetchone()[0]

        uncut = most(room.entity_rows_sql("brand", [], overlap_only=False))
        assert uncut >= 2
        assert most(cut_rows_sql(room, "brand", [], overlap_only=False)) == min(limit, uncut)
    with cleanroom.open_collaboration(collab) as room:  # another process reads the same file
        ref = reference_rows_sql(room, "brand", ["spend"], overlap_only=False)
        assert rows(room, cut_rows_sql(room, "brand", ["spend"], overlap_only=False)) \
            == rows(room, ref)


@pytest.mark.parametrize("limit", [1, 2])
@pytest.mark.parametrize("by, metrics", [
    (["airline.tier", "brand.category"], ["SUM(brand.spend)", "AVG(brand.spend)"]),
    (["brand.category"], ["SUM(brand.spend)", "COUNT(brand.spend)"]),
    (["airline.tier"], ["SUM(brand.spend)"]),
    ([], ["AVG(brand.spend)"]),
])
def test_cached_cut_gives_the_reference_segments(demo_run, tmp_path, monkeypatch, limit, by,
                                                 metrics):
    """The true figures that receive noise are the same whichever cut made them."""
    collab = differential_demo(demo_run, tmp_path, limit)
    with cleanroom.open_collaboration(collab) as room:
        dims = [_analyses.Dimension.parse(b) for b in by]
        mets = [_analyses.Metric.parse(m) for m in metrics]
        fast, _ = _analyses.segments_with_people(room, dims, mets, people=False)
        monkeypatch.setattr(room, "rows_sql", lambda name, cols, **kw:
                            reference_rows_sql(room, name, cols, **kw))
        slow, _ = _analyses.segments_with_people(room, dims, mets, people=False)
    # the same segments and counts; float sums to the last bits (their order of addition is
    # DuckDB's, which varies between two runs of one query too)
    assert fast and [{k: v for k, v in r.items() if not isinstance(v, float)} for r in fast] \
        == [{k: v for k, v in r.items() if not isinstance(v, float)} for r in slow]
    assert fast == [{k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v
                     for k, v in r.items()} for r in slow]


def test_no_filter_when_no_one_is_over_the_limit(demo_run, tmp_path):
    collab = differential_demo(demo_run, tmp_path, 1000)
    with cleanroom.open_collaboration(collab) as room:
        assert dropped_records(room, "brand") is None
        fast = cut_rows_sql(room, "brand", ["spend"], overlap_only=True)
        assert "NOT IN" not in fast.text
        assert rows(room, fast) == rows(room, reference_rows_sql(room, "brand", ["spend"],
                                                            overlap_only=True))
    cuts = collab.parent / ".cleanroom-privacy" / "cuts"
    assert all(p.stat().st_mode & 0o077 == 0 for p in cuts.rglob("*.parquet"))


def test_analyst_sql_reads_the_cached_cut(demo_run, tmp_path):
    """Analyst SQL (`rows_sql`, the analyses' source too) reads the cut listed once per
    resolution: the same rows as the reference window, and no window in its text."""
    collab = differential_demo(demo_run, tmp_path, 1)
    with cleanroom.open_collaboration(collab) as room:
        sql = room.rows_sql("brand", ["spend"], overlap_only=False, record_id="rid")
        assert "NOT IN" in sql.text and " OVER (" not in sql.text
        assert rows(room, sql) == rows(room, reference_rows_sql(
            room, "brand", ["spend"], overlap_only=False, record_id="rid"))
