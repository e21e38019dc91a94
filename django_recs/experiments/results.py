"""An experiment's numbers, read from the feedback logs, per variant and against the control.

The unit of the analysis is the visitor (the assignment unit), not the
impression: a visitor's lists and purchases are not independent of each
other, a visitor's variant is. Per variant:

- **visitors**: units shown at least one list of the experiment (a hold-out's
  empty lists included);
- **impressions** and **CTR** (impressions with a click / impressions with
  items; Wilson interval; descriptive: impressions of one visitor are not
  independent);
- **click-through**: the share of visitors who clicked an item of the list;
- **conversion rate**: the share of visitors who bought anything (an
  interaction of CONVERSION_EVENTS) after their first list of the
  experiment and before it stopped, clicked or not, so a hold-out without
  lists is measured like the others (attribution to clicks cannot see what
  a list changed elsewhere on the site);
- **revenue per visitor**: the values of those purchases over the visitors.

Differences to the control: the pooled two-proportion z test and Newcombe's
interval for the rates, the relative lift with its Katz interval, and a
seeded bootstrap for revenue per visitor (:mod:`.stats`). With more than one
variant beside the control, each is tested at 0.05 / (variants - 1)
(Bonferroni). The raw logs are read, so results must be read within
IMPRESSION_RETENTION_DAYS of the experiment's start; stopping an experiment
keeps them (``Experiment.results``).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import asdict, dataclass, field

import numpy as np
from django.utils import timezone

from ..conf import recs_settings
from . import stats
from .routing import NONE

__all__ = ["ExperimentResults", "VariantResult", "experiment_results"]

#: Below this p-value the visitors' split does not match the weights.
SRM_ALPHA = 0.001
ALPHA = 0.05


@dataclass
class VariantResult:
    name: str
    algorithm: str
    weight: int
    is_control: bool
    visitors: int = 0
    impressions: int = 0
    impressions_with_items: int = 0
    clicked_impressions: int = 0
    ctr: float | None = None
    ctr_interval: tuple[float, float] | None = None
    clickers: int = 0
    click_through: float | None = None
    click_through_interval: tuple[float, float] | None = None
    converters: int = 0
    conversion_rate: float | None = None
    conversion_interval: tuple[float, float] | None = None
    revenue: float = 0.0
    revenue_per_visitor: float | None = None
    revenue_interval: tuple[float, float] | None = None
    # Against the control (None for the control itself): {"difference", "low", "high", "p_value"}
    click_through_difference: dict | None = None
    conversion_difference: dict | None = None
    conversion_lift: dict | None = None
    revenue_difference: dict | None = None


@dataclass
class ExperimentResults:
    variants: list[VariantResult] = field(default_factory=list)
    alpha: float = ALPHA
    srm_p_value: float | None = None
    sample_ratio_mismatch: bool = False
    required_per_variant: int | None = None
    enough_data: bool = False
    verdict: list[str] = field(default_factory=list)
    computed_at: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def control(self) -> VariantResult | None:
        return next((v for v in self.variants if v.is_control), None)


def _id_bound(moment: datetime.datetime) -> uuid.UUID:
    """The smallest impression id made at ``moment`` (ids are UUIDv7: milliseconds first)."""
    ms = int(moment.timestamp() * 1000)
    return uuid.UUID(int=max(ms, 0) << 80)


def experiment_results(experiment, *, now: datetime.datetime | None = None,
                       resamples: int = 2000) -> ExperimentResults:
    """The results of ``experiment`` as they stand (or stood when it stopped).

    Reads its impressions (by id range from its start), their clicks and the
    conversion interactions since its start. Never empty of variants; the
    numbers are None where nothing was measured yet.
    """
    from ..models import Click, ExperimentVisitor, Impression, Interaction

    arms = list(experiment.variants.order_by("id"))
    result = ExperimentResults(variants=[
        VariantResult(v.name, v.algorithm, v.weight, v.is_control) for v in arms])
    result.computed_at = (now or timezone.now()).isoformat()
    if experiment.started_at is None:
        result.verdict = ["The experiment has not started."]
        return result
    start = experiment.started_at
    end = experiment.stopped_at or now or timezone.now()
    index = {v.name: i for i, v in enumerate(arms)}

    unit_variant: dict[str, int] = {}
    first_seen: dict[str, datetime.datetime] = {}
    impression_unit: dict[uuid.UUID, str] = {}
    by_user: dict[int, str] = {}
    by_session: dict[str, str] = {}
    impressions = np.zeros(len(arms), dtype=np.int64)
    with_items = np.zeros(len(arms), dtype=np.int64)
    rows = (Impression.objects.filter(id__gte=_id_bound(start),
                                      id__lt=_id_bound(end + datetime.timedelta(milliseconds=1)),
                                      experiment_id=experiment.pk)
            .order_by("id")
            .values_list("id", "variant", "visitor_unit", "user_id", "session_key", "shown_at",
                         "items"))
    for impression_id, variant, unit, user_id, session_key, shown_at, items in rows.iterator(
            chunk_size=10_000):
        arm = index.get(variant)
        if arm is None or not unit:
            continue  # a variant deleted since
        arm = unit_variant.setdefault(unit, arm)  # a visitor counts in their first variant
        first_seen.setdefault(unit, shown_at)
        impressions[arm] += 1
        if items:
            with_items[arm] += 1
            impression_unit[impression_id] = unit
        if user_id is not None:
            by_user[user_id] = unit
        elif session_key:
            by_session[session_key] = unit

    clicked_impressions = np.zeros(len(arms), dtype=np.int64)
    clickers: set[str] = set()
    if impression_unit:
        clicks = (Click.objects.filter(impression_id__gte=_id_bound(start),
                                       impression_id__lt=_id_bound(end + datetime.timedelta(days=1)))
                  .values_list("impression_id", flat=True).distinct())
        for impression_id in clicks.iterator(chunk_size=10_000):
            unit = impression_unit.get(impression_id)
            if unit is not None:
                clicked_impressions[unit_variant[unit]] += 1
                clickers.add(unit)

    # Accounts whose unit came from their session at login, before any list of theirs
    # was shown signed in: their purchases are the account's.
    known_units = list(unit_variant)
    for at in range(0, len(known_units), 5_000):  # within every database's parameter limit
        for user_id, unit in ExperimentVisitor.objects.filter(
                unit__in=known_units[at:at + 5_000]).values_list("user_id", "unit"):
            by_user.setdefault(user_id, unit)
    revenue_of: dict[str, float] = {}
    events = recs_settings.CONVERSION_EVENTS
    purchases = (Interaction.objects.filter(event__in=list(events), timestamp__gte=start,
                                            timestamp__lte=end)
                 .values_list("user_id", "session_key", "timestamp", "value"))
    for user_id, session_key, timestamp, value in purchases.iterator(chunk_size=10_000):
        unit = by_user.get(user_id) if user_id is not None else by_session.get(session_key)
        if unit is None or timestamp < first_seen[unit]:
            continue
        revenue_of[unit] = revenue_of.get(unit, 0.0) + (value or 0.0)

    units_by_arm: list[list[str]] = [[] for _ in arms]
    for unit, arm in unit_variant.items():
        units_by_arm[arm].append(unit)
    revenue_arrays = []
    for arm, variant in enumerate(result.variants):
        units = units_by_arm[arm]
        n = len(units)
        variant.visitors = n
        variant.impressions = int(impressions[arm])
        variant.impressions_with_items = int(with_items[arm])
        variant.clicked_impressions = int(clicked_impressions[arm])
        if with_items[arm]:
            variant.ctr = variant.clicked_impressions / variant.impressions_with_items
            variant.ctr_interval = stats.wilson_interval(variant.clicked_impressions,
                                                         variant.impressions_with_items)
        revenue = np.array([revenue_of.get(unit, 0.0) for unit in units], dtype=np.float64)
        revenue_arrays.append(revenue)
        variant.clickers = sum(1 for unit in units if unit in clickers)
        variant.converters = int(np.count_nonzero([unit in revenue_of for unit in units]))
        variant.revenue = float(revenue.sum())
        if n:
            variant.click_through = variant.clickers / n
            variant.click_through_interval = stats.wilson_interval(variant.clickers, n)
            variant.conversion_rate = variant.converters / n
            variant.conversion_interval = stats.wilson_interval(variant.converters, n)
            mean, low, high = stats.bootstrap_mean_interval(revenue, resamples=resamples,
                                                            seed=experiment.pk)
            variant.revenue_per_visitor, variant.revenue_interval = mean, (low, high)
    _compare(experiment, result, revenue_arrays, resamples)
    return result


def _compare(experiment, result: ExperimentResults, revenue_arrays, resamples: int) -> None:
    variants = result.variants
    visitors = [v.visitors for v in variants]
    if len(variants) >= 2 and all(v.weight > 0 for v in variants):
        result.srm_p_value = stats.sample_ratio_test(visitors, [v.weight for v in variants])
        result.sample_ratio_mismatch = result.srm_p_value < SRM_ALPHA
    control_at = next((i for i, v in enumerate(variants) if v.is_control), None)
    if control_at is None or sum(visitors) == 0:
        result.verdict = ["No visitors yet." if sum(visitors) == 0 else "No control variant."]
        return
    control = variants[control_at]
    result.alpha = ALPHA / max(1, len(variants) - 1)
    for arm, variant in enumerate(variants):
        if arm == control_at or not variant.visitors or not control.visitors:
            continue
        if NONE not in (variant.algorithm, control.algorithm):
            variant.click_through_difference = asdict(stats.two_proportion_test(
                control.clickers, control.visitors, variant.clickers, variant.visitors))
        variant.conversion_difference = asdict(stats.two_proportion_test(
            control.converters, control.visitors, variant.converters, variant.visitors))
        lift = stats.relative_lift_interval(control.converters, control.visitors,
                                            variant.converters, variant.visitors)
        if lift is not None:
            variant.conversion_lift = dict(zip(("lift", "low", "high"), lift))
        variant.revenue_difference = asdict(stats.bootstrap_mean_difference(
            revenue_arrays[control_at], revenue_arrays[arm], resamples=resamples,
            seed=experiment.pk))
    result.verdict = _verdict(experiment, result, control)


def _verdict(experiment, result: ExperimentResults, control: VariantResult) -> list[str]:
    lines = []
    if result.sample_ratio_mismatch:
        lines.append(
            f"Warning: the visitors per variant do not match the weights (sample ratio "
            f"mismatch, p = {result.srm_p_value:.2g}). Visitors were lost or assigned "
            "unevenly: do not trust these results until the cause is found.")
    others = [v for v in result.variants if not v.is_control]
    effect = experiment.minimum_effect
    if not control.converters:
        lines.append("Not enough data yet: the control has no conversions, so the sample size "
                     "cannot be estimated. Wait for more visitors.")
        return lines
    try:
        required = stats.sample_size_per_variant(control.conversion_rate, effect,
                                                 alpha=result.alpha)
    except ValueError:
        required = None
    result.required_per_variant = required
    smallest = min(v.visitors for v in result.variants)
    if required is not None and smallest < required:
        lines.append(
            f"Not enough data yet: about {required - smallest:,} more visitors per variant "
            f"({required:,} each) to detect a {effect:.0%} change in conversion rate from "
            f"the control's {control.conversion_rate:.2%}. Read the result then, once.")
        return lines
    result.enough_data = True
    for variant in others:
        difference = variant.conversion_difference
        if difference is None:
            continue
        lift = variant.conversion_lift
        if difference["p_value"] < result.alpha and lift is not None:
            better = "better" if lift["lift"] > 0 else "worse"
            lines.append(
                f"{variant.name} converts {abs(lift['lift']):.0%} {better} than {control.name}, "
                f"95% interval {lift['low']:+.0%} to {lift['high']:+.0%} "
                f"(p = {difference['p_value']:.2g}).")
        else:
            span = (f", 95% interval of the difference {difference['low']:+.2%} to "
                    f"{difference['high']:+.2%}")
            lines.append(f"No significant difference in conversion between {variant.name} and "
                         f"{control.name}{span} (p = {difference['p_value']:.2g}).")
        revenue = variant.revenue_difference
        if revenue is not None and revenue["p_value"] < result.alpha:
            more = "more" if revenue["difference"] > 0 else "less"
            lines.append(
                f"{variant.name} earns {abs(revenue['difference']):.2f} {more} per visitor than "
                f"{control.name}, 95% interval {revenue['low']:+.2f} to {revenue['high']:+.2f}.")
    return lines
