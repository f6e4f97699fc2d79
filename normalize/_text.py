"""Free-text identifiers per profile: first and last names, street and city.

strict and meta: NFC, lowercase, punctuation and symbols removed, whitespace collapsed, accents
kept (meta cities also lose their spaces). google: the same for names plus honorifics and
generational suffixes removed; street and city only NFC, lowercase and trimmed.
"""

from __future__ import annotations

import unicodedata

from ._common import check_profile, nfc, text_input, unsupported, words
from ._errors import InvalidIdentifier

# Words Google asks to remove from names: prefixes (titles) and suffixes (generations, degrees).
HONORIFIC_PREFIXES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "mstr", "madam", "mme",
     "mlle", "herr", "frau"}
)
HONORIFIC_SUFFIXES = frozenset(
    {"jr", "sr", "jnr", "snr", "ii", "iii", "iv", "phd", "md", "esq", "dds", "dvm", "mba", "cpa"}
)


def name(kind: str, value: str | None, profile: str = "strict") -> str:
    """A first or last name: see the module docstring for what each profile does."""
    check_profile(profile)
    value = text_input(kind, value)
    if profile == "uid2":
        raise unsupported(kind)
    parts = words(value)
    if profile == "google":
        while len(parts) > 1 and parts[0] in HONORIFIC_PREFIXES:
            parts = parts[1:]
        while len(parts) > 1 and parts[-1] in HONORIFIC_SUFFIXES:
            parts = parts[:-1]
    return _joined(kind, parts, " ")


def street(value: str | None, profile: str = "strict") -> str:
    """A street line: strict collapses spaces and drops punctuation; google lowercases, trims."""
    kind = "street"
    check_profile(profile)
    value = text_input(kind, value)
    if profile in ("uid2", "meta"):
        raise unsupported(kind)
    if profile == "google":
        return _trimmed_lower(kind, value)
    return _joined(kind, words(value), " ")


def city(value: str | None, profile: str = "strict") -> str:
    """A city: strict as names; meta without spaces or punctuation; google lowercased, trimmed."""
    kind = "city"
    check_profile(profile)
    value = text_input(kind, value)
    if profile == "uid2":
        raise unsupported(kind)
    if profile == "google":
        return _trimmed_lower(kind, value)
    return _joined(kind, words(value), "" if profile == "meta" else " ")


def _trimmed_lower(kind: str, value: str) -> str:
    lowered = nfc(value).lower()
    text = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in lowered).split())
    if not text:
        raise InvalidIdentifier(kind, "empty")
    return text


def _joined(kind: str, parts: list[str], sep: str) -> str:
    if not parts:
        raise InvalidIdentifier(kind, "empty")
    return sep.join(parts)
