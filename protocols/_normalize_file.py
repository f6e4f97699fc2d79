"""normalize_file: a party's extract in, its identifier columns in canonical form out, plus a
quality report. The output still holds personal data: it is for its owner only."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import normalize

from ._errors import ConfigError
from ._io import atomic_path
from ._options import check_kind, check_profile, check_region
from ._quality import count_reasons, merge_counts, repeated_rows
from ._readers import BATCH_ROWS, open_input, read_batches, refuse_overwriting_input

REASON_SUFFIX = "_reason"


@dataclass(frozen=True)
class NormalizeReport:
    """Per normalized column: its kind and valid / missing / invalid-by-reason / repeated rows."""

    output: str
    row_count: int
    profile: str
    region: str
    columns: dict[str, dict[str, Any]]
    library_versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "row_count": self.row_count, "profile": self.profile,
                "region": self.region, "columns": self.columns,
                "library_versions": self.library_versions}


def normalize_file(input_path: str | os.PathLike[str], output: str | os.PathLike[str], *,
                   identifiers: Sequence[tuple[str, str]], keep: Sequence[str] = (),
                   profile: str = "strict", region: str = "US", delimiter: str = ",",
                   encoding: str = "utf-8", batch_rows: int = BATCH_ROWS,
                   progress: Callable[[int], None] | None = None) -> NormalizeReport:
    """Normalize the `identifiers` (kind, column) of `input_path` into `output` (CSV when it
    ends in .csv, else Parquet), in input order, with a `<column>_reason` column each and the
    `keep` columns unchanged; written atomically."""
    profile = check_profile(profile)
    region = check_region(region)
    if not identifiers:
        raise ConfigError("give at least one --id KIND=COLUMN", key="--id")
    columns = [column for _, column in identifiers]
    for kind, column in identifiers:
        check_kind(kind)
        if columns.count(column) > 1:
            raise ConfigError("a column can be normalized as one kind only",
                              key=f"--id {kind}={column}")
    for column in keep:
        if column in columns:
            raise ConfigError("a kept column cannot also be normalized", key=f"--keep {column}")
    source = open_input(input_path, delimiter=delimiter, encoding=encoding)
    refuse_overwriting_input(source, output)
    wanted = list(dict.fromkeys([*keep, *columns]))
    batches = read_batches(source, wanted, string_columns=columns, batch_rows=batch_rows)
    out = Path(output)
    as_csv = out.suffix.lower() == ".csv"
    totals: dict[str, dict[str, Any]] = {column: {} for column in columns}
    rows = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, 0o600) as tmp, \
            tempfile.TemporaryDirectory(prefix=".cleanroom-", dir=out.parent) as side_dir:
        side_path = Path(side_dir) / "normalized.parquet"
        writer: Any = None
        side: Any = None
        try:
            for batch in batches:
                arrays, names = [batch.column(c) for c in keep], list(keep)
                for kind, column in identifiers:
                    res = normalize.normalize_column(kind, batch.column(column), profile=profile,
                                                     region=region, foreign_postal=True)
                    arrays += [res.values, res.reasons]
                    names += [column, column + REASON_SUFFIX]
                    totals[column] = merge_counts(totals[column], count_reasons(res.reasons))
                table = pa.Table.from_arrays(arrays, names=names)
                side_table = table.select(columns)
                if writer is None:
                    writer = (pacsv.CSVWriter(tmp, table.schema) if as_csv
                              else pq.ParquetWriter(tmp, table.schema, compression="zstd"))
                    side = pq.ParquetWriter(side_path, side_table.schema, compression="none")
                writer.write_table(table)
                side.write_table(side_table)
                rows += batch.num_rows
                if progress is not None:
                    progress(rows)
        finally:
            for w in (writer, side):
                if w is not None:
                    w.close()
        repeats = repeated_rows(side_path, columns, side_dir)
    kinds = {column: kind for kind, column in identifiers}
    report = {column: {"kind": kinds[column], **totals[column],
                       "repeated_rows": repeats[column]} for column in columns}
    return NormalizeReport(os.fspath(out), rows, profile, region, report,
                           dict(normalize.library_versions()))
