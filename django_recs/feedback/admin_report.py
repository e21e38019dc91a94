"""The admin's pages of the feedback: the report's table and charts, and a run's panel.

Builds what the templates show from :mod:`.report`'s numbers: each rate with
its 95% interval as text, and inline SVG charts per day
(:mod:`django_recs.evaluation.svg`).
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from ..evaluation.svg import line_chart
from .report import GROUPINGS, PERIODS, Performance, ReportQuery, by_day, grouped, run_performance

__all__ = ["report_context", "run_panel_context"]

#: Groups drawn in the charts (the most shown ones).
CHART_GROUPS = 8
#: Day labels under a chart, at most.
CHART_LABELS = 10


def report_context(params) -> dict:
    """Everything the report's template shows for the query string ``params``."""
    from ..models import Run

    query, problems = ReportQuery.from_params(params)
    groups = grouped(query)
    run_ids = {values.get("run_id") for values, _ in groups} - {None}
    runs = {run.pk: run for run in Run.objects.filter(pk__in=run_ids)}
    rows = [{"label": _label(values, runs), "numbers": numbers(performance)}
            for values, performance in groups]
    total = Performance(*[sum(getattr(p, name) for _, p in groups) for name in (
        "impressions", "clicked", "clicks", "conversions", "revenue", "revenue_squares")])
    return {
        "query": query,
        "problems": problems,
        "rows": rows,
        "total": numbers(total) if groups else None,
        "charts": _charts(query, [values for values, _ in groups[:CHART_GROUPS]]),
        "groupings": [(name, name.replace("_", " and ")) for name in GROUPINGS],
        "grouping_label": query.grouping.replace("_", " and "),
        "periods": PERIODS,
        "period": (query.end - query.start).days + 1,
    }


def run_panel_context(run) -> dict:
    """A run's online numbers (total and per placement) beside its offline metrics."""
    total, per_placement = run_performance(run.pk)
    metrics = run.metrics if isinstance(run.metrics, dict) else {}
    offline = [(name, _metric(metrics[name])) for name in (
        "precision", "recall", "ndcg", "map", "hit_rate", "coverage") if name in metrics]
    return {
        "online": numbers(total) if total.impressions else None,
        "placements": [(placement, numbers(p)) for placement, p in per_placement],
        "offline": offline,
        "k": metrics.get("k"),
    }


def numbers(performance: Performance) -> dict:
    """The table cells of one Performance: counts, and rates with their intervals."""
    return {
        "impressions": _count(performance.impressions),
        "clicks": _count(performance.clicks),
        "ctr": _rate(performance.ctr, performance.ctr_interval),
        "conversions": _count(performance.conversions),
        "conversion_rate": _rate(performance.conversion_rate, performance.conversion_interval),
        "revenue": _money(performance.revenue),
        "rpm": _money_interval(performance.rpm, performance.rpm_interval),
    }


def _label(values: dict, runs: dict) -> str:
    """A group's name as HTML: its placement and algorithm, its run linked to the run's page."""
    parts = []
    for name, value in values.items():
        if name != "run_id":
            parts.append(conditional_escape(value))
        elif value is None:
            parts.append("no run")
        elif value in runs:
            url = reverse("admin:django_recs_run_change", args=[value])
            parts.append(format_html('<a href="{}">#{}</a>', url, value))
        else:
            parts.append(format_html("#{} (deleted)", value))
    return mark_safe(" · ".join(parts))  # noqa: S308  (every part escaped above)


def _count(value: int) -> str:
    return number_format(value, force_grouping=True)


def _rate(value, interval) -> dict | None:
    if value is None:
        return None
    low, high = interval
    return {"value": f"{100 * value:.2f}%", "interval": f"{100 * low:.2f}–{100 * high:.2f}%"}


def _money(value: float) -> str:
    return number_format(value, decimal_pos=2, force_grouping=True)


def _money_interval(value, interval) -> dict | None:
    if value is None:
        return None
    low, high = interval
    return {"value": _money(value), "interval": f"{_money(low)}–{_money(high)}"}


def _metric(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _charts(query: ReportQuery, shown: list[dict]) -> list[str]:
    """Impressions, CTR and revenue per thousand impressions per day, a line per group."""
    if not shown:
        return []
    series = by_day(query)
    days = query.days()
    step = max(1, -(-len(days) // CHART_LABELS))
    labels = [day.strftime("%d %b") if i % step == 0 else "" for i, day in enumerate(days)]
    names = {tuple(values.values()): _plain_label(values) for values in shown}
    charts = []
    for title, value in (
        ("Impressions per day", lambda p: p.impressions),
        ("CTR per day (%)", lambda p: None if p.ctr is None else 100 * p.ctr),
        ("Revenue per thousand impressions, per day", lambda p: p.rpm),
    ):
        lines = {}
        for group, name in names.items():
            per_day = series.get(group, {})
            lines[name] = [value(per_day[day]) if day in per_day else None for day in days]
        charts.append(line_chart(title, labels, lines, x_label="day", width=760, height=280))
    return charts


def _plain_label(values: dict) -> str:
    return " · ".join(
        ("no run" if value is None else f"#{value}") if name == "run_id" else str(value)
        for name, value in values.items()
    )
