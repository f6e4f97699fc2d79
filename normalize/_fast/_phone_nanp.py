"""Vectorized path for North American phone numbers typed under a US or CA default region."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .._placeholders import PLACEHOLDER_NUMBERS
from ._result import ASCII_SPACE, FastResult, with_placeholders

# North American numbering plan, as typed under a US or CA default region: an optional 1 or
# +1, then ten digits whose area code starts with 2-9, then maybe an extension that
# phonenumbers sets aside (`x12`, ` ext. 345`) and E.164 leaves out.
_NANP = (
    r"^(?:\+?1[ .-]?)?(?:\((?P<a>[2-9][0-9]{2})\)|(?P<b>[2-9][0-9]{2}))"
    r"[ .-]?(?P<c>[0-9]{3})[ .-]?(?P<d>[0-9]{4})(?: ?(?i:x|ext\.?) ?[0-9]{1,6})?$"
)
NANP_REGIONS = frozenset({"US", "CA"})


def phone_nanp(arr: pa.StringArray, profile: str) -> FastResult:
    """Ten-digit NANP numbers as E.164 (meta: without `+`); strict rejects placeholders."""
    trimmed = pc.utf8_trim(arr, characters=ASCII_SPACE)
    parts = pc.extract_regex(trimmed, _NANP)  # null where the shape does not match
    decided = pc.is_valid(parts)
    # one of the two area code groups is empty; together with c and d: the ten digits
    national = pc.binary_join_element_wise(
        *(pc.struct_field(parts, k) for k in "abcd"), pa.scalar(""))
    prefix = "1" if profile == "meta" else "+1"
    values = pc.binary_join_element_wise(pa.scalar(prefix), national, pa.scalar(""))
    if profile != "strict":
        return decided, values, pa.nulls(len(arr), pa.string())
    repeated = [str(d) * 10 for d in range(10)]
    junk = pa.array(sorted(set(repeated) | {n for n in PLACEHOLDER_NUMBERS if len(n) == 10}))
    placeholder = pc.fill_null(pc.is_in(national, value_set=junk), False)
    return decided, *with_placeholders(values, placeholder)
