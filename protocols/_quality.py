"""Quality counts of one identifier column: valid, missing, invalid by reason, repeated rows.

Counts are plain dicts so they travel in manifests and JSON reports unchanged:
{"valid": n, "missing": n, "invalid": {reason: n}} (+ "duplicate_rows" once known).
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

MISSING_REASON = "empty"


def count_reasons(reasons: pa.Array) -> dict[str, Any]:
    """Count a reason array (null = valid, "empty" = missing, anything else = invalid)."""
    valid = reasons.null_count
    missing = 0
    invalid: dict[str, int] = {}
    counts = pc.value_counts(reasons.drop_null()) if len(reasons) > valid else []
    for item in counts:
        reason, n = item["values"].as_py(), item["counts"].as_py()
        if reason == MISSING_REASON:
            missing = n
        else:
            invalid[reason] = n
    return {"valid": valid, "missing": missing, "invalid": dict(sorted(invalid.items()))}


def merge_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Add two count dicts of the same column (batches of one file)."""
    invalid = dict(a.get("invalid", {}))
    for reason, n in b.get("invalid", {}).items():
        invalid[reason] = invalid.get(reason, 0) + n
    return {"valid": a.get("valid", 0) + b.get("valid", 0),
            "missing": a.get("missing", 0) + b.get("missing", 0),
            "invalid": dict(sorted(invalid.items()))}


def repeated_rows(parquet_path: str | os.PathLike[str], columns: list[str],
                  temp_dir: str | None = None) -> dict[str, int]:
    """Per column of a Parquet file: rows whose non-null value occurs in another row too.

    Runs in DuckDB with a memory limit (spilling to `temp_dir`), so it is bounded in memory.
    Column names are checked against the file's schema before being quoted into SQL.
    """
    import pyarrow.parquet as pq

    present = set(pq.read_schema(parquet_path).names)
    for name in columns:
        if name not in present:
            raise KeyError(name)
    if not columns:
        return {}
    config: dict[str, Any] = {"threads": min(2, os.cpu_count() or 1), "memory_limit": "1GB"}
    if temp_dir:
        config["temp_directory"] = temp_dir
    import duckdb  # only this count needs it; PSI steps start without it

    con = duckdb.connect(config=config)
    out = {}
    try:
        # One query per column: running them as one UNION ALL statement was 0.16 s faster on
        # 4 token columns of 1M rows but held all hash tables at once (+220 MB peak).
        for name in columns:
            col = quote_identifier(name)
            row = con.execute(
                f"SELECT coalesce(sum(c), 0) FROM (SELECT count(*) AS c FROM read_parquet(?) "
                f"WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1)",
                [os.fspath(parquet_path)]).fetchone()
            out[name] = int(row[0]) if row else 0
    finally:
        con.close()
    return out


def quote_identifier(name: str) -> str:
    """Quote a column name for DuckDB SQL (double quotes, inner quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'
