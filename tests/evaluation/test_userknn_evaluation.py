"""UserKNN in manage.py recs_evaluate: its row, its full scores for AUC, a grid over its parameters."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django.test import override_settings

from django_recs.models import Run
from tests.evaluation import test_command
from tests.evaluation.test_command import RECS, SPLIT, table_value

shop = test_command.shop  # fixture

WITH_USERKNN = {**RECS, "ALGORITHMS": {
    **RECS["ALGORITHMS"],
    "customers": {"class": "django_recs.algorithms.UserKNN", "k": 5},
}}


def run_command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with override_settings(DJANGO_RECS=WITH_USERKNN):
        call_command("recs_evaluate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_evaluated_with_the_personal_algorithms_and_scored_from_its_neighbours(shop):
    out, err = run_command("--k", "3", "--split", SPLIT)
    labels = [line.split()[0] for line in out.splitlines()[2:6]]
    assert labels == ["Random", "Popular", "similar", "customers"]
    # Customers of one group bought its products: their neighbours find the held-out one.
    assert table_value(out, "customers", 2) == 1.0  # recall@3
    run = Run.objects.get(algorithm="customers")
    assert run.params["class"] == "django_recs.algorithms.userknn.UserKNN"
    assert run.metrics["auc_source"] == "user_neighbours"
    assert run.metrics["auc"] > run.metrics["baselines"]["Random"]["auc"]
    assert not run.is_active


def test_grid_search_over_its_parameters(shop):
    out, err = run_command("customers", "--k", "3", "--split", SPLIT, "--no-auc",
                           "--grid", "k=1,10", "metric=cosine,asymmetric", "alpha=0.2")
    assert "[##############################] 4/4" in err
    assert "customers: best of 4 by nDCG" in out
    grid = Run.objects.get(algorithm="customers").metrics["grid"]
    assert {(entry["params"]["k"], entry["params"]["metric"]) for entry in grid} == {
        (1, "cosine"), (1, "asymmetric"), (10, "cosine"), (10, "asymmetric")}
    assert grid[0]["ndcg"] == max(entry["ndcg"] for entry in grid)
