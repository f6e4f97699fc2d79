"""Email normalization per profile: strict (email-validator), uid2 (operator), google, meta."""

from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email

from ._common import ascii_lower, check_profile, nfc, text_input
from ._errors import InvalidIdentifier
from ._placeholders import PLACEHOLDER_ADDRESSES, PLACEHOLDER_DOMAINS, PLACEHOLDER_LOCALS

KIND = "email"

GMAIL_UID2 = frozenset({"gmail.com"})
GMAIL_GOOGLE = frozenset({"gmail.com", "googlemail.com"})

# Every option spelled out, so no module-level default set elsewhere can change our output.
_VALIDATOR_OPTIONS: dict[str, Any] = dict(
    check_deliverability=False,
    allow_smtputf8=True,
    allow_empty_local=False,
    allow_quoted_local=False,
    allow_domain_literal=False,
    allow_display_name=False,
    strict=False,
    test_environment=False,
    globally_deliverable=True,
)

_META_SHAPE = re.compile(r".+@.+\..+")


def email(value: str | None, profile: str = "strict") -> str:
    """The normalized email under `profile`; raises InvalidIdentifier (never echoing the value)."""
    check_profile(profile)
    value = text_input(KIND, value)
    if profile == "strict":
        return _strict(value)
    if profile == "uid2":
        return _uid2(value)
    if profile == "google":
        return _google(value)
    return _meta(value)


def _strict(value: str) -> str:
    """Trim, NFC, email-validator syntax (no DNS), lowercase, IDNA-ASCII domain, no aliasing."""
    text = nfc(value.strip())
    try:
        info = validate_email(text, **_VALIDATOR_OPTIONS)
    except EmailNotValidError as exc:
        raise InvalidIdentifier(KIND, _reason(str(exc))) from None
    except (UnicodeError, ValueError):  # idna edge cases surfacing outside the library's own error
        raise InvalidIdentifier(KIND, "domain") from None
    local = nfc(info.local_part.lower())
    domain = (info.ascii_domain or info.domain).lower()
    if domain.startswith("[") or not domain.isascii():
        raise InvalidIdentifier(KIND, "domain")
    address = f"{local}@{domain}"
    if is_placeholder(local, domain):
        raise InvalidIdentifier(KIND, "placeholder")
    return address


def is_placeholder(local: str, domain: str) -> bool:
    """True for an address that stands for 'no email' (strict profile)."""
    return (
        local in PLACEHOLDER_LOCALS
        or domain in PLACEHOLDER_DOMAINS
        or f"{local}@{domain}" in PLACEHOLDER_ADDRESSES
    )


def _reason(message: str) -> str:
    """Map an email-validator message to a reason: `domain` for the part after @, else `syntax`."""
    text = message.lower()
    if "after the @-sign" in text or "domain" in text:
        return "domain"
    return "syntax"


def _uid2(value: str) -> str:
    """The UID2 operator's algorithm (InputUtil.normalizeEmailString), character by character."""
    local: list[str] = []
    local_gmail: list[str] = []
    domain: list[str] = []
    pending_spaces = 0
    state = "start"
    in_extension = False
    for ch in ascii_lower(value):
        if state == "start":
            if ch == " ":
                continue
            state = "local"
        if state == "local":
            if ch == "@":
                state = "domain"
            elif ch == ".":
                local.append(ch)
            elif ch == "+":
                local.append(ch)
                in_extension = True
            else:
                local.append(ch)
                if not in_extension:
                    local_gmail.append(ch)
        else:
            if ch == "@":
                raise InvalidIdentifier(KIND, "syntax")
            if ch == " ":
                pending_spaces += 1
                continue
            if pending_spaces:
                domain.append(" " * pending_spaces)
                pending_spaces = 0
            domain.append(ch)
    if state != "domain":
        raise InvalidIdentifier(KIND, "syntax")
    domain_part = "".join(domain)
    if not domain_part:
        raise InvalidIdentifier(KIND, "domain")
    local_part = "".join(local_gmail if domain_part in GMAIL_UID2 else local)
    if not local_part:
        raise InvalidIdentifier(KIND, "syntax")
    return f"{local_part}@{domain_part}"


def _google(value: str) -> str:
    """Remove all whitespace, NFC, lowercase; gmail.com/googlemail.com: drop dots and +tail."""
    text = nfc("".join(value.split())).lower()
    local, domain = _split_one_at(text)
    if domain in GMAIL_GOOGLE:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            raise InvalidIdentifier(KIND, "syntax")
    return f"{local}@{domain}"


def _meta(value: str) -> str:
    """Trim and lowercase, nothing else; the shape check of Meta's SDK (`.+@.+\\..+`)."""
    text = value.strip().lower()
    if not _META_SHAPE.match(text):
        raise InvalidIdentifier(KIND, "syntax")
    return text


def _split_one_at(text: str) -> tuple[str, str]:
    parts = text.split("@")
    if len(parts) != 2 or not parts[0]:
        raise InvalidIdentifier(KIND, "syntax")
    if not parts[1]:
        raise InvalidIdentifier(KIND, "domain")
    return parts[0], parts[1]
