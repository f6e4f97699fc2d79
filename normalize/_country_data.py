"""Country and subdivision tables: ISO 3166 codes and the names people type, keyed by lookup_key.

Built once from pycountry (ISO 3166-1/-2) and the country names in many languages that ship
with phonenumbers; a name that would point at two countries is dropped, never guessed.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pycountry

# Names people type that neither table spells this way.
_EXTRA_NAMES = {
    "america": "US",
    "united states of america": "US",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "holland": "NL",
    "the netherlands": "NL",
    "south korea": "KR",
    "korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "czech republic": "CZ",
    "czechia": "CZ",
    "ivory coast": "CI",
    "vietnam": "VN",
    "viet nam": "VN",
    "taiwan": "TW",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "macedonia": "MK",
    "turkey": "TR",
    "turkiye": "TR",
    "uae": "AE",
    "emirates": "AE",
    "hong kong sar": "HK",
    "macau": "MO",
    "vatican": "VA",
    "brunei": "BN",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "palestine": "PS",
}


def lookup_key(value: str) -> str:
    """Case-, accent-, punctuation- and spacing-insensitive key used only to look names up."""
    folded = unicodedata.normalize("NFKD", value).lower()
    out = []
    for ch in folded:
        cat = unicodedata.category(ch)
        if cat[0] in "LN":
            out.append(ch)
        elif ch.isspace() or ch in "-_/,":
            out.append(" ")
        # marks (accents), other punctuation and symbols are dropped
    return " ".join("".join(out).split())


def _build_countries() -> dict[str, str]:
    codes = ALPHA2
    names: dict[str, set[str]] = {}

    def add(name: str, code: str) -> None:
        key = lookup_key(name)
        if key:
            names.setdefault(key, set()).add(code)

    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            if getattr(c, attr, None):
                add(getattr(c, attr), c.alpha_2)
    try:  # names in many languages; a convenience, not a contract
        from phonenumbers.geodata.locale import LOCALE_DATA
    except ImportError:  # pragma: no cover - phonenumberslite
        LOCALE_DATA = {}
    for code, by_lang in LOCALE_DATA.items():
        if code not in codes:
            continue
        for name in by_lang.values():
            if not name.startswith("*"):
                add(name, code)
    lookup = {key: next(iter(found)) for key, found in names.items() if len(found) == 1}
    lookup.update(_EXTRA_NAMES)
    # Codes win over any name that happens to spell the same letters.
    for c in pycountry.countries:
        lookup[c.alpha_2.lower()] = c.alpha_2
        lookup[c.alpha_3.lower()] = c.alpha_2
    lookup["uk"] = "GB"
    return lookup


def _build_subdivisions(country: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions.get(country_code=country) or ():  # type: ignore[no-untyped-call]  # pycountry has no annotations
        code = sub.code.split("-", 1)[1]
        table[lookup_key(sub.name)] = code
        table[code.lower()] = code
    return table


def _build_all_subdivisions() -> dict[str, dict[str, str]]:
    """States and provinces mapped to their postal codes, for the countries where that code is
    what people and platforms use (US states, Canadian provinces)."""
    tables = {cc: _build_subdivisions(cc) for cc in ("US", "CA")}
    tables["US"].update({"virgin islands": "VI", "us virgin islands": "VI", "washington dc": "DC"})
    tables["CA"].update({"quebec": "QC", "newfoundland": "NL", "yukon territory": "YT"})
    return tables


# The region check needs only the codes; the name tables take about half a second to build,
# so they are built on first use (module __getattr__) rather than on every import.
ALPHA2: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)
_LAZY = {"COUNTRY_LOOKUP": _build_countries, "SUBDIVISIONS": _build_all_subdivisions}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = _LAZY[name]()
        globals()[name] = value  # later lookups find the module attribute directly
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
