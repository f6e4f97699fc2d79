"""normalize_column: a whole column at once, equal to the per-value functions on every input.

Common shapes (plain ASCII emails, North American phone formats under a US/CA default region;
every profile) are normalized with Arrow compute kernels (see _fast.py). Every other value
goes to the per-value reference function, once per distinct value (real files repeat), spread
over worker processes when there are many and the caller asks for them.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ._common import check_kind, check_profile, check_region
from ._dispatch import normalizer
from ._errors import InvalidIdentifier
from ._fast import FastResult, fast_path

# Below this many distinct fallback values, worker processes cost more than they save.
PARALLEL_MIN_VALUES = 50_000
# Kinds whose values are nearly all distinct: deduplicating before the fast path costs more.
_MOSTLY_DISTINCT = frozenset({"email", "phone", "maid", "external_id"})


@dataclass(frozen=True)
class ColumnResult:
    """Normalized values (null where rejected or missing) and a reason per rejected row."""

    values: pa.StringArray
    reasons: pa.StringArray

    def __repr__(self) -> str:  # never print identifiers
        valid = len(self.values) - self.values.null_count
        return f"ColumnResult(rows={len(self.values)}, valid={valid})"


def normalize_column(
    kind: str,
    values: Any,
    *,
    profile: str = "strict",
    region: str | None = "US",
    workers: int | None = 1,
) -> ColumnResult:
    """Normalize a column (Arrow array, pandas Series or list of str/None) of identifier `kind`.

    `workers`: processes for the values off the fast path when there are many distinct ones
    (None: one per core). Worker processes start like `spawn` ones, so a script that asks for
    them must guard its entry point with `if __name__ == "__main__":`.
    """
    check_kind(kind)
    check_profile(profile)
    region = check_region(region)
    arr, unencodable = _to_string_array(values)
    n = len(arr)
    fast = _fast_deduplicated(kind, profile, region, arr) if n else None
    if fast is None:
        decided = pa.repeat(pa.scalar(False), n)
        fast_values = pa.nulls(n, pa.string())
        fast_reasons = pa.nulls(n, pa.string())
    else:
        decided, fast_values, fast_reasons = fast
    rest = arr.filter(pc.invert(decided))
    rest_values, rest_reasons = _reference(kind, profile, region, rest, workers)
    undecided = pc.invert(decided)
    values_out = pc.replace_with_mask(fast_values, undecided, rest_values)
    reasons_out = pc.replace_with_mask(fast_reasons, undecided, rest_reasons)
    if unencodable is not None:
        reasons_out = pc.if_else(unencodable, pa.scalar("encoding"), reasons_out)
    return ColumnResult(values=values_out, reasons=reasons_out)


def _fast_deduplicated(kind: str, profile: str, region: str | None,
                       arr: pa.StringArray) -> FastResult | None:
    """The fast path over the distinct values when they repeat (names, dates, postal codes),
    mapped back to the rows; over the rows themselves when most are distinct (emails)."""
    if kind in _MOSTLY_DISTINCT:
        return fast_path(kind, profile, region, arr)
    encoded = arr.dictionary_encode()
    if 2 * len(encoded.dictionary) > len(arr):
        return fast_path(kind, profile, region, arr)
    fast = fast_path(kind, profile, region, encoded.dictionary)
    if fast is None:
        return None
    decided, values, reasons = (x.take(encoded.indices) for x in fast)
    return pc.fill_null(decided, False), values, reasons


def _to_string_array(values: Any) -> tuple[pa.StringArray, pa.BooleanArray | None]:
    """The values as Arrow strings, and a mask of Python strings UTF-8 cannot encode (or None)."""
    unencodable = None
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif isinstance(values, pa.Array):
        arr = values
    else:
        if hasattr(values, "to_numpy") and hasattr(values, "dtype"):  # pandas Series
            items = values.astype(object).where(values.notna(), None).tolist()
        else:
            items = list(values)
        try:
            arr = pa.array(items)
        except UnicodeEncodeError:  # lone surrogates: rejected per row with reason `encoding`
            bad = [isinstance(v, str) and not _encodable(v) for v in items]
            arr = pa.array([None if b else v for v, b in zip(items, bad, strict=True)])
            unencodable = pa.array(bad, pa.bool_())
        if arr.type == pa.null():
            arr = arr.cast(pa.string())
    if isinstance(arr, pa.DictionaryArray):
        arr = arr.dictionary_decode()
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    return arr, unencodable


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reference(
    kind: str, profile: str, region: str | None, rest: pa.StringArray, workers: int | None
) -> tuple[pa.StringArray, pa.StringArray]:
    """The per-value function over the distinct values of `rest`, mapped back to its rows."""
    encoded = rest.dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    out_values, out_reasons = _run(kind, profile, region, distinct, workers)
    values = pa.array(out_values, pa.string()).take(encoded.indices)
    reasons = pa.array(out_reasons, pa.string()).take(encoded.indices)
    reasons = pc.if_else(pc.is_null(rest), pa.scalar("empty"), reasons)
    return values, reasons


def _run(
    kind: str, profile: str, region: str | None, distinct: list[str], workers: int | None
) -> tuple[list[str | None], list[str | None]]:
    cores = workers if workers is not None else (os.cpu_count() or 1)
    if cores <= 1 or len(distinct) < PARALLEL_MIN_VALUES:
        return _normalize_many(kind, profile, region, distinct)
    size = -(-len(distinct) // cores)
    chunks = [distinct[i : i + size] for i in range(0, len(distinct), size)]
    out_values: list[str | None] = []
    out_reasons: list[str | None] = []
    # forkserver, not fork: the caller may hold threads (DuckDB, Arrow) that fork would orphan.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["normalize"])  # workers fork from a server that has it loaded
    with ProcessPoolExecutor(max_workers=cores, mp_context=context) as pool:
        futures = [pool.submit(_normalize_many, kind, profile, region, c) for c in chunks]
        for future in futures:
            v, r = future.result()
            out_values.extend(v)
            out_reasons.extend(r)
    return out_values, out_reasons


def _normalize_many(
    kind: str, profile: str, region: str | None, distinct: list[str]
) -> tuple[list[str | None], list[str | None]]:
    fn = normalizer(kind, profile, region)
    values: list[str | None] = []
    reasons: list[str | None] = []
    for value in distinct:
        try:
            values.append(fn(value))
            reasons.append(None)
        except InvalidIdentifier as exc:
            values.append(None)
            reasons.append(exc.reason)
    return values, reasons
