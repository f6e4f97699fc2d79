"""Noise from OpenDP: statistical checks of the scale and of the 95% intervals over many draws
(bands many standard errors wide, so they do not flake), exact interval formulas, AVG, and
DP partition selection."""

from __future__ import annotations

import math
import statistics

import pytest

from cleanroom.privacy import (
    NoisyValue,
    average_of,
    noisy_avg,
    noisy_count,
    noisy_counts,
    noisy_sum,
    noisy_sums,
    partition_threshold,
    release_partitions,
    sum_sensitivity,
)
from cleanroom.privacy._intervals import (
    discrete_laplace_half_width,
    discrete_laplace_tail,
    laplace_half_width,
)
from cleanroom.privacy._partitions import _measurement

DRAWS = 20_000


def _discrete_laplace_sd(scale: float) -> float:
    """Standard deviation of the discrete Laplace: variance 2a / (1 − a)², a = exp(−1/t)."""
    a = math.exp(-1 / scale)
    return math.sqrt(2 * a) / (1 - a)


@pytest.mark.parametrize(("epsilon", "sensitivity"), [(0.5, 1), (1.0, 1), (0.25, 3)])
def test_count_noise_has_the_stated_scale(epsilon, sensitivity):
    released = noisy_counts([1000] * DRAWS, epsilon=epsilon, sensitivity=sensitivity)
    scale = sensitivity / epsilon
    assert {r.scale for r in released} == {scale}
    assert {r.mechanism for r in released} == {"discrete_laplace"}
    values = [r.value for r in released]
    assert all(isinstance(v, int) for v in values)
    sd = statistics.pstdev(values)
    assert 0.9 < sd / _discrete_laplace_sd(scale) < 1.1  # std error of the ratio ≈ 1%
    assert abs(statistics.fmean(values) - 1000) < 10 * sd / math.sqrt(DRAWS)


@pytest.mark.parametrize(("epsilon", "sensitivity"), [(0.5, 5000.0), (2.0, 1.0)])
def test_sum_noise_has_the_stated_scale(epsilon, sensitivity):
    released = noisy_sums([12_345.5] * DRAWS, epsilon=epsilon, sensitivity=sensitivity)
    scale = sensitivity / epsilon
    assert {r.scale for r in released} == {scale}
    mean_abs = statistics.fmean(abs(r.value - 12_345.5) for r in released)
    assert 0.9 < mean_abs / scale < 1.1  # E|Laplace(b)| = b; std error of the ratio ≈ 0.7%


def test_single_figures_use_the_same_mechanisms():
    counts = [noisy_count(50, epsilon=1.0).value for _ in range(300)]
    assert 0.6 < statistics.pstdev(counts) / _discrete_laplace_sd(1.0) < 1.4
    sums = [noisy_sum(0.0, epsilon=1.0, sensitivity=10.0).value for _ in range(300)]
    assert 0.6 < statistics.fmean(abs(s) for s in sums) / 10.0 < 1.4


def test_count_interval_covers_the_truth_95_percent_of_the_time():
    scale = 2.0
    q = discrete_laplace_half_width(scale)
    exact_coverage = 1 - discrete_laplace_tail(scale, q)
    released = noisy_counts([500] * DRAWS, epsilon=0.5)
    assert all(r.ci95_high - r.value == q == r.value - r.ci95_low for r in released)
    covered = sum(r.ci95_low <= 500 <= r.ci95_high for r in released) / DRAWS
    assert exact_coverage >= 0.95
    assert abs(covered - exact_coverage) < 0.015  # std error 0.15%


def test_sum_interval_covers_the_truth_95_percent_of_the_time():
    released = noisy_sums([100.0] * DRAWS, epsilon=1.0, sensitivity=50.0)
    covered = sum(r.ci95_low <= 100.0 <= r.ci95_high for r in released) / DRAWS
    assert 0.935 < covered < 0.965


def test_interval_formulas():
    assert laplace_half_width(1.0) == pytest.approx(math.log(20))
    assert laplace_half_width(4.0, 0.975) == pytest.approx(4 * math.log(40))
    for scale in (0.01, 0.3, 1.0, 2.0, 7.5, 1000.0):
        q = discrete_laplace_half_width(scale)
        assert discrete_laplace_tail(scale, q) <= 0.05  # covers at least 95%
        assert q == 0 or discrete_laplace_tail(scale, q - 1) > 0.05  # and is the smallest
    assert discrete_laplace_half_width(0.01) == 0
    # large scales approach the continuous quantile b · ln 20
    assert discrete_laplace_half_width(1000.0) == pytest.approx(1000 * math.log(20), rel=1e-3)
    with pytest.raises(ValueError):
        discrete_laplace_half_width(0.0)


def test_sum_sensitivity():
    assert sum_sensitivity(0, 5000) == 5000
    assert sum_sensitivity(-20, 5, contribution_limit=3) == 60
    with pytest.raises(ValueError):
        sum_sensitivity(5, 0)
    with pytest.raises(ValueError):
        sum_sensitivity(0, 1, contribution_limit=0)


def test_avg_splits_epsilon_and_stays_in_bounds():
    released = noisy_avg(200_000.0, 1000, epsilon=1.0, bounds=(0.0, 5000.0))
    assert released.mechanism == "laplace_ratio"
    assert 0.0 <= released.ci95_low <= released.value <= released.ci95_high <= 5000.0
    tiny = noisy_avg(10.0, 1, epsilon=0.01, bounds=(0.0, 100.0))
    assert 0.0 <= tiny.value <= 100.0


def test_avg_interval_covers_the_truth_at_least_95_percent_of_the_time():
    bounds, limit, n, true_sum = (0.0, 500.0), 2, 4000, 600_000.0  # true average 150
    half = 0.5 / 2
    sums = noisy_sums([true_sum] * 2000, epsilon=half, sensitivity=sum_sensitivity(0, 500, limit))
    counts = noisy_counts([n] * 2000, epsilon=half, sensitivity=limit)
    released = [average_of(s, c, bounds) for s, c in zip(sums, counts, strict=True)]
    covered = sum(r.ci95_low <= true_sum / n <= r.ci95_high for r in released) / len(released)
    assert covered > 0.94  # the union bound makes it conservative (≥ 95%)
    assert all(bounds[0] <= r.ci95_low <= r.value <= r.ci95_high <= bounds[1] for r in released)


def test_average_of_a_count_below_one_says_only_the_bounds():
    total = NoisyValue(-3.0, "laplace", 10.0, -33.0, 27.0)
    count = NoisyValue(-2, "discrete_laplace", 2.0, -8, 4)
    assert average_of(total, count, (0.0, 10.0)).value == 5.0


def test_partition_threshold_is_the_smallest_that_opendp_accepts():
    for epsilon, delta, groups in [(1.0, 1e-6, 1), (0.5, 1e-7, 1), (0.5, 1e-7, 3)]:
        threshold = partition_threshold(epsilon=epsilon, delta=delta, max_groups=groups)
        scale = groups / epsilon
        d_in = (groups, groups, 1)
        spent_eps, spent_delta = _measurement(scale, threshold).map(d_in)
        assert spent_eps <= epsilon and spent_delta <= delta
        assert _measurement(scale, threshold - 1).map(d_in)[1] > delta
    assert partition_threshold(epsilon=1.0, delta=1e-9) > partition_threshold(
        epsilon=1.0, delta=1e-6
    )


def test_release_partitions_hides_tiny_groups_and_keeps_big_ones():
    counts = {("Basic", "Apparel"): 1000, ("Platinum", "Apparel"): 1, "lonely": 2}
    for _ in range(200):
        released = release_partitions(counts, epsilon=1.0, delta=1e-12)
        assert list(released) == [("Basic", "Apparel")]
        figure = released[("Basic", "Apparel")]
        assert figure.mechanism == "discrete_laplace" and figure.scale == 1.0
        assert figure.ci95_low <= figure.value <= figure.ci95_high


def test_release_partitions_applies_the_owners_minimum_after_noise():
    released = release_partitions({"a": 150, "b": 400}, epsilon=1.0, minimum=200)
    assert list(released) == ["b"]


@pytest.mark.parametrize(
    "call",
    [
        lambda: noisy_count(1, epsilon=0.0),
        lambda: noisy_count(1, epsilon=float("nan")),
        lambda: noisy_count(1, epsilon=True),
        lambda: noisy_count(1, epsilon=1.0, sensitivity=0),
        lambda: noisy_count(1.5, epsilon=1.0),  # type: ignore[arg-type]
        lambda: noisy_sum(float("inf"), epsilon=1.0, sensitivity=1.0),
        lambda: noisy_sum(1.0, epsilon=1.0, sensitivity=-1.0),
        lambda: noisy_avg(1.0, 1, epsilon=1.0, bounds=(5.0, 0.0)),
        lambda: release_partitions({"a": 1}, epsilon=1.0, delta=0.0),
        lambda: release_partitions({"a": 1}, epsilon=1.0, max_groups=0),
    ],
)
def test_bad_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()
