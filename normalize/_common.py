"""Kinds, profiles and the small checks every normalizer shares (input shape, region, text)."""

from __future__ import annotations

import unicodedata
from typing import overload

from ._errors import InvalidIdentifier

KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "street",
    "city",
    "state",
    "postal_code",
    "country",
    "dob",
    "gender",
    "maid",
    "external_id",
)
PROFILES: tuple[str, ...] = ("strict", "uid2", "google", "meta")

# Region aliases people type that are not ISO 3166-1 alpha-2 codes.
_REGION_ALIASES = {"UK": "GB"}


def check_profile(profile: str) -> str:
    """The profile name when it is one of PROFILES, else ValueError naming them."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of: {', '.join(PROFILES)}")
    return profile


def check_kind(kind: str) -> str:
    """The kind name, or ValueError naming the known kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of: {', '.join(KINDS)}")
    return kind


@overload
def check_region(region: str) -> str: ...


@overload
def check_region(region: None) -> None: ...


def check_region(region: str | None) -> str | None:
    """The canonical region: an upper-case ISO 3166-1 alpha-2 code (`uk` -> `GB`), or
    ValueError. None (no default region: phones need their `+` country code) stays None."""
    if region is None:
        return None
    from ._country_data import ALPHA2

    if not isinstance(region, str):
        raise ValueError(f"region must be a two-letter country code, not {type(region).__name__}")
    code = region.strip().upper()
    code = _REGION_ALIASES.get(code, code)
    if code not in ALPHA2:
        raise ValueError(f"unknown region {region!r}; expected an ISO 3166-1 alpha-2 code like US")
    return code


def text_input(kind: str, value: object) -> str:
    """The value as a str: None or blank is `empty`, text with lone surrogates is `encoding`."""
    if value is None:
        raise InvalidIdentifier(kind, "empty")
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a str or None, not {type(value).__name__}")
    if not value or value.isspace():
        raise InvalidIdentifier(kind, "empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidIdentifier(kind, "encoding") from None
    return value


def nfc(value: str) -> str:
    """Unicode NFC composition (the form whose hashes the platforms publish)."""
    return unicodedata.normalize("NFC", value)


def ascii_lower(value: str) -> str:
    """Lowercase A-Z only, leaving every other character as it is (the UID2 operator's rule)."""
    return value.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def words(value: str) -> list[str]:
    """NFC, lowercase, punctuation and symbols dropped, split on whitespace: the words of a name."""
    out = []
    for ch in nfc(value).lower():
        cat = unicodedata.category(ch)
        if cat[0] in "LMN":
            out.append(ch)
        elif ch.isspace() or cat == "Cc":
            out.append(" ")
        # punctuation (P*), symbols (S*), format and other characters are removed
    return nfc("".join(out)).split()


def unsupported(kind: str) -> InvalidIdentifier:
    """The error for a kind the profile does not accept."""
    return InvalidIdentifier(kind, "unsupported")
