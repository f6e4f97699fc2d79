"""Confidence half-widths from the noise distributions themselves (no normal approximation).

If a figure is released as true + X with X symmetric, then P(|X| ≤ q) ≥ level means the
interval [released − q, released + q] contains the true figure with at least that probability.

- Laplace(b) (continuous): P(|X| > q) = exp(−q/b), so q = b · ln(1/(1 − level)); at 95%,
  q = b · ln 20 ≈ 3.00 b. (OpenDP samples it on a fine binary grid; the difference is below
  a float's resolution of the figure.)
- Discrete Laplace(t) on the integers, P(X = x) ∝ a^|x| with a = exp(−1/t):
  P(|X| > q) = 2 a^(q+1) / (1 + a) for an integer q ≥ 0; q is the smallest integer with
  that tail ≤ 1 − level, so the interval is exact for integers and covers at least `level`.
"""

from __future__ import annotations

import math


def laplace_half_width(scale: float, level: float = 0.95) -> float:
    """Half-width q with P(|Laplace(scale)| ≤ q) = level."""
    _check(scale, level)
    return scale * math.log(1.0 / (1.0 - level))


def discrete_laplace_tail(scale: float, q: int) -> float:
    """P(|X| > q) for X ~ discrete Laplace(scale), q ≥ 0."""
    a = math.exp(-1.0 / scale)
    return 2.0 * a ** (q + 1) / (1.0 + a)


def discrete_laplace_half_width(scale: float, level: float = 0.95) -> int:
    """Smallest integer q ≥ 0 with P(|discrete Laplace(scale)| ≤ q) ≥ level (exact quantile)."""
    _check(scale, level)
    a = math.exp(-1.0 / scale)
    alpha = 1.0 - level
    if a == 0.0:
        return 0
    # 2 a^(q+1) / (1 + a) ≤ alpha  ⇔  q + 1 ≥ ln(alpha (1 + a) / 2) / ln a
    q = max(0, math.ceil(math.log(alpha * (1.0 + a) / 2.0) / math.log(a)) - 1)
    while q > 0 and discrete_laplace_tail(scale, q - 1) <= alpha:
        q -= 1  # guard against rounding in the closed form, in both directions
    while discrete_laplace_tail(scale, q) > alpha:
        q += 1
    return q


def _check(scale: float, level: float) -> None:
    """Scales are positive and finite; levels strictly between 0 and 1."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"noise scale must be positive and finite, not {scale!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, not {level!r}")
