"""What the lists earn, read from the daily roll-ups: the admin's report and a run's numbers.

Every number here is a sum over DailyFeedback rows (a few per day, placement
and algorithm), never a read of the raw impressions, so the report costs the
same at a hundred million impressions as at a hundred.

- impressions: lists shown; clicks: item links followed (once per list and position);
- CTR: the share of impressions with at least one click (Wilson 95% interval);
- conversions: clicks followed by an attributed conversion; conversion rate:
  conversions per click (Wilson);
- revenue: the values of the attributed conversions; RPM: revenue per
  thousand impressions (normal-approximation 95% interval, see :mod:`.intervals`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone

from .intervals import mean_interval, wilson_interval

__all__ = ["GROUPINGS", "PERIODS", "Performance", "ReportQuery", "by_day", "grouped",
           "run_performance"]

#: The groupings of the report: name -> DailyFeedback fields.
GROUPINGS = {
    "placement": ("placement",),
    "algorithm": ("algorithm",),
    "run": ("algorithm", "run_id"),
    "placement_algorithm": ("placement", "algorithm"),
}
#: The periods offered, in days.
PERIODS = (7, 30, 90, 365)
DEFAULT_PERIOD = 30
_SUMS = ("impressions", "clicked", "clicks", "conversions", "revenue", "revenue_squares")


@dataclass(frozen=True)
class Performance:
    """The sums of some DailyFeedback rows, and the rates and intervals they give."""

    impressions: int = 0
    clicked: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0

    @classmethod
    def of(cls, sums: dict) -> Performance:
        return cls(**{name: sums.get(name) or 0 for name in _SUMS})

    @property
    def ctr(self) -> float | None:
        """Share of impressions with a click (None without impressions)."""
        return self.clicked / self.impressions if self.impressions else None

    @property
    def ctr_interval(self) -> tuple[float, float] | None:
        return wilson_interval(min(self.clicked, self.impressions), self.impressions)

    @property
    def conversion_rate(self) -> float | None:
        """Conversions per click (None without clicks)."""
        return self.conversions / self.clicks if self.clicks else None

    @property
    def conversion_interval(self) -> tuple[float, float] | None:
        return wilson_interval(min(self.conversions, self.clicks), self.clicks)

    @property
    def rpm(self) -> float | None:
        """Revenue per thousand impressions (None without impressions)."""
        return 1000 * self.revenue / self.impressions if self.impressions else None

    @property
    def rpm_interval(self) -> tuple[float, float] | None:
        interval = mean_interval(self.revenue, self.revenue_squares, self.impressions)
        return None if interval is None else (1000 * interval[0], 1000 * interval[1])


@dataclass(frozen=True)
class ReportQuery:
    """The report's period (days, inclusive) and grouping, from the admin's query string."""

    start: datetime.date
    end: datetime.date
    grouping: str = "placement"

    @classmethod
    def from_params(cls, params, today: datetime.date | None = None) -> tuple[ReportQuery, list]:
        """The query of ``params`` (``period``=days, or ``start``/``end``=YYYY-MM-DD; ``by``).

        Returns the query and the problems found (each a message): a bad
        value falls back to the default rather than failing the page.
        """
        today = today or timezone.localdate()
        problems = []
        grouping = params.get("by") or "placement"
        if grouping not in GROUPINGS:
            problems.append(f"Unknown grouping {grouping!r}: by placement.")
            grouping = "placement"
        start = _date(params.get("start"), "start", problems)
        end = _date(params.get("end"), "end", problems)
        if start is not None or end is not None:
            end = end or today
            start = start or end - datetime.timedelta(days=DEFAULT_PERIOD - 1)
            if start > end:
                problems.append("The start is after the end: they are swapped.")
                start, end = end, start
            return cls(start, end, grouping), problems
        period = params.get("period") or str(DEFAULT_PERIOD)
        if not period.isdigit() or int(period) not in PERIODS:
            problems.append(f"Unknown period {period!r}: the last {DEFAULT_PERIOD} days.")
            period = str(DEFAULT_PERIOD)
        return cls(today - datetime.timedelta(days=int(period) - 1), today, grouping), problems

    @property
    def fields(self) -> tuple[str, ...]:
        return GROUPINGS[self.grouping]

    def days(self) -> list[datetime.date]:
        return [self.start + datetime.timedelta(days=i)
                for i in range((self.end - self.start).days + 1)]


def _date(text, name: str, problems: list) -> datetime.date | None:
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        problems.append(f"The {name} {text!r} is not a date (YYYY-MM-DD): ignored.")
        return None


def _rows(query: ReportQuery, using: str | None = None):
    from ..models import DailyFeedback

    return DailyFeedback.objects.using(using).filter(day__gte=query.start, day__lte=query.end)


def grouped(query: ReportQuery, using: str | None = None) -> list[tuple[dict, Performance]]:
    """(the group's field values, its Performance) per group of the period, most shown first."""
    sums = (
        _rows(query, using).order_by().values(*query.fields)
        .annotate(**{name: Sum(name) for name in _SUMS})
        .order_by("-impressions", *query.fields)
    )
    return [({name: row[name] for name in query.fields}, Performance.of(row)) for row in sums]


def by_day(query: ReportQuery, using: str | None = None) -> dict[tuple, dict]:
    """{group values (a tuple): {day: Performance}} over the period (days without rows left out)."""
    sums = (
        _rows(query, using).order_by().values("day", *query.fields)
        .annotate(**{name: Sum(name) for name in _SUMS})
    )
    series: dict[tuple, dict] = {}
    for row in sums:
        group = tuple(row[name] for name in query.fields)
        series.setdefault(group, {})[row["day"]] = Performance.of(row)
    return series


def run_performance(run_id: int, using: str | None = None) -> tuple[Performance, list]:
    """A run's numbers over all its days, and per placement: (total, [(placement, Performance)])."""
    from ..models import DailyFeedback

    rows = DailyFeedback.objects.using(using).filter(run_id=run_id).order_by()
    total = Performance.of(rows.aggregate(**{name: Sum(name) for name in _SUMS}))
    per_placement = [
        (row["placement"], Performance.of(row))
        for row in rows.values("placement").annotate(**{name: Sum(name) for name in _SUMS})
        .order_by("-impressions", "placement")
    ]
    return total, per_placement
