"""The statistics of an A/B test: intervals, tests, sample sizes. numpy and scipy, no ORM.

- :func:`wilson_interval` — a proportion's 95% interval (Wilson 1927);
- :func:`two_proportion_test` — the difference of two proportions: the
  pooled two-proportion z test, and Newcombe's hybrid score interval of the
  difference (Newcombe 1998, method 10), which stays in [-1, 1] and holds
  for small counts;
- :func:`relative_lift_interval` — the ratio of two proportions minus 1,
  with the Katz log interval of a risk ratio;
- :func:`bootstrap_mean_difference` — the difference of two means (revenue
  per visitor: mostly zeros, a few large values, far from normal) with a
  percentile bootstrap interval and p-value, seeded so a page reads the
  same twice;
- :func:`bootstrap_mean_interval` — one mean's percentile bootstrap interval;
- :func:`sample_ratio_test` — the chi-square test of visitors per variant
  against the weights (a sample ratio mismatch means the split is broken,
  and the results cannot be trusted);
- :func:`sample_size_per_variant` — visitors per variant for a two-sided
  test of two proportions at ``alpha`` with ``power`` (fixed horizon).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "Comparison",
    "bootstrap_mean_difference",
    "bootstrap_mean_interval",
    "relative_lift_interval",
    "sample_ratio_test",
    "sample_size_per_variant",
    "two_proportion_test",
    "wilson_interval",
]


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    return float(scipy_stats.norm.ppf(0.5 + confidence / 2))


def _counts(successes, trials, name: str = "") -> tuple[int, int]:
    for value in (successes, trials):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name}counts must be integers, got {value!r}")
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"{name}successes must be between 0 and trials, got {successes} of "
                         f"{trials}")
    return int(successes), int(trials)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95
                    ) -> tuple[float, float]:
    """The Wilson score interval of ``successes / trials``; (0, 1) when there are no trials.

    ValueError for counts that are not integers with 0 <= successes <= trials.
    """
    successes, trials = _counts(successes, trials)
    z = _z(confidence)
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Comparison:
    """A variant against the control: the difference, its interval, the test's p-value."""

    difference: float
    low: float
    high: float
    p_value: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def two_proportion_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int,
                        confidence: float = 0.95) -> Comparison:
    """``p_b - p_a``: Newcombe's hybrid score interval and the pooled z test's two-sided p-value.

    A is the control. With no trials on either side there is nothing to
    compare: ValueError. The p-value is 1 when neither side has a success
    or both have only successes (the pooled variance is 0).
    """
    successes_a, trials_a = _counts(successes_a, trials_a, "control ")
    successes_b, trials_b = _counts(successes_b, trials_b, "variant ")
    if trials_a == 0 or trials_b == 0:
        raise ValueError("both sides need at least one trial to be compared")
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    low_a, high_a = wilson_interval(successes_a, trials_a, confidence)
    low_b, high_b = wilson_interval(successes_b, trials_b, confidence)
    difference = p_b - p_a
    low = difference - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    high = difference + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        p_value = 1.0
    else:
        z = difference / math.sqrt(variance)
        p_value = float(2 * scipy_stats.norm.sf(abs(z)))
    return Comparison(difference, max(-1.0, low), min(1.0, high), p_value)


def relative_lift_interval(successes_a: int, trials_a: int, successes_b: int, trials_b: int,
                           confidence: float = 0.95) -> tuple[float, float, float] | None:
    """``p_b / p_a - 1`` and its Katz log interval; None when either side has no success.

    (With no success the ratio or its logarithm's variance is undefined: say
    "not enough data" rather than print an infinite interval.)
    """
    successes_a, trials_a = _counts(successes_a, trials_a, "control ")
    successes_b, trials_b = _counts(successes_b, trials_b, "variant ")
    if successes_a == 0 or successes_b == 0:
        return None
    ratio = (successes_b / trials_b) / (successes_a / trials_a)
    se = math.sqrt(1 / successes_b - 1 / trials_b + 1 / successes_a - 1 / trials_a)
    z = _z(confidence)
    return ratio - 1, ratio * math.exp(-z * se) - 1, ratio * math.exp(z * se) - 1


def _values(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name} has no values")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds a value that is not a finite number")
    return array


def bootstrap_mean_interval(values, *, confidence: float = 0.95, resamples: int = 2000,
                            seed: int = 0) -> tuple[float, float, float]:
    """The mean of ``values`` and its percentile bootstrap interval (seeded: reproducible).

    ValueError for no values or a value that is not finite.
    """
    array = _values(values, "values")
    _z(confidence)
    rng = np.random.default_rng(seed)
    means = _resampled_means(array, resamples, rng)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(array.mean()), float(low), float(high)


def _resampled_means(array: np.ndarray, resamples: int, rng) -> np.ndarray:
    """Means of ``resamples`` resamples of ``array`` with replacement.

    Revenue per visitor is mostly zeros, so a resample is drawn as: how many
    of its n draws hit a non-zero value (binomial), then which ones (uniform
    among them). That is the same distribution as n draws with replacement,
    at a cost that grows with the non-zero values only.
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100, got {resamples!r}")
    n = array.size
    nonzero = array[array != 0]
    if nonzero.size == 0:
        return np.zeros(resamples)
    hits = rng.binomial(n, nonzero.size / n, size=resamples)
    sums = np.empty(resamples)
    start = 0
    while start < resamples:  # blocks of at most ~2 million draws
        stop = start + 1
        budget = 2_000_000
        drawn = int(hits[start])
        while stop < resamples and drawn + hits[stop] <= budget:
            drawn += int(hits[stop])
            stop += 1
        picks = nonzero[rng.integers(0, nonzero.size, size=drawn)]
        owners = np.repeat(np.arange(stop - start), hits[start:stop])
        sums[start:stop] = np.bincount(owners, weights=picks, minlength=stop - start)
        start = stop
    return sums / n


def bootstrap_mean_difference(control, variant, *, confidence: float = 0.95,
                              resamples: int = 2000, seed: int = 0) -> Comparison:
    """``mean(variant) - mean(control)``: percentile bootstrap interval and two-sided p-value.

    Each side is resampled on its own (the visitors of two variants are
    independent). The p-value is twice the smaller share of resampled
    differences on either side of 0 (at least 1/resamples). Makes no
    assumption of normal data: revenue per visitor is mostly zeros.
    ValueError for an empty side or a value that is not finite.
    """
    a = _values(control, "control")
    b = _values(variant, "variant")
    _z(confidence)
    rng = np.random.default_rng(seed)
    differences = _resampled_means(b, resamples, rng) - _resampled_means(a, resamples, rng)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    below = float(np.mean(differences <= 0))
    above = float(np.mean(differences >= 0))
    p_value = min(1.0, max(2 * min(below, above), 1 / resamples))
    if not np.any(differences != 0):  # both sides constant and equal
        p_value = 1.0
    return Comparison(float(b.mean() - a.mean()), float(low), float(high), p_value)


def sample_ratio_test(observed, weights) -> float:
    """The p-value of a chi-square test of visitors per variant against the weights.

    A p-value below 0.001 is a sample ratio mismatch: the assignment or the
    logging lost visitors of some variants. 1.0 when there are no visitors.
    ValueError for lengths that differ, fewer than two variants, or a weight <= 0.
    """
    observed = np.asarray(observed, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if observed.shape != weights.shape or observed.ndim != 1 or observed.size < 2:
        raise ValueError("observed and weights must be two lists of the same length >= 2")
    if np.any(weights <= 0) or np.any(observed < 0):
        raise ValueError("weights must be > 0 and counts >= 0")
    total = observed.sum()
    if total == 0:
        return 1.0
    expected = total * weights / weights.sum()
    return float(scipy_stats.chisquare(observed, expected).pvalue)


def sample_size_per_variant(baseline: float, relative_effect: float, *, alpha: float = 0.05,
                            power: float = 0.8) -> int:
    """Visitors per variant to detect ``baseline * (1 + relative_effect)`` vs ``baseline``.

    The two-sided two-proportion z test at ``alpha`` with ``power`` (Fleiss's
    formula without continuity correction). ValueError for a baseline
    outside (0, 1), an effect of 0 or one that leaves [0, 1].
    """
    if not (isinstance(baseline, int | float) and 0 < baseline < 1):
        raise ValueError(f"baseline must be a rate between 0 and 1, got {baseline!r}")
    if not isinstance(relative_effect, int | float) or relative_effect == 0:
        raise ValueError(f"relative_effect must be a non-zero number, got {relative_effect!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be between 0 and 1")
    p1 = float(baseline)
    p2 = p1 * (1 + relative_effect)
    if not 0 < p2 < 1:
        raise ValueError(f"a baseline of {baseline} changed by {relative_effect:+.0%} is no rate")
    z_alpha = scipy_stats.norm.ppf(1 - alpha / 2)
    z_beta = scipy_stats.norm.ppf(power)
    mean = (p1 + p2) / 2
    numerator = (z_alpha * math.sqrt(2 * mean * (1 - mean))
                 + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2
    return math.ceil(numerator / (p2 - p1) ** 2)
