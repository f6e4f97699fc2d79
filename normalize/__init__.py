"""normalize: identifiers in canonical form, per platform profile; pure functions, no I/O, no keys.

    normalize.normalize(kind, value, profile="strict", region="US") -> str
    normalize.email(value, profile) / normalize.phone(value, profile, region) -> str
    normalize.normalize_column(kind, values, profile=..., region=...) -> ColumnResult

Kinds: email, phone, first_name, last_name, street, city, state, postal_code, country, dob,
gender, maid, external_id. Profiles: strict (default: validated, no provider aliasing,
placeholders rejected), uid2 (the UID2/EUID operator's rules), google (Data Manager rules),
meta (Meta's documented field formats).

A value that cannot be normalized raises InvalidIdentifier (a ValueError) whose `.reason` is one
of these machine-readable words, and whose message never contains the value:

    empty           None, "" or only whitespace
    encoding        text that cannot be encoded as UTF-8 (lone surrogates)
    control_char    a control character inside an external ID
    syntax          not shaped like this kind (email syntax, phone letters, malformed MAID)
    domain          the part of an email after @ is invalid
    placeholder     a stand-in such as test@test.com, noemail@..., 0000000000 (strict only)
    country_code    a phone without a known country code (no `+` and no usable region)
    too_short / too_long / not_possible   a phone number of impossible length
    date            not a date in an accepted format, impossible, before 1900 or in the future
    postal          not a postal code of the region
    unknown_country / unknown_state / unknown_gender   not in the code tables
    unsupported     the profile does not accept this kind (e.g. uid2 names)

An unknown kind, profile or region is a ValueError (a caller's mistake, not a bad value);
`check_profile(profile)` and `check_region(region)` raise it up front and return the canonical
form (`check_region("uk") == "GB"`). `PLACEHOLDERS` holds the stand-ins strict rejects.
"""

from typing import TYPE_CHECKING

import lazy_loader

from ._common import KINDS, PROFILES, check_profile, check_region
from ._errors import InvalidIdentifier
from ._placeholders import PLACEHOLDERS

if TYPE_CHECKING:
    from ._column import ColumnResult, normalize_column
    from ._dispatch import library_versions, normalize
    from ._email import email
    from ._phone import phone

# The normalizers (and the libraries behind them) load on first use.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_column": ("ColumnResult", "normalize_column"),
        "_dispatch": ("library_versions", "normalize"),
        "_email": ("email",),
        "_phone": ("phone",),
    },
)

__all__ = [
    "ColumnResult",
    "InvalidIdentifier",
    "KINDS",
    "PLACEHOLDERS",
    "PROFILES",
    "check_profile",
    "check_region",
    "email",
    "library_versions",
    "normalize",
    "normalize_column",
    "phone",
]
