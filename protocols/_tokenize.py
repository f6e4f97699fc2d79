"""tokenize_file: a party's extract in, a token file (Parquet + manifest) and a quality report out.

The input is read in bounded batches; each batch is normalized with the column API of
`normalize` and tokenized with HMAC-SHA256 (`hazmat.hmac_tokens`), in a pool of worker
processes (one per core) when the file spans several batches. Each output batch gets random 64-bit
row ids and is shuffled (in the worker that made it), so neither the ids nor the file order
reveal the input order; the main process reads, checks attributes and writes.
Duplicate counts ("rows sharing a token") are computed at the end by DuckDB over a side file
of tokens, so memory stays bounded whatever the number of rows.

With `fuzzy=True`, every `--id` column of a kind that has fuzzy-tolerant forms (names, date of
birth, address parts, email; see `protocols._fuzzy`) also gets one token column per derived
form, `<column>__<form>`, each under its own HKDF key; the manifest lists them (format
version 2). Forms share values by design (a phonetic code stands for many names), so they get
no "rows sharing a token" count.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import normalize

from ._errors import CleanroomBug, ConfigError, InputError, PolicyRefusal
from ._fuzzy import (
    FORM_SEPARATOR,
    FUZZY_FORMS,
    FUZZY_VERSION,
    derive_forms,
    derive_fuzzy_key,
    form_tokens,
    fuzzy_library_versions,
)
from ._identifying import check_identifying
from ._io import atomic_path, ensure_parent
from ._keys import CollaborationSecret, derive_match_key, derive_token_key, key_fingerprint
from ._manifest import (
    FORMAT_VERSION,
    FUZZY_FORMAT_VERSION,
    MANIFEST_METADATA_KEY,
    PROTOCOL_HMAC,
    Manifest,
)
from ._options import check_kind, check_profile, check_region
from ._quality import MISSING_REASON, count_reasons, merge_counts, repeated_rows
from ._readers import BATCH_ROWS, open_input, read_batches, refuse_overwriting_input
from .hazmat import TOKEN_TYPE, hmac_tokens, join_match_parts

RESERVED_COLUMNS = frozenset({"row_id"})


@dataclass(frozen=True)
class TokenColumn:
    """One token column: its name and the (kind, input column) parts it is made of; a
    derived-form column names its `form` and the token column it derives from (`of`)."""

    name: str
    parts: tuple[tuple[str, str], ...]
    match_key: bool = False
    form: str | None = None
    of: str | None = None

    def spec(self) -> dict[str, Any]:
        """The column's entry in the manifest's `identifiers`."""
        doc: dict[str, Any] = {"kinds": list(self.kinds), "match_key": self.match_key}
        if self.form is not None:
            doc.update(form=self.form, of=self.of)
        return doc

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind, _ in self.parts)


def plan_token_columns(identifiers: Sequence[tuple[str, str]],
                       match_keys: Sequence[tuple[str, Sequence[tuple[str, str | None]]]] = (),
                       *, fuzzy: bool = False) -> tuple[TokenColumn, ...]:
    """Name the token columns: one per `--id KIND=COLUMN` (a second id of the same kind is
    KIND_2), one per match key; a match key part without a column uses that kind's --id.
    With `fuzzy`, then one per derived form of each --id column whose kind has forms
    (`<column>__<form>`, strongest form first)."""
    out: list[TokenColumn] = []
    names: set[str] = set()
    by_kind: dict[str, list[str]] = {}
    for kind, column in identifiers:
        check_kind(kind)
        by_kind.setdefault(kind, []).append(column)
        name = kind if len(by_kind[kind]) == 1 else f"{kind}_{len(by_kind[kind])}"
        names.add(name)
        out.append(TokenColumn(name, ((kind, column),)))
    for name, parts in match_keys:
        if name in names or name in RESERVED_COLUMNS or name in normalize.KINDS:
            raise ConfigError("the name is already used by another token column or a kind",
                              key=f"--match-key {name}")
        if FORM_SEPARATOR in name:
            raise ConfigError(f"{FORM_SEPARATOR!r} in a name is kept for derived-form columns",
                              key=f"--match-key {name}")
        resolved = []
        for kind, given in parts:
            check_kind(kind)
            if given is None:
                columns = by_kind.get(kind, [])
                if len(columns) != 1:
                    raise ConfigError(
                        f"part {kind!r} needs exactly one --id {kind}=COLUMN (found "
                        f"{len(columns)}); or write it as {kind}:COLUMN",
                        key=f"--match-key {name}")
                given = columns[0]
            resolved.append((kind, given))
        names.add(name)
        out.append(TokenColumn(name, tuple(resolved), match_key=True))
    if fuzzy:
        for col in [c for c in out if not c.match_key and c.kinds[0] in FUZZY_FORMS]:
            out += [TokenColumn(f"{col.name}{FORM_SEPARATOR}{form}", col.parts, form=form,
                                of=col.name) for form in FUZZY_FORMS[col.kinds[0]]]
        if not any(c.form for c in out):
            raise ConfigError("--fuzzy needs an --id of a kind with fuzzy forms: "
                              + ", ".join(FUZZY_FORMS), key="--fuzzy")
    if not out:
        raise ConfigError("give at least one --id KIND=COLUMN or --match-key", key="--id")
    return tuple(out)


@dataclass(frozen=True)
class TokenizeReport:
    """What a tokenize run produced: the output path and its manifest (no secret inside)."""

    output: str
    manifest: Manifest

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        doc = {
            "output": self.output, "party": m.party, "collaboration_id": m.collaboration_id,
            "protocol": m.protocol, "key_fingerprint": m.key_fingerprint,
            "profile": m.profile, "region": m.region, "row_count": m.row_count,
            "identifiers": {name: dict(spec, **m.quality.get(name, {}))
                            for name, spec in m.identifiers.items()},
            "attributes": m.attributes, "library_versions": m.library_versions,
            "created": m.created,
        }
        if m.fuzzy:
            doc.update(format_version=m.format_version, fuzzy=m.fuzzy)
        return doc


@dataclass(frozen=True)
class _Plan:
    """Everything a worker needs for one batch; the keys never show in a repr."""

    columns: tuple[TokenColumn, ...]
    profile: str
    region: str
    keys: tuple[bytes, ...] = field(repr=False)
    normalize_workers: int | None = None


def _normalized(plan: _Plan, batch: pa.RecordBatch, kind: str, column: str,
                cache: dict[Any, Any]) -> tuple[pa.Array, pa.Array]:
    if (kind, column) not in cache:
        values = batch.column(column)
        res = normalize.normalize_column(kind, values, profile=plan.profile, region=plan.region,
                                         workers=plan.normalize_workers, foreign_postal=True)
        cache[(kind, column)] = (_as_string_array(res.values), _as_string_array(res.reasons))
    return cache[(kind, column)]


def _as_string_array(arr: Any) -> pa.Array:
    arr = pa.array(arr) if not isinstance(arr, pa.Array | pa.ChunkedArray) else arr
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr if arr.type == pa.string() else arr.cast(pa.string())


def _match_reasons(kinds: Sequence[str], reasons: Sequence[pa.Array], bad: pa.Array) -> pa.Array:
    """A match key's reason: the first invalid part as `kind:reason`, else `empty`, else null.
    Worked out only on the rows that have one (a few percent), then put back in place."""
    flagged = bad
    for r in reasons:
        flagged = pc.or_(flagged, pc.is_valid(r))
    out = pa.nulls(len(bad), pa.string())
    if not pc.any(flagged).as_py():
        return out
    reasons = [r.filter(flagged) for r in reasons]
    null = pa.scalar(None, pa.string())
    invalid = [pc.if_else(pc.equal(r, "empty"), null,
                          pc.binary_join_element_wise(pa.scalar(f"{k}:"), r, ""))
               for k, r in zip(kinds, reasons, strict=True)]
    empty = [pc.if_else(pc.equal(r, "empty"), pa.scalar("empty"), null) for r in reasons]
    combined = pc.coalesce(*invalid, *empty)
    some = pc.if_else(pc.and_(pc.is_null(combined), bad.filter(flagged)),
                      pa.scalar("control_char"), combined)
    return pc.replace_with_mask(out, flagged, some)


def _form_values(plan: _Plan, batch: pa.RecordBatch, col: TokenColumn,
                 cache: dict[Any, Any]) -> tuple[pa.Array, pa.Array]:
    """A derived form's values; its reason is "empty" where the form is null (missing or
    invalid input, or a value the form cannot be derived from)."""
    kind, column = col.parts[0]
    if ("forms", kind, column) not in cache:
        values, _ = _normalized(plan, batch, kind, column, cache)
        cache[("forms", kind, column)] = derive_forms(kind, values)
    values = cache[("forms", kind, column)][col.form]
    reasons = pc.if_else(pc.is_valid(values), pa.scalar(None, pa.string()),
                         pa.scalar(MISSING_REASON))
    return values, reasons


def tokenize_batch(
    plan: _Plan, batch: pa.RecordBatch
) -> tuple[list[pa.Array], list[dict[str, Any]]]:
    """Normalize and tokenize one batch: token arrays and quality counts per token column."""
    cache: dict[Any, Any] = {}
    tokens, counts = [], []
    for col, key in zip(plan.columns, plan.keys, strict=True):
        if col.form is not None:
            values, reasons = _form_values(plan, batch, col, cache)
            tokens.append(form_tokens(key, values))
            counts.append(count_reasons(reasons))
            continue
        if not col.match_key:
            values, reasons = _normalized(plan, batch, *col.parts[0], cache)
        else:
            pairs = [_normalized(plan, batch, kind, column, cache) for kind, column in col.parts]
            values, bad = join_match_parts([v for v, _ in pairs])
            reasons = _match_reasons(col.kinds, [r for _, r in pairs], bad)
        tokens.append(hmac_tokens(key, values))
        counts.append(count_reasons(reasons))
    return tokens, counts


def shuffled_batch(plan: _Plan, batch: pa.RecordBatch, tokens: list[pa.Array],
                   attributes: Sequence[str]) -> pa.RecordBatch:
    """One output batch: random 64-bit row ids, the tokens and attributes, rows shuffled.
    (A RecordBatch, not a Table: it pickles back from a worker about 7x faster.)"""
    n = batch.num_rows
    row_id = pa.array(np.frombuffer(os.urandom(8 * n), dtype=np.int64))
    rng = np.random.default_rng(int.from_bytes(os.urandom(16), "big"))
    arrays = [row_id, *tokens, *(batch.column(a) for a in attributes)]
    names = ["row_id", *(c.name for c in plan.columns), *attributes]
    return pa.RecordBatch.from_arrays(arrays, names=names).take(pa.array(rng.permutation(n)))


def _work(args: tuple[_Plan, pa.RecordBatch, tuple[str, ...]]
          ) -> tuple[pa.RecordBatch, list[dict[str, Any]]]:
    plan, batch, attributes = args
    tokens, counts = tokenize_batch(plan, batch)
    return shuffled_batch(plan, batch, tokens, attributes), counts


def _pool_map(plan: _Plan, batches: Iterable[pa.RecordBatch], workers: int,
              attributes: tuple[str, ...]) -> Iterator[tuple[pa.RecordBatch, list[dict[str, Any]]]]:
    """Tokenize batches into shuffled output tables, in order: in-process for one batch or one
    worker, else in a process pool with at most `workers + 1` batches in flight (bounded
    memory). Workers get only the columns they need and send back finished tables, so the
    main process only reads and writes."""
    it = iter(batches)
    first = next(it, None)
    if first is None:
        return
    second = next(it, None)
    if second is None or workers <= 1:
        for batch in _chain(first, second, it):
            yield _work((plan, batch, attributes))
        return
    # fork: workers start in milliseconds with everything imported, and a user's script
    # needs no `if __name__ == "__main__"` guard; elsewhere fall back to spawn.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    columns = _needed(plan) + [a for a in attributes if a not in _needed(plan)]
    worker_plan = replace(plan, normalize_workers=1)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: deque[Future[Any]] = deque()
        for batch in _chain(first, second, it):
            pending.append(pool.submit(_work, (worker_plan, batch.select(columns), attributes)))
            while len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _chain(first: pa.RecordBatch, second: pa.RecordBatch | None,
           rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    if second is not None:
        yield second
        yield from rest


def _needed(plan: _Plan) -> list[str]:
    return sorted({column for col in plan.columns for _, column in col.parts})


def check_attributes(attributes: Sequence[str], columns: Sequence[TokenColumn]) -> None:
    """Refuse an attribute that is also an --id column or clashes with a token column name."""
    id_columns = {column for col in columns for _, column in col.parts}
    taken = {col.name for col in columns} | RESERVED_COLUMNS
    for attr in attributes:
        if attr in id_columns:
            raise PolicyRefusal("id_column_as_attribute",
                                f"column {attr!r} is tokenized as an identifier; it cannot "
                                "also leave in clear as an attribute")
        if attr in taken:
            raise ConfigError("an attribute cannot have the name of a token column or row_id",
                              key=f"--attr {attr}")
    if len(set(attributes)) != len(attributes):
        raise ConfigError("an attribute is given twice", key="--attr")


def tokenize_file(input_path: str | os.PathLike[str], output: str | os.PathLike[str], *,
                  party: str, secret: CollaborationSecret,
                  identifiers: Sequence[tuple[str, str]] = (),
                  match_keys: Sequence[tuple[str, Sequence[tuple[str, str | None]]]] = (),
                  attributes: Sequence[str] = (), profile: str = "strict", region: str = "US",
                  delimiter: str = ",", encoding: str = "utf-8",
                  allow_identifying_attr: bool = False, fuzzy: bool = False,
                  batch_rows: int = BATCH_ROWS, workers: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  now: datetime | None = None) -> TokenizeReport:
    """Tokenize `input_path` into the token file `output`, atomically; return its report.
    With `fuzzy`, add the derived-form token columns (see the module docstring)."""
    profile = check_profile(profile)
    region = check_region(region)
    if not party or not party.strip():
        raise ConfigError("the party name must not be empty", key="--party")
    columns = plan_token_columns(identifiers, match_keys, fuzzy=fuzzy)
    source = open_input(input_path, delimiter=delimiter, encoding=encoding)
    refuse_overwriting_input(source, output)
    check_attributes(attributes, columns)
    keys = tuple(derive_fuzzy_key(secret, c.kinds[0], c.form) if c.form is not None
                 else derive_match_key(secret, c.name, c.kinds) if c.match_key
                 else derive_token_key(secret, c.kinds[0]) for c in columns)
    plan = _Plan(columns, profile, region, keys)
    id_columns = _needed(plan)
    wanted = id_columns + [a for a in attributes if a not in id_columns]
    batches = read_batches(source, wanted, string_columns=id_columns, batch_rows=batch_rows)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    names = [c.name for c in columns]
    shared = [c.name for c in columns if c.form is None]  # counted for rows sharing a token
    totals: list[dict[str, Any]] = [{} for _ in columns]
    attr_types: dict[str, str] = {}
    rows = 0
    out = Path(output)
    ensure_parent(out)
    with atomic_path(out, 0o644) as tmp, \
            tempfile.TemporaryDirectory(prefix=".cleanroom-", dir=out.parent) as side_dir:
        side_path = Path(side_dir) / "tokens.parquet"
        writer: pq.ParquetWriter | None = None
        side: pq.ParquetWriter | None = None
        try:
            for shuffled, counts in _pool_map(
                    plan, _checked(batches, attributes, region, source.path,
                                   allow_identifying_attr), workers, tuple(attributes)):
                table = pa.Table.from_batches([shuffled])
                n = table.num_rows
                if writer is None or side is None:
                    attr_types = {a: str(table.schema.field(a).type) for a in attributes}
                    writer = _token_writer(tmp, table.schema, names)
                    side = pq.ParquetWriter(side_path, _side_schema(len(shared)),
                                            compression="none", use_dictionary=False,
                                            store_schema=False)
                writer.write_table(table)
                side.write_table(pa.Table.from_arrays(
                    [table.column(i) for i in range(len(shared) + 1)],
                    schema=_side_schema(len(shared))))
                totals = [merge_counts(t, c) for t, c in zip(totals, counts, strict=True)]
                rows += n
                if progress is not None:
                    progress(rows)
            if writer is None or side is None:
                raise CleanroomBug("no batch was read from a non-empty input")
            side.close()
            side = None
            dups, id_collisions = _side_stats(side_path, len(shared), side_dir)
            if id_collisions:
                raise CleanroomBug("two rows drew the same random row id; run again")
            for total, dup in zip(totals, dups, strict=False):  # forms come last: no count
                total["duplicate_rows"] = dup
            forms = {c.of: [f.form for f in columns if f.of == c.of]
                     for c in columns if c.of is not None}
            versions = dict(normalize.library_versions())
            if forms:
                versions.update(fuzzy_library_versions())
            manifest = Manifest(
                party=party.strip(), collaboration_id=secret.collaboration_id,
                protocol=PROTOCOL_HMAC, key_fingerprint=key_fingerprint(secret),
                profile=profile, region=region, row_count=rows,
                identifiers={c.name: c.spec() for c in columns},
                attributes=attr_types,
                quality=dict(zip(names, totals, strict=True)),
                library_versions=versions,
                created=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                format_version=FUZZY_FORMAT_VERSION if forms else FORMAT_VERSION,
                fuzzy={"version": FUZZY_VERSION, "forms": forms} if forms else {},
            )
            writer.add_key_value_metadata({MANIFEST_METADATA_KEY.decode(): manifest.to_json()})
            writer.close()
            writer = None
        finally:
            for w in (writer, side):
                if w is not None:
                    w.close()
    return TokenizeReport(os.fspath(out), manifest)


def _checked(batches: Iterable[pa.RecordBatch], attributes: Sequence[str], region: str,
             file: str, allow: bool) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for attr in attributes:
            typ = batch.schema.field(attr).type
            if pa.types.is_nested(typ) or pa.types.is_binary(typ) \
                    or pa.types.is_large_binary(typ):
                raise InputError(f"attribute columns hold plain values (text, numbers, dates, "
                                 f"true/false), not {typ}", file=file, column=attr)
        if attributes and not allow:
            check_identifying(batch, attributes, region, file)
        yield batch


def _token_writer(path: Path, schema: pa.Schema, names: list[str]) -> pq.ParquetWriter:
    """Tokens are random bytes: store them plain; compress row ids and attributes."""
    compression = {n: ("none" if n in names else "zstd") for n in schema.names}
    dictionary = [n for n in schema.names if n not in names and n != "row_id"]
    return pq.ParquetWriter(path, schema, compression=compression, use_dictionary=dictionary,
                            store_schema=False)


def _side_schema(n: int) -> pa.Schema:
    return pa.schema([("row_id", pa.int64()), *((f"t{i}", TOKEN_TYPE) for i in range(n))])


def _side_stats(path: Path, n: int, temp_dir: str) -> tuple[list[int], int]:
    """Rows sharing a token with another row, per token column, and rows whose random row id
    another row drew too (0 but for a once-in-a-lifetime collision)."""
    names = [f"t{i}" for i in range(n)]
    repeats = repeated_rows(path, [*names, "row_id"], temp_dir)
    return [repeats[name] for name in names], repeats["row_id"]
