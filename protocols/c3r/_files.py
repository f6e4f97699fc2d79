"""Encrypt and decrypt whole tables (CSV or Parquet) the way the C3R client does.

Per row one random 32-byte nonce (shared by the row's sealed columns) also orders the output,
so rows come out shuffled exactly as C3R shuffles them (sorted by nonce). Per-value crypto is
a Python loop by necessity: every sealed value has its own key and IV, and every fingerprint
is one HMAC; the loop does nothing else (see bench/c3r.py for the throughput).
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as _dt
import os
import secrets as _secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._errors import ConfigError, DecryptionError, InputError, KeyMaterialError
from .._io import atomic_path
from .._keys import parse_collaboration_id
from . import _core as core
from ._csv import format_csv, read_csv
from ._schema import ColumnSpec, Schema, check_header

SECRET_ENV = "C3R_SHARED_SECRET"
_STRING_TYPES = (core.DataType.STRING, core.DataType.CHAR, core.DataType.VARCHAR)


@dataclass(frozen=True)
class EncryptReport:
    """What an encryption run did: rows and columns written, and values normalization rejected."""

    rows: int
    columns: tuple[str, ...]
    file_format: str
    rejected: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


def secret_from_env(environ: Mapping[str, str] | None = None) -> bytes:
    """The shared secret from C3R_SHARED_SECRET (standard Base64, at least 32 bytes)."""
    env = os.environ if environ is None else environ
    text = env.get(SECRET_ENV)
    if text is None or not text.strip():
        raise KeyMaterialError(f"set {SECRET_ENV} to the collaboration's shared secret "
                               "(standard Base64, at least 32 bytes)")
    text = text.strip()
    text += "=" * (-len(text) % 4) if len(text) % 4 in (2, 3) else ""
    try:
        secret = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError(f"{SECRET_ENV} is not standard Base64") from None
    if len(secret) < core.MIN_SECRET_BYTES:
        raise KeyMaterialError(f"{SECRET_ENV} must decode to at least {core.MIN_SECRET_BYTES} "
                               f"bytes, found {len(secret)}")
    return secret


def canonical_salt(collaboration_id: str) -> str:
    """A collaboration UUID in C3R's canonical lowercase form; other non-empty salts verbatim."""
    if not isinstance(collaboration_id, str) or not collaboration_id.strip():
        raise KeyMaterialError("a collaboration id is required")
    try:
        return parse_collaboration_id(collaboration_id)
    except KeyMaterialError:
        return collaboration_id


def file_format(path: str | os.PathLike[str]) -> str:
    """`csv` or `parquet`, from the file extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InputError("unknown file format: use a .csv or .parquet file", file=os.fspath(path))


# --- reading sources -----------------------------------------------------------------------

@dataclass
class _Source:
    values: list[Any]
    dtype: core.DataType
    arrow: pa.ChunkedArray | None = None
    meta: tuple[Any, ...] = ()  # DECIMAL: (precision, scale); TIMESTAMP: (is_utc, unit)


def _arrow_dtype(t: pa.DataType) -> core.DataType:
    """C3R's classing of a Parquet column (via its Arrow type)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return core.DataType.STRING
    if pa.types.is_boolean(t):
        return core.DataType.BOOLEAN
    if pa.types.is_int16(t):
        return core.DataType.SMALLINT
    if pa.types.is_int32(t):
        return core.DataType.INT
    if pa.types.is_int64(t):
        return core.DataType.BIGINT
    if pa.types.is_date32(t):
        return core.DataType.DATE
    if pa.types.is_float64(t):
        return core.DataType.DOUBLE
    if pa.types.is_float32(t):
        return core.DataType.FLOAT
    if pa.types.is_decimal(t):
        return core.DataType.DECIMAL
    if pa.types.is_timestamp(t):
        return core.DataType.TIMESTAMP
    return core.DataType.UNKNOWN


def _read_sources(path: str, fmt: str, schema: Schema) -> tuple[dict[str, _Source], int]:
    if fmt == "csv":
        headers, records = read_csv(path, header_row=schema.header_row)
        if headers is None:
            width = len(records[0]) if records else 0
            if schema.source_count is not None and width != schema.source_count:
                raise InputError(f"positional schema has {schema.source_count} columns, "
                                 f"the data has {width}", file=path, row=1)
            names = [f"_c{i}" for i in range(width)]
        else:
            names = [_input_header(h, path) for h in headers]
        columns = {name: _Source([r[i] for r in records], core.DataType.STRING)
                   for i, name in enumerate(names)}
        return columns, len(records)
    if not schema.header_row:
        raise ConfigError("Parquet files require a mapped schema (headerRow: true)",
                          key="headerRow")
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"not a readable Parquet file ({type(exc).__name__})",
                         file=path) from None
    sources = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        dtype = _arrow_dtype(col.type)
        meta: tuple[Any, ...] = ()
        if dtype is core.DataType.DECIMAL:
            meta = (col.type.precision, col.type.scale)
        if dtype is core.DataType.TIMESTAMP:
            unit = col.type.unit
            ticks = col.cast(pa.timestamp(unit)).cast(pa.int64())
            if unit == "s":  # Parquet has no seconds unit: C3R would see milliseconds
                ticks, unit = pc.multiply(ticks, 1000), "ms"
            values, meta = ticks.to_pylist(), (col.type.tz is not None, unit)
        elif dtype is core.DataType.UNKNOWN:
            values = []
        else:
            values = col.to_pylist()
        sources[_input_header(name, path)] = _Source(values, dtype, col, meta)
    return sources, table.num_rows


def _input_header(header: str, path: str) -> str:
    try:
        return check_header(header)
    except ConfigError as exc:
        raise InputError(f"invalid header: {exc.detail}", file=path) from None


# --- normalization in front of C3R -------------------------------------------------------------

def _normalize_sources(sources: dict[str, _Source], spec: Mapping[str, str], profile: str,
                       region: str, path: str) -> dict[str, dict[str, int]]:
    import normalize  # imported here: only needed when normalization is asked for

    rejected: dict[str, dict[str, int]] = {}
    for raw_header, kind in spec.items():
        header = normalize_header(raw_header)
        if header not in sources:
            raise InputError("column to normalize not found", file=path, column=raw_header)
        src = sources[header]
        if src.dtype not in _STRING_TYPES:
            raise InputError("only string columns can be normalized", file=path,
                             column=raw_header)
        present = [i for i, v in enumerate(src.values) if v is not None]
        try:
            result = normalize.normalize_column(kind, [src.values[i] for i in present],
                                                profile=profile, region=region)
        except normalize.InvalidIdentifier:  # pragma: no cover - the column API never raises it
            raise
        except ValueError as exc:  # unknown kind, profile or region: a usage mistake
            raise ConfigError(str(exc), key="normalize") from None
        out: list[Any] = [None] * len(src.values)
        counts: collections.Counter[str] = collections.Counter()
        for i, value, reason in zip(present, result.values.to_pylist(),
                                    result.reasons.to_pylist(), strict=True):
            if reason is None and value is not None:
                out[i] = value
            else:
                counts[str(reason or "invalid")] += 1
        if counts.get("unsupported"):
            raise ConfigError(f"profile {profile} does not take identifier kind {kind}",
                              key="normalize")
        src.values = out
        rejected[header] = dict(sorted(counts.items()))
    return rejected


def normalize_header(header: str) -> str:
    """C3R's header normalization (trim, lowercase)."""
    return core.normalize_header(header)


# --- encryption ---------------------------------------------------------------------------------

def _row_number(index: int, fmt: str, header_row: bool) -> int:
    return index + (2 if fmt == "csv" and header_row else 1)


def _fingerprint_column(spec: ColumnSpec, src: _Source, secret: bytes, salt: str,
                        settings: core.Settings, path: str) -> list[str | None]:
    if src.dtype.fingerprint_class is None:
        raise InputError(f"{src.dtype.name} columns cannot be fingerprinted", file=path,
                         column=spec.source)
    nulls = sum(v is None for v in src.values)
    if nulls > 1 and not settings.allow_duplicates and not settings.preserve_nulls:
        raise InputError(f"target fingerprint column {spec.target!r} would get more than one "
                         "NULL and allowDuplicates is false", file=path, column=spec.source)
    key = core.fingerprint_key(secret, salt, spec.target, settings)
    dtype = src.dtype
    return [core.fingerprint_typed(v, dtype, key=key, settings=settings) for v in src.values]


def _sealed_column(spec: ColumnSpec, src: _Source, root: bytes, nonces: list[bytes],
                   settings: core.Settings, path: str, fmt: str, header_row: bool
                   ) -> list[str | None]:
    assert spec.pad is not None
    if src.dtype not in _ARROW and src.dtype not in _META_TYPES:
        raise InputError(f"{src.dtype.name} columns cannot be sealed", file=path,
                         column=spec.source)
    encode = _META_TYPES.get(src.dtype)
    encoded: list[bytes | None] = []
    for i, v in enumerate(src.values):
        if v is None and settings.preserve_nulls:
            encoded.append(None)
            continue
        try:
            encoded.append(encode(v, *src.meta) if encode else core.encode_sealed(v, src.dtype))
        except InputError as exc:
            raise InputError(exc.detail, file=path, row=_row_number(i, fmt, header_row),
                             column=spec.source) from None
    longest = max((len(e) for e, v in zip(encoded, src.values, strict=True)
                   if e is not None and v is not None), default=0)
    out: list[str | None] = []
    for i, e in enumerate(encoded):
        if e is None:
            out.append(None)
            continue
        try:
            out.append(core.seal_encoded(e, root=root, column=spec.target, nonce=nonces[i],
                                         pad=spec.pad, max_value_length=longest))
        except InputError as exc:
            raise InputError(exc.detail, file=path, row=_row_number(i, fmt, header_row),
                             column=spec.target) from None
    return out


def encrypt_file(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *,
                 schema: Schema, secret: bytes, collaboration_id: str,
                 settings: core.Settings, normalize: Mapping[str, str] | None = None,
                 profile: str = "strict", region: str = "US") -> EncryptReport:
    """Encrypt a CSV or Parquet table for AWS Clean Rooms exactly as the C3R client would."""
    path, out = os.fspath(input_path), os.fspath(output_path)
    fmt = file_format(path)
    if file_format(out) != fmt:
        raise InputError("the output must have the same format as the input", file=out)
    salt = canonical_salt(collaboration_id)
    if len(secret) < core.MIN_SECRET_BYTES:
        raise KeyMaterialError(f"the shared secret must be at least {core.MIN_SECRET_BYTES} bytes")
    schema.check_settings(settings)
    sources, n = _read_sources(path, fmt, schema)
    missing = sorted({c.source for c in schema.columns if c.source not in sources})
    if missing:
        raise InputError(f"source column(s) not found: {', '.join(missing)}", file=path)
    rejected = _normalize_sources(sources, normalize, profile, region, path) if normalize else {}
    nonces = [_secrets.token_bytes(core.NONCE_BYTES) for _ in range(n)]
    root = core.root_key(secret, salt)
    outputs: dict[str, list[Any]] = {}
    for spec in schema.columns:
        src = sources[spec.source]
        if spec.type == "cleartext":
            outputs[spec.target] = src.values
        elif spec.type == "fingerprint":
            outputs[spec.target] = _fingerprint_column(spec, src, secret, salt, settings, path)
        else:
            outputs[spec.target] = _sealed_column(spec, src, root, nonces, settings, path, fmt,
                                                  schema.header_row)
    if not settings.allow_duplicates:
        dupes = [c.target for c in schema.columns if c.type == "fingerprint"
                 and _has_duplicates(outputs[c.target])]
        if dupes:
            raise InputError("duplicate entries found in fingerprint column(s) "
                             f"{', '.join(dupes)} but allowDuplicates is false", file=path)
    order = sorted(range(n), key=nonces.__getitem__)
    targets = [c.target for c in schema.columns]
    if fmt == "csv":
        text = format_csv(targets, ([outputs[t][i] for t in targets] for i in order))
        with atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8", newline="")
    else:
        idx = pa.array(order, type=pa.int64())
        arrays = []
        for spec in schema.columns:
            src = sources[spec.source]
            if spec.type == "cleartext" and src.arrow is not None and spec.source not in rejected:
                arrays.append(src.arrow.take(idx))
            elif spec.type == "cleartext" and src.arrow is not None:
                arrays.append(pa.array([outputs[spec.target][i] for i in order],
                                       type=src.arrow.type))
            else:
                arrays.append(pa.array([outputs[spec.target][i] for i in order], type=pa.string()))
        with atomic_path(out) as tmp:
            pq.write_table(pa.table(arrays, names=targets), tmp)
    return EncryptReport(n, tuple(targets), fmt, rejected)


def _has_duplicates(values: list[str | None]) -> bool:
    present = [v for v in values if v is not None]
    return len(set(present)) != len(present)


# --- decryption ---------------------------------------------------------------------------------

_ARROW = {
    core.DataType.STRING: pa.string(), core.DataType.CHAR: pa.string(),
    core.DataType.VARCHAR: pa.string(), core.DataType.BIGINT: pa.int64(),
    core.DataType.INT: pa.int32(), core.DataType.SMALLINT: pa.int16(),
    core.DataType.BOOLEAN: pa.bool_(), core.DataType.DATE: pa.date32(),
    core.DataType.DOUBLE: pa.float64(), core.DataType.FLOAT: pa.float32(),
}


_META_TYPES: dict[core.DataType, Callable[..., bytes]] = {
    core.DataType.DECIMAL: core.encode_decimal, core.DataType.TIMESTAMP: core.encode_timestamp}
_EPOCH = _dt.datetime(1970, 1, 1)


def csv_text(value: object) -> str | None:
    """A decrypted value as C3R writes it to CSV (booleans lowercase, dates ISO).

    Timestamps are written as `yyyy-MM-dd HH:mm:ss.SSSSSS` of their ticks (C3R renders
    non-UTC ones in the decrypting machine's time zone; we do not depend on that zone).
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, core.SealedDecimal):
        return None if value.value is None else core.plain_decimal(value.value)
    if isinstance(value, core.SealedTimestamp):
        if value.value is None:
            return None
        ticks = value.value
        micros = ticks // 1000 if value.unit == "ns" else ticks * 1000 if value.unit == "ms" \
            else ticks
        return (_EPOCH + _dt.timedelta(microseconds=micros)).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _unseal_column(values: list[Any], root: bytes, path: str, column: str, first_row: int
                   ) -> tuple[list[Any], set[core.DataType]]:
    out: list[Any] = []
    types: set[core.DataType] = set()
    for i, v in enumerate(values):
        if isinstance(v, str) and v.startswith(core.SEALED_PREFIX):
            try:
                dtype, plain = core.decode_sealed(core.open_sealed(v, root=root))
            except DecryptionError as exc:
                raise DecryptionError(f"{path}, row {i + first_row}, column {column!r}: "
                                      f"{exc}") from None
            types.add(dtype)
            out.append(plain)
        else:
            out.append(v)
    return out, types


def _typed_array(values: list[Any], dtype: core.DataType) -> pa.Array:
    """Decrypted values of one C3R type as an Arrow array of the matching Parquet type."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, core.SealedDecimal):
        return pa.array([None if v is None else v.value for v in values],
                        pa.decimal128(first.precision, first.scale))
    if isinstance(first, core.SealedTimestamp):
        ticks = pa.array([None if v is None else v.value for v in values], pa.int64())
        return ticks.cast(pa.timestamp(first.unit, tz="UTC" if first.is_utc else None))
    if first is None and dtype not in _ARROW:
        return pa.nulls(len(values), pa.string())
    return pa.array(values, type=_ARROW[dtype])


def decrypt_file(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *,
                 secret: bytes, collaboration_id: str) -> int:
    """Turn the sealed columns of a C3R table (CSV or Parquet) back into cleartext; returns rows.

    Fingerprint and cleartext values pass through unchanged, as with C3R. The output holds
    cleartext, so it is written with mode 0600.
    """
    path, out = os.fspath(input_path), os.fspath(output_path)
    fmt = file_format(path)
    if file_format(out) != fmt:
        raise InputError("the output must have the same format as the input", file=out)
    root = core.root_key(secret, canonical_salt(collaboration_id))
    if fmt == "csv":
        headers, records = read_csv(path, header_row=True)
        assert headers is not None
        columns = []
        for j, header in enumerate(headers):
            plain, _ = _unseal_column([r[j] for r in records], root, path, header, 2)
            columns.append([csv_text(v) for v in plain])
        text = format_csv(headers, zip(*columns, strict=True) if columns and records else [])
        with atomic_path(out, 0o600) as tmp:  # cleartext personal data
            tmp.write_text(text, encoding="utf-8", newline="")
        return len(records)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"not a readable Parquet file ({type(exc).__name__})",
                         file=path) from None
    arrays = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            arrays.append(col)
            continue
        plain, types = _unseal_column(col.to_pylist(), root, path, name, 1)
        if not types:
            arrays.append(col)
        elif len(types) == 1 and all(v is None or not isinstance(v, str) or
                                     next(iter(types)) in _STRING_TYPES for v in plain):
            arrays.append(_typed_array(plain, next(iter(types))))
        else:
            arrays.append(pa.array([csv_text(v) for v in plain], type=pa.string()))
    with atomic_path(out, 0o600) as tmp:  # cleartext personal data
        pq.write_table(pa.table(arrays, names=table.column_names), tmp)
    return table.num_rows
