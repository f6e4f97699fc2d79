"""Vectorized fast paths for the common shapes; every value they do not claim goes to the reference.

    _email        plain ASCII emails, per profile
    _phone_nanp   North American numbers under a US or CA default region
    _phone_intl   international numbers written `+CC NSN`
    _dob          dates of birth in the reference's formats
    _postal       US postal codes

A fast path returns (decided, values, reasons): `decided` marks the rows it normalized (or
rejected) exactly as the per-value function would; the differential tests prove that equality.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ._dob import dob_fast
from ._email import email_google, email_meta, email_strict, email_uid2
from ._phone_intl import intl_phone
from ._phone_nanp import NANP_REGIONS, phone_nanp
from ._postal import postal_us
from ._result import FastResult

__all__ = ["FastResult", "fast_path"]


def fast_path(
    kind: str, profile: str, region: str | None, arr: pa.StringArray
) -> FastResult | None:
    """The fast path for this kind/profile/region over `arr`, or None when there is none."""
    if kind == "email":
        return {"strict": email_strict, "uid2": email_uid2, "google": email_google,
                "meta": email_meta}[profile](arr)  # fmt: skip
    if kind == "phone":
        intl = intl_phone(arr, profile)
        if region not in NANP_REGIONS:
            return intl
        return _combined(phone_nanp(arr, profile), intl)
    if kind == "dob":
        return dob_fast(arr, profile)
    if kind == "postal_code" and region == "US":
        return postal_us(arr, profile)
    return None


def _combined(first: FastResult, second: FastResult | None) -> FastResult:
    """The rows `first` decides, then those `second` decides (their shapes are disjoint)."""
    if second is None:
        return first
    decided, values, reasons = first
    return (pc.or_(decided, second[0]), pc.if_else(decided, values, second[1]),
            pc.if_else(decided, reasons, second[2]))
