"""Read a party's CSV or Parquet extract in bounded batches, with errors naming file/row/column.

Rows are numbered as a spreadsheet or an editor shows them: the CSV header is row 1, the
first data row is row 2. Error messages never quote a cell's content.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._errors import InputError

BATCH_ROWS = 250_000
_CSV_BLOCK_BYTES = 8 << 20
_ROW_RE = re.compile(r"Row #(\d+)")
_COL_RE = re.compile(r"column #(\d+)")
_UTF8 = {"utf8", "utf-8", "utf_8", "u8", "utf"}


@dataclass(frozen=True)
class InputFile:
    """An input extract opened for batched reading; `columns` are its column names."""

    path: str
    format: str  # "csv" | "parquet"
    columns: tuple[str, ...]
    delimiter: str = ","
    encoding: str = "utf-8"


def _is_parquet(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def open_input(path: str | os.PathLike[str], *, delimiter: str = ",",
               encoding: str = "utf-8") -> InputFile:
    """Check the file exists and is readable and not empty; read its column names."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise InputError("file not found", file=name)
    if os.path.isdir(name):
        raise InputError("is a directory, not a file", file=name)
    try:
        size = os.path.getsize(name)
        is_parquet = size >= 4 and _is_parquet(name)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=name) from None
    if size == 0:
        raise InputError("file is empty", file=name)
    if is_parquet:
        try:
            schema = pq.read_schema(name)
        except (pa.ArrowInvalid, OSError):
            raise InputError("not a readable Parquet file", file=name) from None
        return InputFile(name, "parquet", tuple(schema.names))
    if len(delimiter) != 1:
        raise InputError(f"the delimiter must be one character, got {len(delimiter)}", file=name)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}", file=name) from None
    header = _csv_header(name, delimiter, encoding)
    return InputFile(name, "csv", header, delimiter, encoding)


def _csv_header(name: str, delimiter: str, encoding: str) -> tuple[str, ...]:
    try:
        with open(name, "rb") as fh:
            line = fh.readline(1 << 20).decode(encoding)
        first = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), None)
    except UnicodeDecodeError:
        raise InputError(f"row 1 (the header) is not valid {encoding} text; "
                         "pass the right --encoding", file=name) from None
    except csv.Error:
        raise InputError("the header row is not valid CSV", file=name, row=1) from None
    if not first or all(not c.strip() for c in first):
        raise InputError("file is empty (no header row)", file=name)
    header = tuple(c.lstrip("\ufeff") if i == 0 else c for i, c in enumerate(first))
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise InputError("the header names this column twice", file=name, column=col)
        seen.add(col)
    return header


def refuse_overwriting_input(source: InputFile, output: str | os.PathLike[str]) -> None:
    """Refuse an output path that is the input file itself."""
    if os.path.exists(output) and os.path.samefile(source.path, output):
        raise InputError("the output would overwrite the input; choose another --out",
                         file=source.path)


def require_columns(source: InputFile, wanted: Sequence[str]) -> None:
    """Raise InputError naming the first wanted column that the file does not have."""
    for col in wanted:
        if col not in source.columns:
            shown = ", ".join(source.columns[:20]) + (", ..." if len(source.columns) > 20 else "")
            raise InputError(f"no such column (the file has: {shown})", file=source.path,
                             column=col)


def read_batches(source: InputFile, columns: Sequence[str], *, string_columns: Sequence[str],
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Yield record batches of `columns` (those in `string_columns` as text); raise InputError
    naming file, row and column on malformed or undecodable input; refuse a file without rows."""
    require_columns(source, columns)
    reader = _parquet_batches if source.format == "parquet" else _csv_batches
    rows = 0
    for batch in reader(source, list(columns), set(string_columns), batch_rows):
        rows += batch.num_rows
        if batch.num_rows:
            yield batch
    if rows == 0:
        raise InputError("file has a header but no data rows", file=source.path)


def read_input_table(path: str | os.PathLike[str], *, text_columns: Sequence[str],
                     delimiter: str = ",", encoding: str = "utf-8",
                     output: str | os.PathLike[str] | None = None) -> pa.Table:
    """A whole extract as one table, for commands that must see every row at once (dedupe).

    Every column of a CSV is read as text, so writing it back keeps each cell as written
    (`007` stays `007`); a Parquet file keeps its types but for `text_columns`, which must
    exist and are read as text. `output`, if given, must not be the input itself. Errors
    are InputError naming file, row and column, as for batched reading."""
    source = open_input(path, delimiter=delimiter, encoding=encoding)
    if output is not None:
        refuse_overwriting_input(source, output)
    require_columns(source, text_columns)
    strings = source.columns if source.format == "csv" else tuple(text_columns)
    batches = list(read_batches(source, source.columns, string_columns=strings))
    return pa.Table.from_batches(batches)


def _parquet_batches(source: InputFile, columns: list[str], strings: set[str],
                     batch_rows: int) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(source.path)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            arrays = []
            for name, arr in zip(batch.schema.names, batch.columns, strict=True):
                if name in strings and not pa.types.is_string(arr.type):
                    arr = _to_text(arr, source.path, name)
                arrays.append(arr)
            yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read Parquet data ({type(exc).__name__})",
                         file=source.path) from None


def _to_text(arr: pa.Array, path: str, name: str) -> pa.Array:
    if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        return arr.cast(pa.string())
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        try:
            return arr.cast(pa.string())
        except pa.ArrowInvalid:
            raise InputError("binary column is not valid UTF-8 text", file=path,
                             column=name) from None
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"cannot read a {arr.type} column as text", file=path,
                         column=name) from None


def _csv_batches(source: InputFile, columns: list[str], strings: set[str],
                 batch_rows: int) -> Iterator[pa.RecordBatch]:
    utf8 = source.encoding.lower().replace("-", "_").replace("_", "") in {
        e.replace("-", "").replace("_", "") for e in _UTF8}
    read_opts = pacsv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK_BYTES,
                                  encoding="utf8" if utf8 else source.encoding)
    parse_opts = pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True)
    convert_opts = pacsv.ConvertOptions(
        include_columns=columns,
        column_types={c: pa.string() for c in columns if c in strings},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        reader = pacsv.open_csv(source.path, read_options=read_opts, parse_options=parse_opts,
                                convert_options=convert_opts)
        for batch in reader:
            if any(pa.types.is_binary(f.type) for f in batch.schema):
                # pyarrow reads a column with bytes that are not UTF-8 as binary
                raise UnicodeDecodeError(source.encoding, b"", 0, 1, "not valid text")
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)
    except UnicodeDecodeError:
        row, col = _locate_undecodable(source)
        raise InputError(f"bytes that are not valid {source.encoding} text; pass the right "
                         "--encoding", file=source.path, row=row, column=col) from None
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise _csv_error(source, str(exc)) from None


def _csv_error(source: InputFile, message: str) -> InputError:
    """Turn a pyarrow CSV error into an InputError without quoting any cell."""
    row_m, col_m = _ROW_RE.search(message), _COL_RE.search(message)
    row = int(row_m.group(1)) if row_m else None
    col = None
    if col_m and int(col_m.group(1)) < len(source.columns):
        col = source.columns[int(col_m.group(1))]
    if "Empty CSV file" in message:
        return InputError("file is empty", file=source.path)
    cols = re.search(r"Expected (\d+) columns, got (\d+)", message)
    if cols:
        return InputError(f"malformed CSV line: expected {cols.group(1)} fields, found "
                          f"{cols.group(2)} (check the delimiter and quotes)", file=source.path,
                          row=row)
    if "invalid UTF8" in message:
        return InputError("bytes that are not valid UTF-8 text; pass the right --encoding",
                          file=source.path, row=row, column=col)
    conv = re.search(r"conversion error to (\w+)", message)
    if conv:
        return InputError(f"value is not a {conv.group(1)} like the first rows of this column",
                          file=source.path, row=row, column=col)
    if row is None:
        # pyarrow did not say where: find the row ourselves (error path only).
        row, col = _locate_undecodable(source)
    return InputError("malformed CSV data", file=source.path, row=row, column=col)


def _locate_undecodable(source: InputFile) -> tuple[int | None, str | None]:
    """Find the first row (and column) whose bytes do not decode (slow; error path only)."""
    decoder = codecs.getincrementaldecoder(source.encoding)(errors="strict")
    delim = source.delimiter.encode("ascii", "replace")
    with open(source.path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                decoder.reset()
                for i, cell in enumerate(raw.split(delim)):
                    try:
                        cell.decode(source.encoding)
                    except UnicodeDecodeError:
                        col = source.columns[i] if i < len(source.columns) else None
                        return lineno, col
                return lineno, None
    return None, None
