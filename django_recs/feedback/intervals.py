"""95% confidence intervals of the admin's rates and revenue per mille.

- Rates (CTR, conversion rate): the Wilson score interval, which stays
  within [0, 1] and is sound for small counts and rates near 0, where the
  normal ("Wald") interval is not (Wilson 1927; Brown, Cai & DasGupta 2001).
- Revenue per thousand impressions: the normal approximation of a mean,
  ``1000 (m ± z s / sqrt(n))`` with ``m`` and ``s`` the mean and standard
  deviation of the revenue per impression, from the sums the roll-up keeps
  (revenue and revenue squared per impression). Revenue is concentrated on
  few impressions, so with few conversions the interval is rough; it is
  clipped at 0. A bootstrap would need the per-impression values, which the
  daily roll-ups do not keep.
"""

from __future__ import annotations

import math

__all__ = ["Z95", "mean_interval", "wilson_interval"]

#: The standard normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` in ``trials``; None for no trials.

    Raises ValueError for negative counts or more successes than trials.
    """
    if successes < 0 or trials < 0 or successes > trials:
        raise ValueError(f"{successes} successes in {trials} trials is no proportion")
    if trials == 0:
        return None
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(total: float, squares: float, n: int,
                  z: float = Z95) -> tuple[float, float] | None:
    """The normal-approximation interval of a mean from its sum and sum of squares over ``n``.

    None for ``n`` == 0; the lower bound is clipped at 0 (revenue is never negative).
    """
    if n <= 0:
        return None
    mean = total / n
    variance = max(0.0, squares / n - mean * mean) * n / max(n - 1, 1)  # unbiased
    half = z * math.sqrt(variance / n)
    return max(0.0, mean - half), mean + half
