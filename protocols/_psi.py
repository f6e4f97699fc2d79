"""ECDH private set intersection over files: blind, reblind, finish (protocol ecdh-x25519-ell2/v1).

Three roles, files between them:

    party A: psi_blind_file   raw extract -> A.round1 (blinded ids, random row ids, shuffled;
                                             sent to B) + A.attrs (attributes; sent to the engine)
    party B: psi_reblind_file A.round1    -> A.round2 (doubly blinded; sent to the engine)
    engine:  psi_finish_file  A.round2 + A.attrs -> A.tokens.parquet, an ordinary token file

and the same with A and B swapped. A value is blinded as X25519(a, H(value)) where H is RFC 9380
hash_to_curve (curve25519_XMD:SHA-512_ELL2_RO_) with the DST
"cleanroom-psi-v1:<collaboration id>:<kind>"; X25519 scalars commute, so
X25519(b, X25519(a, H(x))) == X25519(a, X25519(b, H(y))) exactly when x == y.

A missing or invalid identifier is replaced by the blinding of 32 random bytes, so the other
party cannot tell which rows lack it; only the attribute file (seen by the engine alone) says so.
A fixed canary value goes through the same steps on both sides; the doubly blinded canary
becomes the finished file's `canary` and `key_fingerprint`, so the engine refuses files made with
different keys or collaborations instead of reporting an empty overlap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import normalize

from ._errors import CleanroomBug, ConfigError, InputError, ManifestMismatch, PolicyRefusal
from ._identifying import check_identifying
from ._io import atomic_path
from ._manifest import PROTOCOL_PSI, Manifest, write_token_file
from ._options import check_kind
from ._readers import open_input, read_batches
from .hazmat import POINT_BYTES, SUITE_RO, psi_dst
from .hazmat._blinding import BlindingPool, worker_count

PSI_METADATA_KEY = b"cleanroom-psi"
PSI_FILE_VERSION = 1
CANARY_VALUE = b"cleanroom-psi canary v1"
_CANARY_KIND = "_canary"  # never a normalize kind, so never an identifier's DST
_PRESENT = "_psi_present:"  # attribute-file column prefix: which rows hold a real identifier
_COMMON = ("party", "collaboration_id", "columns", "row_count", "canary", "suite")
_REQUIRED = {
    "round1": _COMMON,
    "round2": (*_COMMON, "canary_round1", "cardinality_only"),
    "attrs": (*_COMMON, "profile", "region", "quality", "identifiers", "library_versions"),
}


# ---- the three file steps --------------------------------------------------------------------

@dataclass(frozen=True)
class PsiBlindResult:
    """What `psi_blind_file` wrote: row count and per-column quality counts (no identifiers)."""

    round1: str
    attrs: str
    rows: int
    quality: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class PsiReblindResult:
    """What `psi_reblind_file` wrote."""

    out: str
    rows: int
    columns: tuple[str, ...]
    cardinality_only: bool


def _library_versions() -> dict[str, str]:
    """Versions that affect normalization (as the tokenizer records them) and the crypto."""
    out = dict(normalize.library_versions())
    for dist in ("cryptography", "gmpy2"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _random_ids(n: int) -> np.ndarray:
    """n distinct random positive int64 row ids from the OS's randomness."""
    while True:
        ids = np.frombuffer(secrets.token_bytes(8 * n), dtype="<u8") >> np.uint64(1)
        ids = ids.astype(np.int64)
        if len(np.unique(ids)) == n and (ids > 0).all():
            return ids


def _permutation(n: int) -> np.ndarray:
    """A uniformly random permutation seeded from the OS's randomness."""
    return np.random.Generator(np.random.PCG64(secrets.randbits(128))).permutation(n)


def _int64_array(values: np.ndarray) -> pa.Array:
    """An Arrow int64 array on a numpy array's memory (pa.array would import pandas, ~0.4 s
    of start-up in a command that needs none of it)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _write_parquet(table: pa.Table, meta: dict[str, Any], tmp: os.PathLike[str],
                   dictionary: bool = True) -> None:
    """Write a PSI file; `dictionary=False` for random values (points, row ids), where
    dictionary encoding only costs time, writing and reading."""
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[PSI_METADATA_KEY] = json.dumps(meta, sort_keys=True).encode()
    pq.write_table(table.replace_schema_metadata(schema_meta), tmp, compression="zstd",
                   use_dictionary=dictionary)


def _read_psi(path: str | os.PathLike[str], stage: str) -> tuple[pa.Table, dict[str, Any]]:
    """Read a PSI round/attribute file and its metadata; refuse the wrong kind of file."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise InputError("file not found", file=name)
    try:  # not pq.read_table: it imports pyarrow.dataset and pandas, ~0.4 s per process
        with pq.ParquetFile(name) as parquet:
            table = parquet.read()
    except (pa.ArrowInvalid, OSError):
        raise InputError("not a readable Parquet file", file=name) from None
    raw = (table.schema.metadata or {}).get(PSI_METADATA_KEY)
    if raw is None:
        raise InputError(f"not a cleanroom PSI {stage} file (no PSI metadata)", file=name)
    try:
        meta = json.loads(raw)
    except ValueError:
        raise InputError("PSI metadata is malformed", file=name) from None
    if meta.get("version") != PSI_FILE_VERSION or meta.get("protocol") != PROTOCOL_PSI:
        raise InputError("unsupported PSI file version or protocol", file=name)
    if meta.get("stage") != stage:
        raise InputError(f"this is a PSI {meta.get('stage')} file, expected a {stage} file",
                         file=name)
    missing = [k for k in _REQUIRED[stage] if k not in meta]
    if missing:
        raise InputError(f"PSI metadata lacks {', '.join(missing)}", file=name)
    prefix = _PRESENT if stage == "attrs" else ""
    if not isinstance(meta["columns"], list) or not all(
            isinstance(c, str) and prefix + c in table.column_names for c in meta["columns"]):
        raise InputError("PSI metadata names columns the file does not have", file=name)
    for k in ("canary", "canary_round1"):
        if k in meta and not _is_hex32(meta[k]):
            raise InputError(f"PSI metadata {k} is not a 32-byte hex value", file=name)
    return table, meta


def _is_hex32(value: object) -> bool:
    try:
        return isinstance(value, str) and len(bytes.fromhex(value)) == POINT_BYTES
    except ValueError:
        return False


def _normalized(kind: str, values: pa.Array, profile: str, region: str | None
                ) -> tuple[pa.Array, dict[str, Any]]:
    try:
        result = normalize.normalize_column(kind, values, profile=profile, region=region)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    norm = result.values
    counts = pc.value_counts(result.reasons.drop_null())
    reasons = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                       strict=True))
    missing = reasons.pop("empty", 0)
    valid = len(norm) - norm.null_count
    return norm, {"valid": valid, "missing": missing, "invalid": dict(sorted(reasons.items()))}


def _messages(values: pa.Array) -> list[bytes]:
    """The UTF-8 bytes of each normalized value; 32 random bytes where it is missing, so the
    other party sees a random point there."""
    raw = pc.cast(values, pa.binary()).to_pylist()
    if not values.null_count:
        return raw
    return [v if v is not None else secrets.token_bytes(32) for v in raw]


_MAX_CHUNK_POINTS = 1 << 25  # 1 GiB of points per Arrow chunk (int32 offsets)


def points_array(blob: bytes) -> pa.Array | pa.ChunkedArray:
    """A binary column of the 32-byte points of a blob, built on the blob's own memory."""
    chunks = []
    step = _MAX_CHUNK_POINTS * POINT_BYTES
    for start in range(0, max(len(blob), 1), step):
        part = blob[start:start + step]
        count = len(part) // POINT_BYTES
        offsets = np.arange(0, count * POINT_BYTES + 1, POINT_BYTES, dtype=np.int32)
        chunks.append(pa.Array.from_buffers(pa.binary(), count,
                                            [None, pa.py_buffer(offsets), pa.py_buffer(part)]))
    return chunks[0] if len(chunks) == 1 else pa.chunked_array(chunks, pa.binary())


def points_blob(column: pa.ChunkedArray, file: str, name: str) -> bytes:
    """The values of a binary column laid end to end; InputError unless each is 32 bytes."""
    parts: list[bytes | pa.Buffer] = []
    for chunk in column.chunks:
        if not (pa.types.is_binary(chunk.type) or pa.types.is_large_binary(chunk.type)
                or pa.types.is_fixed_size_binary(chunk.type)) or chunk.null_count:
            raise InputError("every value must be 32 bytes", file=file, column=name)
        chunk = chunk.cast(pa.binary())
        if not len(chunk):
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=len(chunk) + 1,
                                offset=chunk.offset * 4)
        if (np.diff(offsets) != POINT_BYTES).any():
            raise InputError("every value must be 32 bytes", file=file, column=name)
        parts.append(chunk.buffers()[2][int(offsets[0]):int(offsets[-1])])
    return b"".join(parts)


def _read_input(path: str | os.PathLike[str], id_columns: list[str], attr_columns: list[str],
                delimiter: str, encoding: str) -> pa.Table:
    source = open_input(path, delimiter=delimiter, encoding=encoding)
    wanted = list(dict.fromkeys(id_columns + attr_columns))
    batches = list(read_batches(source, wanted, string_columns=id_columns))
    return pa.Table.from_batches(batches)


def psi_blind_file(
    input_path: str | os.PathLike[str], *, party: str, key: X25519PrivateKey,
    collaboration_id: str, ids: Sequence[tuple[str, str]], attrs: Sequence[str] = (),
    profile: str = "strict", region: str | None = "US",
    out_round1: str | os.PathLike[str], out_attrs: str | os.PathLike[str],
    delimiter: str = ",", encoding: str = "utf-8", allow_identifying_attr: bool = False,
    workers: int | None = None,
) -> PsiBlindResult:
    """Party step 1: normalize, hash to the curve and blind each identifier with `key`; write
    the round-1 file (for the other party) and the attribute file (for the engine only)."""
    kinds = [k for k, _ in ids]
    if not party or not party.strip():
        raise ConfigError("the party name must not be empty", key="--party")
    if not ids:
        raise ConfigError("give at least one identifier as KIND=COLUMN")
    if len(set(kinds)) != len(kinds):
        raise ConfigError("each identifier kind may be given once")
    for a in attrs:
        if a.startswith(_PRESENT) or a == "row_id":
            raise ConfigError(f"attribute column name {a!r} is reserved")
    if set(attrs) & {c for _, c in ids}:
        raise PolicyRefusal("id_column_as_attribute", "a column matched as an identifier "
                            "cannot also leave in clear as an attribute")
    for kind in kinds:
        check_kind(kind)
    table = _read_input(input_path, [c for _, c in ids], list(attrs), delimiter, encoding)
    if attrs and not allow_identifying_attr:  # attributes reach the engine in clear
        check_identifying(table.select(list(attrs)).to_batches()[0], list(attrs),
                          region or "US", os.fspath(input_path))
    n = table.num_rows
    perm = _int64_array(_permutation(n))
    row_ids = _int64_array(_random_ids(n))
    msgs, present, quality = {}, {}, {}
    for kind, column in ids:
        norm, quality[kind] = _normalized(kind, table.column(column), profile, region)
        norm = norm.take(perm)
        present[kind] = pc.is_valid(norm)
        msgs[kind] = _messages(norm)
    with BlindingPool(worker_count(n * len(ids) + 1, workers)) as runner:
        canary = runner.blind(key, psi_dst(collaboration_id, _CANARY_KIND), [CANARY_VALUE])
        blinded = {kind: points_array(runner.blind(key, psi_dst(collaboration_id, kind),
                                                   msgs.pop(kind)))
                   for kind in kinds}
    common = {"version": PSI_FILE_VERSION, "protocol": PROTOCOL_PSI, "suite": SUITE_RO,
              "party": party, "collaboration_id": collaboration_id, "columns": kinds,
              "row_count": n, "canary": canary.hex()}
    round1 = pa.table({"row_id": row_ids, **blinded})
    attr_table = pa.table({"row_id": row_ids,
                           **{a: table.column(a).take(perm) for a in attrs},
                           **{_PRESENT + k: present[k] for k in kinds}})
    attrs_meta = {**common, "stage": "attrs", "profile": profile, "region": region or "",
                  "quality": quality,
                  "identifiers": {k: {"kinds": [k], "match_key": False} for k in kinds},
                  "library_versions": _library_versions()}
    with atomic_path(out_round1) as tmp1, atomic_path(out_attrs) as tmp2:
        _write_parquet(round1, {**common, "stage": "round1"}, tmp1, dictionary=False)
        _write_parquet(attr_table, attrs_meta, tmp2)
    return PsiBlindResult(os.fspath(out_round1), os.fspath(out_attrs), n, quality)


def psi_reblind_file(round1_path: str | os.PathLike[str], *, key: X25519PrivateKey,
                     out: str | os.PathLike[str], cardinality_only: bool = False,
                     workers: int | None = None) -> PsiReblindResult:
    """Party step 2: blind the other party's round-1 values again with `key`; the result goes
    to the engine. With `cardinality_only`, drop row ids and shuffle, so only a count can be
    learnt (one identifier column only)."""
    name = os.fspath(round1_path)
    table, meta = _read_psi(name, "round1")
    columns = list(meta.get("columns") or [])
    names = table.column_names
    if "row_id" not in names or [c for c in names if c != "row_id"] != columns:
        raise InputError("round-1 columns do not match its metadata", file=name)
    if cardinality_only and len(columns) != 1:
        raise ConfigError("--cardinality-only works on a round-1 file with one identifier "
                          f"column; this one has {len(columns)}")
    canary_in = bytes.fromhex(meta["canary"])
    n = table.num_rows
    out_cols: dict[str, pa.Array] = {}
    with BlindingPool(worker_count(n * len(columns), workers)) as runner:
        canary_out, bad = runner.reblind(key, canary_in)
        if bad >= 0:
            raise InputError("the canary is not a valid curve point", file=name)
        for col in columns:
            doubled, bad = runner.reblind(key, points_blob(table.column(col), name, col))
            if bad >= 0:
                raise InputError("not a point of the curve (refusing to blind it)",
                                 file=name, row=bad + 1, column=col)
            out_cols[col] = points_array(doubled)
    if cardinality_only:
        round2 = pa.table({c: v.take(_int64_array(_permutation(n))) for c, v in out_cols.items()})
    else:
        round2 = pa.table({"row_id": table.column("row_id"), **out_cols})
    out_meta = {k: meta[k] for k in ("version", "protocol", "suite", "party",
                                      "collaboration_id", "columns", "row_count")}
    out_meta.update(stage="round2", canary_round1=meta["canary"],
                    canary=canary_out.hex(), cardinality_only=cardinality_only)
    with atomic_path(out) as tmp:
        _write_parquet(round2, out_meta, tmp, dictionary=False)
    return PsiReblindResult(os.fspath(out), n, tuple(columns), cardinality_only)


def psi_fingerprint(canary_hex: str) -> str:
    """The short key fingerprint of a doubly blinded canary (16 hex digits)."""
    return hashlib.sha256(b"cleanroom-psi-v1 fingerprint:" + bytes.fromhex(canary_hex)
                          ).hexdigest()[:16]


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def psi_finish_file(*, round2: str | os.PathLike[str], attrs: str | os.PathLike[str],
                    party: str, out: str | os.PathLike[str],
                    peer_round2: str | os.PathLike[str] | None = None) -> Manifest:
    """Engine step: join a party's doubly blinded values with its attribute file into an
    ordinary token file; refuse files that do not belong together."""
    r2_name, at_name = os.fspath(round2), os.fspath(attrs)
    r2, r2_meta = _read_psi(r2_name, "round2")
    at, at_meta = _read_psi(at_name, "attrs")
    if at_meta["party"] != party or r2_meta["party"] != party:
        raise ManifestMismatch(f"party differs: --party {party!r}, attribute file "
                               f"{at_meta['party']!r}, round-2 file {r2_meta['party']!r}")
    if r2_meta["collaboration_id"] != at_meta["collaboration_id"]:
        raise ManifestMismatch("collaboration id differs between the round-2 and the "
                               "attribute file")
    if not _same(r2_meta["canary_round1"], at_meta["canary"]):
        raise ManifestMismatch("canary check failed: the round-2 file was not made from this "
                               "party's round-1 file (different key or collaboration)")
    columns = list(at_meta["columns"])
    if list(r2_meta["columns"]) != columns or r2_meta["row_count"] != at_meta["row_count"]:
        raise ManifestMismatch("identifier columns or row count differ between the round-2 "
                               "and the attribute file")
    if peer_round2 is not None:
        _, peer = _read_psi(peer_round2, "round2")
        if peer["collaboration_id"] != r2_meta["collaboration_id"]:
            raise ManifestMismatch("collaboration id differs between the two parties' "
                                   "round-2 files")
        if not _same(peer["canary"], r2_meta["canary"]):
            raise ManifestMismatch("canary check failed: the two parties' doubly blinded "
                                   "canaries differ (different keys or collaboration)")
    n = int(at_meta["row_count"])
    attr_names = [c for c in at.column_names if c != "row_id" and not c.startswith(_PRESENT)]
    if r2_meta.get("cardinality_only"):
        table = pa.table({"row_id": _int64_array(_random_ids(n)),
                          **{c: r2.column(c) for c in columns}})
        attr_names = []
    else:
        # each attribute row's position in the round-2 file: row ids are unique on both sides
        r2_ids, at_ids = r2.column("row_id"), at.column("row_id")
        pos = pc.index_in(at_ids, value_set=r2_ids)
        if (r2.num_rows != n or at.num_rows != n or pos.null_count
                or pc.count_distinct(r2_ids).as_py() != n
                or pc.count_distinct(at_ids).as_py() != n):
            raise ManifestMismatch("row ids differ between the round-2 and the attribute file")
        null = pa.nulls(n, pa.binary())
        table = pa.table({
            "row_id": at_ids,
            **{c: pc.if_else(at.column(_PRESENT + c), r2.column(c).take(pos), null)
               for c in columns},
            **{a: at.column(a) for a in attr_names},
        })
    if table.num_rows != n:
        raise CleanroomBug("finished token file has the wrong row count")
    manifest = Manifest(
        party=party, collaboration_id=at_meta["collaboration_id"], protocol=PROTOCOL_PSI,
        key_fingerprint=psi_fingerprint(r2_meta["canary"]), profile=at_meta["profile"],
        region=at_meta["region"], row_count=n, identifiers=at_meta["identifiers"],
        attributes={a: str(table.schema.field(a).type) for a in attr_names},
        quality=at_meta["quality"], library_versions=at_meta["library_versions"],
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), canary=r2_meta["canary"],
        extra={"suite": at_meta["suite"],
               "cardinality_only": bool(r2_meta.get("cardinality_only"))},
    )
    write_token_file(table, manifest, out)
    return manifest
