"""Vectorized fast path for international phone numbers written as `+` and digits.

A value shaped `+CC NSN` (ASCII digits, single spaces, dots or dashes between them) is decided
here when phonenumbers would accept it unchanged: the country code is read the way
phonenumbers reads it (the first 1, 2 or 3 digits that form a known code), the country's
national prefix cannot apply (no prefix rule, or a plain one that does not match the start of
the number), the number does not start with 0 (no Italian leading zero) and its length is one
that `is_possible_number_with_reason` accepts, as asked of phonenumbers itself per country
code. Then E.164 is `+` and the digits as typed. Everything else (wrong lengths, national
prefixes, placeholders, other shapes) goes to the per-value reference.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata, PhoneNumber, ValidationResult

from .._placeholders import PLACEHOLDER_NUMBERS
from ._result import ASCII_SPACE, FastResult

_SHAPE = r"^\+[0-9](?:[ .-]?[0-9])*$"
_MAX_CHARS = 40
# National-prefix rules made only of digits, groups, classes and alternation read the same in
# Python's re and in Arrow's RE2, so RE2 can tell which rows such a rule would touch.
_SIMPLE_RULE = re.compile(r"[0-9()\[\]|]+")
_REPEATED_DIGIT = "^(?:" + "|".join(f"{d}+" for d in range(10)) + ")$"

@functools.cache
def _country_codes() -> pa.Array:
    return pa.array(sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE))


@functools.cache
def country_rule(code: str) -> tuple[frozenset[int], str | None] | None:
    """(lengths of a possible national number, national prefix rule) of a country code, or
    None when the fast path must not decide its numbers."""
    cc = int(code)
    region = phonenumbers.region_code_for_country_code(cc)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
    if metadata is None or metadata.national_prefix_transform_rule:
        return None
    rule = metadata.national_prefix_for_parsing or None
    if rule is not None and not _SIMPLE_RULE.fullmatch(rule):
        return None
    lengths = frozenset(
        n for n in range(2, 18)  # phonenumbers' bounds on a national significant number
        if phonenumbers.is_possible_number_with_reason(
            PhoneNumber(country_code=cc, national_number=int("5" * n)))
        == ValidationResult.IS_POSSIBLE
    )
    return lengths, rule


def intl_phone(arr: pa.StringArray, profile: str) -> FastResult | None:
    """Decide `+CC NSN` numbers for strict, google and meta (see the module docstring)."""
    if profile not in ("strict", "google", "meta"):
        return None
    n = len(arr)
    trimmed = pc.utf8_trim(arr, characters=ASCII_SPACE)
    shaped = pc.fill_null(pc.and_(pc.match_substring_regex(trimmed, _SHAPE),
                                  pc.less_equal(pc.binary_length(trimmed), _MAX_CHARS)), False)
    if not pc.any(shaped).as_py():
        return None
    # the work below runs on the shaped rows only, then is scattered back
    decided, values = _decide(trimmed.filter(shaped), profile)
    if not pc.any(decided).as_py():
        return None
    null = pa.scalar(None, pa.string())
    all_decided = pc.replace_with_mask(pa.repeat(pa.scalar(False), n), shaped, decided)
    all_values = pc.replace_with_mask(pa.nulls(n, pa.string()), shaped,
                                      pc.if_else(decided, values, null))
    return all_decided, all_values, pa.nulls(n, pa.string())


def _decide(shaped: pa.StringArray, profile: str) -> tuple[pa.BooleanArray, pa.StringArray]:
    """Which `+CC NSN` values phonenumbers accepts unchanged, and their normalized form."""
    # the shape allows only `+`, digits and single separators: literal replaces (several times
    # faster than a regex replace in Arrow) leave the digits
    digits = pc.utf8_slice_codeunits(shaped, 1)
    for separator in " .-":
        digits = pc.replace_substring(digits, separator, "")
    codes = _country_codes()
    heads = [pc.utf8_slice_codeunits(digits, 0, k) for k in (1, 2, 3)]
    known = [pc.fill_null(pc.is_in(h, value_set=codes), False) for h in heads]
    null = pa.scalar(None, pa.string())
    code = pc.if_else(known[0], heads[0],
                      pc.if_else(known[1], heads[1], pc.if_else(known[2], heads[2], null)))
    national = pc.if_else(known[0], pc.utf8_slice_codeunits(digits, 1),
                          pc.if_else(known[1], pc.utf8_slice_codeunits(digits, 2),
                                     pc.utf8_slice_codeunits(digits, 3)))
    length = pc.binary_length(national)
    plain = pc.invert(pc.fill_null(pc.starts_with(national, "0"), True))
    if profile == "strict":
        junk = pc.or_(pc.match_substring_regex(national, _REPEATED_DIGIT),
                      pc.is_in(national, value_set=pa.array(sorted(PLACEHOLDER_NUMBERS))))
        plain = pc.and_(plain, pc.invert(pc.fill_null(junk, True)))
    decided = pa.repeat(pa.scalar(False), len(shaped))
    for value in pc.unique(code.drop_null()).to_pylist():
        rule = country_rule(value)
        if rule is None:
            continue
        lengths, prefix = rule
        ok = pc.and_(pc.equal(code, value),
                     pc.is_in(length, value_set=pa.array(sorted(lengths), length.type)))
        if prefix is not None:
            ok = pc.and_(ok, pc.invert(pc.match_substring_regex(national, f"^(?:{prefix})")))
        decided = pc.or_(decided, pc.fill_null(pc.and_(ok, plain), False))
    values = digits if profile == "meta" else pc.binary_join_element_wise("+", digits, "")
    return decided, values
