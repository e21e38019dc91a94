"""manage.py recs_evaluate on a small shop: the table, the report, the stored Run, the grid."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from django_recs.models import Interaction, Run
from tests.testapp.models import Product

ALGORITHMS = {
    "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 5},
    "popular": {"class": "django_recs.algorithms.Popular"},
}
RECS = {
    "ITEM_MODELS": ["testapp.Product"],
    "EVENTS": {"view": 1.0, "purchase": 5.0},
    "ALGORITHMS": ALGORITHMS,
    "NUM_THREADS": 1,
}
# Purchases 20..10 days ago are training; the last one, 2 days ago, is the test
# (the fraction 0.7 of that time span ends about 7.4 days ago).
SPLIT = "temporal:0.7"


@pytest.fixture
def shop(db):
    """24 customers in 3 groups of 4 products; each buys 3 of its group, then the 4th."""
    User = get_user_model()
    products = [Product.objects.create(name=f"product {i}") for i in range(12)]
    product_type = ContentType.objects.get_for_model(Product)
    now = timezone.now()
    rows = []
    for n in range(24):
        user = User.objects.create(username=f"customer{n}")
        group = products[4 * (n % 3) : 4 * (n % 3) + 4]
        order = [group[(n + i) % 4] for i in range(4)]
        for i, product in enumerate(order):
            days_ago = 2 if i == 3 else 20 - 3 * i - (n % 3)
            rows.append(
                Interaction(
                    user=user, item_type=product_type, item_key=str(product.pk),
                    event="purchase", weight=5.0, timestamp=now - timedelta(days=days_ago),
                )
            )
    Interaction.objects.bulk_create(rows)
    return products


def run_command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with override_settings(DJANGO_RECS=RECS):
        call_command("recs_evaluate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def table_value(output: str, label: str, column: int) -> float:
    line = next(line for line in output.splitlines() if line.startswith(label + " "))
    return float(line.split()[column])


def test_prints_the_table_with_baselines_and_stores_a_run(shop, tmp_path):
    report = tmp_path / "report.html"
    out, err = run_command("similar", "--k", "3", "--split", SPLIT, "--report", str(report))
    assert "24 users evaluated" in err
    header = out.splitlines()[0].split()
    assert header[:4] == ["algorithm", "precision@3", "recall@3", "nDCG@3"]
    assert {"Random", "Popular", "similar"} <= {line.split()[0] for line in out.splitlines()[2:5]}
    # The co-purchase structure is easy: the item-based lists find the held-out item.
    assert table_value(out, "similar", 2) == 1.0  # recall@3
    assert table_value(out, "similar", 3) > table_value(out, "Random", 3)

    run = Run.objects.get()
    assert run.algorithm == "similar"
    assert run.status == Run.Status.SUCCEEDED
    assert run.triggered_by == "recs_evaluate"
    assert not run.is_active
    assert run.params["class"] == "django_recs.algorithms.itemknn.ItemKNN"
    assert run.params["k"] == 5
    assert run.params["evaluation"] == {"split": "temporal:0.7", "k": 3}
    metrics = run.metrics
    assert metrics["recall"] == 1.0
    assert metrics["k"] == 3 and metrics["users"] == 24
    assert set(metrics["baselines"]) == {"Random", "Popular"}
    assert metrics["ndcg"] > metrics["baselines"]["Random"]["ndcg"]
    assert len(metrics["curves"]["precision"]) == 3
    assert f"Stored similar as run #{run.pk}" in out

    html = report.read_text()
    assert html.count("<svg") == 4  # precision, recall, popularity, coverage
    assert "similar" in html and "Popular" in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # self-contained


def test_default_evaluates_every_personal_algorithm(shop):
    out, _ = run_command("--k", "3", "--split", SPLIT, "--no-store", "--no-auc")
    labels = [line.split()[0] for line in out.splitlines()[2:]]
    assert labels == ["Random", "Popular", "similar"]  # "popular" is the Popular baseline
    assert not Run.objects.exists()


def test_grid_search_picks_the_best_by_ndcg(shop):
    out, err = run_command(
        "similar", "--k", "3", "--split", SPLIT, "--grid", "k=1,5", "metric=cosine,jaccard"
    )
    assert "[##############################] 4/4" in err
    assert "similar: best of 4 by nDCG" in out
    run = Run.objects.get()
    grid = run.metrics["grid"]
    assert len(grid) == 4
    assert grid[0]["ndcg"] == max(entry["ndcg"] for entry in grid) == run.metrics["ndcg"]
    assert {entry["params"]["k"] for entry in grid} == {1, 5}
    assert run.params["k"] == grid[0]["params"]["k"]


def test_from_csv_needs_no_database_rows(db, tmp_path):
    lines = ["user,item,event,weight,timestamp"]
    for n in range(12):
        group = ["a", "b", "c"] if n % 2 else ["x", "y", "z"]
        group = group[n % 3 :] + group[: n % 3]  # each item is someone's last
        for day, item in enumerate(group, start=1):
            lines.append(f"u{n},{item},purchase,,2024-01-0{day + (n % 2)} 10:00:00")
    path = tmp_path / "interactions.csv"
    path.write_text("\n".join(lines) + "\n")
    out, err = run_command("similar", "--k", "2", "--split", "last:1", "--from-csv", str(path))
    assert "12 users evaluated" in err
    assert table_value(out, "similar", 2) == 1.0
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nonexistent"], "Unknown algorithm 'nonexistent'"),
        (["similar", "--split", "sideways:3"], "expected temporal:DATE"),
        (["similar", "--grid", "factors=8,16"], "similar (ItemKNN) has no parameter factors"),
        (["similar", "--grid", "k"], "expected name=value1,value2"),
        (["similar", "--grid", "k=0,5"], "parameter k must be an integer >= 1"),
        (["similar", "--k", "0"], "k: expected a positive integer"),
        (["similar", "--split", "temporal:2000-01-01"], "no user has both"),
    ],
)
def test_bad_arguments_are_command_errors(shop, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run_command(*args)
    assert not Run.objects.exists()


def test_als_through_the_configured_class_with_a_grid(shop):
    als = {"class": "django_recs.algorithms.ALS", "factors": 4, "iterations": 3,
           "regularization": 0.1, "alpha": 2.0}
    out, err = StringIO(), StringIO()
    with override_settings(DJANGO_RECS={**RECS, "ALGORITHMS": {**ALGORITHMS, "personal": als}}):
        call_command("recs_evaluate", "--k", "3", "--split", SPLIT, "--grid", "factors=2,4",
                     stdout=out, stderr=err)
    assert "personal     [##############################] 2/2" in err.getvalue()
    run = Run.objects.get()  # only ALS accepts "factors"
    assert run.algorithm == "personal"
    assert run.params["class"] == "django_recs.algorithms.als.ALS"
    assert run.params["iterations"] == 3 and run.params["factors"] in (2, 4)
    assert run.metrics["auc_source"] == "factors"
    assert run.metrics["ndcg"] > run.metrics["baselines"]["Random"]["ndcg"]
