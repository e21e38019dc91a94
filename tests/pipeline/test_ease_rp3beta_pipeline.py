"""EASE and RP3beta through the pipeline: ALGORITHMS -> recompute -> similar_to / recommended_for, and the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

import django_recs
from django_recs.models import Recommendation, Run, SimilarItem
from django_recs.pipeline import sharding
from tests.django.test_admin_runs import staff
from tests.pipeline import pipeline_fixtures, sharding_fixtures
from tests.pipeline.pipeline_fixtures import RECS
from tests.pipeline.sharding_fixtures import (
    SHARDED,
    RandomShop,
    assert_same_rows,
    recommendation_rows,
    run_through_celery,
    similar_rows,
)

EASE = {"class": "django_recs.algorithms.EASE", "l2": 0.5, "k": 3}
WITH_EASE = {**RECS, "ALGORITHMS": {**RECS["ALGORITHMS"], "ease": EASE}}

media = sharding_fixtures.media  # fixture


@pytest.fixture
def shop(db, settings, rows_layout):
    settings.DJANGO_RECS = WITH_EASE
    return pipeline_fixtures.Shop()


def test_recompute_stores_similar_items_and_lists_with_reasons(shop):
    [run] = django_recs.recompute("ease", sync=True)
    assert run.status == "succeeded", run.error
    assert run.params["class"] == "django_recs.algorithms.EASE" and run.params["l2"] == 0.5
    assert run.metrics["items_in_model"] == 7  # every interacted item: products 0-5, gadget 0
    assert run.metrics["rows_recommendations"] == Recommendation.objects.filter(run=run).count()
    p, u = shop.products, shop.users
    # Products 0-2 are bought together: each one's similar items are the other two.
    assert set(django_recs.similar_to(p[0], 2, algorithm="ease")) == {p[1], p[2]}
    assert set(django_recs.similar_to(p[3], 2, algorithm="ease")) == {p[4], p[5]}
    assert SimilarItem.objects.filter(run=run).exists()
    # User 7 viewed product 0 only: products 1 and 2 come first, product 0 is their reason.
    items = [item for item in django_recs.recommended_for(u[7], 5, algorithm="ease")
             if item.recs_source == "personal"]
    assert set(items[:2]) == {p[1], p[2]}
    assert all(item.recs_reason == p[0] for item in items[:2])
    assert all(item.recs_score > 0 for item in items)
    # A purchase is seen: user 0 never gets product 0 back.
    assert p[0] not in [r.item_key for r in Recommendation.objects.filter(run=run, user=u[0])]


def test_runs_in_one_process_and_shows_in_the_admin(shop, settings):
    settings.DJANGO_RECS = {**WITH_EASE, "SHARDS": 3}
    from django_recs.algorithms import EASE as EASEClass

    assert sharding.shard_kind(EASEClass()) is None  # one process, whatever SHARDS says
    runs = django_recs.recompute("ease", sync=True)
    assert runs[0].status == "succeeded", runs[0].error
    run = Run.objects.get(algorithm="ease", is_active=True)
    client = staff("manager", can_recompute=True)
    page = client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
    assert "<th>items_in_model</th>" in page and "<th>neighbour_pairs</th>" in page


def test_a_bad_l2_is_a_system_check_error(db, settings):
    from django.core import checks

    settings.DJANGO_RECS = {**RECS, "ALGORITHMS": {"ease": {**EASE, "l2": 0}}}
    errors = [e for e in checks.run_checks() if e.id == "django_recs.E032"]
    assert errors and "l2" in errors[0].msg


# -- RP3beta -----------------------------------------------------------------------

RP3BETA = {"class": "django_recs.algorithms.RP3beta", "k": 3, "beta": 0.3}


def test_rp3beta_recompute_stores_neighbours_and_lists(db, settings):
    settings.DJANGO_RECS = {**RECS, "ALGORITHMS": {"walk": RP3BETA}}
    shop = pipeline_fixtures.Shop()
    [run] = django_recs.recompute("walk", sync=True)
    assert run.status == "succeeded", run.error
    p, u = shop.products, shop.users
    assert set(django_recs.similar_to(p[0], 2, algorithm="walk")) == {p[1], p[2]}
    items = [item for item in django_recs.recommended_for(u[7], 5, algorithm="walk")
             if item.recs_source == "personal"]
    assert set(items[:2]) == {p[1], p[2]} and items[0].recs_reason == p[0]


@pytest.fixture
def random_shop(db, settings, media):
    settings.DJANGO_RECS = {**SHARDED, "ALGORITHMS": {**SHARDED["ALGORITHMS"], "walk": RP3BETA}}
    return RandomShop()


def test_rp3beta_sharded_run_gives_the_rows_of_one_process(random_shop):
    [single] = django_recs.recompute("walk", sync=True)
    assert single.status == "succeeded", single.error
    expected_similar, expected_recs = similar_rows(single), recommendation_rows(single)
    run = run_through_celery("walk")
    assert run.status == "succeeded", run.error
    assert run.params["sharding"]["kind"] == "itemknn"
    assert_same_rows(similar_rows(run), expected_similar)
    assert_same_rows(recommendation_rows(run), expected_recs)
