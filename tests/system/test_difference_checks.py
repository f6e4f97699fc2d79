"""Difference checks through the command line and the public API, on the demo collaboration:
the differencing attacks of issue 13 are withheld in either order — through SQL and through
`overlap --by` — and so is the re-upload variant (the airline drops one customer, tokenizes
again and asks again); the demo's dashboards are still answered, also when asked twice.

The truth (who is behind each answer) is read by the operator's raw DuckDB connection over the
analyst tables, never by an analyst: it only checks that each attack really isolates 1 to
minimum−1 people, and that no two ANSWERED rows differ by that few.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _demo import fresh_copy
from conftest import invoke_cli

import cleanroom
import normalize
from cleanroom.config import read_toml, write_toml

MIN = 50  # the airline's minimum (the brand's is 25): the highest wins
JOIN = "FROM airline a JOIN brand b ON a.entity_id = b.entity_id"
EXTRA = ("grp2", "grp", "flag")  # the airline's added columns for the `overlap --by` attacks


def _tokenize(csv: Path, secret: Path, out: Path, attrs: tuple[str, ...]) -> None:
    """The airline tokenizes (again) as in the demo, with the given attribute columns."""
    args: list[Any] = ["tokenize", csv, "--party", "airline", "--secret-file", secret,
                       "--id", "email=email", "--id", "phone=phone", "--match-key",
                       "name_dob=first_name:first_name+last_name:last_name+dob:dob"]
    for a in attrs:
        args += ["--attr", a]
    r = invoke_cli(*args, "--profile", "strict", "--region", "US", "--out", out)
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="session")
def demo(demo_run: Path) -> Path:
    return demo_run


_fresh = fresh_copy


@pytest.fixture
def collab(demo: Path, tmp_path: Path) -> Path:
    return _fresh(demo, tmp_path)


class Truth:
    """Operator's truth: the entities behind `... JOIN ... WHERE ...`, on one connection."""

    def __init__(self, collab: Path) -> None:
        self.room = cleanroom.open_collaboration(collab, difference_checks=False)
        self.con = self.room.analyst_connection()

    def __enter__(self) -> Truth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()
        self.room.close()

    def groups(self, where: str, group: str) -> dict[tuple[Any, ...], frozenset[int]]:
        rows = self.con.execute(f"SELECT {group}, list(DISTINCT a.entity_id) {JOIN} "
                                f"WHERE {where} GROUP BY ALL").fetchall()
        return {tuple(r[:-1]): frozenset(r[-1]) for r in rows}

    def one(self, where: str) -> frozenset[int]:
        row = self.con.execute(f"SELECT list(DISTINCT a.entity_id) {JOIN} WHERE {where}"
                               ).fetchone()
        return frozenset(row[0] or []) if row else frozenset()


def one(collab: Path, where: str) -> frozenset[int]:
    with Truth(collab) as truth:
        return truth.one(where)


def ask(collab: Path, where: str) -> dict[str, Any]:
    """The airline's SQL: people and brand spend WHERE `where`, through the CLI (--json)."""
    r = invoke_cli("query", collab, "--as", "airline", "--json", "--sql",
                   f"SELECT COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS spend "
                   f"{JOIN} WHERE {where}")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def overlap(collab: Path, *args: str) -> dict[str, Any]:
    r = invoke_cli("overlap", collab, "--as", "airline", "--json", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def last_audit(collab: Path) -> dict[str, Any]:
    return json.loads((collab.parent / "audit.jsonl").read_text().splitlines()[-1])


def withheld(doc: dict[str, Any]) -> int:
    return int(doc["privacy"]["difference_check"]["suppressed"])


# -- SQL ----------------------------------------------------------------------------------
UNION = "a.tier IN ('Basic', 'Platinum') AND b.category = 'Apparel'"
BASIC = "a.tier = 'Basic' AND b.category = 'Apparel'"


@pytest.mark.parametrize("union_first", [True, False])
def test_subset_attack_through_sql_is_withheld_in_either_order(collab, union_first):
    apart = one(collab, UNION) ^ one(collab, BASIC)
    assert 1 <= len(apart) < MIN  # the withheld Platinum x Apparel cell
    first, second = (UNION, BASIC) if union_first else (BASIC, UNION)
    assert len(ask(collab, first)["rows"]) == 1
    answer = ask(collab, second)
    assert answer["rows"] == [] and withheld(answer) == 1
    entry = last_audit(collab)
    assert (entry["rule"], entry["difference_suppressed"]) == ("difference_check", 1)


def _or_victim_airport(collab: Path) -> str:
    """A home airport whose Platinum Apparel buyers are 1..MIN−1 people."""
    with Truth(collab) as truth:
        platinum = truth.groups("a.tier = 'Platinum' AND b.category = 'Apparel'",
                                "a.home_airport")
    return next(k[0] for k, v in sorted(platinum.items(), key=lambda kv: (len(kv[1]), kv[0]))
                if k[0] is not None)


@pytest.mark.parametrize("victims_first", [True, False])
def test_or_victim_attack_is_withheld_in_either_order(collab, victims_first):
    airport = _or_victim_airport(collab)
    with_victims = (f"(a.tier = 'Basic' OR (a.tier = 'Platinum' AND a.home_airport = "
                    f"'{airport}')) AND b.category = 'Apparel'")
    assert 1 <= len(one(collab, with_victims) ^ one(collab, BASIC)) < MIN
    first, second = (with_victims, BASIC) if victims_first else (BASIC, with_victims)
    assert len(ask(collab, first)["rows"]) == 1
    assert ask(collab, second)["rows"] == []


def _victims(collab: Path, count: int) -> list[tuple[int, str]]:
    """(miles_flown, home_airport) pairs that each single out one Basic Apparel buyer."""
    found = []
    with Truth(collab) as truth:
        everyone = truth.one(BASIC)
        groups = truth.groups(BASIC, "a.miles_flown, a.home_airport")
        for (miles, airport), who in sorted(groups.items(), key=lambda kv: str(kv[0])):
            rest = truth.one(f"{BASIC} AND NOT (a.miles_flown = {miles} AND "
                             f"a.home_airport = '{airport}')")
            if len(who) == 1 and len(everyone - rest) == 1:
                found.append((miles, airport))
            if len(found) == count:
                return found
    raise AssertionError("not enough single-person victims in the demo data")


@pytest.mark.parametrize(("total_first", "count"), [(True, 20), (False, 6)])
def test_not_per_victim_attack_reveals_no_one(collab, total_first, count):
    """The airline adds miles_flown to its own dimensions, then asks one NOT (...) query per
    victim: total minus each answer would be that victim's exact spend."""
    policy_path = collab.parent / "airline.policy.toml"
    policy = read_toml(str(policy_path))
    policy["dimension_columns"] = [*policy["dimension_columns"], "miles_flown"]
    policy["aggregate_columns"] = [{"columns": ["miles_flown"], "functions": ["SUM", "AVG"]}]
    write_toml(policy_path, policy)
    victims = _victims(collab, count)
    queries = [f"{BASIC} AND NOT (a.miles_flown = {m} AND a.home_airport = '{p}')"
               for m, p in victims]
    queries = [BASIC, *queries] if total_first else [*queries, BASIC]
    answered: list[str] = []
    with cleanroom.open_collaboration(collab) as room:
        for where in queries:
            got = cleanroom.run_query(room, "airline", "SELECT COUNT(DISTINCT a.entity_id), "
                                      f"SUM(b.spend) {JOIN} WHERE {where}")
            if got.rows:
                answered.append(where)
    assert answered == queries[:1]  # the first question only; every later one is withheld
    with Truth(collab) as truth:  # and each withheld one would have singled out a victim
        first = truth.one(queries[0])
        assert all(1 <= len(first ^ truth.one(w)) <= 2 for w in queries[1:])


# -- overlap --by -------------------------------------------------------------------------
def _apparel_members(demo: Path, tier: str) -> list[int]:
    """Rows of the airline's file, of `tier`, whose email is also an Apparel buyer's."""
    airline = pd.read_csv(demo / "airline" / "airline.csv", dtype=str, keep_default_na=False)
    brand = pd.read_csv(demo / "brand" / "brand.csv", dtype=str, keep_default_na=False)

    bought = set(brand.loc[brand["category"] == "Apparel", "email"].map(_email).dropna())
    mine = airline["email"].map(_email)
    return airline.index[(airline["tier"] == tier) & mine.notna() & mine.isin(bought)].tolist()


def _email(value: str) -> str | None:
    try:
        return normalize.email(value, profile="strict") or None
    except normalize.InvalidIdentifier:
        return None


@pytest.fixture(scope="module")
def regrouped(demo: Path, tmp_path_factory) -> Path:
    """The demo after the airline re-uploaded its table with three columns of its own:
    `grp2` (Basic and Platinum together), `grp` (Basic, plus Platinum at one airport) and
    `flag` (one Basic Apparel buyer), added to its dimensions."""
    tmp = tmp_path_factory.mktemp("regrouped")
    collab = _fresh(demo, tmp)
    airport = _or_victim_airport(collab)
    csv = pd.read_csv(demo / "airline" / "airline.csv", dtype=str, keep_default_na=False)
    csv["grp2"] = csv["tier"].where(~csv["tier"].isin(["Basic", "Platinum"]), "BP")
    csv["grp"] = "B"
    csv.loc[(csv["tier"] == "Basic") | ((csv["tier"] == "Platinum")
                                       & (csv["home_airport"] == airport)), "grp"] = "A"
    edited = tmp / "airline.csv"
    policy_path = collab.parent / "airline.policy.toml"
    policy = read_toml(str(policy_path))
    policy["dimension_columns"] = [*policy["dimension_columns"], *EXTRA]
    write_toml(policy_path, policy)
    for row in _apparel_members(demo, "Basic")[:10]:  # one buyer without a twin profile
        csv["flag"] = "y"
        csv.loc[row, "flag"] = "x"
        csv.to_csv(edited, index=False)
        _tokenize(edited, demo / "airline" / "secret.json",
                  collab.parent / "airline.tokens.parquet",
                  ("tier", "home_airport", "country", "miles_flown", *EXTRA))
        with Truth(collab) as truth:
            rest = truth.one("a.flag = 'y' AND b.category = 'Apparel'")
            if len(truth.one("b.category = 'Apparel'") - rest) == 1:
                return collab
    raise AssertionError("no single flagged Apparel buyer found")


def _cells(doc: dict[str, Any], *dims: str) -> dict[tuple[Any, ...], int]:
    return {tuple(s[d] for d in dims): s["entities"] for s in doc["segments"]}


@pytest.mark.parametrize("coarse_first", [True, False])
@pytest.mark.parametrize(("column", "value", "other"), [
    ("grp2", "BP", ["--by", "airline.tier"]),   # Basic ∪ Platinum vs Basic
    ("grp", "A", ["--by", "airline.tier"]),     # Basic ∪ (Platinum at one airport) vs Basic
    ("flag", "y", []),                          # everyone but one (NOT per victim) vs all
])
def test_attacks_through_overlap_by_are_withheld(regrouped, tmp_path, coarse_first, column,
                                                 value, other):
    collab = _fresh(regrouped.parent.parent, tmp_path)
    spend = ["--by", "brand.category", "--metric", "SUM(brand.spend)"]
    mine = ["--by", f"airline.{column}", *spend]
    theirs = [*other, *spend]
    attack = one(collab, f"a.{column} = '{value}' AND b.category = 'Apparel'")
    honest = one(collab, ("a.tier = 'Basic' AND " if other else "") + "b.category = 'Apparel'")
    assert 1 <= len(attack ^ honest) < MIN
    keys = (f"airline.{column}", "brand.category")
    honest_key = (("Basic", "Apparel") if other else ("Apparel",))
    honest_dims = ("airline.tier", "brand.category") if other else ("brand.category",)
    if coarse_first:
        assert _cells(overlap(collab, *mine), *keys).get((value, "Apparel"))
        second = overlap(collab, *theirs)
        assert honest_key not in _cells(second, *honest_dims)
    else:
        assert _cells(overlap(collab, *theirs), *honest_dims).get(honest_key)
        second = overlap(collab, *mine)
        assert (value, "Apparel") not in _cells(second, *keys)
    assert withheld(second) >= 1
    assert last_audit(collab)["rule"] == "difference_check"


def test_a_question_asked_again_in_one_room_reuses_its_people_and_still_guards(
        regrouped, tmp_path, monkeypatch):
    """A long-lived room (the server's) answers a repeated question without listing its
    people again: the same sets are checked and remembered, so the answer is the same and
    an attack that follows is still withheld."""
    from cleanroom.engine import _analyses

    collab = _fresh(regrouped.parent.parent, tmp_path)
    listed: list[bool] = []
    real = _analyses.segments_with_people

    def spy(*args: Any, **kwargs: Any) -> Any:
        listed.append(bool(kwargs.get("people")))
        return real(*args, **kwargs)

    monkeypatch.setattr(_analyses, "segments_with_people", spy)
    honest = {"by": ["airline.tier", "brand.category"], "metrics": ["SUM(brand.spend)"]}
    with cleanroom.open_collaboration(collab) as room:
        first = room.overlap("airline", **honest).to_dict()
        again = room.overlap("airline", **honest).to_dict()
        assert listed == [True, False]
        assert again["segments"] == first["segments"] and withheld(again) == 0
        room.people_index().forget_answers()  # then the people are listed again
        assert room.overlap("airline", **honest).to_dict()["segments"] == first["segments"]
        assert listed == [True, False, True]
        assert ("Basic", "Apparel") in _cells(again, "airline.tier", "brand.category")
        attack = room.overlap("airline", by=["airline.grp2", "brand.category"],
                              metrics=["SUM(brand.spend)"]).to_dict()
    assert ("BP", "Apparel") not in _cells(attack, "airline.grp2", "brand.category")
    assert withheld(attack) >= 1
    assert last_audit(collab)["rule"] == "difference_check"


# -- re-upload ----------------------------------------------------------------------------
def test_reupload_without_one_customer_is_withheld(demo, tmp_path):
    """The airline drops one member who buys Apparel, tokenizes again, re-uploads (its file's
    rows reshuffled, all ids re-resolved) and asks the same questions again."""
    collab = _fresh(demo, tmp_path)
    sql = f"SELECT COUNT(DISTINCT a.entity_id), SUM(b.spend) {JOIN} WHERE {BASIC}"
    by = ["--by", "airline.tier", "--by", "brand.category", "--metric", "SUM(brand.spend)"]
    before = _cells(overlap(collab, *by), "airline.tier", "brand.category")
    assert ("Basic", "Apparel") in before
    assert len(json.loads(invoke_cli("query", collab, "--as", "airline", "--json", "--sql",
                                     sql).stdout)["rows"]) == 1
    csv = pd.read_csv(demo / "airline" / "airline.csv", dtype=str, keep_default_na=False)
    edited = tmp_path / "airline.csv"
    for row in _apparel_members(demo, "Basic")[:10]:
        csv.drop(index=row).to_csv(edited, index=False)
        _tokenize(edited, demo / "airline" / "secret.json",
                  collab.parent / "airline.tokens.parquet",
                  ("tier", "home_airport", "country", "miles_flown"))
        after = _cells(_truth_cells(collab), "airline.tier", "brand.category")
        if after.get(("Basic", "Apparel")) == before[("Basic", "Apparel")] - 1:
            break
    else:
        raise AssertionError("no member found whose removal changes Basic x Apparel by one")
    again = overlap(collab, *by)
    assert ("Basic", "Apparel") not in _cells(again, "airline.tier", "brand.category")
    assert again["overlap"] == {}  # the overlap lost one person too: withheld
    assert withheld(again) >= 2
    assert json.loads(invoke_cli("query", collab, "--as", "airline", "--json", "--sql",
                                 sql).stdout)["rows"] == []


def _truth_cells(collab: Path) -> dict[str, Any]:
    """Threshold-only answer (no checks, nothing remembered) for the operator's truth."""
    with cleanroom.open_collaboration(collab, difference_checks=False) as room:
        return room.overlap("airline", by=["airline.tier", "brand.category"]).to_dict()


# -- what still works ---------------------------------------------------------------------
DASHBOARDS: list[tuple[list[str], list[str]]] = [
    ([], []),
    (["airline.tier"], []),
    (["brand.category"], []),
    (["airline.tier", "brand.category"], ["SUM(brand.spend)"]),
]


def test_dashboards_are_still_answered_also_twice(collab):
    with cleanroom.open_collaboration(collab, difference_checks=False) as room:
        plain = [room.overlap("airline", by=by, metrics=m).to_dict() for by, m in DASHBOARDS]
    for _ in range(2):
        for (by, metrics), reference in zip(DASHBOARDS, plain, strict=True):
            args = [a for d in by for a in ("--by", d)] + \
                [a for m in metrics for a in ("--metric", m)]
            doc = overlap(collab, *args)
            assert withheld(doc) == 0
            assert doc["segments"] == reference["segments"]
            assert doc["overlap"] == reference["overlap"] != {}
            assert doc["links_by_rule"] == reference["links_by_rule"]
    sql = (f"SELECT a.tier, b.category, COUNT(DISTINCT a.entity_id) AS people, "
           f"SUM(b.spend) AS spend {JOIN} GROUP BY ALL")
    for _ in range(2):
        answer = json.loads(invoke_cli("query", collab, "--as", "airline", "--json", "--sql",
                                       sql).stdout)
        assert withheld(answer) == 0 and len(answer["rows"]) == len(plain[3]["segments"])
