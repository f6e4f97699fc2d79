"""Geographic identifiers per profile: state, postal code and country, in the region's context.

strict treats them as names (lower case): `us`, `ca`, `sw1a 1aa`. google sends them unhashed in
their canonical upper case: `US`, `CA`, `SW1A 1AA`, ZIP+4 kept. meta: lower case without spaces
or dashes: `us`, `ca`, `sw1a1aa`, US ZIP cut to 5 digits. uid2 accepts none of them.
"""

from __future__ import annotations

import re

from ._common import check_profile, check_region, text_input, unsupported, words
from ._errors import InvalidIdentifier

_US_ZIP = re.compile(r"([0-9]{5})(?:[ -]?([0-9]{4}))?", re.ASCII)
_GB_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})", re.ASCII)
_CA_POSTCODE = re.compile(
    r"([ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z])([0-9][ABCEGHJ-NPRSTV-Z][0-9])", re.ASCII
)
_GENERIC_POSTCODE = re.compile(r"[A-Z0-9]+(?:[ -][A-Z0-9]+)*", re.ASCII)


def country(value: str | None, profile: str = "strict") -> str:
    """ISO 3166-1 alpha-2 from a code (alpha-2/alpha-3) or a name in common languages."""
    kind = "country"
    check_profile(profile)
    value = text_input(kind, value)
    if profile == "uid2":
        raise unsupported(kind)
    from ._country_data import COUNTRY_LOOKUP, lookup_key

    code = COUNTRY_LOOKUP.get(lookup_key(value))
    if code is None:
        raise InvalidIdentifier(kind, "unknown_country")
    return code if profile == "google" else code.lower()


def state(value: str | None, profile: str = "strict", region: str | None = "US") -> str:
    """A state or province: its code where the region has a code table (US; CA except meta)."""
    kind = "state"
    check_profile(profile)
    region = check_region(region)
    value = text_input(kind, value)
    if profile == "uid2":
        raise unsupported(kind)
    from ._country_data import SUBDIVISIONS, lookup_key

    table = SUBDIVISIONS.get(region or "")
    if profile == "meta" and region != "US":
        table = None
    if table is not None:
        code = table.get(lookup_key(value))
        if code is None:
            raise InvalidIdentifier(kind, "unknown_state")
        return code if profile == "google" else code.lower()
    parts = words(value)
    if not parts:
        raise InvalidIdentifier(kind, "empty")
    return "".join(parts) if profile == "meta" else " ".join(parts)


def postal_code(value: str | None, profile: str = "strict", region: str | None = "US") -> str:
    """A postal code in the region's form (US 5 digits, GB/CA `OUT IN`, else spacing collapsed)."""
    kind = "postal_code"
    check_profile(profile)
    region = check_region(region)
    value = text_input(kind, value)
    if profile == "uid2":
        raise unsupported(kind)
    text = " ".join(value.split())
    if not text.isascii():
        raise InvalidIdentifier(kind, "postal")
    text = text.upper()
    if region == "US":
        m = _US_ZIP.fullmatch(text)
        if m is None:
            raise InvalidIdentifier(kind, "postal")
        if profile == "google" and m.group(2):
            return f"{m.group(1)}-{m.group(2)}"
        return m.group(1)
    if profile == "meta":
        compact = text.replace(" ", "").replace("-", "")
        if not _GENERIC_POSTCODE.fullmatch(compact) or len(compact) > 10:
            raise InvalidIdentifier(kind, "postal")
        return compact.lower()
    if region in ("GB", "CA"):
        pattern = _GB_POSTCODE if region == "GB" else _CA_POSTCODE
        compact = text.replace(" ", "").replace("-", "")
        if compact == "GIR0AA" and region == "GB":
            code = "GIR 0AA"
        elif m := pattern.fullmatch(compact):
            code = f"{m.group(1)} {m.group(2)}"
        else:
            raise InvalidIdentifier(kind, "postal")
    elif _GENERIC_POSTCODE.fullmatch(text) and len(text.replace(" ", "")) <= 10:
        code = text
    else:
        raise InvalidIdentifier(kind, "postal")
    return code if profile == "google" else code.lower()
