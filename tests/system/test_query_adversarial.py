"""Adversarial analyst SQL: each query tries to learn something a policy forbids (tokens or
entity ids, a single person, a file, a second statement, a small group, a forbidden column or
function). Each must be refused, naming the rule, and be recorded in the audit log."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_query import build_collaboration

import cleanroom
from cleanroom import PolicyRefusal, run_query
from cleanroom.cli import main

J = "FROM airline a JOIN brand b ON a.entity_id = b.entity_id"

ATTACKS = [
    # -- exfiltrate tokens or entity ids --------------------------------------------------
    ("SELECT email, COUNT(*) FROM airline GROUP BY email", "token_column"),
    ("SELECT COUNT(DISTINCT phone) FROM airline", "token_column"),
    ("SELECT entity_id, COUNT(*) FROM airline GROUP BY entity_id", "entity_id"),
    ("SELECT COUNT(*) FROM airline GROUP BY entity_id", "entity_id"),
    ("SELECT MIN(entity_id) FROM airline", "aggregate_function"),
    ("SELECT SUM(entity_id) FROM airline", "entity_id"),
    ("SELECT COUNT(entity_id) FROM airline", "entity_id"),
    ("SELECT CAST(entity_id AS VARCHAR), COUNT(*) FROM airline GROUP BY 1", "entity_id"),
    ("SELECT COUNT(DISTINCT CAST(entity_id AS VARCHAR)) FROM airline", "aggregate_argument"),
    ("SELECT tier, COUNT(DISTINCT entity_id + 0) FROM airline GROUP BY tier",
     "aggregate_argument"),
    (f"SELECT a.entity_id = b.entity_id, COUNT(*) {J} GROUP BY 1", "entity_id"),
    ("SELECT string_agg(tier, ',') FROM airline", "aggregate_function"),
    ("SELECT list(home_airport) FROM airline", "aggregate_function"),
    ("SELECT * FROM airline", "select_star"),
    ("SELECT airline.*, COUNT(*) FROM airline", "select_star"),
    ("SELECT COLUMNS('.*') FROM airline", "select_star"),
    ("FROM airline", "select_star"),
    # -- single out a person ----------------------------------------------------------------
    ("SELECT COUNT(*) FROM airline WHERE entity_id = 42", "entity_id"),
    ("SELECT MAX(miles) FROM airline", "aggregate_function"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY tier HAVING MAX(miles) > 100",
     "aggregate_function"),
    ("SELECT COUNT(*) FILTER (WHERE entity_id = 5) FROM airline", "unsupported_sql"),
    ("SELECT SUM(miles ORDER BY entity_id) FROM airline", "unsupported_sql"),
    ("SELECT tier, COUNT(*) OVER () FROM airline", "window_function"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY tier QUALIFY row_number() OVER () = 1",
     "window_function"),
    ("SELECT tier FROM airline GROUP BY tier", "aggregate_required"),
    ("SELECT birth_year, COUNT(*) FROM airline GROUP BY birth_year", "disallowed_output_column"),
    ("SELECT miles, COUNT(*) FROM airline GROUP BY miles", "column_role"),
    ("SELECT COUNT(*) FROM airline WHERE miles > 1000", "column_role"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY ROLLUP (tier)", "grouping_sets"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY CUBE (tier, home_airport)", "grouping_sets"),
    # -- bypass the threshold -------------------------------------------------------------
    ("SELECT COUNT(*) AS _cr_n FROM airline", "unsupported_sql"),
    ("SELECT x, COUNT(*) FROM airline a(x) GROUP BY x", "unsupported_sql"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY tier LIMIT (SELECT 1)", "limit"),
    ("SELECT COUNT(*) FROM airline LIMIT 10%", "limit"),
    ("SELECT COUNT(*) FROM airline USING SAMPLE 5", "unsupported_sql"),
    ("SELECT COUNT(*) FROM airline TABLESAMPLE 50%", "unsupported_sql"),
    ("SELECT COUNT(*) FROM (SELECT * FROM airline) s", "subquery"),
    ("SELECT tier, COUNT(*) FROM airline WHERE entity_id IN (SELECT entity_id FROM brand) "
     "GROUP BY tier", "subquery"),
    ("WITH x AS (SELECT tier FROM airline) SELECT COUNT(*) FROM x", "cte"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY tier UNION "
     "SELECT segment, COUNT(*) FROM brand GROUP BY segment", "set_operation"),
    ("SELECT COUNT(*) FROM airline WHERE tier = 'gold' AND EXISTS (SELECT 1)", "subquery"),
    ("SELECT COUNT(*) FROM (VALUES (1)) v(x)", "subquery"),
    # -- read a file or the catalog -------------------------------------------------------
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "table_function"),
    ("SELECT COUNT(*) FROM read_parquet('airline.tokens.parquet')", "table_function"),
    ("SELECT COUNT(*) FROM 'airline.tokens.parquet'", "unknown_table"),
    ("SELECT COUNT(*) FROM glob('*')", "table_function"),
    ("SELECT COUNT(*) FROM duckdb_tables()", "table_function"),
    ("SELECT COUNT(*) FROM unnest([1, 2])", "table_function"),
    ("SELECT COUNT(*) FROM information_schema.tables", "unknown_table"),
    ("SELECT COUNT(*) FROM sqlite_master", "unknown_table"),
    ("DESCRIBE airline", "unknown_table"),
    ("SUMMARIZE airline", "unknown_table"),
    ("SELECT COUNT(*) FROM airline WHERE tier = getenv('HOME')", "scalar_function"),
    ("SELECT current_setting('threads'), COUNT(*) FROM airline", "scalar_function"),
    # -- smuggle a statement ----------------------------------------------------------------
    ("PRAGMA database_list", "single_select"),
    ("ATTACH 'x.db' AS x", "single_select"),
    ("COPY airline TO 'out.csv'", "single_select"),
    ("SET enable_external_access = true", "single_select"),
    ("CREATE MACRO m(x) AS x", "single_select"),
    ("EXPLAIN SELECT COUNT(*) FROM airline", "single_select"),
    ("CALL pragma_version()", "single_select"),
    ("SELECT COUNT(*) FROM airline; SELECT email FROM airline", "single_select"),
    ("SELECT COUNT(*) FROM airline /* x */; DROP TABLE airline", "single_select"),
    ("SELECT COUNT(*) FROM airline -- c\n; INSTALL httpfs", "single_select"),
    ("SELECT COUNT(*) FROM airline WHERE tier = $1", "unsupported_sql"),
    ("SELEC COUNT(*) FROM airline", "parse"),
    ("SELECT COUNT(*) FROM airline WHERE " + "NOT " * 400 + "tier = 'gold'", "unsupported_sql"),
    ("SELECT COUNT(*) + " + "(1 + " * 300 + "1" + ")" * 300 + " FROM airline", "unsupported_sql"),
    # -- join on something else / the wrong kind of join ------------------------------------
    ("SELECT COUNT(*) FROM airline, brand WHERE airline.entity_id = brand.entity_id",
     "join_type"),
    ("SELECT COUNT(*) FROM airline a LEFT JOIN brand b ON a.entity_id = b.entity_id",
     "join_type"),
    ("SELECT COUNT(*) FROM airline a FULL OUTER JOIN brand b ON a.entity_id = b.entity_id",
     "join_type"),
    ("SELECT COUNT(*) FROM airline a CROSS JOIN brand b", "join_type"),
    ("SELECT COUNT(*) FROM airline a NATURAL JOIN brand b", "join_type"),
    ("SELECT COUNT(*) FROM airline a ASOF JOIN brand b ON a.entity_id >= b.entity_id",
     "join_type"),
    ("SELECT COUNT(*) FROM airline a POSITIONAL JOIN brand b", "join_type"),
    ("SELECT COUNT(*) FROM airline a ANTI JOIN brand b ON a.entity_id = b.entity_id",
     "join_type"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.email = b.email", "token_column"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.tier = b.segment", "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.entity_id = b.entity_id "
     "AND a.tier = 'gold'", "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.entity_id = b.entity_id OR TRUE",
     "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.entity_id > b.entity_id",
     "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.entity_id = a.entity_id",
     "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b USING (email)", "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN LATERAL (SELECT 1) t ON true", "subquery"),
    # -- disallowed column or function ------------------------------------------------------
    ("SELECT COUNT(miles) FROM airline", "aggregate_function"),
    ("SELECT SUM(DISTINCT miles) FROM airline", "aggregate_function"),
    ("SELECT tier, SUM(home_airport) FROM airline GROUP BY tier", "aggregate_function"),
    ("SELECT LENGTH(tier), COUNT(*) FROM airline GROUP BY 1", "scalar_function"),
    ("SELECT tier || 'x', COUNT(*) FROM airline GROUP BY 1", "scalar_function"),
    ("SELECT hash(tier), COUNT(*) FROM airline GROUP BY 1", "scalar_function"),
    ("SELECT LOWER(segment), COUNT(*) FROM brand GROUP BY 1", "scalar_function"),
    (f"SELECT LOWER(a.tier), COUNT(*) {J} GROUP BY 1", "scalar_function"),
    ("SELECT COUNT(*) FROM airline WHERE tier SIMILAR TO 'g.*'", "scalar_function"),
    ("SELECT COUNT(*) FROM airline WHERE list_contains(['gold'], tier)", "scalar_function"),
    ("SELECT CASE WHEN tier = 'gold' THEN 1 END, COUNT(*) FROM airline GROUP BY 1",
     "unsupported_sql"),
    ("SELECT COUNT(*) FROM airline WHERE tier COLLATE nocase = 'x'", "unsupported_sql"),
    ("SELECT a.tier.x, COUNT(*) FROM airline a GROUP BY 1", "unknown_column"),
    ("SELECT salary, COUNT(*) FROM airline GROUP BY 1", "unknown_column"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY tier ORDER BY home_airport", "group_by"),
]


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    path = build_collaboration(tmp_path_factory.mktemp("adversarial"))
    with cleanroom.open_collaboration(path) as r:
        yield r


def test_there_are_at_least_forty_attacks():
    assert len(ATTACKS) >= 40 and len({sql for sql, _ in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("sql,rule", ATTACKS, ids=[f"{i:02d}-{r}" for i, (_, r) in
                                                    enumerate(ATTACKS)])
def test_attack_is_refused_naming_the_rule(room, sql, rule):
    with pytest.raises(PolicyRefusal) as e:
        run_query(room, "airline", sql)
    assert rule in e.value.rules, (e.value.rules, str(e.value))
    assert str(e.value).startswith(f"refused by rule {e.value.rules[0]}: ")
    assert "\n" not in str(e.value)


def test_refusals_are_audited(room):
    log = cleanroom.AuditLog(room.collaboration.audit_log)
    before = len(log.entries())
    for sql, _rule in ATTACKS[:5]:
        with pytest.raises(PolicyRefusal):
            run_query(room, "airline", sql)
    entries = log.entries()[before:]
    assert [(e["decision"], e["member"]) for e in entries] == [("refused", "airline")] * 5
    assert [e["rule"] for e in entries] == [r for _, r in ATTACKS[:5]]


def test_messages_never_echo_values_or_odd_names(room):
    with pytest.raises(PolicyRefusal) as e:
        run_query(room, "airline", "SELECT \"jane.doe@example.com\", COUNT(*) FROM airline "
                  "WHERE email = 'jane.doe@example.com' GROUP BY 1")
    assert "example.com" not in str(e.value) and "jane" not in str(e.value)
    assert {"unknown_column", "token_column"} <= set(e.value.rules)


def test_join_required_member_owning_no_table(room):
    with pytest.raises(PolicyRefusal) as e:  # agency owns nothing; airline requires its join
        run_query(room, "agency", "SELECT tier, COUNT(*) FROM airline GROUP BY tier")
    assert e.value.rule == "join_required"


@pytest.mark.parametrize("sql,rule", [ATTACKS[i] for i in (0, 14, 42, 55, 68)])
def test_cli_refusal_is_one_line_exit_3(room, sql, rule):
    res = CliRunner().invoke(main, ["query", str(room.collaboration.path), "--as", "airline",
                                    "--sql", sql, "--json"])
    assert res.exit_code == 3
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refused by rule ")
    assert rule in lines[0]


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) AS n FROM airline /* ; SELECT email FROM airline */",
    "SELECT COUNT(*) AS n FROM airline -- ; COPY airline TO 'x.csv'",
])
def test_comments_are_not_statements(room, sql):
    r = run_query(room, "airline", sql)
    assert r.columns == ("n",) and [tuple(x) for x in r.rows] == [(122,)]


# -- red-team findings: each got through (or crashed) before its fix -----------------------
FINDINGS = [
    # A table joined to itself crashed the engine (internal error, traceback) and multiplies
    # each person's records: each table may be referenced once.
    ("SELECT COUNT(*) FROM airline a JOIN airline b ON a.entity_id = b.entity_id", "self_join"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.entity_id = b.entity_id "
     "JOIN airline c ON c.entity_id = b.entity_id", "self_join"),
    ("SELECT COUNT(*) FROM airline a JOIN (brand b JOIN airline c ON b.entity_id = "
     "c.entity_id) ON a.entity_id = b.entity_id", "self_join"),
    ("SELECT COUNT(*) FROM airline, airline", "self_join"),
    # A select alias inside an aggregate slipped past the aggregate allow-list: COUNT over a
    # dimension column, COUNT(DISTINCT) over an expression, SUM over a text column (ran).
    ("SELECT tier AS m, COUNT(m) AS n FROM airline GROUP BY 1", "aggregate_argument"),
    ("SELECT UPPER(tier) AS m, COUNT(DISTINCT m) FROM airline GROUP BY ALL",
     "aggregate_argument"),
    ("SELECT tier AS m, COUNT(*) FROM airline GROUP BY 1 HAVING SUM(m) > 0",
     "aggregate_argument"),
    ("SELECT tier AS m, COUNT(*) FROM airline GROUP BY 1 ORDER BY COUNT(DISTINCT m)",
     "aggregate_argument"),
    # Denial of service: size caps before any planning.
    ("SELECT COUNT(*) FROM airline WHERE birth_year IN (" + ",".join(
        str(i) for i in range(20000)) + ")", "unsupported_sql"),
    ("SELECT COUNT(*) FROM airline GROUP BY " + ",".join(
        f"SUBSTRING(tier, 1, {i})" for i in range(300)), "unsupported_sql"),
    ("SELECT " + ",".join(f"SUM(miles) * {i}" for i in range(300)) + " FROM airline",
     "unsupported_sql"),
]


@pytest.mark.parametrize("sql,rule", FINDINGS, ids=[f"{i:02d}-{r}" for i, (_, r) in
                                                    enumerate(FINDINGS)])
def test_finding_is_refused_naming_the_rule(room, sql, rule):
    with pytest.raises(PolicyRefusal) as e:
        run_query(room, "airline", sql)
    assert rule in e.value.rules, (e.value.rules, str(e.value))
    assert "\n" not in str(e.value)


def test_self_join_refusal_is_one_line_on_the_cli(room):
    res = CliRunner().invoke(main, ["query", str(room.collaboration.path), "--as", "airline",
                                    "--sql", FINDINGS[0][0]])
    assert res.exit_code == 3 and res.stdout == ""
    assert res.stderr.startswith("error: refused by rule self_join") and \
        len(res.stderr.splitlines()) == 1


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) AS n FROM airline WHERE tier",  # VARCHAR -> BOOLEAN outside TRY() failed
    "SELECT COUNT(*) AS n FROM airline WHERE home_airport",
    "SELECT tier, COUNT(*) AS n FROM airline GROUP BY tier HAVING tier",
])
def test_a_bare_column_as_condition_is_no_error_oracle(room, sql):
    # Before: "the query failed while running (ConversionException)", an error that depends on
    # the values in the table. Now the condition is TRY(CAST(... AS BOOLEAN)): no row passes.
    assert run_query(room, "airline", sql).rows == ()


def test_a_bare_column_as_list_condition_is_no_error_oracle(tmp_path):
    from test_query import build_collaboration
    with cleanroom.open_collaboration(build_collaboration(tmp_path, rule="list")) as r:
        res = run_query(r, "airline", "SELECT DISTINCT a.tier FROM airline a JOIN brand b "
                        "ON a.entity_id = b.entity_id WHERE b.segment")
    assert res.rows == ()


def test_a_quoted_cast_type_runs_like_the_plain_one(room):
    # Before: an internal error (the regenerated SQL spelled the type differently).
    quoted = run_query(room, "airline", 'SELECT CAST(tier AS "varchar") AS t, COUNT(*) AS n '
                       "FROM airline GROUP BY 1 ORDER BY 1")
    plain = run_query(room, "airline", "SELECT CAST(tier AS VARCHAR) AS t, COUNT(*) AS n "
                      "FROM airline GROUP BY 1 ORDER BY 1")
    assert quoted.rows == plain.rows and len(plain.rows) == 3


@pytest.mark.parametrize("sql", [
    "SELECT 2 AS k, COUNT(*) AS n FROM airline GROUP BY 1",  # was: GROUP BY 2 -> an aggregate
    "SELECT 3 AS k, tier, COUNT(*) AS n FROM airline GROUP BY k, tier",
])
def test_whole_number_group_keys_are_not_positions(room, sql):
    res = run_query(room, "airline", sql)
    assert sum(r[-1] for r in res.rows) == 122 and all(r[0] in (2, 3) for r in res.rows)


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) AS n FROM airline WHERE home_airport = 'OAK'",  # three people
    "SELECT COUNT(*) AS n FROM airline WHERE home_airport = 'OAK' AND tier",
    "SELECT COUNT(*) AS n FROM airline WHERE CAST(home_airport AS INTEGER) IS NULL "
    "AND home_airport = 'OAK'",
    "SELECT home_airport, COUNT(*) AS n FROM airline GROUP BY 1 HAVING home_airport",
])
def test_threshold_holds_whatever_the_condition(room, sql):
    assert all(r[-1] >= 5 for r in run_query(room, "airline", sql).rows)


@pytest.mark.parametrize("sql,rules", [
    ("DESCRIBE airline", {"single_select", "unknown_table"}),
    ("SUMMARIZE airline", {"single_select", "unknown_table"}),
    ("SHOW TABLES", {"single_select", "unknown_table"}),
    ("VALUES (1)", {"subquery", "unknown_table"}),
    ("FROM airline PIVOT (COUNT(*) FOR tier IN ('gold'))", {"unsupported_sql", "unknown_table"}),
])
def test_statements_parsed_as_select_name_what_they_are(room, sql, rules):
    # DuckDB parses these into a SELECT over a special FROM; the refusal names both rules.
    with pytest.raises(PolicyRefusal) as e:
        run_query(room, "airline", sql)
    assert rules <= set(e.value.rules)


# -- red-team sweep: more of what an attacker tries (all refused before and after) ---------
SWEEP = [
    ("SELECT any_value(home_airport), COUNT(*) FROM airline", "aggregate_function"),
    ("SELECT first(tier), COUNT(*) FROM airline", "aggregate_function"),
    ("SELECT arg_max(tier, miles), COUNT(*) FROM airline", "aggregate_function"),
    ("SELECT histogram(tier), COUNT(*) FROM airline", "aggregate_function"),
    ("SELECT approx_count_distinct(tier), COUNT(*) FROM airline", "aggregate_function"),
    ("SELECT bit_or(miles), COUNT(*) FROM airline", "aggregate_function"),
    ("SELECT md5(tier), COUNT(*) FROM airline GROUP BY 1", "scalar_function"),
    ("SELECT COUNT(*) FROM airline WHERE hash(entity_id) > 0", "scalar_function"),
    ("SELECT TRY(SUM(miles)), COUNT(*) FROM airline", "unsupported_sql"),
    ("SELECT COUNT(*) FROM airline WHERE nullif(tier, 'x') IS NULL", "scalar_function"),
    ("SELECT COUNT(*) FROM airline WHERE birth_year & 1 = 0", "scalar_function"),
    ("SELECT DISTINCT ON (tier) tier, COUNT(*) FROM airline GROUP BY tier", "unsupported_sql"),
    ("SELECT #1, COUNT(*) FROM airline GROUP BY 1", "unsupported_sql"),
    ("SELECT ?, COUNT(*) FROM airline", "unsupported_sql"),
    ("SELECT [tier], COUNT(*) FROM airline GROUP BY 1", "scalar_function"),
    ("SELECT {'t': tier}, COUNT(*) FROM airline GROUP BY 1", "unsupported_sql"),
    ("SELECT list_transform([1], x -> x), COUNT(*) FROM airline", "scalar_function"),
    ("SELECT sql_auto_complete('SEL'), COUNT(*) FROM airline", "scalar_function"),
    ("SELECT COUNT(*) FROM query_table('airline')", "table_function"),
    ("SELECT COUNT(*) FROM query('SELECT 1')", "table_function"),
    ("SELECT COUNT(*) FROM duckdb_settings()", "table_function"),
    ("SELECT COUNT(*) FROM main.airline", "unknown_table"),
    ("SELECT COUNT(*) FROM \"airline\u200b\"", "unknown_table"),  # zero-width space
    ("SELECT COUNT(*) FROM \u0430irline", "unknown_table"),  # Cyrillic a
    ("SELECT t\u0456er, COUNT(*) FROM airline GROUP BY 1", "unknown_column"),  # Cyrillic i
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON TRUE", "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON a.entity_id = b.entity_id + 0",
     "join_condition"),
    ("SELECT COUNT(*) FROM airline a JOIN brand b ON "
     "CAST(a.entity_id AS VARCHAR) = CAST(b.entity_id AS VARCHAR)", "join_condition"),
    ("SELECT COUNT(*) FROM airline a LEFT JOIN brand b USING (entity_id)", "join_type"),
    ("SELECT COUNT(*) FROM airline a, LATERAL (SELECT 1) b", "subquery"),
    ("EXPLAIN ANALYZE SELECT COUNT(*) FROM airline", "single_select"),
    ("EXPORT DATABASE 'out'", "single_select"),
    ("INSTALL httpfs", "single_select"),
    ("LOAD httpfs", "single_select"),
    ("COPY (SELECT COUNT(*) FROM airline) TO 'x.csv'", "single_select"),
    ("SELECT COUNT(*) FROM airline WHERE tier = 'a\x00b'", "unsupported_sql"),
    ("SELECT COUNT(*) FROM airline GROUP BY GROUPING SETS ((tier), ())", "grouping_sets"),
    ("SELECT tier, COUNT(*) FROM airline GROUP BY tier QUALIFY COUNT(*) > 1",
     "window_function"),
]


@pytest.mark.parametrize("sql,rule", SWEEP, ids=[f"{i:02d}-{r}" for i, (_, r) in
                                                 enumerate(SWEEP)])
def test_sweep_is_refused_naming_the_rule(room, sql, rule):
    with pytest.raises(PolicyRefusal) as e:
        run_query(room, "airline", sql)
    assert rule in e.value.rules, (e.value.rules, str(e.value))
