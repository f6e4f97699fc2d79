"""Which names a collaboration may use for members, tables and columns."""

from __future__ import annotations

import re

# AWS Clean Rooms column-name pattern, also used for table and member names.
NAME_PATTERN = re.compile(r"[a-z0-9_](([a-z0-9_ ]+-)*([a-z0-9_ ]+))?")


def valid_name(name: object) -> bool:
    """True if `name` is a usable column/table/member name (AWS pattern, 1..127 chars)."""
    return isinstance(name, str) and 0 < len(name) <= 127 and bool(NAME_PATTERN.fullmatch(name))
