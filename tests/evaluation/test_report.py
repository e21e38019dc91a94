"""The printed table, the HTML report, the SVG charts and the CSV reader."""

from __future__ import annotations

import gzip
import math
import re

import numpy as np
import pytest

from django_recs.evaluation import METRIC_ORDER, AlgorithmEvaluation
from django_recs.evaluation.csv_source import read_interactions_csv
from django_recs.evaluation.report import format_table, render_html
from django_recs.evaluation.svg import bar_chart, line_chart, nice_maximum, sparkline


def evaluation(label: str, ndcg: float) -> AlgorithmEvaluation:
    metrics = dict.fromkeys(METRIC_ORDER, 0.5)
    metrics.update(ndcg=ndcg, auc=math.nan, novelty=7.25, fit_seconds=1.234)
    return AlgorithmEvaluation(
        label=label, algorithm="x.Y", params={"k": 5}, k=3, split="last:1", users=10,
        metrics=metrics,
        curves={"k": [1, 2, 3], "precision": [0.3, 0.2, 0.1], "recall": [0.1, 0.2, 0.3],
                "ndcg": [0.3, 0.3, 0.3]},
        popularity_profile={"catalog": [0.6, 0.4], "recommended": [0.9, 0.1]},
    )


def test_plain_table_is_aligned():
    text = format_table([evaluation("Random", 0.01), evaluation("ItemKNN cosine", 0.1234)])
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["algorithm", "precision@3", "recall@3", "nDCG@3"]
    assert set(lines[1]) <= {"-", " "}
    assert len({len(line) for line in lines}) == 1  # every line equally wide
    row = lines[3].split()
    assert row[:2] == ["ItemKNN", "cosine"]
    assert "0.1234" in row and "-" in row  # NaN AUC shows as "-"
    assert "7.25" in row and "1.2" in row


def test_markdown_table():
    text = format_table([evaluation("ALS", 0.2)], markdown=True)
    lines = text.splitlines()
    assert lines[0].startswith("| algorithm | precision@3 |")
    assert lines[1].startswith("|---|---:|")
    assert lines[2].startswith("| ALS | 0.5000 |")


def test_html_report_is_self_contained_and_escaped():
    page = render_html(
        [evaluation("<script>alert(1)</script>", 0.1), evaluation("Popular", 0.2)],
        summary={"users_evaluated": 1234},
        grid=[evaluation("knn[k=1]", 0.05), evaluation("knn[k=5]", 0.15)],
    )
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") == 4
    assert "1,234" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    grid_section = page[page.index("Parameter search"):]
    assert grid_section.index("knn[k=5]") < grid_section.index("knn[k=1]")  # best first
    assert "<b>0.2000</b>" in page  # the best nDCG of the comparison


def test_render_html_needs_evaluations():
    with pytest.raises(ValueError, match="no evaluations"):
        render_html([])


def test_svg_charts():
    assert nice_maximum(0.037) == pytest.approx(0.05)
    assert nice_maximum(0.2) == pytest.approx(0.2)
    assert nice_maximum(0) == 1.0
    chart = line_chart("t", [1, 2, 3], {"a": [0.1, math.nan, 0.3], "b": [0.2, 0.2, 0.2]})
    assert chart.count("<polyline") == 2
    assert chart.count("<circle") == 5  # the NaN point is skipped
    bars = bar_chart("t", ["x", "y"], {"s": [1.0, None]}, value_labels=True)
    assert bars.count("<rect") == 1
    line = sparkline([None, 0.1, 0.2, math.nan], title="a & b")
    assert line.count("<polyline") == 1 and "a &amp; b" in line
    assert "<polyline" not in sparkline([None])


def test_read_interactions_csv(tmp_path):
    path = tmp_path / "rows.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("user,item,event,weight,timestamp,session_key\n")
        handle.write("alice,p1,,,2024-01-01 10:00:00,\n")
        handle.write("alice,p2,purchase,2.5,2024-01-02T11:00:00+01:00,\n")
        handle.write(",p1,purchase,,2024-01-03,abc\n")
    data = read_interactions_csv(path, events={"view": 1.0, "purchase": 5.0}, exclude_seen=["purchase"])
    assert data.shape == (2, 2)
    assert data.user_ids.tolist() == ["alice", "session:abc"]
    assert data.weights.tolist() == [1.0, 2.5, 5.0]  # no event = view; purchase's default weight
    assert data.seen.tolist() == [False, True, True]
    assert data.timestamps[1] == np.datetime64("2024-01-02T10:00:00")  # converted to UTC
    assert data.timestamps[2] == np.datetime64("2024-01-03T00:00:00")


def test_read_interactions_csv_without_header(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("7,shop.product:1,purchase,,2024-01-01T00:00:00\n8,shop.product:2,view,2,2024-01-02\n")
    data = read_interactions_csv(path)
    assert data.user_ids.tolist() == ["7", "8"]
    assert data.item_ids.tolist() == ["shop.product:1", "shop.product:2"]
    assert data.weights.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user,item\nu,i\n", "missing column"),
        ("user,item,weight,timestamp\nu,i,heavy,2024-01-01\n", "b.csv line 2"),
        ("user,item,timestamp\nu,i,\n", "line 2: no timestamp"),
        ("user,item,timestamp\n,i,2024-01-01\n", "line 2: no user and no session_key"),
        ("", "the file is empty"),
    ],
)
def test_read_interactions_csv_errors(tmp_path, content, message):
    path = tmp_path / "b.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_interactions_csv(path)
