"""Vectorized fast path for US postal codes (the reference is `postal_code` in normalize/_geo.py).

It decides only printable ASCII values, whose reference steps are plain Arrow string kernels;
tests/normalize/test_normalize_column.py proves the equality.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ._result import FastResult

_ZIP = r"^[0-9]{5}(?:[ -]?[0-9]{4})?$"
_PRINTABLE = r"^[\x20-\x7e]+$"


def postal_us(arr: pa.StringArray, profile: str) -> FastResult | None:
    """US postal codes in printable ASCII: 5 digits (google keeps ZIP+4 as `NNNNN-NNNN`), or
    reason `postal` for any other non-blank printable text."""
    if profile not in ("strict", "google", "meta"):
        return None
    # Python's str.split() splits printable ASCII on spaces only, so this is its " ".join.
    printable = pc.fill_null(pc.match_substring_regex(arr, _PRINTABLE), False)
    # runs of spaces collapsed (a regex replace, so only on the few rows that have one)
    runs = pc.fill_null(pc.match_substring(arr, "  "), False)
    if pc.any(runs).as_py():
        arr = pc.replace_with_mask(arr, runs,
                                   pc.replace_substring_regex(arr.filter(runs), " {2,}", " "))
    text = pc.utf8_trim(arr, characters=" ")
    decided = pc.and_(printable, pc.fill_null(pc.greater(pc.binary_length(text), 0), False))
    ok = pc.fill_null(pc.match_substring_regex(text, _ZIP), False)
    five = pc.utf8_slice_codeunits(text, 0, 5)
    if profile == "google":
        plus4 = pc.binary_join_element_wise(five, pc.utf8_slice_codeunits(text, -4), "-")
        five = pc.if_else(pc.greater(pc.binary_length(text), 5), plus4, five)
    null = pa.scalar(None, pa.string())
    good = pc.and_(decided, ok)
    values = pc.if_else(good, five, null)
    reasons = pc.if_else(pc.and_(decided, pc.invert(ok)), pa.scalar("postal"), null)
    return decided, values, reasons
