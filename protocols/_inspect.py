"""inspect_token_file: what a token file says about itself and what its columns hold,
without ever showing a token, a row id or a secret."""

from __future__ import annotations

import json
import os
from typing import Any

import duckdb
import pyarrow.parquet as pq

from ._errors import CleanroomBug
from ._manifest import read_manifest
from ._quality import quote_identifier


def inspect_token_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest and, per column, its type, null count and distinct count."""
    name = os.fspath(path)
    manifest = read_manifest(name)
    schema = pq.read_schema(name)
    parts = ["count(*)"]
    for col in schema.names:
        q = quote_identifier(col)
        parts += [f"count({q})", f"count(DISTINCT {q})"]
    with duckdb.connect(config={"threads": min(2, os.cpu_count() or 1)}) as con:
        row = con.execute(f"SELECT {', '.join(parts)} FROM read_parquet(?)", [name]).fetchone()
    if row is None:
        raise CleanroomBug("an aggregate query returned no row")
    rows = int(row[0])
    columns = {}
    for i, field in enumerate(schema):
        non_null, distinct = int(row[1 + 2 * i]), int(row[2 + 2 * i])
        role = ("row_id" if field.name == "row_id" else
                "token" if field.name in manifest.identifiers else "attribute")
        columns[field.name] = {"role": role, "type": str(field.type), "nulls": rows - non_null,
                               "non_null": non_null, "distinct": distinct}
    return {"file": name, "rows": rows, "size_bytes": os.path.getsize(name),
            "manifest": json.loads(manifest.to_json()), "columns": columns}
