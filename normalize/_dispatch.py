"""normalize(kind, value): one entry point over the per-kind normalizers, plus library versions."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from importlib import metadata

from ._common import check_kind, check_profile, check_region
from ._dob import dob
from ._email import email
from ._geo import country, postal_code, state
from ._misc import external_id, gender, maid
from ._phone import phone
from ._text import city, name, street

Normalizer = Callable[[str | None, str, str | None], str]

_BY_KIND: dict[str, Normalizer] = {
    "email": lambda v, p, r: email(v, p),
    "phone": phone,
    "first_name": lambda v, p, r: name("first_name", v, p),
    "last_name": lambda v, p, r: name("last_name", v, p),
    "street": lambda v, p, r: street(v, p),
    "city": lambda v, p, r: city(v, p),
    "state": state,
    "postal_code": postal_code,
    "country": lambda v, p, r: country(v, p),
    "dob": lambda v, p, r: dob(v, p),
    "gender": lambda v, p, r: gender(v, p),
    "maid": lambda v, p, r: maid(v, p),
    "external_id": lambda v, p, r: external_id(v, p),
}


def normalizer(
    kind: str, profile: str = "strict", region: str | None = "US"
) -> Callable[[str | None], str]:
    """The per-value function of one kind, profile and region, checked once (else ValueError)."""
    fn = _BY_KIND[check_kind(kind)]
    check_profile(profile)
    region = check_region(region)
    return lambda value: fn(value, profile, region)


def normalize(
    kind: str, value: str | None, profile: str = "strict", region: str | None = "US"
) -> str:
    """The normalized `value` of identifier `kind`; raises InvalidIdentifier with a reason."""
    return normalizer(kind, profile, region)(value)


def library_versions() -> dict[str, str]:
    """Versions of what decides normalization output, to record in token file manifests."""
    versions = {}
    for dist in ("phonenumbers", "email-validator", "pycountry"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover - broken install
            versions[dist] = "unknown"
    versions["unicode"] = unicodedata.unidata_version
    return versions
