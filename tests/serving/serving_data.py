"""Stored results written straight into the tables, as a finished run leaves them.

The serving tests don't run the pipeline: they write Run, SimilarItem,
Recommendation, PopularItem and Interaction rows and read them back.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from django_recs.categories import ranks_within
from django_recs.items import item_content_type, item_key
from django_recs.models import Interaction, PopularItem, Recommendation, Run, SimilarItem
from tests.testapp.models import Category, Product

BASE = {"ITEM_MODELS": ["testapp.Product", "testapp.Gadget"], "NUM_THREADS": 1}
WITH_CATEGORY = {**BASE, "CATEGORY": {"testapp.Product": "category"}}


@pytest.fixture
def products():
    """12 products, 3 categories (p0, p3, p6, p9 in "c0" ...), all in stock, at 2.50."""
    categories = [Category.objects.create(name=f"c{i}") for i in range(3)]
    return [
        Product.objects.create(name=f"p{i}", category=categories[i % 3], price=Decimal("2.50"))
        for i in range(12)
    ]


@pytest.fixture
def customer():
    return User.objects.create_user("customer", password="x")


def names(items):
    return [item.name for item in items]


def active_run(algorithm: str) -> Run:
    """The active, succeeded run of ``algorithm`` (created when missing)."""
    run = Run.objects.filter(algorithm=algorithm, is_active=True).first()
    return run or Run.objects.create(algorithm=algorithm, status="succeeded", is_active=True)


def inactive_run(algorithm: str) -> Run:
    return Run.objects.create(algorithm=algorithm, status="succeeded", is_active=False)


def store_neighbours(item, neighbours, *, run: Run | None = None, algorithm: str = "similar"):
    """``neighbours``: [(item, score), ...] best first."""
    run = run or active_run(algorithm)
    SimilarItem.objects.bulk_create(
        SimilarItem(
            run=run,
            item_type=item_content_type(item),
            item_key=item_key(item),
            neighbour_type=item_content_type(other),
            neighbour_key=item_key(other),
            score=score,
            rank=rank,
        )
        for rank, (other, score) in enumerate(neighbours)
    )


def store_recommendations(user, recs, *, run: Run | None = None, algorithm: str = "personal"):
    """``recs``: [(item, score, reason item or None), ...] best first."""
    run = run or active_run(algorithm)
    Recommendation.objects.bulk_create(
        Recommendation(
            run=run,
            user=user,
            item_type=item_content_type(item),
            item_key=item_key(item),
            score=score,
            rank=rank,
            reason_type=item_content_type(reason) if reason is not None else None,
            reason_key=item_key(reason) if reason is not None else "",
        )
        for rank, (item, score, reason) in enumerate(recs)
    )


def store_popular(items_with_scores, *, run: Run | None = None, algorithm: str = "popular"):
    """``items_with_scores``: [(item, score), ...] most popular first.

    Each item's category is stored as a run with ``CATEGORY = "category"``
    stores it (the foreign key's value as text), with its rank there.
    """
    run = run or active_run(algorithm)
    categories = np.array([None if getattr(item, "category_id", None) is None
                           else str(item.category_id) for item, _ in items_with_scores],
                          dtype=object)
    category_ranks = ranks_within(categories)
    PopularItem.objects.bulk_create(
        PopularItem(
            run=run,
            item_type=item_content_type(item),
            item_key=item_key(item),
            score=score,
            rank=rank,
            category=categories[rank],
            category_rank=None if category_ranks[rank] < 0 else int(category_ranks[rank]),
        )
        for rank, (item, score) in enumerate(items_with_scores)
    )


def interact(item, event="view", *, user=None, session_key="", weight=1.0, days_ago=0.0, seconds=0):
    """One interaction row (``days_ago`` and ``seconds`` set its age)."""
    return Interaction.objects.create(
        user=user,
        session_key=session_key,
        item_type=item_content_type(item),
        item_key=item_key(item),
        event=event,
        weight=weight,
        timestamp=timezone.now() - timedelta(days=days_ago, seconds=seconds),
    )
