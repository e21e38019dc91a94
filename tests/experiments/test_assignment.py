"""Assignment: a deterministic hash of (experiment, visitor), split by the weights."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from django_recs.experiments.assignment import bucket, choose


def test_a_hundred_thousand_visitors_split_by_the_weights_within_binomial_tolerance():
    weights = [1, 1, 2]
    cumulative = [1.0, 2.0, 4.0]
    visitors = 100_000
    counts = [0, 0, 0]
    for number in range(visitors):
        counts[choose(7, "salt", f"v{number}", cumulative)] += 1
    # Each count is Binomial(visitors, share) for a fair hash. Allow a deviation that a
    # fair split exceeds with probability 1e-6 per variant (two-sided normal quantile).
    z = scipy_stats.norm.isf(0.5e-6)
    for count, weight in zip(counts, weights):
        share = weight / sum(weights)
        tolerance = z * math.sqrt(visitors * share * (1 - share))
        assert abs(count - visitors * share) <= tolerance, (counts, tolerance)
    # And the split is no better than chance would allow either way: a chi-square
    # test of the counts against the weights does not reject them.
    expected = [visitors * w / sum(weights) for w in weights]
    assert scipy_stats.chisquare(counts, expected).pvalue > 1e-6


def test_the_same_visitor_always_gets_the_same_variant_and_each_experiment_splits_anew():
    cumulative = [1.0, 2.0]
    first = [choose(1, "a", f"v{i}", cumulative) for i in range(2000)]
    assert first == [choose(1, "a", f"v{i}", cumulative) for i in range(2000)]
    other = [choose(2, "b", f"v{i}", cumulative) for i in range(2000)]
    agreement = sum(x == y for x, y in zip(first, other)) / 2000
    assert 0.45 < agreement < 0.55  # independent splits agree half of the time


def test_bucket_is_uniform_in_the_unit_interval():
    points = [bucket(3, "s", f"v{i}") for i in range(20_000)]
    assert min(points) >= 0 and max(points) < 1
    assert scipy_stats.kstest(points, "uniform").pvalue > 1e-6


def test_no_variant_is_a_value_error():
    with pytest.raises(ValueError, match="at least one variant"):
        choose(1, "s", "v1", [])
