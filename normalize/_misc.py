"""Gender, mobile advertising ID and external (CRM) ID per profile."""

from __future__ import annotations

import re
import unicodedata

from ._common import check_profile, nfc, text_input, unsupported
from ._errors import InvalidIdentifier

_FEMALE = frozenset({"f", "female", "woman", "girl", "feminine", "fem"})
_MALE = frozenset({"m", "male", "man", "boy", "masculine", "masc"})
_UUID = re.compile(
    r"([0-9a-f]{8})(-?)([0-9a-f]{4})\2([0-9a-f]{4})\2([0-9a-f]{4})\2([0-9a-f]{12})", re.ASCII
)
_ZERO_MAID = "00000000-0000-0000-0000-000000000000"


def gender(value: str | None, profile: str = "strict") -> str:
    """`f` or `m` from the common spellings; anything else is `unknown_gender` (strict, meta)."""
    kind = "gender"
    check_profile(profile)
    value = text_input(kind, value)
    if profile in ("uid2", "google"):
        raise unsupported(kind)
    key = "".join(ch for ch in value.lower() if ch.isalpha())
    if key in _FEMALE:
        return "f"
    if key in _MALE:
        return "m"
    raise InvalidIdentifier(kind, "unknown_gender")


def maid(value: str | None, profile: str = "strict") -> str:
    """A mobile ad ID (IDFA/AAID, a UUID): strict lowercase hyphenated; meta lowercase as typed."""
    kind = "maid"
    check_profile(profile)
    value = text_input(kind, value)
    if profile == "uid2":
        raise unsupported(kind)
    text = value.strip()
    m = _UUID.fullmatch(text.lower())
    if m is None:
        raise InvalidIdentifier(kind, "syntax")
    if profile == "google":
        return text
    if profile == "meta":
        return text.lower()
    canonical = "-".join(m.group(i) for i in (1, 3, 4, 5, 6))
    if canonical == _ZERO_MAID:
        raise InvalidIdentifier(kind, "placeholder")
    return canonical


def external_id(value: str | None, profile: str = "strict") -> str:
    """A party's own customer ID: trimmed (strict: NFC), case kept, control characters refused."""
    kind = "external_id"
    check_profile(profile)
    value = text_input(kind, value)
    if profile in ("uid2", "google"):
        raise unsupported(kind)
    text = value.strip()
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidIdentifier(kind, "control_char")
    return nfc(text) if profile == "strict" else text
