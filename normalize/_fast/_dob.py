"""Vectorized fast path for dates of birth (the reference is normalize/_dob.py).

Each decides only values whose shape makes the reference's steps plain Arrow arithmetic; the
rest goes to the per-value reference. tests/normalize/test_normalize_column.py proves the equality.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._result import ASCII_SPACE, FastResult

# The reference's formats without the time suffix, in its order (ISO, US, d.m.Y, compact);
# the shapes are disjoint, so the first that matches is the one the reference uses.
_DATES = (
    r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})$",
    r"^(?P<y>[0-9]{4})/(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})$",
    r"^(?P<y>[0-9]{4})\.(?P<m>[0-9]{1,2})\.(?P<d>[0-9]{1,2})$",
    r"^(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})/(?P<y>[0-9]{4})$",
    r"^(?P<d>[0-9]{1,2})\.(?P<m>[0-9]{1,2})\.(?P<y>[0-9]{4})$",
    r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})$",
)
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def dob_fast(arr: pa.StringArray, profile: str, today: _dt.date | None = None) -> FastResult | None:
    """Dates in the reference's formats: ISO `YYYY-MM-DD` (strict) or `YYYYMMDD` (meta), or
    reason `date` for an impossible day, a year before 1900 or a day after `today`."""
    if profile not in ("strict", "meta"):
        return None
    n = len(arr)
    trimmed = pc.utf8_trim(arr, characters=ASCII_SPACE)
    decided = pa.repeat(pa.scalar(False), n)
    parts = {k: pa.nulls(n, pa.string()) for k in "ymd"}
    for pattern in _DATES:
        hit = pc.fill_null(pc.match_substring_regex(trimmed, pattern), False)
        hit = pc.and_(hit, pc.invert(decided))
        if not pc.any(hit).as_py():
            continue
        fields = pc.extract_regex(pc.if_else(hit, trimmed, pa.scalar(None, pa.string())),
                                  pattern)
        for k in "ymd":
            parts[k] = pc.if_else(hit, pc.struct_field(fields, k), parts[k])
        decided = pc.or_(decided, hit)
    if not pc.any(decided).as_py():
        return None
    zero = pa.scalar("0")
    y, m, d = (pc.fill_null(parts[k], zero) for k in "ymd")
    year = pc.cast(y, pa.int64()).to_numpy(zero_copy_only=False)
    month = pc.cast(m, pa.int64()).to_numpy(zero_copy_only=False)
    day = pc.cast(d, pa.int64()).to_numpy(zero_copy_only=False)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    last = _DAYS[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    limit = today or _dt.date.today()
    stamp = year * 10000 + month * 100 + day
    ok = (month_ok & (day >= 1) & (day <= last) & (year >= 1900)
          & (stamp <= limit.year * 10000 + limit.month * 100 + limit.day))
    ok_arr = pa.array(ok)
    mm, dd = pc.utf8_lpad(m, 2, "0"), pc.utf8_lpad(d, 2, "0")
    sep = "" if profile == "meta" else "-"
    text = pc.binary_join_element_wise(y, mm, dd, sep)
    null = pa.scalar(None, pa.string())
    good = pc.and_(decided, ok_arr)
    values = pc.if_else(good, text, null)
    reasons = pc.if_else(pc.and_(decided, pc.invert(ok_arr)), pa.scalar("date"), null)
    return decided, values, reasons
