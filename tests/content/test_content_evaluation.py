"""The cold-item view of a split, and recs_evaluate with ContentKNN and Hybrid:
on items nobody bought in training, the hybrid finds what ItemKNN cannot."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.utils import timezone

from django_recs.evaluation import TimedInteractions, temporal_split
from django_recs.evaluation.cold_items import cold_item_split, training_interactions_per_item
from django_recs.models import Interaction, Run
from tests.content import numpy_kernels
from tests.content_shop.models import Book

kernels_or_numpy = numpy_kernels.kernels_or_numpy  # autouse fixture

RECS = {
    "ITEM_MODELS": ["content_shop.Book"],
    "EVENTS": {"purchase": 5.0},
    "ALGORITHMS": {
        "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 10},
        "content": {"class": "django_recs.algorithms.ContentKNN", "k": 10},
        "hybrid": {"class": "django_recs.algorithms.Hybrid", "k": 10},
        "popular": {"class": "django_recs.algorithms.Popular"},
    },
    "ITEM_FEATURES": {"content_shop.Book": {"text": {"title": 1.0, "description": 1.0}}},
    "NUM_THREADS": 1,
}
FAMILIES = {
    "python": "python programming code",
    "baking": "bread cake oven baking",
    "garden": "garden plants soil seeds",
}


def test_cold_item_split_keeps_only_items_with_few_training_interactions():
    # Item 0: 3 training entries; item 1: 1; item 2: none. Users 0-2 bought each later.
    rows = [0, 1, 2, 0, 0, 1, 2]
    cols = [0, 0, 0, 1, 2, 2, 1]
    days = [1, 1, 1, 2, 9, 9, 9]  # day 9 is the test period
    data = TimedInteractions(rows=rows, cols=cols, weights=np.ones(7),
                             timestamps=np.array(days) * 86_400, shape=(3, 3))
    split = temporal_split(data, np.datetime64(5 * 86_400, "s"))
    assert training_interactions_per_item(split).tolist() == [3, 1, 0]
    assert split.test.toarray().tolist() == [[0, 0, 1], [0, 0, 1], [0, 1, 0]]
    cold = cold_item_split(split, 1)  # only items without any training entry
    assert cold.test.toarray().tolist() == [[0, 0, 1], [0, 0, 1], [0, 0, 0]]
    assert cold.users.tolist() == [0, 1] and cold.dropped["nothing_to_test"] == 1
    assert cold.name.endswith("cold items (<1)") and cold.train is split.train
    assert cold_item_split(split, 2).users.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="max_interactions"):
        cold_item_split(split, 0)


@pytest.fixture
def families(db, settings):
    """Three families of five books; customers buy four of their family, then the fifth,
    new one that nobody had bought before."""
    settings.DJANGO_RECS = RECS
    books = {
        family: [Book.objects.create(title=f"{family} volume {i}", description=words)
                 for i in range(5)]
        for family, words in FAMILIES.items()
    }
    User = get_user_model()
    ct = ContentType.objects.get_for_model(Book)
    now = timezone.now()
    rows = []
    for n in range(18):
        user = User.objects.create(username=f"customer{n}")
        family = books[list(FAMILIES)[n % 3]]
        for i in range(4):
            rows.append(Interaction(user=user, item_type=ct, item_key=str(family[(n + i) % 4].pk),
                                    event="purchase", weight=5.0,
                                    timestamp=now - timedelta(days=20 - 2 * i)))
        rows.append(Interaction(user=user, item_type=ct, item_key=str(family[4].pk),
                                event="purchase", weight=5.0, timestamp=now - timedelta(days=1)))
    Interaction.objects.bulk_create(rows)
    return books


def recall_of(output: str, label: str, *, table: int) -> float:
    tables = output.split("cold items (<5)")
    line = next(line for line in tables[table].splitlines() if line.startswith(label + " "))
    return float(line.split()[2])


def test_recs_evaluate_includes_content_algorithms_and_the_cold_item_view(families):
    out, err = StringIO(), StringIO()
    call_command("recs_evaluate", "--k", "3", "--split", "temporal:0.7", "--cold-items", "5",
                 "--no-auc", stdout=out, stderr=err)
    output = out.getvalue()
    assert "18 users evaluated" in err.getvalue()
    # Every held-out purchase is of a new book: ItemKNN cannot propose it.
    assert recall_of(output, "similar", table=1) == 0.0
    assert recall_of(output, "hybrid", table=1) == 1.0
    assert recall_of(output, "content", table=1) == 1.0
    assert recall_of(output, "hybrid", table=0) == 1.0
    stored = Run.objects.filter(triggered_by="recs_evaluate")
    assert set(stored.values_list("algorithm", flat=True)) == {"similar", "content", "hybrid"}
    assert stored.get(algorithm="hybrid").metrics["recall"] == 1.0


def test_recs_evaluate_skips_content_algorithms_for_csv_input(families, tmp_path):
    path = tmp_path / "interactions.csv"
    path.write_text("user,item,event,weight,timestamp\n"
                    "1,a,purchase,1,2024-01-01T00:00:00\n1,b,purchase,1,2024-01-02T00:00:00\n"
                    "2,a,purchase,1,2024-01-01T00:00:00\n2,b,purchase,1,2024-01-03T00:00:00\n")
    out, err = StringIO(), StringIO()
    call_command("recs_evaluate", "--from-csv", str(path), "--split", "last:1", "--no-auc",
                 stdout=out, stderr=err)
    assert "skipping content, hybrid" in err.getvalue()
    assert "hybrid" not in out.getvalue()


def test_recs_evaluate_grid_searches_the_hybrid_shrink(families):
    out = StringIO()
    call_command("recs_evaluate", "hybrid", "--grid", "shrink=1,100", "--k", "3",
                 "--split", "temporal:0.7", "--no-auc", "--no-store", stdout=out, stderr=StringIO())
    assert "hybrid: best of 2 by nDCG" in out.getvalue()
