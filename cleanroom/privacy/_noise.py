"""Differentially private COUNT, SUM and AVG: OpenDP's samplers, explicit ε and sensitivity.

Every figure's noise comes from an OpenDP measurement whose privacy map is checked to spend no
more than the ε asked for (the scale is nudged up if float rounding says otherwise). The
relational work happens before: the caller counts distinct people (or records), bounds each
person's records to a public contribution limit and clamps every value to public bounds, and
passes the totals here with the matching sensitivity:

- COUNT of people: 1 per row a person can appear in; of records: the contribution limit.
- SUM of values clamped to [lo, hi], at most k records per person: max(|lo|, |hi|) · k.
- Vectors (one figure per group): the L1 sensitivity over the whole vector, i.e. the above
  times the number of groups one person can reach.

Post-processing (clipping a negative count at zero, rounding) costs no budget and is left to
the caller; released values here are the raw noisy figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import opendp.prelude as dp

from protocols import CleanroomBug

from ._intervals import discrete_laplace_half_width, laplace_half_width
from ._validate import as_int, check_bounds, check_epsilon, check_limit

dp.enable_features("contrib")

Mechanism = Literal["discrete_laplace", "laplace", "laplace_ratio"]


@dataclass(frozen=True)
class NoisyValue:
    """A released figure with its noise: mechanism, scale and a 95% interval for the truth.

    `scale` is the Laplace scale b (standard deviation b·√2); for an average it is the sum's
    scale over the noisy count, a guide only: the interval is the exact statement.
    """

    value: float  # an int for counts
    mechanism: Mechanism
    scale: float
    ci95_low: float
    ci95_high: float

    def noise(self) -> dict[str, Any]:
        """What an answer states beside the figure: mechanism, scale and the 95% interval."""
        return {"mechanism": self.mechanism, "scale": self.scale,
                "ci95_low": self.ci95_low, "ci95_high": self.ci95_high}


def sum_sensitivity(lo: float, hi: float, contribution_limit: int = 1) -> float:
    """L1 sensitivity of a sum of values clamped to [lo, hi], k records per person."""
    check_bounds(lo, hi)
    check_limit(contribution_limit)
    return max(abs(lo), abs(hi)) * contribution_limit


def noisy_counts(
    counts: Sequence[int], *, epsilon: float, sensitivity: int = 1
) -> list[NoisyValue]:
    """Discrete Laplace on integer counts; `sensitivity` is the L1 bound over the vector."""
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, int) or sensitivity < 1:
        raise ValueError(f"count sensitivity must be a positive integer, not {sensitivity!r}")
    values = [as_int(c) for c in counts]
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    measurement, scale = _calibrate(
        lambda s: dp.m.make_laplace(*space, scale=s), sensitivity, epsilon
    )
    q = discrete_laplace_half_width(scale)
    return [NoisyValue(v, "discrete_laplace", scale, v - q, v + q) for v in measurement(values)]


def noisy_count(count: int, *, epsilon: float, sensitivity: int = 1) -> NoisyValue:
    """One noisy count (discrete Laplace, scale = sensitivity / ε)."""
    return noisy_counts([count], epsilon=epsilon, sensitivity=sensitivity)[0]


def noisy_sums(totals: Sequence[float], *, epsilon: float, sensitivity: float) -> list[NoisyValue]:
    """Laplace on clamped sums; `sensitivity` is the L1 bound over the vector."""
    if not (math.isfinite(sensitivity) and sensitivity > 0):
        raise ValueError(f"sum sensitivity must be positive and finite, not {sensitivity!r}")
    values = [float(t) for t in totals]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("sums must be finite numbers")
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)
    measurement, scale = _calibrate(
        lambda s: dp.m.make_laplace(*space, scale=s), float(sensitivity), epsilon
    )
    q = laplace_half_width(scale)
    return [NoisyValue(v, "laplace", scale, v - q, v + q) for v in measurement(values)]


def noisy_sum(total: float, *, epsilon: float, sensitivity: float) -> NoisyValue:
    """One noisy clamped sum (Laplace, scale = sensitivity / ε)."""
    return noisy_sums([total], epsilon=epsilon, sensitivity=sensitivity)[0]


def noisy_avg(
    total: float,
    count: int,
    *,
    epsilon: float,
    bounds: tuple[float, float],
    contribution_limit: int = 1,
) -> NoisyValue:
    """AVG of values clamped to `bounds`: ε/2 on the sum, ε/2 on the count of records.

    `total` and `count` cover the same records (at most `contribution_limit` per person), so
    the sum's sensitivity is max(|lo|, |hi|) · k and the count's is k.
    """
    lo, hi = bounds
    half = check_epsilon(epsilon) / 2.0
    noisy_total = noisy_sum(
        total, epsilon=half, sensitivity=sum_sensitivity(lo, hi, contribution_limit)
    )
    noisy_records = noisy_count(count, epsilon=half, sensitivity=contribution_limit)
    return average_of(noisy_total, noisy_records, bounds)


def average_of(total: NoisyValue, count: NoisyValue, bounds: tuple[float, float]) -> NoisyValue:
    """The average of an already released noisy sum and count (post-processing, no budget).

    Value: sum / count clamped to [lo, hi] (the midpoint when the noisy count is below 1).
    Interval: the 97.5% intervals of sum and count hold together with probability ≥ 95%
    (union bound); the average then lies between the ratios at the corners of that box,
    with the count at least 1, intersected with [lo, hi].
    """
    lo, hi = bounds
    check_bounds(lo, hi)
    qs = _half_width(total, 0.975)
    qc = _half_width(count, 0.975)
    if count.value >= 1:
        value = min(hi, max(lo, total.value / count.value))
    else:
        value = (lo + hi) / 2.0
    low, high = lo, hi
    c_low, c_high = max(count.value - qc, 1.0), count.value + qc
    if c_high >= 1:
        s_low, s_high = total.value - qs, total.value + qs
        corners = [s / c for s in (s_low, s_high) for c in (c_low, c_high)]
        low, high = max(lo, min(corners)), min(hi, max(corners))
        if low > high:  # the box missed [lo, hi] entirely (a ≤ 5% event): say only the bounds
            low, high = lo, hi
    scale = total.scale / max(count.value, 1.0)
    return NoisyValue(value, "laplace_ratio", scale, low, high)


def _half_width(released: NoisyValue, level: float) -> float:
    """Half-width of the interval at `level` for a figure's own mechanism."""
    if released.mechanism == "discrete_laplace":
        return float(discrete_laplace_half_width(released.scale, level))
    if released.mechanism == "laplace":
        return laplace_half_width(released.scale, level)
    raise ValueError(f"no interval for mechanism {released.mechanism!r} at level {level}")


def _calibrate(
    make: Callable[[float], Any], sensitivity: float, epsilon: float
) -> tuple[Any, float]:
    """Build the measurement at scale = sensitivity / ε, checking OpenDP's own privacy map."""
    scale = sensitivity / check_epsilon(epsilon)
    for _ in range(16):
        measurement = make(scale)
        if measurement.map(sensitivity) <= epsilon:
            return measurement, scale
        scale = math.nextafter(scale, math.inf) * (1 + 1e-12)
    raise CleanroomBug(f"no noise scale spends at most ε={epsilon} for sensitivity {sensitivity}")
