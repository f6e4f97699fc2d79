"""Vectorized fast paths for the common shapes; every value they do not claim goes to the reference.

A fast path returns (decided, values, reasons): `decided` marks the rows it normalized (or
rejected) exactly as the per-value function would; the differential tests prove that equality.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from ._email import PLACEHOLDER_ADDRESSES, PLACEHOLDER_DOMAINS, PLACEHOLDER_LOCALS
from ._phone import PLACEHOLDER_NUMBERS

# Trimmed here: a subset of what str.strip() removes, so a value that still matches a pattern
# after this trim is stripped identically by the reference.
_ASCII_SPACE = " \t\n\r\x0b\x0c"

# A plain ASCII address that email-validator accepts as is: dot-atoms of common characters,
# hostname labels without "--" (so no IDNA), a letter TLD, nothing special-use.
_EMAIL = (
    r"^(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})$"
)
_SPECIAL_USE = (
    r"(?i)(?:^|\.)(?:" + "|".join(re.escape(d) for d in SPECIAL_USE_DOMAIN_NAMES) + r")$"
)

# North American numbering plan, as typed under a US or CA default region.
_NANP = (
    r"^(?:\+?1[ .-]?)?(?:\((?P<a>[2-9][0-9]{2})\)|(?P<b>[2-9][0-9]{2}))"
    r"[ .-]?(?P<c>[0-9]{3})[ .-]?(?P<d>[0-9]{4})$"
)
_NANP_REGIONS = frozenset({"US", "CA"})

FastResult = tuple[pa.BooleanArray, pa.StringArray, pa.StringArray]


def fast_path(kind: str, profile: str, region: str | None, arr: pa.StringArray) -> FastResult | None:
    """The fast path for this kind/profile/region over `arr`, or None when there is none."""
    if kind == "email" and profile == "strict":
        return _email_strict(arr)
    if kind == "phone" and region in _NANP_REGIONS:
        return _phone_nanp(arr, profile)
    return None


def _email_strict(arr: pa.StringArray) -> FastResult:
    trimmed = pc.utf8_trim(arr, characters=_ASCII_SPACE)
    parts = pc.extract_regex(trimmed, _EMAIL)
    local = pc.struct_field(parts, "local")
    domain = pc.struct_field(parts, "domain")
    decided = pc.and_(
        pc.is_valid(parts),
        pc.and_(
            pc.less_equal(pc.binary_length(local), 64),
            pc.and_(
                pc.less_equal(pc.binary_length(trimmed), 254),
                pc.and_(
                    pc.invert(pc.match_substring(domain, "--")),
                    pc.invert(pc.match_substring_regex(domain, _SPECIAL_USE)),
                ),
            ),
        ),
    )
    decided = pc.fill_null(decided, False)
    local = pc.ascii_lower(local)
    domain = pc.ascii_lower(domain)
    address = pc.binary_join_element_wise(local, domain, "@")
    placeholder = pc.or_(
        pc.is_in(local, value_set=pa.array(sorted(PLACEHOLDER_LOCALS))),
        pc.or_(
            pc.is_in(domain, value_set=pa.array(sorted(PLACEHOLDER_DOMAINS))),
            pc.is_in(address, value_set=pa.array(sorted(PLACEHOLDER_ADDRESSES))),
        ),
    )
    placeholder = pc.fill_null(placeholder, False)
    values = pc.if_else(placeholder, pa.scalar(None, pa.string()), address)
    reasons = pc.if_else(placeholder, pa.scalar("placeholder"), pa.scalar(None, pa.string()))
    return decided, values, reasons


def _phone_nanp(arr: pa.StringArray, profile: str) -> FastResult:
    trimmed = pc.utf8_trim(arr, characters=_ASCII_SPACE)
    parts = pc.extract_regex(trimmed, _NANP)
    decided = pc.fill_null(pc.is_valid(parts), False)
    national = pc.binary_join_element_wise(
        *(pc.struct_field(parts, g) for g in "abcd"), pa.scalar("")
    )
    prefix = "1" if profile == "meta" else "+1"
    values = pc.binary_join_element_wise(pa.scalar(prefix), national, pa.scalar(""))
    if profile != "strict":
        return decided, values, pa.nulls(len(arr), pa.string())
    repeated = [str(d) * 10 for d in range(10)]
    junk = pa.array(sorted(set(repeated) | {n for n in PLACEHOLDER_NUMBERS if len(n) == 10}))
    placeholder = pc.fill_null(pc.is_in(national, value_set=junk), False)
    values = pc.if_else(placeholder, pa.scalar(None, pa.string()), values)
    reasons = pc.if_else(placeholder, pa.scalar("placeholder"), pa.scalar(None, pa.string()))
    return decided, values, reasons
