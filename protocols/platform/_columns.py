"""Which identifier kinds each platform takes, under which upload header, hashed or not."""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import ConfigError

PLATFORMS = ("google", "meta", "uid2")


@dataclass(frozen=True)
class UploadColumn:
    """One column of a platform's upload file: the kind it holds, its name, whether hashed."""

    kind: str
    header: str
    hashed: bool = True


_COLUMNS: dict[str, tuple[UploadColumn, ...]] = {
    "uid2": (UploadColumn("email", "email_hash"), UploadColumn("phone", "phone_hash")),
    "google": (
        UploadColumn("email", "Email"), UploadColumn("phone", "Phone"),
        UploadColumn("first_name", "First Name"), UploadColumn("last_name", "Last Name"),
        UploadColumn("country", "Country", False), UploadColumn("postal_code", "Zip", False),
        UploadColumn("maid", "Mobile Device ID", False),
    ),
    "meta": (
        UploadColumn("email", "email"), UploadColumn("phone", "phone"),
        UploadColumn("first_name", "fn"), UploadColumn("last_name", "ln"),
        UploadColumn("city", "ct"), UploadColumn("state", "st"),
        UploadColumn("postal_code", "zip"), UploadColumn("country", "country"),
        UploadColumn("dob", "dob"), UploadColumn("gender", "gen"),
        UploadColumn("external_id", "extern_id"), UploadColumn("maid", "madid", False),
    ),
}
_ALIASES = {"mobile_ad_id": "maid", "madid": "maid", "date_of_birth": "dob", "zip": "postal_code"}


def upload_columns(platform: str) -> tuple[UploadColumn, ...]:
    """The upload columns a platform takes, in the order of its upload template."""
    if platform not in _COLUMNS:
        raise ConfigError(f"unknown platform {platform!r}: use one of {', '.join(PLATFORMS)}",
                          key="platform")
    return _COLUMNS[platform]


def column_for(platform: str, kind: str) -> UploadColumn:
    """The upload column of `kind` (or an alias such as `zip`), or ConfigError on `kind`."""
    kind = _ALIASES.get(kind, kind)
    for col in upload_columns(platform):
        if col.kind == kind:
            return col
    takes = ", ".join(c.kind for c in upload_columns(platform))
    raise ConfigError(f"{platform} does not take {kind!r} (it takes {takes})", key="kind")
