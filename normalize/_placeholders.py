"""Stand-ins for "no value" that the strict profile rejects (reason `placeholder`).

One copy of each list, read by the per-value normalizers, the fast paths and, through the
public `PLACEHOLDERS`, by anyone who must reproduce the strict rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Addresses and local parts that stand for "no email" rather than for a person (strict only).
PLACEHOLDER_ADDRESSES = frozenset(
    {
        "test@test.com",
        "email@email.com",
        "a@a.com",
        "abc@abc.com",
        "none@none.com",
        "noemail@noemail.com",
        "no@email.com",
        "na@na.com",
        "x@x.com",
        "xxx@xxx.com",
        "asdf@asdf.com",
    }
)
PLACEHOLDER_LOCALS = frozenset(
    {
        "noemail",
        "no.email",
        "no-email",
        "no_email",
        "nomail",
        "no.mail",
        "none",
        "null",
        "nil",
        "na",
        "n.a",
        "noone",
        "no.one",
        "no-one",
        "nobody",
        "unknown",
        "invalid",
        "noreply",
        "no-reply",
        "no.reply",
        "donotreply",
        "do-not-reply",
        "do.not.reply",
        "donotemail",
        "declined",
        "refused",
    }
)
PLACEHOLDER_DOMAINS = frozenset({"noemail.com", "nomail.com", "noemail.net", "none.com"})

# National significant numbers that stand for "no phone" rather than for a person (strict only),
# besides any run of one repeated digit.
PLACEHOLDER_NUMBERS = frozenset(
    {
        "1234567890",
        "0123456789",
        "9876543210",
        "0987654321",
    }
)

PLACEHOLDERS: Mapping[str, frozenset[str]] = MappingProxyType({
    "email_address": PLACEHOLDER_ADDRESSES,
    "email_local": PLACEHOLDER_LOCALS,
    "email_domain": PLACEHOLDER_DOMAINS,
    "phone_number": PLACEHOLDER_NUMBERS,
})
