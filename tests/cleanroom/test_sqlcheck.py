"""The SQL checker and the threshold rewrite, apart from the engine: what the checked tree looks
like, that every violation is collected, and — differentially — that the rewritten query
returns exactly what the analyst's SQL returns once groups below the minimum are removed."""

from __future__ import annotations

import random
import tomllib

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_query import AIRLINE_LIST, AIRLINE_POLICY, BRAND_LIST, BRAND_POLICY

from cleanroom import Policy, PolicyRefusal, TableRules, check_sql
from cleanroom.analyst._plan import plan
from cleanroom.analyst._redact import redacted_sql
from cleanroom.analyst._run import execute_checked
from cleanroom.config import toml_text


def _policy(doc: dict) -> Policy:
    """The policy as the engine reads it from the file the one writer writes."""
    return Policy.from_dict(tomllib.loads(toml_text(doc)))


def rules(airline: dict = AIRLINE_POLICY, brand: dict = BRAND_POLICY) -> dict[str, TableRules]:
    return {"airline": TableRules("airline", "airline", _policy(airline)),
            "brand": TableRules("brand", "brand", _policy(brand))}


TABLES = rules()


def refused(sql: str, tables=TABLES, runner: str = "airline") -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as e:
        check_sql(sql, tables, runner)
    return e.value


@pytest.fixture(scope="module")
def con():
    """Plain DuckDB tables shaped like the analyst views (with the record id the planner
    uses), with repeated entities."""
    rnd = random.Random(7)
    c = duckdb.connect()
    names_a = ["entity_id", "tier", "home_airport", "birth_year", "miles"]
    names_b = ["entity_id", "segment", "spend"]
    a = [(rnd.randrange(400), rnd.choice(["gold", "silver", "blue"]),
          rnd.choice(["SFO", "JFK", "BOS", "OAK"] + ["LAX"] * 3), rnd.randrange(1950, 2005),
          rnd.randrange(0, 5000)) for _ in range(900)]
    b = [(rnd.randrange(200, 600), rnd.choice(["sports", "travel", "golf"]),
          round(rnd.uniform(1, 300), 2)) for _ in range(700)]
    for name, cols, recs in (("airline", names_a, a), ("brand", names_b, b)):
        c.register("src", pa.table({n: [r[i] for r in recs] for i, n in enumerate(cols)}))
        c.execute(f"CREATE TABLE {name} AS SELECT *, row_number() OVER () AS _cr_rid FROM src")
        c.unregister("src")
    c.execute("INSERT INTO airline VALUES (9001, 'gold', 'ZRH', 1980, 10, 10001), "
              "(9002, 'gold', 'ZRH', 1980, 10, 10002)")  # a group of two people
    yield c
    c.close()


def test_checked_tree_is_qualified_and_aliases_resolved():
    q = check_sql("SELECT tier AS t, COUNT(*) AS n FROM airline GROUP BY t ORDER BY n DESC, 1",
                  TABLES, "airline")
    assert q.kind == "aggregation" and q.tables == ("airline",) and q.minimum == 5
    assert [g["column_names"] for g in q.groups] == [["airline", "tier"]]
    assert q.orders[0]["expression"]["function_name"] == "count_star"
    assert q.orders[1]["expression"]["column_names"] == ["airline", "tier"]


def test_most_restrictive_minimum_of_the_joined_tables():
    q = check_sql("SELECT COUNT(*) FROM airline a JOIN brand b ON b.entity_id = a.entity_id",
                  TABLES, "airline")
    assert q.minimum == 8 and q.aliases == ("a", "b")


def test_every_violation_is_collected_then_refused_once():
    e = refused("SELECT email, entity_id, LENGTH(tier), MAX(miles), salary FROM airline")
    assert e.rules == ["token_column", "entity_id", "scalar_function", "aggregate_function",
                       "unknown_column", "aggregate_required"]
    assert e.rule == "token_column" and str(e).count("also [") == 5


def test_parse_errors_name_a_position_not_the_text():
    e = refused("SELECT COUNT(*) FROM airline WHERE tier = 'secret@example.com' AND AND")
    assert e.rule == "parse" and "near character" in str(e) and "secret" not in str(e)
    assert refused("   ").rule == "parse"


def test_list_queries_need_list_tables_on_both_sides():
    lists = rules(AIRLINE_POLICY, BRAND_LIST)
    assert refused("SELECT DISTINCT b.segment FROM airline a JOIN brand b "
                   "ON a.entity_id = b.entity_id", lists).rule == "mixed_rules"


def test_plan_filters_before_having_order_and_limit(con):
    q = check_sql("SELECT a.tier, SUM(b.spend) AS s FROM airline a JOIN brand b "
                  "ON a.entity_id = b.entity_id GROUP BY 1 HAVING COUNT(*) > 1 "
                  "ORDER BY s LIMIT 2", TABLES, "airline")
    p = plan(q, con, "_cr_groups")
    assert "count(DISTINCT a.entity_id) AS _cr_n" in p.groups_sql
    assert p.answer_sql.startswith("SELECT _cr_g0 AS tier, _cr_a0 AS s, _cr_i FROM _cr_groups "
                                   "WHERE "
                                   "((_cr_n >= 8) AND TRY(")
    assert p.answer_sql.endswith("ORDER BY _cr_a0 LIMIT 2")


def test_redacted_sql_masks_constants_and_odd_names():
    text = redacted_sql("SELECT COUNT(*) AS \"jane@example.com\" FROM airline "
                        "WHERE tier = 'jane@example.com' AND birth_year = 1961")
    assert text is not None and "airline" in text and "tier" in text
    assert "jane" not in text and "1961" not in text
    assert redacted_sql("PRAGMA version") is None


DIFFERENTIAL = [
    # (analyst SQL, reference SQL with the minimum written in by hand, ordered?)
    ("SELECT tier, COUNT(*) AS n, SUM(miles) AS s FROM airline GROUP BY tier",
     "SELECT tier, COUNT(*) AS n, SUM(miles) AS s FROM airline GROUP BY tier "
     "HAVING COUNT(DISTINCT entity_id) >= 5", False),
    ("SELECT home_airport, COUNT(DISTINCT entity_id) FROM airline GROUP BY ALL",
     "SELECT home_airport, COUNT(DISTINCT entity_id) FROM airline GROUP BY ALL "
     "HAVING COUNT(DISTINCT entity_id) >= 5", False),
    # joins: people semantics, each table's records counted once per group (the reference
    # deduplicates records per group explicitly, then aggregates)
    ("SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS n, AVG(b.spend) "
     "FROM airline a JOIN brand b ON a.entity_id = b.entity_id WHERE a.home_airport <> 'OAK' "
     "GROUP BY 1, 2 HAVING SUM(a.miles) > 1000 ORDER BY n DESC, 1, 2 LIMIT 4",
     "WITH j AS (SELECT a._cr_rid AS ar, b._cr_rid AS br, a.tier, b.segment, a.entity_id, "
     "a.miles, b.spend FROM airline a JOIN brand b ON a.entity_id = b.entity_id "
     "WHERE a.home_airport <> 'OAK'), "
     "g AS (SELECT tier, segment, COUNT(DISTINCT entity_id) AS n FROM j GROUP BY ALL), "
     "sb AS (SELECT tier, segment, AVG(spend) AS av FROM "
     "(SELECT DISTINCT tier, segment, br, spend FROM j) GROUP BY ALL), "
     "sa AS (SELECT tier, segment, SUM(miles) AS sm FROM "
     "(SELECT DISTINCT tier, segment, ar, miles FROM j) GROUP BY ALL) "
     "SELECT g.tier AS tier, g.segment AS segment, g.n AS n, sb.av AS \"avg(b.spend)\" "
     "FROM g JOIN sb USING (tier, segment) JOIN sa USING (tier, segment) "
     "WHERE sa.sm > 1000 AND g.n >= 8 ORDER BY n DESC, 1, 2 LIMIT 4", True),
    ("SELECT COUNT(DISTINCT entity_id), ROUND(AVG(miles), 2) FROM airline "
     "WHERE birth_year > 1970 AND tier IN ('gold', 'blue')",
     "SELECT COUNT(DISTINCT entity_id), ROUND(AVG(miles), 2) FROM airline "
     "WHERE birth_year > 1970 AND tier IN ('gold', 'blue') "
     "HAVING COUNT(DISTINCT entity_id) >= 5", True),
    ("SELECT UPPER(tier) AS t, home_airport, SUM(miles) / COUNT(*) AS per_row FROM airline "
     "GROUP BY UPPER(tier), home_airport ORDER BY t, 2",
     "SELECT UPPER(tier) AS t, home_airport, SUM(miles) / COUNT(*) AS per_row FROM airline "
     "GROUP BY UPPER(tier), home_airport HAVING COUNT(DISTINCT entity_id) >= 5 "
     "ORDER BY t, 2", True),
    ("SELECT home_airport, COUNT(*) FROM airline GROUP BY 1 HAVING COUNT(*) < 3",
     "SELECT home_airport, COUNT(*) FROM airline GROUP BY 1 "
     "HAVING COUNT(*) < 3 AND COUNT(DISTINCT entity_id) >= 5", False),
    ("SELECT b.segment, SUM(b.spend) FROM airline a JOIN brand b USING (entity_id) "
     "WHERE a.birth_year BETWEEN 1960 AND 1990 GROUP BY b.segment ORDER BY 2 DESC LIMIT 1",
     "WITH j AS (SELECT b._cr_rid AS br, b.segment, a.entity_id, b.spend FROM airline a "
     "JOIN brand b USING (entity_id) WHERE a.birth_year BETWEEN 1960 AND 1990) "
     "SELECT segment, SUM(spend) AS \"sum(b.spend)\" "
     "FROM (SELECT DISTINCT segment, br, spend FROM j) GROUP BY segment "
     "HAVING segment IN (SELECT segment FROM j GROUP BY segment "
     "HAVING COUNT(DISTINCT entity_id) >= 8) ORDER BY 2 DESC LIMIT 1", True),
]


@pytest.mark.parametrize("sql,reference,ordered", DIFFERENTIAL)
def test_rewrite_equals_reference(con, sql, reference, ordered):
    got, _ = execute_checked(check_sql(sql, TABLES, "airline"), con)
    cur = con.execute(reference)
    want = [tuple(r) for r in cur.fetchall()]
    assert got.columns == tuple(d[0] for d in cur.description)  # DuckDB's own column names
    rows = list(got.rows)
    if not ordered:
        rows, want = sorted(rows), sorted(want)
    # floating sums may differ in the last bits: the order of additions is DuckDB's to choose
    assert rows == [tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v
                          for v in row) for row in want]
    assert all("ZRH" not in row for row in rows)  # the two-person group never shows


def test_suppressed_groups_are_counted(con):
    got, suppressed = execute_checked(check_sql(
        "SELECT home_airport, COUNT(*) FROM airline GROUP BY 1", TABLES, "airline"), con)
    assert suppressed == 1 and len(got.rows) == 5
    assert "suppress" not in repr(got) and not hasattr(got, "suppressed")


def test_runtime_errors_cannot_answer_questions(con):
    # Each would raise for some row or small group only; TRY() turns the error into NULL.
    for sql in ("SELECT COUNT(*) FROM airline WHERE CAST(home_airport AS INTEGER) = 1",
                "SELECT home_airport, COUNT(*) FROM airline GROUP BY 1 "
                "HAVING 1 / (COUNT(*) - 2) > 0",
                "SELECT CAST(tier AS INTEGER), COUNT(*) FROM airline GROUP BY 1"):
        execute_checked(check_sql(sql, TABLES, "airline"), con)


def test_list_query_equals_reference(con):
    lists = rules(AIRLINE_LIST, BRAND_LIST)
    sql = ("SELECT DISTINCT a.tier, b.segment AS s FROM airline a JOIN brand b "
           "ON a.entity_id = b.entity_id WHERE b.segment <> 'golf' ORDER BY 1, 2")
    got, _ = execute_checked(check_sql(sql, lists, "airline"), con)
    assert got.columns == ("tier", "s") and got.kind == "list"
    assert list(got.rows) == [tuple(r) for r in con.execute(sql).fetchall()]


_TOKENS = ["SELECT", "DISTINCT", "COUNT(*)", "COUNT(DISTINCT entity_id)", "SUM(miles)", "tier",
           "a.tier", "b.segment", "email", "entity_id", ",", "FROM", "airline", "airline a",
           "brand b", "JOIN", "LEFT JOIN", "ON", "a.entity_id = b.entity_id", "WHERE",
           "tier = 'gold'", "AND", "OR", "NOT", "(", ")", "GROUP BY", "1", "ALL", "HAVING",
           "ORDER BY", "LIMIT", "UPPER(tier)", "CAST(tier AS INTEGER)", "+", "*", "'x'", "NULL",
           "IN ('a', 'b')", "LIKE 'g%'", ";", "--", "/*", "*/", "\x00", "é", '"Tier"', "AS n"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=20))
def test_any_token_soup_is_refused_or_checked_never_crashes(tokens):
    sql = " ".join(tokens)
    try:
        q = check_sql(sql, TABLES, "airline")
    except PolicyRefusal as e:
        assert e.rules and "\n" not in str(e)
    else:
        assert q.kind == "aggregation" and q.minimum in (5, 8)
