"""Analyst SQL overhead: the checked, threshold-enforcing rewrite versus the same question asked
directly in DuckDB (the analyst's SQL with the minimum written into HAVING by hand).

    python -m bench.query [--quick] [--rows N] [--runs R]

Both run on the same DuckDB connection and tables (entity_id plus attributes, as the engine's
analyst views); answers are checked equal; medians of several runs and their ratio are printed.
"""

from __future__ import annotations

import argparse

import duckdb

from cleanroom import Policy, TableRules, check_sql
from cleanroom.analyst import execute_checked

from ._common import median_seconds


def _policy(dimensions: list[str], column: str, minimum: int, **extra: str) -> Policy:
    return Policy.from_dict({
        "analysis_rule": "aggregation", "join_columns": ["email"],
        "dimension_columns": dimensions,
        "aggregate_columns": [{"columns": [column], "functions": ["SUM", "AVG"]}],
        "output_constraints": [{"column": "entity_id", "type": "COUNT_DISTINCT",
                                "minimum": minimum}],
        "scalar_functions": ["UPPER"], **extra})


QUERIES = [
    ("SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS spend "
     "FROM airline a JOIN brand b ON a.entity_id = b.entity_id "
     "GROUP BY a.tier, b.segment ORDER BY people DESC, 1, 2",
     "SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend) AS spend "
     "FROM airline a JOIN brand b ON a.entity_id = b.entity_id GROUP BY a.tier, b.segment "
     "HAVING COUNT(DISTINCT a.entity_id) >= 100 ORDER BY people DESC, 1, 2"),
    ("SELECT UPPER(home_airport) AS airport, AVG(miles) FROM airline "
     "WHERE tier <> 'blue' GROUP BY 1 ORDER BY 1",
     "SELECT UPPER(home_airport) AS airport, AVG(miles) FROM airline "
     "WHERE tier <> 'blue' GROUP BY 1 HAVING COUNT(DISTINCT entity_id) >= 50 ORDER BY 1"),
]


def build(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """Two tables of `rows` rows each, 30% of entities shared, some entities repeated."""
    con.execute(f"""CREATE TABLE airline AS SELECT
        (hash(i) % {rows * 9 // 10})::BIGINT AS entity_id,
        ['gold', 'silver', 'blue'][1 + i % 3] AS tier,
        'A' || (hash(i * 7) % 200)::VARCHAR AS home_airport, (i % 9000)::BIGINT AS miles
        FROM range({rows}) t(i)""")
    con.execute(f"""CREATE TABLE brand AS SELECT
        (CASE WHEN i % 10 < 3 THEN hash(i) % {rows * 9 // 10} ELSE {rows} + i END)::BIGINT
            AS entity_id,
        ['sports', 'travel', 'home', 'golf'][1 + i % 4] AS segment, (i % 300)::DOUBLE AS spend
        FROM range({rows}) t(i)""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small size (200,000 rows per table)")
    ap.add_argument("--rows", type=int, default=None, help="rows per table (default 5,000,000)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = args.rows or (200_000 if args.quick else 5_000_000)
    tables = {"airline": TableRules("airline", "airline", _policy(
                  ["tier", "home_airport"], "miles", 50, join_required="query_runner")),
              "brand": TableRules("brand", "brand", _policy(["segment"], "spend", 100))}
    con = duckdb.connect()
    build(con, rows)
    print(f"rows per table: {rows:,}; runs: {args.runs}; threads: "
          f"{con.execute('SELECT current_setting(?)', ['threads']).fetchone()[0]}")
    for sql, reference in QUERIES:
        checked, _ = execute_checked(check_sql(sql, tables, "airline"), con)
        direct = con.execute(reference).fetchall()
        assert list(checked.rows) == [tuple(r) for r in direct], "answers differ"
        t_check = median_seconds(lambda s=sql: check_sql(s, tables, "airline"), args.runs)
        t_ours = median_seconds(
            lambda s=sql: execute_checked(check_sql(s, tables, "airline"), con), args.runs)
        t_direct = median_seconds(lambda r=reference: con.execute(r).fetchall(), args.runs)
        print(f"\n{sql[:90]}...\n  answers equal ({len(direct)} rows)"
              f"\n  cleanroom (check + rewrite + run): {t_ours:8.3f} s   of which check "
              f"{t_check * 1000:.1f} ms"
              f"\n  DuckDB direct (baseline):         {t_direct:8.3f} s"
              f"\n  ratio cleanroom / direct:         {t_ours / t_direct:8.2f}x")


if __name__ == "__main__":
    main()
