"""Admin pieces of the offline evaluation: a run's metrics, and the trend across runs.

``{% recs_run_evaluation original %}`` on a Run's page shows the metrics a
``recs_evaluate`` run stored beside its baselines, with precision and recall
at 1..k drawn inline. ``{% recs_evaluation_trends %}`` on the Run changelist
draws nDCG@k and coverage over the recent evaluated runs of each algorithm,
so a regression is visible at a glance. Both draw inline SVG (no files).
"""

from __future__ import annotations

import math

from django import template

from ..evaluation.report import DEFINITIONS, format_value, heading
from ..evaluation.svg import PALETTE, line_chart, sparkline
from ..models import Run

register = template.Library()

#: Evaluated runs per algorithm drawn in the changelist trend.
TREND_RUNS = 10

#: Runs looked at when building the trends (newest first).
TREND_SCAN = 500

#: Metrics shown on a run's page, in order.
PANEL_METRICS = (
    "precision", "recall", "ndcg", "map", "hit_rate", "mrr", "auc",
    "coverage", "gini", "novelty", "diversity", "avg_popularity",
)


def is_evaluated(metrics) -> bool:
    return isinstance(metrics, dict) and isinstance(metrics.get("ndcg"), (int, float))


@register.inclusion_tag("admin/django_recs/run/evaluation_panel.html")
def recs_run_evaluation(run: Run | None) -> dict:
    """The evaluation metrics of ``run`` beside its baselines (nothing for other runs)."""
    metrics = getattr(run, "metrics", None)
    if not is_evaluated(metrics):
        return {"rows": None}
    k = metrics.get("k", 10)
    baselines = metrics.get("baselines") or {}
    columns = [run.algorithm, *baselines]
    rows = []
    for name in PANEL_METRICS:
        if name not in metrics:
            continue
        values = [metrics.get(name)] + [b.get(name) for b in baselines.values()]
        rows.append(
            {
                "name": heading(name, k),
                "definition": DEFINITIONS.get(name, ""),
                "values": [format_value(name, v) for v in values],
            }
        )
    chart = ""
    curves = metrics.get("curves") or {}
    if curves.get("k"):
        chart = line_chart(
            f"{run.algorithm}: precision and recall at 1..{k}",
            curves["k"],
            {"precision": curves.get("precision", []), "recall": curves.get("recall", [])},
            x_label="k",
        )
    return {
        "rows": rows,
        "columns": columns,
        "split": metrics.get("split", ""),
        "k": k,
        "users": metrics.get("users"),
        "chart": chart,
    }


@register.inclusion_tag("admin/django_recs/run/evaluation_trends.html")
def recs_evaluation_trends() -> dict:
    """Per algorithm: nDCG@k and coverage of its last TREND_RUNS evaluated runs (oldest first).

    Only runs with the same split and k as the algorithm's newest evaluated
    run are drawn, so the points are comparable.
    """
    recent = (
        Run.objects.filter(status=Run.Status.SUCCEEDED)
        .order_by("-created_at", "-pk")
        .only("pk", "algorithm", "created_at", "metrics")[:TREND_SCAN]
    )
    by_algorithm: dict[str, list[Run]] = {}
    for run in recent:
        if not is_evaluated(run.metrics):
            continue
        runs = by_algorithm.setdefault(run.algorithm, [])
        newest = runs[0].metrics if runs else run.metrics
        same_protocol = (run.metrics.get("split"), run.metrics.get("k")) == (
            newest.get("split"), newest.get("k")
        )
        if same_protocol and len(runs) < TREND_RUNS:
            runs.append(run)
    rows = []
    for algorithm in sorted(by_algorithm):
        runs = list(reversed(by_algorithm[algorithm]))
        latest = runs[-1].metrics
        k = latest.get("k", 10)
        ndcg = [r.metrics.get("ndcg") for r in runs]
        coverage = [r.metrics.get("coverage") for r in runs]
        rows.append(
            {
                "algorithm": algorithm,
                "split": latest.get("split", ""),
                "k": k,
                "runs": len(runs),
                "ndcg": format_value("ndcg", ndcg[-1]),
                "ndcg_change": _change(ndcg),
                "ndcg_chart": sparkline(ndcg, stroke=PALETTE[0], title=f"nDCG@{k}, oldest first"),
                "coverage": format_value("coverage", coverage[-1]),
                "coverage_change": _change(coverage),
                "coverage_chart": sparkline(
                    coverage, stroke=PALETTE[2], title="coverage, oldest first"
                ),
                "latest_pk": runs[-1].pk,
            }
        )
    return {"rows": rows}


def _change(values: list) -> dict | None:
    """The last value against the one before it: ``{"text": "+3.1%", "worse": bool}``."""
    usable = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(usable) < 2 or usable[-2] == 0:
        return None
    relative = (usable[-1] - usable[-2]) / abs(usable[-2])
    return {"text": f"{relative:+.1%}", "worse": relative < -0.005}
