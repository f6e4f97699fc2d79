"""Country and subdivision tables: ISO 3166 codes and the names people type, keyed by lookup_key.

Built once from pycountry (ISO 3166-1/-2) and the country names in many languages that ship
with phonenumbers; a name that would point at two countries is dropped, never guessed.
"""

from __future__ import annotations

import unicodedata

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


def _build_countries() -> tuple[frozenset[str], dict[str, str]]:
    codes = frozenset(c.alpha_2 for c in pycountry.countries)
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
    return codes, lookup


def _build_subdivisions(country: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for sub in pycountry.subdivisions.get(country_code=country) or ():
        code = sub.code.split("-", 1)[1]
        table[lookup_key(sub.name)] = code
        table[code.lower()] = code
    return table


ALPHA2, COUNTRY_LOOKUP = _build_countries()

# States and provinces mapped to their postal codes, for the countries where that code is what
# people and platforms use (US states, Canadian provinces).
SUBDIVISIONS: dict[str, dict[str, str]] = {cc: _build_subdivisions(cc) for cc in ("US", "CA")}
SUBDIVISIONS["US"].update(
    {"virgin islands": "VI", "us virgin islands": "VI", "washington dc": "DC"}
)
SUBDIVISIONS["CA"].update({"quebec": "QC", "newfoundland": "NL", "yukon territory": "YT"})
