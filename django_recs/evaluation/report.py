"""Tables and the self-contained HTML report of an evaluation.

:func:`format_table` prints the metrics of several algorithms side by side
(plain text for a terminal, or Markdown for a README). :func:`render_html`
returns one HTML page with inline CSS and inline SVG plots (precision and
recall at 1..k, popularity of what was recommended against the catalog,
catalog coverage), so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from .evaluator import METRIC_ORDER, POPULARITY_BINS, AlgorithmEvaluation
from .svg import bar_chart, colour, line_chart

#: The catalog's own bars in the popularity plot.
CATALOG_COLOUR = "#999999"

#: Column headings; "@k" is filled in with the evaluation's k.
HEADINGS = {
    "precision": "precision@k",
    "recall": "recall@k",
    "ndcg": "nDCG@k",
    "map": "MAP@k",
    "hit_rate": "hit rate@k",
    "mrr": "MRR@k",
    "auc": "AUC",
    "coverage": "coverage",
    "gini": "Gini",
    "novelty": "novelty",
    "diversity": "diversity",
    "avg_popularity": "avg pop.",
    "fit_seconds": "fit s",
}

#: Metrics where lower is better (the report highlights the best of each column).
LOWER_IS_BETTER = {"gini", "avg_popularity", "fit_seconds"}

DEFINITIONS = {
    "precision": "share of the k recommended items that are relevant",
    "recall": "share of the user's relevant items found in the k recommendations",
    "ndcg": "DCG of the hits (1/log2(rank+1)) over the DCG of a perfect list of min(k, |relevant|) hits",
    "map": "mean over hits of precision at the hit's rank, divided by min(k, |relevant|)",
    "hit_rate": "share of users with at least one relevant item in their k recommendations",
    "mrr": "1 / rank of the first relevant recommendation (0 without one)",
    "auc": "probability that a relevant item is ranked above an irrelevant one over the whole catalog",
    "coverage": "share of the catalog recommended to at least one evaluated user",
    "gini": "inequality of how often items are recommended (0 = all equally, 1 = always the same)",
    "novelty": "mean self-information -log2(share of training users who had the item), in bits",
    "diversity": "mean pairwise 1 - cosine similarity of the items within a list (or different category)",
    "avg_popularity": "mean share of training users who had each recommended item",
    "fit_seconds": "time to fit the algorithm and compute every list",
}


def heading(metric: str, k: int) -> str:
    return HEADINGS.get(metric, metric).replace("@k", f"@{k}")


def format_value(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric == "fit_seconds":
        return f"{value:.1f}"
    if metric == "novelty":
        return f"{value:.2f}"
    return f"{value:.4f}"


def format_table(
    evaluations: list[AlgorithmEvaluation],
    *,
    metrics: tuple[str, ...] = METRIC_ORDER,
    markdown: bool = False,
) -> str:
    """The metrics of each evaluation, one row per algorithm, columns aligned.

    Parameters
    ----------
    evaluations : list of AlgorithmEvaluation
        Of one k (the k of the first names the columns).
    metrics : tuple of str
        The columns, in order.
    markdown : bool
        A Markdown table (for a README) instead of aligned plain text.
    """
    k = evaluations[0].k if evaluations else 10
    header = ["algorithm"] + [heading(m, k) for m in metrics]
    rows = [
        [e.label] + [format_value(m, e.metrics.get(m)) for m in metrics] for e in evaluations
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * len(metrics)) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(col)) for col in column) for column in zip(header, *rows)]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_html(
    evaluations: list[AlgorithmEvaluation],
    *,
    summary: dict | None = None,
    grid: list[AlgorithmEvaluation] | None = None,
    title: str = "django-recs offline evaluation",
) -> str:
    """One self-contained HTML page: summary, metrics table, plots and definitions.

    Parameters
    ----------
    evaluations : list of AlgorithmEvaluation
        The algorithms compared (baselines included), of one split and k.
    summary : dict, optional
        Numbers about the data and split (e.g. ``Split.summary()``), shown as a list.
    grid : list of AlgorithmEvaluation, optional
        Every combination of a grid search, shown ranked by nDCG@k.
    """
    if not evaluations:
        raise ValueError("render_html: no evaluations to report")
    k = evaluations[0].k
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    labels = [e.label for e in evaluations]
    ks = evaluations[0].curves["k"]
    precision_plot = line_chart(
        f"Precision at 1..{k}", ks,
        {e.label: e.curves["precision"] for e in evaluations}, x_label="k",
    )
    recall_plot = line_chart(
        f"Recall at 1..{k}", ks, {e.label: e.curves["recall"] for e in evaluations}, x_label="k"
    )
    bins = [f"{10 * i}-{10 * (i + 1)}%" for i in range(len(evaluations[0].popularity_profile["catalog"]))]
    if len(bins) != POPULARITY_BINS:
        bins = [str(i + 1) for i in range(len(bins))]
    popularity_series = {"catalog": evaluations[0].popularity_profile["catalog"]}
    popularity_series.update({e.label: e.popularity_profile["recommended"] for e in evaluations})
    popularity_plot = bar_chart(
        "Popularity of recommended items vs the catalog",
        bins,
        popularity_series,
        x_label="items by training popularity, most popular first",
        width=max(760, 12 * len(bins) * (len(evaluations) + 1) + 220),
        height=320,
        colours=[CATALOG_COLOUR] + [colour(i) for i in range(len(evaluations))],
    )
    coverage_plot = bar_chart(
        f"Catalog coverage of the top {k}",
        labels,
        {"coverage": [e.metrics["coverage"] for e in evaluations]},
        x_label="share of the catalog recommended to at least one user",
        width=max(360, 90 * len(labels) + 80),
        value_labels=True,
    )
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Generated {generated}. Split <code>{escape(evaluations[0].split)}</code>, '
        f"k = {k}, {evaluations[0].users:,} users evaluated.</p>",
    ]
    if summary:
        items = "".join(
            f"<li>{escape(str(key).replace('_', ' '))}: <b>{escape(_plain(value))}</b></li>"
            for key, value in summary.items()
        )
        sections.append(f"<h2>Data</h2><ul>{items}</ul>")
    sections.append("<h2>Metrics</h2>" + _html_table(evaluations))
    sections.append(
        '<h2>Accuracy by list length</h2><div class="plots">'
        f"{precision_plot}{recall_plot}</div>"
    )
    sections.append(
        "<h2>Popularity bias</h2><p>Share of training interactions (grey) and of "
        "recommendations (one bar per algorithm) falling on each tenth of the catalog, items "
        "sorted by how many training users had them. A recommender that only shows "
        f"best-sellers piles up on the left.</p>{popularity_plot}"
    )
    sections.append(f"<h2>Coverage</h2>{coverage_plot}")
    if grid:
        ranked = sorted(
            grid, key=lambda e: -_sortable(e.metrics.get("ndcg")),
        )
        sections.append(
            f"<h2>Parameter search ({len(grid)} combinations, best by nDCG@{k} first)</h2>"
            + _html_table(ranked, highlight=False)
        )
    definitions = "".join(
        f"<dt>{escape(heading(name, k))}</dt><dd>{escape(text)}</dd>"
        for name, text in DEFINITIONS.items()
    )
    sections.append(
        "<h2>Definitions</h2><p>Means over the evaluated users (users with at least one "
        f"held-out item and a training history); relevance is binary.</p><dl>{definitions}</dl>"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def write_report(path: str | Path, evaluations: list[AlgorithmEvaluation], **options) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.write_text(render_html(evaluations, **options), encoding="utf-8")
    return path


def _html_table(evaluations: list[AlgorithmEvaluation], *, highlight: bool = True) -> str:
    k = evaluations[0].k
    best: dict[str, float] = {}
    if highlight and len(evaluations) > 1:
        for metric in METRIC_ORDER:
            values = [
                e.metrics.get(metric) for e in evaluations
                if e.metrics.get(metric) is not None and not math.isnan(e.metrics[metric])
            ]
            if values:
                best[metric] = min(values) if metric in LOWER_IS_BETTER else max(values)
    head = "".join(
        f'<th title="{escape(DEFINITIONS.get(m, ""))}">{escape(heading(m, k))}</th>'
        for m in METRIC_ORDER
    )
    rows = []
    for e in evaluations:
        cells = []
        for metric in METRIC_ORDER:
            value = e.metrics.get(metric)
            text = escape(format_value(metric, value))
            if metric in best and value == best[metric]:
                text = f"<b>{text}</b>"
            cells.append(f"<td>{text}</td>")
        params = ", ".join(f"{key}={value}" for key, value in e.params.items())
        rows.append(
            f'<tr><th scope="row" title="{escape(e.algorithm)}({escape(params)})">'
            f"{escape(e.label)}</th>{''.join(cells)}</tr>"
        )
    return (
        f'<div class="wide"><table><thead><tr><th>algorithm</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _plain(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _sortable(value) -> float:
    return -math.inf if value is None or math.isnan(value) else value


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1280px;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555}table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
thead th{border-bottom:2px solid #999}tbody th,thead th:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1rem}dt{font-weight:600}dd{margin:0 0 .4rem 1rem;color:#444}
code{background:#f4f4f4;padding:0 .2rem}.wide{overflow-x:auto}
"""
