"""Platform-ready hashed customer lists: UID2/EUID, Google Customer Match, Meta Custom Audiences.

Each platform normalizes with its own profile (`normalize`, profiles `uid2`, `google`, `meta`),
then SHA-256 over the UTF-8 bytes, encoded as the platform expects: uid2 Base64 of the raw
digest (44 characters), google and meta lowercase hex. Fields a platform takes unhashed
(Google country, postal code and mobile device id; Meta mobile ad id) come back normalized
and unhashed. These are plain, unkeyed hashes for upload to the platform, not match tokens.

Upload columns per platform (identifier kind -> column name):

    uid2    email -> email_hash, phone -> phone_hash
    google  email -> Email, phone -> Phone, first_name -> First Name, last_name -> Last Name,
            country -> Country (unhashed), postal_code -> Zip (unhashed),
            maid -> Mobile Device ID (unhashed)
    meta    email -> email, phone -> phone, first_name -> fn, last_name -> ln, city -> ct,
            state -> st, postal_code -> zip, country -> country, dob -> dob, gender -> gen,
            external_id -> extern_id, maid -> madid (unhashed)
"""

from __future__ import annotations

import base64
import collections
import csv
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ._errors import ConfigError, InputError
from ._io import atomic_path

__all__ = [
    "ExportReport",
    "PLATFORMS",
    "UploadColumn",
    "export_hashes",
    "hash_column",
    "hash_column_reference",
    "platform_hash",
    "upload_columns",
]

PLATFORMS = ("google", "meta", "uid2")


@dataclass(frozen=True)
class UploadColumn:
    """One column of a platform's upload file: the kind it holds, its name, whether hashed."""

    kind: str
    header: str
    hashed: bool = True


_COLUMNS: dict[str, tuple[UploadColumn, ...]] = {
    "uid2": (UploadColumn("email", "email_hash"), UploadColumn("phone", "phone_hash")),
    "google": (
        UploadColumn("email", "Email"), UploadColumn("phone", "Phone"),
        UploadColumn("first_name", "First Name"), UploadColumn("last_name", "Last Name"),
        UploadColumn("country", "Country", False), UploadColumn("postal_code", "Zip", False),
        UploadColumn("maid", "Mobile Device ID", False),
    ),
    "meta": (
        UploadColumn("email", "email"), UploadColumn("phone", "phone"),
        UploadColumn("first_name", "fn"), UploadColumn("last_name", "ln"),
        UploadColumn("city", "ct"), UploadColumn("state", "st"),
        UploadColumn("postal_code", "zip"), UploadColumn("country", "country"),
        UploadColumn("dob", "dob"), UploadColumn("gender", "gen"),
        UploadColumn("external_id", "extern_id"), UploadColumn("maid", "madid", False),
    ),
}
_ALIASES = {"mobile_ad_id": "maid", "madid": "maid", "date_of_birth": "dob", "zip": "postal_code"}


def upload_columns(platform: str) -> tuple[UploadColumn, ...]:
    """The upload columns a platform takes, in the order of its upload template."""
    if platform not in _COLUMNS:
        raise ConfigError(f"unknown platform {platform!r}: use one of {', '.join(PLATFORMS)}",
                          key="platform")
    return _COLUMNS[platform]


def _column(platform: str, kind: str) -> UploadColumn:
    kind = _ALIASES.get(kind, kind)
    for col in upload_columns(platform):
        if col.kind == kind:
            return col
    takes = ", ".join(c.kind for c in upload_columns(platform))
    raise ConfigError(f"{platform} does not take {kind!r} (it takes {takes})", key="kind")


def _encode(digest: bytes, platform: str) -> str:
    return base64.b64encode(digest).decode("ascii") if platform == "uid2" else digest.hex()


def platform_hash(kind: str, value: str, platform: str, region: str = "US") -> str:
    """`value` normalized with the platform's profile, hashed and encoded as it expects.

    Raises normalize.InvalidIdentifier (a ValueError with `.reason`) for a value that cannot
    be normalized, and ConfigError for a kind the platform does not take.
    """
    import normalize

    col = _column(platform, kind)
    try:
        normalized = normalize.normalize(col.kind, value, profile=platform, region=region)
    except normalize.InvalidIdentifier:
        raise
    except ValueError as exc:  # unknown region: a usage mistake, not a bad value
        raise ConfigError(str(exc), key="region") from None
    if not col.hashed:
        return normalized
    return _encode(hashlib.sha256(normalized.encode("utf-8")).digest(), platform)


# --- column-at-a-time export -----------------------------------------------------------------

def hash_column(values: pa.Array, platform: str) -> pa.Array:
    """SHA-256 of each non-null string, encoded for the platform, computed in DuckDB."""
    sql = ("SELECT to_base64(unhex(sha256(v))) AS h FROM t" if platform == "uid2"
           else "SELECT sha256(v) AS h FROM t")
    con = duckdb.connect()
    try:
        con.register("t", pa.table({"v": values.cast(pa.string())}))
        return con.sql(sql).to_arrow_table().column("h").combine_chunks()
    finally:
        con.close()


def hash_column_reference(values: Sequence[str | None], platform: str) -> list[str | None]:
    """The per-value reference of `hash_column` (hashlib), for differential tests."""
    return [None if v is None else _encode(hashlib.sha256(v.encode("utf-8")).digest(), platform)
            for v in values]


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
    import normalize

    path, out = os.fspath(input_path), os.fspath(output_path)
    if not ids:
        raise ConfigError("give at least one identifier column (KIND=COLUMN)", key="id")
    cols = [(_column(platform, kind), column) for kind, column in ids.items()]
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
