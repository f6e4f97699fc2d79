"""Phone normalization per profile: parse with phonenumbers and a default region, then render.

strict: accepted when `is_possible_number` (but not for a local-only number, which lacks its
area code and so has no E.164 form), E.164 `+…`, placeholders (0000000000, 1234567890…)
rejected. google: E.164 `+…`. meta: E.164 digits without `+`. uid2: E.164, then UID2's own rule
(`+` and 10..15 ASCII digits); a number written with `+` (or an international prefix) is held
to that rule alone, one whose country code comes from the default region must also be possible.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import (
    CountryCodeSource,
    NumberParseException,
    PhoneNumberFormat,
    ValidationResult,
)

from ._common import check_profile, check_region, text_input
from ._errors import InvalidIdentifier
from ._placeholders import PLACEHOLDER_NUMBERS

KIND = "phone"

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "country_code",
    NumberParseException.NOT_A_NUMBER: "syntax",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
    NumberParseException.TOO_SHORT_NSN: "too_short",
    NumberParseException.TOO_LONG: "too_long",
}
_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "country_code",
    ValidationResult.TOO_SHORT: "too_short",
    ValidationResult.TOO_LONG: "too_long",
    ValidationResult.INVALID_LENGTH: "not_possible",
    # possible only when dialled locally: the area code is missing, so it is no E.164 number
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too_short",
}


def phone(value: str | None, profile: str = "strict", region: str | None = "US") -> str:
    """The normalized phone under `profile`, `region` being the default for numbers without `+`."""
    check_profile(profile)
    region = check_region(region)
    value = text_input(KIND, value)
    try:
        number = phonenumbers.parse(value, region, keep_raw_input=profile == "uid2")
    except NumberParseException as exc:
        raise InvalidIdentifier(KIND, _PARSE_REASONS.get(exc.error_type, "syntax")) from None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if profile == "uid2":
        if number.country_code_source == CountryCodeSource.FROM_DEFAULT_COUNTRY:
            _check_possible(number)  # the country code was inferred: the number must fit it
        digits = e164[1:]
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidIdentifier(KIND, "syntax")
        if len(digits) < 10:
            raise InvalidIdentifier(KIND, "too_short")
        if len(digits) > 15:
            raise InvalidIdentifier(KIND, "too_long")
        return e164
    _check_possible(number)
    if profile == "strict" and is_placeholder(phonenumbers.national_significant_number(number)):
        raise InvalidIdentifier(KIND, "placeholder")
    return e164[1:] if profile == "meta" else e164


def _check_possible(number: phonenumbers.PhoneNumber) -> None:
    result = phonenumbers.is_possible_number_with_reason(number)
    if result != ValidationResult.IS_POSSIBLE:
        raise InvalidIdentifier(KIND, _POSSIBLE_REASONS.get(result, "not_possible"))


def is_placeholder(national_number: str) -> bool:
    """True for a national number that stands for 'no phone': one repeated digit or a sequence."""
    return len(set(national_number)) <= 1 or national_number in PLACEHOLDER_NUMBERS
