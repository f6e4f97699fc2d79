"""Helpers every benchmark shares: the median wall time of repeated runs of one step."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T], runs: int) -> tuple[float, T]:
    """Median wall seconds of `runs` calls of `fn` (at least one), and the last call's result."""
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    """Median wall seconds of `runs` calls of `fn`."""
    return timed(fn, runs)[0]
