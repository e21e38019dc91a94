"""A shop with random histories, and algorithms that fail or count inside shards."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from django_recs import pipeline, tasks
from django_recs.algorithms import ItemKNN
from django_recs.models import Interaction, Recommendation, Run, SimilarItem
from tests.pipeline.pipeline_fixtures import RECS, interact
from tests.testapp.models import Gadget, Product

ALGORITHMS = {
    "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 5},
    "personal": {"class": "django_recs.algorithms.ALS", "factors": 4, "iterations": 3,
                 "regularization": 0.1, "alpha": 2.0, "similar_items": 3},
    "popular": {"class": "django_recs.algorithms.Popular"},
    "failing": {"class": "tests.pipeline.sharding_fixtures.FailingShardKNN", "k": 5},
}

SHARDED = {**RECS, "ALGORITHMS": ALGORITHMS, "SHARDS": 3}


class FailingShardKNN(ItemKNN):
    """ItemKNN whose shards after the first raise, counting the attempts."""

    attempts = 0

    def neighbours(self, matrix, *, items=None, num_threads=0):
        if items is not None and items[0] > 0:
            FailingShardKNN.attempts += 1
            raise RuntimeError(f"boom in the shard of items {items}")
        return super().neighbours(matrix, items=items, num_threads=num_threads)


class RandomShop:
    """40 users with 2-9 random products or gadgets each: enough for several shards."""

    def __init__(self, seed: int = 0, n_users: int = 40):
        rng = np.random.default_rng(seed)
        User = get_user_model()
        self.users = [User.objects.create(username=f"shopper{seed}-{i}") for i in range(n_users)]
        self.products = [Product.objects.create(name=f"item {i}") for i in range(24)]
        self.gadgets = [Gadget.objects.create(name=f"gadget {i}") for i in range(4)]
        items = self.products + self.gadgets
        popularity = np.arange(1, len(items) + 1, dtype=float) ** -0.8
        popularity /= popularity.sum()
        rows = []
        for user in self.users:
            for index in rng.choice(len(items), size=int(rng.integers(2, 10)), p=popularity,
                                    replace=False):
                event = ("view", "cart", "purchase")[int(rng.integers(0, 3))]
                rows.append(interact(user, items[int(index)], event,
                                     {"view": 1.0, "cart": 3.0, "purchase": 5.0}[event]))
        Interaction.objects.bulk_create(rows)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def random_shop(db, settings, media):
    settings.DJANGO_RECS = SHARDED
    return RandomShop()


def run_through_celery(algorithm: str) -> Run:
    """A pending run executed by the (eager) recompute task, as a worker would."""
    run, created = pipeline.start_run(algorithm, triggered_by="test")
    assert created
    tasks.recompute.delay(algorithm, run_id=run.pk)
    run.refresh_from_db()
    return run


def similar_rows(run: Run) -> list[tuple]:
    return sorted(SimilarItem.objects.filter(run=run).values_list(
        "item_type_id", "item_key", "rank", "neighbour_type_id", "neighbour_key", "score"))


def recommendation_rows(run: Run) -> list[tuple]:
    """The run's recommendations as rows, from whichever layout it stored them in."""
    from django_recs.models import RecommendationList

    rows = list(Recommendation.objects.filter(run=run).values_list(
        "user_id", "rank", "item_type_id", "item_key", "reason_type_id", "reason_key", "score"))
    for stored in RecommendationList.objects.filter(run=run):
        rows += [(stored.user_id, rank, stored.item_type_id, key, why_type, why or "", score)
                 for rank, (key, score, why_type, why) in enumerate(stored.entries)]
    return sorted(rows)


def assert_same_rows(got: list[tuple], expected: list[tuple]) -> None:
    """Equal rows, scores (the last column) to float tolerance."""
    assert len(got) == len(expected) > 0
    assert [row[:-1] for row in got] == [row[:-1] for row in expected]
    np.testing.assert_allclose([row[-1] for row in got], [row[-1] for row in expected],
                               rtol=1e-5, atol=1e-7)
