"""Analyst SQL: parse it with DuckDB, check the tree against the policies, plan and run it.

`check_sql` walks the parse tree and refuses once with every violation (rules named);
`run_query` checks, runs under the threshold and audits a query for one member.
"""

from ._checker import CheckedQuery, check_sql
from ._expressions import TableRules
from ._run import QueryResult, execute_checked, json_value, run_query, sql_from_file

__all__ = [
    "CheckedQuery",
    "QueryResult",
    "TableRules",
    "check_sql",
    "execute_checked",
    "json_value",
    "run_query",
    "sql_from_file",
]
