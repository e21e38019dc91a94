"""Small self-contained SVG charts: lines, grouped bars and sparklines.

The report and the admin draw their plots with these, so neither needs a
plotting library or any file beside the page: each function returns one
``<svg>`` element as a string, labels escaped.
"""

from __future__ import annotations

import math
from html import escape

#: Colour of the n-th series (colour-blind friendly, Okabe-Ito).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
FONT = 'font-family="system-ui, sans-serif"'


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_maximum(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (1 for <= 0)."""
    if not value or value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:.3g}"


def _finite(values) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _frame(
    width: int, height: int, title: str, y_max: float, *, left: int, right: int, bottom: int
) -> list[str]:
    """The <svg> opening, title, horizontal grid lines and y-axis labels."""
    top = 28
    plot_height = height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="13" '
        f'font-weight="600" {FONT}>{escape(title)}</text>',
    ]
    for i in range(5):
        value = y_max * i / 4
        y = top + plot_height * (1 - i / 4)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
            f'{FONT}>{_number(value)}</text>'
        )
    return parts


def _legend(labels: list[str], colours: list[str], x: int, y: int) -> list[str]:
    parts = []
    for i, label in enumerate(labels):
        row_y = y + 14 * i
        parts.append(f'<rect x="{x}" y="{row_y - 8}" width="10" height="10" fill="{colours[i]}"/>')
        parts.append(
            f'<text x="{x + 14}" y="{row_y + 1}" font-size="10" {FONT}>{escape(label)}</text>'
        )
    return parts


def line_chart(
    title: str,
    x_values: list,
    series: dict[str, list[float]],
    *,
    x_label: str = "",
    width: int = 520,
    height: int = 300,
    colours: list[str] | None = None,
) -> str:
    """Lines over shared x values; NaN or None points are skipped.

    ``colours`` gives each series its colour (default: the palette in order).
    """
    colours = colours or [colour(i) for i in range(len(series))]
    legend_width = 150
    left, bottom, top, right = 48, 36, 28, 12 + legend_width
    all_values = _finite(v for values in series.values() for v in values)
    y_max = nice_maximum(max(all_values, default=0.0))
    plot_width = width - left - right
    plot_height = height - top - bottom
    parts = _frame(width, height, title, y_max, left=left, right=right, bottom=bottom)
    count = max(len(x_values), 1)

    def x_at(i: int) -> float:
        return left + (plot_width * i / (count - 1) if count > 1 else plot_width / 2)

    for i, x in enumerate(x_values):
        parts.append(
            f'<text x="{x_at(i):.1f}" y="{height - bottom + 14}" text-anchor="middle" '
            f'font-size="10" {FONT}>{escape(str(x))}</text>'
        )
    if x_label:
        parts.append(
            f'<text x="{left + plot_width / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'font-size="11" {FONT}>{escape(x_label)}</text>'
        )
    for index, (label, values) in enumerate(series.items()):
        points = [
            (x_at(i), top + plot_height * (1 - v / y_max))
            for i, v in enumerate(values)
            if v is not None and math.isfinite(v)
        ]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline fill="none" stroke="{colours[index]}" stroke-width="2" points="{path}">'
            f"<title>{escape(label)}</title></polyline>"
        )
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colours[index]}"/>')
    parts += _legend(list(series), colours, width - legend_width + 8, top + 8)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    categories: list[str],
    series: dict[str, list[float]],
    *,
    x_label: str = "",
    width: int = 520,
    height: int = 300,
    value_labels: bool = False,
    colours: list[str] | None = None,
) -> str:
    """Grouped bars: one group per category, one bar per series.

    ``colours`` gives each series its colour (default: the palette in order).
    """
    colours = colours or [colour(i) for i in range(len(series))]
    legend_width = 150 if len(series) > 1 else 0
    left, bottom, top, right = 48, 36, 28, 12 + legend_width
    y_max = nice_maximum(max(_finite(v for s in series.values() for v in s), default=0.0))
    plot_width = width - left - right
    plot_height = height - top - bottom
    parts = _frame(width, height, title, y_max, left=left, right=right, bottom=bottom)
    group_width = plot_width / max(len(categories), 1)
    bar_width = group_width * 0.8 / max(len(series), 1)
    for g, category in enumerate(categories):
        group_x = left + g * group_width
        parts.append(
            f'<text x="{group_x + group_width / 2:.1f}" y="{height - bottom + 14}" '
            f'text-anchor="middle" font-size="10" {FONT}>{escape(str(category))}</text>'
        )
        for s, (label, values) in enumerate(series.items()):
            value = values[g] if g < len(values) else None
            if value is None or not math.isfinite(value):
                continue
            bar_height = plot_height * max(value, 0.0) / y_max
            x = group_x + group_width * 0.1 + s * bar_width
            y = top + plot_height - bar_height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_width - 1, 1):.1f}" '
                f'height="{bar_height:.1f}" fill="{colours[s]}">'
                f"<title>{escape(label)} {escape(str(category))}: {_number(value)}</title></rect>"
            )
            if value_labels:
                parts.append(
                    f'<text x="{x + bar_width / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                    f'font-size="10" {FONT}>{_number(value)}</text>'
                )
    if x_label:
        parts.append(
            f'<text x="{left + plot_width / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'font-size="11" {FONT}>{escape(x_label)}</text>'
        )
    if legend_width:
        parts += _legend(list(series), colours, width - legend_width + 8, top + 8)
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    values: list[float | None],
    *,
    width: int = 90,
    height: int = 22,
    stroke: str = PALETTE[0],
    title: str = "",
) -> str:
    """A tiny line of ``values`` (oldest first) scaled to its own range, last point marked."""
    points = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    label = f"<title>{escape(title)}</title>" if title else ""
    opening = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">{label}'
    )
    if not points:
        return opening + "</svg>"
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or 1.0
    count = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = 2 + (width - 4) * (i / count if len(values) > 1 else 0.5)
        y = height - 3 - (height - 6) * ((v - low) / span if high > low else 0.5)
        return x, y

    coordinates = [xy(i, v) for i, v in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
    last_x, last_y = coordinates[-1]
    return (
        opening
        + f'<polyline fill="none" stroke="{stroke}" stroke-width="1.5" points="{path}"/>'
        + f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.2" fill="{stroke}"/></svg>'
    )
