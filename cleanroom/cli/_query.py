"""CLI of analyst SQL: `cleanroom query COLLAB --as MEMBER --sql ...` over run_query."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from cleanroom.analyst import QueryResult, json_value, run_query, sql_from_file

from ._output import emit_json, privacy_note, table_text, with_noise
from ._remote import COLLAB_OR_URL, Server, connect, local_member, server_options


def _table(result: QueryResult) -> str:
    noise = result.noise or tuple((None,) * len(result.columns) for _ in result.rows)
    cells = [[with_noise(v, said) for v, said in zip(row, row_noise, strict=True)]
             for row, row_noise in zip(result.rows, noise, strict=True)]
    n = len(result.rows)
    return (table_text(result.columns, cells, rule=True)
            + f"\n({n} row{'s' if n != 1 else ''})" + privacy_note(result.privacy))


@click.command("query")
@click.argument("collab", type=COLLAB_OR_URL)
@click.option("--as", "as_member", default=None, metavar="MEMBER",
              help="The member running the query (must be allowed to query and receive); "
                   "required with a collaboration file, optional with a server URL.")
@click.option("--sql", "sql", default=None, metavar="SQL", help="The SELECT statement to run.")
@click.option("--sql-file", "sql_file", default=None, type=click.Path(dir_okay=False),
              help="Read the SELECT statement from this file instead.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"columns": [...], "rows": [[...], ...]} on stdout.')
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (header row first) on stdout.")
@click.option("--memory-limit", default=None, metavar="SIZE",
              help="DuckDB memory limit, e.g. 4GB.")
@server_options
def query(collab: Path | Server, as_member: str | None, sql: str | None, sql_file: str | None,
          as_json: bool, as_csv: bool, memory_limit: str | None, identity: str | None,
          ca_cert: str | None) -> None:
    """Run analyst SQL on COLLAB under the data owners' policies.

    Each table is a view named after it with `entity_id` (join on it and count it with
    COUNT(DISTINCT t.entity_id); it is never output) and the columns its policy allows.
    Aggregation rule: SELECT dimension columns and allowed aggregates, INNER JOIN only ON
    a.entity_id = b.entity_id, WHERE / GROUP BY / HAVING / ORDER BY / LIMIT. Every output row
    stands for at least the minimum number of distinct people; smaller groups are dropped.
    List rule: SELECT DISTINCT list columns of the entities your table shares with the other.

    A refused query exits with status 3 and one line naming the rule(s); every query,
    accepted or refused, goes into the collaboration's audit log. COLLAB may be a server URL
    (with --identity): the query runs there, under the same rules.

    \b
    Example:
      cleanroom query collab.toml --as airline --json --sql "
        SELECT a.tier, b.segment, COUNT(DISTINCT a.entity_id) AS people, SUM(b.spend)
        FROM airline a JOIN brand b ON a.entity_id = b.entity_id
        GROUP BY a.tier, b.segment ORDER BY people DESC"
    """
    if (sql is None) == (sql_file is None):
        raise click.UsageError("give exactly one of --sql and --sql-file")
    if as_json and as_csv:
        raise click.UsageError("give at most one of --json and --csv")
    text = sql if sql is not None else sql_from_file(str(sql_file))
    if isinstance(collab, Server):
        with connect(collab, identity, ca_cert) as client:
            doc = client.query(text, as_member)
        result = QueryResult.from_dict(doc)
    else:
        result = run_query(collab, local_member(as_member), text, memory_limit=memory_limit)
    if as_json:
        emit_json(result.to_dict(), sort_keys=False)
    elif as_csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(result.columns)
        for row in result.rows:
            w.writerow(["" if v is None else json_value(v) for v in row])
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo(_table(result))
