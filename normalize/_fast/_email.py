"""Vectorized email paths, one per profile: plain ASCII addresses decided with Arrow kernels."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from .._email import GMAIL_GOOGLE, GMAIL_UID2
from .._placeholders import PLACEHOLDER_ADDRESSES, PLACEHOLDER_DOMAINS, PLACEHOLDER_LOCALS
from ._result import ASCII_SPACE, FastResult, with_placeholders

# A plain ASCII address that email-validator accepts as is: a dot-atom of RFC 5322 atext, at
# most 64 characters before the @, hostname labels without "--" (so no IDNA), a letter TLD.
_ATEXT = r"[A-Za-z0-9_!#$%&'*+/=?^`{|}~-]"
_EMAIL = (
    rf"^{_ATEXT}+(?:\.{_ATEXT}+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# _EMAIL allows one @ after at least one character: the local part is at most 64 characters
# when that @ is at index <= 64 (the text is ASCII, so bytes and characters agree).
_LOCAL_MAX = 64
_SPECIAL_USE = r"(?i)\.(?:" + "|".join(re.escape(d) for d in SPECIAL_USE_DOMAIN_NAMES) + r")$"


def email_strict(arr: pa.StringArray) -> FastResult:
    """Addresses email-validator accepts as typed: trimmed, lowercase; placeholders rejected."""
    trimmed = pc.utf8_trim(arr, characters=ASCII_SPACE)
    decided = _all(
        pc.match_substring_regex(trimmed, _EMAIL),
        pc.less_equal(pc.find_substring(trimmed, "@"), _LOCAL_MAX),
        pc.less_equal(pc.binary_length(trimmed), 254),
        pc.invert(pc.match_substring(trimmed, "--")),
        pc.invert(pc.match_substring_regex(trimmed, _SPECIAL_USE)),
    )
    address = pc.ascii_lower(trimmed)
    placeholder = _all(
        decided,
        _any(
            pc.match_substring_regex(address, _literal_alternation("^", PLACEHOLDER_LOCALS, "@")),
            pc.match_substring_regex(address, _literal_alternation("@", PLACEHOLDER_DOMAINS, "$")),
            pc.is_in(address, value_set=pa.array(sorted(PLACEHOLDER_ADDRESSES))),
        ),
    )
    return decided, *with_placeholders(address, placeholder)


# Printable ASCII: the profiles' own rules reduce to Arrow's ASCII kernels on such text.
_PRINTABLE = r"^[\x20-\x7e]+$"
_PRINTABLE_OR_SPACE = r"^[\x20-\x7e\t\n\r\x0b\x0c]+$"
_META_SHAPE = r"^.+@.+\..+"


def email_meta(arr: pa.StringArray) -> FastResult:
    """Trim, lowercase; Meta's shape check. Blank values are left to the reference (`empty`)."""
    trimmed = pc.utf8_trim(arr, characters=ASCII_SPACE)
    decided = pc.fill_null(pc.match_substring_regex(trimmed, _PRINTABLE), False)
    lowered = pc.ascii_lower(trimmed)
    ok = pc.fill_null(pc.match_substring_regex(lowered, _META_SHAPE), False)
    return decided, *_valid_or(lowered, ok, "syntax")


def email_google(arr: pa.StringArray) -> FastResult:
    """All whitespace removed, lowercase, gmail.com/googlemail.com without dots and +tag."""
    printable = pc.fill_null(pc.match_substring_regex(arr, _PRINTABLE_OR_SPACE), False)
    text = pc.ascii_lower(pc.replace_substring_regex(arr, r"[ \t\n\r\x0b\x0c]+", ""))
    decided = _all(printable, pc.greater(pc.binary_length(text), 0))
    parts = pc.split_pattern(text, "@")
    two = pc.fill_null(pc.equal(pc.list_value_length(parts), 2), False)
    local = pc.list_element(pc.if_else(two, parts, pa.scalar(["", ""], parts.type)), 0)
    domain = pc.list_element(pc.if_else(two, parts, pa.scalar(["", ""], parts.type)), 1)
    return decided, *_aliased(local, domain, two, GMAIL_GOOGLE, local_first=True)


def email_uid2(arr: pa.StringArray) -> FastResult:
    """The UID2 operator's rule on printable ASCII: leading spaces skipped, trailing domain
    spaces dropped, A-Z lowered, exactly one @, gmail.com without dots and +tag."""
    printable = pc.fill_null(pc.match_substring_regex(arr, _PRINTABLE), False)
    text = pc.ascii_lower(pc.utf8_ltrim(arr, characters=" "))
    decided = _all(printable, pc.greater(pc.binary_length(text), 0))
    parts = pc.split_pattern(text, "@")
    two = pc.fill_null(pc.equal(pc.list_value_length(parts), 2), False)
    local = pc.list_element(pc.if_else(two, parts, pa.scalar(["", ""], parts.type)), 0)
    domain = pc.utf8_rtrim(
        pc.list_element(pc.if_else(two, parts, pa.scalar(["", ""], parts.type)), 1), characters=" "
    )
    return decided, *_aliased(local, domain, two, GMAIL_UID2, local_first=False)


def _aliased(local: Any, domain: Any, one_at: Any, gmail_domains: Collection[str], *,
             local_first: bool) -> tuple[Any, Any]:
    """local@domain with the gmail rule (dots and +tag dropped), and the reason the reference
    gives: not one @ -> syntax; (google: empty local -> syntax;) empty domain -> domain;
    empty local after the gmail rule -> syntax."""
    typed_local_empty = pc.equal(pc.binary_length(local), 0)
    is_gmail = pc.is_in(domain, value_set=pa.array(sorted(gmail_domains)))
    base = pc.list_element(pc.split_pattern(local, "+", max_splits=1), 0)
    gmail_local = pc.replace_substring(base, ".", "")
    local = pc.if_else(is_gmail, gmail_local, local)
    empty_local = pc.equal(pc.binary_length(local), 0)
    empty_domain = pc.equal(pc.binary_length(domain), 0)
    null = pa.scalar(None, pa.string())
    syntax_first = pc.invert(one_at)
    if local_first:
        syntax_first = pc.or_(syntax_first, typed_local_empty)
    reasons = pc.if_else(
        syntax_first,
        pa.scalar("syntax"),
        pc.if_else(
            empty_domain,
            pa.scalar("domain"),
            pc.if_else(empty_local, pa.scalar("syntax"), null),
        ),
    )
    values = pc.if_else(
        pc.is_null(reasons), pc.binary_join_element_wise(local, domain, "@"), null
    )
    return values, reasons


def _valid_or(values: Any, ok: Any, reason: str) -> tuple[pa.StringArray, pa.StringArray]:
    null = pa.scalar(None, pa.string())
    return pc.if_else(ok, values, null), pc.if_else(ok, null, pa.scalar(reason))


def _literal_alternation(before: str, words: Iterable[str], after: str) -> str:
    return before + "(?:" + "|".join(re.escape(w) for w in sorted(words)) + ")" + after


def _all(*masks: Any) -> Any:
    out = masks[0]
    for mask in masks[1:]:
        out = pc.and_(out, mask)
    return pc.fill_null(out, False)


def _any(*masks: Any) -> Any:
    out = masks[0]
    for mask in masks[1:]:
        out = pc.or_(out, mask)
    return pc.fill_null(out, False)
