"""export_hashes: an identifier file in, a platform's upload CSV out (rejected rows counted)."""

from __future__ import annotations

import collections
import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import normalize

from .._errors import ConfigError, InputError
from .._io import atomic_path
from ._columns import column_for, upload_columns
from ._hashing import hash_column


@dataclass(frozen=True)
class ExportReport:
    """What an export did: rows read and written, rejected rows by reason, columns written."""

    rows_in: int
    rows_out: int
    columns: tuple[str, ...]
    rejected: Mapping[str, int] = field(default_factory=dict)


def _read_strings(path: str, wanted: Sequence[str]) -> pa.Table:
    """The wanted columns of a CSV or Parquet file, as strings."""
    suffix = Path(path).suffix.lower()
    if not os.path.exists(path):
        raise InputError("file not found", file=path)
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif suffix == ".csv":
            import pyarrow.csv as pacsv

            with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
                header = next(csv.reader(fh), [])
            table = pacsv.read_csv(
                path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={h: pa.string() for h in header}, strings_can_be_null=True))
        else:
            raise InputError("unknown file format: use a .csv or .parquet file", file=path)
    except pa.ArrowInvalid as exc:  # its message may quote data: never pass it on
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            raise InputError("not valid UTF-8", file=path) from None
        row, width, found = _first_bad_row(path)
        if row is not None:
            raise InputError(f"expected {width} columns, found {found}", file=path,
                             row=row) from None
        raise InputError("malformed CSV file", file=path) from None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read file ({type(exc).__name__})", file=path) from None
    if table.num_rows == 0:
        raise InputError("no data rows", file=path)
    for name in wanted:
        if name not in table.column_names:
            raise InputError("column not found", file=path, column=name)
    return table


def _first_bad_row(path: str) -> tuple[int | None, int, int]:
    """The first record whose column count differs from the header's (error path only)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.reader(fh)
            width = len(next(reader, []))
            for record in reader:
                if record and len(record) != width:
                    return reader.line_num, width, len(record)
    except csv.Error:
        pass
    return None, 0, 0


def export_hashes(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *,
                  platform: str, ids: Mapping[str, str], region: str = "US") -> ExportReport:
    """Write a platform upload CSV from the identifier columns `ids` (kind -> input column).

    A row is left out, and counted under `<kind>:<reason>`, when any identifier it has fails
    normalization, or under `no_identifier` when it has none; rejected values are never written.
    """
    path, out = os.fspath(input_path), os.fspath(output_path)
    if not ids:
        raise ConfigError("give at least one identifier column (KIND=COLUMN)", key="id")
    cols = [(column_for(platform, kind), column) for kind, column in ids.items()]
    order = {c.kind: i for i, c in enumerate(upload_columns(platform))}
    cols.sort(key=lambda pair: order[pair[0].kind])
    if len({c.kind for c, _ in cols}) != len(cols):
        raise ConfigError("each identifier kind may be given once", key="id")
    table = _read_strings(path, [column for _, column in cols])
    n = table.num_rows
    keep = pa.array([True] * n)
    any_present = pa.array([False] * n)
    reasons = pa.nulls(n, pa.string())
    outputs = []
    for col, column in cols:
        raw = table.column(column).combine_chunks()
        try:
            result = normalize.normalize_column(col.kind, raw, profile=platform, region=region)
        except ValueError as exc:  # unknown region: a usage mistake, not a bad value
            raise ConfigError(str(exc), key="region") from None
        missing = pc.equal(result.reasons, "empty").fill_null(False)
        failed = pc.and_(pc.is_valid(result.reasons), pc.invert(missing))
        reasons = pc.if_else(pc.and_(pc.is_null(reasons), failed),
                             pc.binary_join_element_wise(pa.scalar(col.kind), result.reasons, ":"),
                             reasons)
        keep = pc.and_(keep, pc.invert(failed))
        any_present = pc.or_(any_present, pc.is_valid(result.values))
        outputs.append(hash_column(result.values, platform) if col.hashed else result.values)
    none_left = pc.and_(keep, pc.invert(any_present))
    reasons = pc.if_else(none_left, pa.scalar("no_identifier"), reasons)
    keep = pc.and_(keep, any_present)
    counts = collections.Counter(r for r in reasons.to_pylist() if r is not None)
    headers = [c.header for c, _ in cols]
    result_table = pa.table([o.filter(keep) for o in outputs], names=headers)
    _write_csv(out, result_table)
    return ExportReport(n, result_table.num_rows, tuple(headers), dict(sorted(counts.items())))


def _write_csv(path: str, table: pa.Table) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows(zip(*(["" if v is None else v for v in c.to_pylist()]
                           for c in table.columns), strict=True))
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8", newline="")
