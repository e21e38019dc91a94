"""A small shop with interactions, and test-only algorithms, for the pipeline's tests."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from django_recs.algorithms import Algorithm, FitResult, ItemKNN
from django_recs.models import Interaction
from tests.testapp.models import Gadget, Product

#: Fast settings for the tests: small ALS, short lists.
ALGORITHMS = {
    "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 5},
    "personal": {"class": "django_recs.algorithms.ALS", "factors": 4, "iterations": 3,
                 "regularization": 0.1, "alpha": 2.0},
    "popular": {"class": "django_recs.algorithms.Popular"},
    "broken": {"class": "tests.pipeline.pipeline_fixtures.Exploding"},
}

RECS = {
    "ITEM_MODELS": ["testapp.Product", "testapp.Gadget"],
    "EVENTS": {"view": 1.0, "cart": 3.0, "purchase": 5.0},
    "ALGORITHMS": ALGORITHMS,
    "NUM_THREADS": 1,
    "RECOMMENDATIONS_PER_USER": 5,
}


class Exploding(Algorithm):
    """Fails in fit, like a shop's own algorithm with a bug."""

    name = "exploding"

    def fit(self, matrix, **kwargs) -> FitResult:
        raise ZeroDivisionError("boom in fit")


class Inspecting(ItemKNN):
    """ItemKNN that calls a hook while fitting (to look at the database mid-run)."""

    hook = None

    def fit(self, matrix, **kwargs):
        if Inspecting.hook is not None:
            Inspecting.hook(matrix)
        return super().fit(matrix, **kwargs)


def interact(user, item, event="view", weight=1.0, *, days_ago=0.0, session_key=""):
    return Interaction(
        user=user,
        session_key=session_key,
        item_type=ContentType.objects.get_for_model(type(item)),
        item_key=item.pk.hex if isinstance(item, Gadget) else str(item.pk),
        event=event,
        weight=weight,
        timestamp=timezone.now() - timedelta(days=days_ago),
    )


class Shop:
    """Users and items with a clear co-purchase structure.

    Products 0-2 are bought together, 3-5 together; gadget 0 goes with product 0.
    """

    def __init__(self):
        User = get_user_model()
        self.users = [User.objects.create(username=f"user{i}") for i in range(8)]
        self.products = [Product.objects.create(name=f"product {i}") for i in range(7)]
        self.gadgets = [Gadget.objects.create(name=f"gadget {i}") for i in range(2)]
        rows = []
        p, g, u = self.products, self.gadgets, self.users
        for user in u[:4]:
            rows += [interact(user, p[0], "purchase", 5), interact(user, p[1], "view"),
                     interact(user, p[2], "cart", 3)]
        for user in u[4:7]:
            rows += [interact(user, p[3], "purchase", 5), interact(user, p[4], "view"),
                     interact(user, p[5], "view")]
        rows += [interact(u[0], g[0], "view"), interact(u[1], g[0], "view"),
                 interact(u[7], p[0], "view"), interact(u[7], p[0], "view")]
        # Ignored: an anonymous session and an item model not in ITEM_MODELS.
        rows.append(interact(None, p[6], "view", session_key="anonymous-session"))
        Interaction.objects.bulk_create(rows)
        self.n_interactions = len(rows) - 1


@pytest.fixture
def shop(db, settings):
    settings.DJANGO_RECS = RECS
    return Shop()


def served_similar(algorithm="similar"):
    """(item_key, neighbour_key, rank) of the active run, sorted."""
    from django_recs.models import SimilarItem

    return sorted(SimilarItem.objects.active(algorithm).values_list(
        "item_key", "neighbour_key", "rank"))


def as_array(values):
    return np.asarray(list(values))
