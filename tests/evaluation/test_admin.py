"""The admin shows evaluation metrics on a run's page and their trend on the changelist."""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_recs.models import Run


def evaluated_run(algorithm: str, ndcg: float, coverage: float, *, split="temporal:2011-10-01", k=10):
    return Run.objects.create(
        algorithm=algorithm,
        status=Run.Status.SUCCEEDED,
        triggered_by="recs_evaluate",
        metrics={
            "precision": 0.05, "recall": 0.1, "ndcg": ndcg, "map": 0.02, "hit_rate": 0.3,
            "mrr": 0.1, "auc": None, "coverage": coverage, "gini": 0.9, "novelty": 7.5,
            "diversity": 0.8, "avg_popularity": 0.02, "fit_seconds": 1.0,
            "k": k, "split": split, "users": 1768,
            "curves": {"k": [1, 2, 3], "precision": [0.1, 0.08, 0.06], "recall": [0.01, 0.02, 0.03]},
            "baselines": {"Random": {"ndcg": 0.0085, "precision": 0.0084},
                          "Popular": {"ndcg": 0.0433, "precision": 0.0407}},
        },
    )


@pytest.mark.django_db
def test_run_page_shows_metrics_beside_baselines(admin_client):
    run = evaluated_run("personal", 0.0612, 0.25)
    page = admin_client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
    assert "Offline evaluation" in page
    assert "<th>personal</th><th>Random</th><th>Popular</th>" in page
    assert "nDCG@10" in page and "0.0612" in page and "0.0433" in page
    assert "precision and recall at 1..10" in page  # the inline chart
    assert page.count("<polyline") == 2


@pytest.mark.django_db
def test_run_page_of_a_recompute_run_has_no_evaluation_panel(admin_client):
    run = Run.objects.create(algorithm="similar", status=Run.Status.SUCCEEDED,
                             metrics={"users": 10, "item_coverage": 0.4})
    page = admin_client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
    assert "Offline evaluation" not in page


@pytest.mark.django_db
def test_changelist_charts_the_trend_and_flags_a_regression(admin_client):
    for ndcg in (0.050, 0.055, 0.060, 0.045):  # the newest run got worse
        evaluated_run("personal", ndcg, 0.20)
    evaluated_run("similar", 0.030, 0.40)
    evaluated_run("similar", 0.031, 0.41)
    evaluated_run("similar", 0.9, 0.9, split="last:1")  # another protocol: not comparable
    Run.objects.create(algorithm="similar", status=Run.Status.SUCCEEDED, metrics={"users": 3})
    page = admin_client.get(reverse("admin:django_recs_run_changelist")).content.decode()
    assert "Offline evaluation of recent runs" in page
    trend = page[page.index("recs-trends"): page.index("</table>", page.index("recs-trends"))]
    personal = trend[trend.index(">personal<"): trend.index(">similar<")]
    assert "0.0450" in personal
    assert 'class="recs-worse">-25.0%' in personal
    assert personal.count("<svg") == 2  # nDCG and coverage sparklines
    similar = trend[trend.index(">similar<"):]
    assert "<code>last:1</code>" in similar and "0.9000" in similar
    assert "0.0310" not in similar  # older runs of another split are not mixed in


@pytest.mark.django_db
def test_changelist_without_evaluations_has_no_chart(admin_client):
    Run.objects.create(algorithm="similar", status=Run.Status.SUCCEEDED)
    page = admin_client.get(reverse("admin:django_recs_run_changelist")).content.decode()
    assert "Offline evaluation of recent runs" not in page
