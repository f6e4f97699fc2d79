"""DP partition selection: release a group whose key is not public only if its noisy count of
people clears a threshold (OpenDP's `make_laplace_threshold`, propose-test-release).

A group that exists only because of a few people must not reveal itself by appearing. Each
group's count gets discrete Laplace noise of scale b = L1 / ε (L1 = groups per person × people
per group a person adds, normally 1); a group is released only if its noisy count ≥ τ. One
person's presence then changes the output by ε in the pure part, and the chance that a group
made by that person alone appears at all is at most δ: for a person in ℓ0 groups,
δ ≈ ℓ0 · P(noise ≥ τ − 1), giving τ ≈ 1 + b · ln(ℓ0 / 2δ). The threshold used is the smallest
integer that OpenDP's own privacy map accepts for (ε, δ), and never below the owners' minimum.

δ is the probability of revealing such a group; choose it far below 1 / (number of people),
e.g. 1e-7 (DEFAULT_DELTA). The ledger charges ε; δ is per query and stated here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

import opendp.prelude as dp

from protocols import CleanroomBug

from ._intervals import discrete_laplace_half_width
from ._noise import NoisyValue
from ._validate import as_int, check_epsilon

dp.enable_features("contrib")

K = TypeVar("K", bound=Hashable)
DEFAULT_DELTA = 1e-7


def partition_threshold(
    *, epsilon: float, delta: float, max_groups: int = 1, max_contribution: int = 1
) -> int:
    """Smallest integer τ such that releasing groups with noisy count ≥ τ is (ε, δ)-DP."""
    return _threshold(epsilon, delta, max_groups, max_contribution)


@functools.lru_cache(maxsize=256)
def _threshold(epsilon: float, delta: float, max_groups: int, max_contribution: int) -> int:
    """Binary search of OpenDP's privacy map (cached: a pure function of the parameters)."""
    scale = _scale(epsilon, delta, max_groups, max_contribution)
    d_in = (max_groups, max_groups * max_contribution, max_contribution)

    def ok(threshold: int) -> bool:
        spent_eps, spent_delta = _measurement(scale, threshold).map(d_in)
        return bool(spent_eps <= epsilon and spent_delta <= delta)

    low = max_contribution  # a threshold at or below one person's contribution cannot hold
    high = max(low + 1, math.ceil(max_contribution + scale * math.log(max_groups / (2 * delta))))
    while not ok(high):
        high *= 2
        if high > 2**40:
            raise CleanroomBug(f"no partition threshold reaches delta={delta} at ε={epsilon}")
    while high - low > 1:  # invariant: ok(high), and low is known not to hold or untested
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high


def release_partitions(
    counts: Mapping[K, int],
    *,
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    max_groups: int = 1,
    max_contribution: int = 1,
    minimum: int = 0,
) -> dict[K, NoisyValue]:
    """Noisy people counts of the groups that clear the DP threshold (and `minimum`).

    `counts` maps each group key to its true count of distinct people; one person is in at
    most `max_groups` groups and adds at most `max_contribution` to a group's count. The
    released counts carry their own noise (discrete Laplace at the stated scale).
    """
    keys = list(counts)
    scale = _scale(epsilon, delta, max_groups, max_contribution)
    threshold = max(
        partition_threshold(
            epsilon=epsilon,
            delta=delta,
            max_groups=max_groups,
            max_contribution=max_contribution,
        ),
        minimum,
    )
    released: dict[int, int] = _measurement(scale, threshold)(
        {i: as_int(counts[k]) for i, k in enumerate(keys)}
    )
    q = discrete_laplace_half_width(scale)
    return {
        keys[i]: NoisyValue(v, "discrete_laplace", scale, v - q, v + q)
        for i, v in sorted(released.items())
    }


@functools.lru_cache(maxsize=256)
def _scale(epsilon: float, delta: float, max_groups: int, max_contribution: int) -> float:
    """b = L1 / ε after validating the parameters, nudged up if OpenDP's map says more than ε."""
    check_epsilon(epsilon)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be between 0 and 1, not {delta!r}")
    for name, value in (("max_groups", max_groups), ("max_contribution", max_contribution)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    d_in = (max_groups, max_groups * max_contribution, max_contribution)
    scale = max_groups * max_contribution / epsilon
    for _ in range(16):
        if _measurement(scale, 2**31).map(d_in)[0] <= epsilon:
            return scale
        scale = math.nextafter(scale, math.inf) * (1 + 1e-12)
    raise CleanroomBug(f"no noise scale spends at most ε={epsilon} for {max_groups} groups")


def _measurement(scale: float, threshold: int) -> Any:
    """OpenDP's Laplace threshold over a map from group index to count."""
    domain = dp.map_domain(dp.atom_domain(T="u32"), dp.atom_domain(T="i64"))
    metric = dp.l01inf_distance(dp.absolute_distance(T="i64"))
    return dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)
