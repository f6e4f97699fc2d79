"""normalize_column: a whole column at once, equal to the per-value functions on every input.

Common shapes (plain ASCII emails; North American phone formats under a US/CA default region;
international numbers written `+CC ...`; dates of birth in the accepted formats; US ZIP
codes) are normalized with Arrow compute kernels (see _fast/). Every other value goes to the
per-value reference function, once per distinct value (real files repeat), spread over worker
processes when there are many and the caller asks for them. Kinds whose values repeat (names,
dates, postal codes) go through both paths once per distinct value.
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
from ._fast import fast_path

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
    foreign_postal: bool = False,
) -> ColumnResult:
    """Normalize a column (Arrow array, pandas Series or list of str/None) of identifier `kind`.

    `workers`: processes for the values off the fast path when there are many distinct ones
    (None: one per core). Worker processes start like `spawn` ones, so a script that asks for
    them must guard its entry point with `if __name__ == "__main__":`.
    `foreign_postal`: a postal code the region's rules reject is read again without them. In
    one party's file it is most often another country's code (a GB or Indian customer of a
    US shop), the same text on every row of that customer, so it is kept rather than lost.
    """
    check_kind(kind)
    check_profile(profile)
    region = check_region(region)
    arr, unencodable = _to_string_array(values)
    values_out, reasons_out = _normalized_deduplicated(kind, profile, region, arr, workers)
    if foreign_postal and kind == "postal_code" and region is not None:
        foreign = pc.fill_null(pc.equal(reasons_out, "postal"), False)
        if pc.any(foreign).as_py():  # only the rejected values are read again
            again, why = _normalized_deduplicated(kind, profile, None, arr.filter(foreign),
                                                  workers)
            values_out = pc.replace_with_mask(values_out, foreign, again)
            reasons_out = pc.replace_with_mask(reasons_out, foreign, why)
    if unencodable is not None:
        reasons_out = pc.if_else(unencodable, pa.scalar("encoding"), reasons_out)
    return ColumnResult(values=values_out, reasons=reasons_out)


def _normalized_deduplicated(
    kind: str, profile: str, region: str | None, arr: pa.StringArray, workers: int | None
) -> tuple[pa.StringArray, pa.StringArray]:
    """Kinds whose values repeat (names, dates, postal codes) are normalized once per distinct
    value and mapped back to the rows; mostly distinct ones (emails) row by row."""
    if kind in _MOSTLY_DISTINCT or not len(arr):
        return _normalized(kind, profile, region, arr, workers)
    encoded = arr.dictionary_encode()
    if 2 * len(encoded.dictionary) > len(arr):
        return _normalized(kind, profile, region, arr, workers)
    values, reasons = _normalized(kind, profile, region, encoded.dictionary, workers)
    missing = pc.is_null(encoded.indices)
    return (values.take(encoded.indices),
            pc.if_else(missing, pa.scalar("empty"), reasons.take(encoded.indices)))


def _normalized(
    kind: str, profile: str, region: str | None, arr: pa.StringArray, workers: int | None
) -> tuple[pa.StringArray, pa.StringArray]:
    """The fast path where it decides, the per-value reference for the rest."""
    n = len(arr)
    fast = fast_path(kind, profile, region, arr) if n else None
    if fast is None:
        return _reference(kind, profile, region, arr, workers)
    decided, fast_values, fast_reasons = fast
    undecided = pc.invert(decided)
    rest_values, rest_reasons = _reference(kind, profile, region, arr.filter(undecided), workers)
    return (pc.replace_with_mask(fast_values, undecided, rest_values),
            pc.replace_with_mask(fast_reasons, undecided, rest_reasons))


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
