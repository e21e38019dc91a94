"""The statistics, against values computed another way, and their error rates by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as scipy_stats

from django_recs.experiments import stats

Z = scipy_stats.norm.ppf(0.975)


def wilson_by_root_finding(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson interval by its definition: the p whose score statistic is +-z."""
    observed = successes / trials

    def score(p):
        return (observed - p) / math.sqrt(p * (1 - p) / trials)

    low = 0.0 if successes == 0 else optimize.brentq(lambda p: score(p) - Z, 1e-12,
                                                     observed - 1e-15)
    high = 1.0 if successes == trials else optimize.brentq(lambda p: score(p) + Z,
                                                           max(observed, 1e-12) + 1e-15,
                                                           1 - 1e-12)
    return low, high


@pytest.mark.parametrize("successes,trials", [(0, 10), (1, 10), (5, 10), (10, 10), (81, 263),
                                              (3, 10_000), (4_999, 10_000)])
def test_wilson_interval_matches_its_definition(successes, trials):
    assert stats.wilson_interval(successes, trials) == pytest.approx(
        wilson_by_root_finding(successes, trials), abs=1e-9)


def test_wilson_interval_bad_input():
    with pytest.raises(ValueError, match="between 0 and trials"):
        stats.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="integers"):
        stats.wilson_interval(1.5, 10)
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson_interval(1, 10, confidence=95)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("a,n_a,b,n_b", [(48, 80, 56, 70), (50, 1000, 70, 1000), (0, 10, 3, 10),
                                         (120, 2400, 118, 2380)])
def test_two_proportion_test_against_the_chi_square_test_and_newcombes_construction(a, n_a, b,
                                                                                     n_b):
    result = stats.two_proportion_test(a, n_a, b, n_b)
    # The pooled z test's two-sided p-value is that of Pearson's chi-square test of the
    # 2x2 table without continuity correction (z^2 = chi^2).
    table = [[a, n_a - a], [b, n_b - b]]
    chi2 = scipy_stats.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    # Newcombe's hybrid score interval (method 10), built from Wilson bounds found by root finding.
    p_a, p_b = a / n_a, b / n_b
    low_a, high_a = wilson_by_root_finding(a, n_a)
    low_b, high_b = wilson_by_root_finding(b, n_b)
    assert result.difference == pytest.approx(p_b - p_a)
    assert result.low == pytest.approx(p_b - p_a - math.hypot(p_b - low_b, high_a - p_a), abs=1e-9)
    assert result.high == pytest.approx(p_b - p_a + math.hypot(high_b - p_b, p_a - low_a),
                                        abs=1e-9)


def test_newcombes_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, table II example (a): 56/70 - 48/80,
    # method 10 interval 0.0524 to 0.3339.
    result = stats.two_proportion_test(48, 80, 56, 70)
    assert (round(result.low, 4), round(result.high, 4)) == (0.0524, 0.3339)


def test_two_proportion_test_bad_input():
    with pytest.raises(ValueError, match="at least one trial"):
        stats.two_proportion_test(0, 0, 1, 10)
    with pytest.raises(ValueError, match="control"):
        stats.two_proportion_test(5, 4, 1, 10)
    assert stats.two_proportion_test(0, 10, 0, 10).p_value == 1.0


def test_relative_lift_interval_is_katzs_log_interval():
    lift, low, high = stats.relative_lift_interval(50, 1000, 70, 1000)
    ratio = 0.07 / 0.05
    se = math.sqrt(1 / 70 - 1 / 1000 + 1 / 50 - 1 / 1000)
    assert lift == pytest.approx(0.4)
    assert (low, high) == pytest.approx((ratio * math.exp(-Z * se) - 1,
                                         ratio * math.exp(Z * se) - 1))
    assert stats.relative_lift_interval(0, 1000, 70, 1000) is None


def test_the_sparse_bootstrap_draws_the_same_means_as_plain_resampling():
    rng = np.random.default_rng(5)
    values = np.where(rng.random(3000) < 0.04, rng.lognormal(3, 1, 3000), 0.0)
    ours = stats._resampled_means(values, 3000, np.random.default_rng(1))
    plain = np.array([rng.choice(values, values.size).mean() for _ in range(3000)])
    assert scipy_stats.ks_2samp(ours, plain).pvalue > 1e-4
    assert ours.mean() == pytest.approx(values.mean(), rel=0.02)


def test_bootstrap_is_seeded_and_agrees_with_the_normal_interval_on_a_large_sample():
    rng = np.random.default_rng(7)
    values = np.where(rng.random(50_000) < 0.05, rng.exponential(40, 50_000), 0.0)
    mean, low, high = stats.bootstrap_mean_interval(values, seed=3)
    assert (mean, low, high) == stats.bootstrap_mean_interval(values, seed=3)
    half = Z * values.std(ddof=1) / math.sqrt(values.size)
    assert low == pytest.approx(mean - half, rel=0.03)
    assert high == pytest.approx(mean + half, rel=0.03)


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="no values"):
        stats.bootstrap_mean_difference([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        stats.bootstrap_mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="resamples"):
        stats.bootstrap_mean_interval([1.0, 2.0], resamples=10)
    assert stats.bootstrap_mean_difference([0.0] * 10, [0.0] * 10).p_value == 1.0


def test_sample_ratio_test_is_the_chi_square_of_counts_against_weights():
    observed, weights = [5_000, 5_210, 9_900], [1, 1, 2]
    expected = np.array(weights) / 4 * sum(observed)
    statistic = float(((np.array(observed) - expected) ** 2 / expected).sum())
    assert stats.sample_ratio_test(observed, weights) == pytest.approx(
        scipy_stats.chi2.sf(statistic, df=2))
    assert stats.sample_ratio_test([5_000, 6_000], [1, 1]) < 1e-3  # a broken split
    with pytest.raises(ValueError, match="same length"):
        stats.sample_ratio_test([1, 2], [1])
    with pytest.raises(ValueError, match="weights must be > 0"):
        stats.sample_ratio_test([1, 2], [1, 0])


def test_sample_size_matches_fleiss_and_gives_the_stated_power():
    # The textbook case: 10% vs 15%, alpha 0.05 two-sided, power 0.8: 686 per group.
    assert stats.sample_size_per_variant(0.10, 0.5) == 686
    n = stats.sample_size_per_variant(0.05, 0.3)
    rng = np.random.default_rng(11)
    runs = 4000
    a = rng.binomial(n, 0.05, runs)
    b = rng.binomial(n, 0.065, runs)
    rejected = sum(stats.two_proportion_test(int(x), n, int(y), n).p_value < 0.05
                   for x, y in zip(a, b))
    tolerance = 4 * math.sqrt(0.8 * 0.2 / runs)
    assert abs(rejected / runs - 0.8) < tolerance
    with pytest.raises(ValueError, match="baseline"):
        stats.sample_size_per_variant(0, 0.1)
    with pytest.raises(ValueError, match="no rate"):
        stats.sample_size_per_variant(0.6, 1.0)


def test_a_a_runs_are_significant_about_five_percent_of_the_time():
    """Equal variants: the rate test's false positives stay near the stated 5%."""
    rng = np.random.default_rng(2024)
    runs, n = 4000, 3000
    a = rng.binomial(n, 0.04, runs)
    b = rng.binomial(n, 0.04, runs)
    false_positives = sum(stats.two_proportion_test(int(x), n, int(y), n).p_value < 0.05
                          for x, y in zip(a, b)) / runs
    assert abs(false_positives - 0.05) < 4 * math.sqrt(0.05 * 0.95 / runs)


def test_a_a_runs_of_revenue_are_significant_about_five_percent_of_the_time():
    rng = np.random.default_rng(99)
    runs, n = 400, 2000

    def revenue():
        return np.where(rng.random(n) < 0.05, rng.lognormal(3, 1, n), 0.0)

    false_positives = sum(
        stats.bootstrap_mean_difference(revenue(), revenue(), resamples=500, seed=run).p_value
        < 0.05 for run in range(runs)) / runs
    assert abs(false_positives - 0.05) < 4 * math.sqrt(0.05 * 0.95 / runs)
