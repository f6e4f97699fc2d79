"""Argument checks shared by the noise functions: a caller passing nonsense is a bug, so
these raise ValueError rather than a user-facing error."""

from __future__ import annotations

import math
from typing import Any


def check_epsilon(epsilon: float) -> float:
    """ε is a positive finite number."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise ValueError(f"epsilon must be a number, not {epsilon!r}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be positive and finite, not {epsilon!r}")
    return float(epsilon)


def check_bounds(lo: float, hi: float) -> None:
    """Public clamping bounds are finite and ordered."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"bounds must be finite with lo ≤ hi, not [{lo!r}, {hi!r}]")


def check_limit(limit: int) -> None:
    """A contribution limit is a positive integer number of records per person."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"contribution limit must be a positive integer, not {limit!r}")


def as_int(count: Any) -> int:
    """Counts are integers (numpy integers welcome); anything else is a caller's bug."""
    if isinstance(count, bool) or not hasattr(count, "__index__"):
        raise ValueError(f"counts must be integers, not {count!r}")
    return int(count)
