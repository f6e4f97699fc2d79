"""The options every file recipe shares (profile, region, identifier kind), checked up front
as ConfigErrors that name the command-line option, before any input is read."""

from __future__ import annotations

import normalize

from ._errors import ConfigError


def check_profile(profile: str) -> str:
    """The profile when normalize knows it, else ConfigError on `--profile`."""
    try:
        return normalize.check_profile(profile)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--profile") from None


def check_region(region: str) -> str:
    """The canonical region (`uk` -> `GB`) when normalize knows it, else ConfigError on
    `--region`."""
    try:
        return normalize.check_region(region)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--region") from None


def check_kind(kind: str) -> str:
    """The identifier kind when normalize knows it, else ConfigError on `--id`."""
    if kind not in normalize.KINDS:
        raise ConfigError(f"unknown kind {kind!r}; expected one of: {', '.join(normalize.KINDS)}",
                          key="--id")
    return kind
