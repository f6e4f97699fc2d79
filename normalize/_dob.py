"""Date of birth: ISO, US m/d/Y, d.m.Y and compact YYYYMMDD in; a real, past date out.

strict gives ISO `YYYY-MM-DD`, meta gives `YYYYMMDD`; google and uid2 accept no date of birth.
Years before 1900, future dates and impossible dates (Feb 30) are rejected with reason `date`.
"""

from __future__ import annotations

import datetime as _dt
import re

from ._common import check_profile, text_input, unsupported
from ._errors import InvalidIdentifier

KIND = "dob"
_TIME = r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_ISO = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})" + _TIME, re.ASCII)
_US = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", re.ASCII)
_EU = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})", re.ASCII)
_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})", re.ASCII)


def dob(value: str | None, profile: str = "strict", *, today: _dt.date | None = None) -> str:
    """The date of birth under `profile`; `today` bounds future dates (tests may pin it)."""
    check_profile(profile)
    value = text_input(KIND, value)
    if profile in ("uid2", "google"):
        raise unsupported(KIND)
    day = parse_date(value.strip())
    limit = today or _dt.date.today()
    if day.year < 1900 or day > limit:
        raise InvalidIdentifier(KIND, "date")
    return day.strftime("%Y%m%d") if profile == "meta" else day.isoformat()


def parse_date(text: str) -> _dt.date:
    """The calendar date written in one of the accepted formats, or InvalidIdentifier `date`."""
    if m := _ISO.fullmatch(text):
        y, mo, d = m.group(1), m.group(3), m.group(4)
    elif m := _US.fullmatch(text):
        mo, d, y = m.groups()
    elif m := _EU.fullmatch(text):
        d, mo, y = m.groups()
    elif m := _COMPACT.fullmatch(text):
        y, mo, d = m.groups()
    else:
        raise InvalidIdentifier(KIND, "date")
    try:
        return _dt.date(int(y), int(mo), int(d))
    except ValueError:
        raise InvalidIdentifier(KIND, "date") from None
