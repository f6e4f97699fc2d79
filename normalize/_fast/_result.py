"""What a fast path returns, and the few Arrow steps several fast paths share."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# (decided, values, reasons): `decided` marks the rows the fast path normalized or rejected
# exactly as the per-value function would; the other rows go to the reference.
FastResult = tuple[pa.BooleanArray, pa.StringArray, pa.StringArray]

# Trimmed here: a subset of what str.strip() removes, so a value that still matches a pattern
# after this trim is stripped identically by the reference.
ASCII_SPACE = " \t\n\r\x0b\x0c"


def with_placeholders(values: pa.Array, placeholder: Any) -> tuple[pa.StringArray, pa.StringArray]:
    """Null the values flagged as placeholders, and give those rows the reason `placeholder`."""
    null = pa.scalar(None, pa.string())
    return (
        pc.if_else(placeholder, null, values),
        pc.if_else(placeholder, pa.scalar("placeholder"), null),
    )
