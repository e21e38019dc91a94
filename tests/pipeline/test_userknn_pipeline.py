"""UserKNN through the pipeline: ALGORITHMS -> recompute -> recommended_for, sharded by user range,
and in the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

import django_recs
from django_recs.models import Recommendation, Run, RunShard, SimilarItem
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
)

# These tests read the rows layout's Recommendation rows (the lists layout: test_lists_layout.py).
pytestmark = pytest.mark.usefixtures("rows_layout")

CUSTOMERS = {"class": "django_recs.algorithms.UserKNN", "k": 3}
WITH_USERKNN = {**RECS, "ALGORITHMS": {**RECS["ALGORITHMS"], "customers": CUSTOMERS}}

media = sharding_fixtures.media  # fixture


@pytest.fixture
def shop(db, settings):
    settings.DJANGO_RECS = WITH_USERKNN
    return pipeline_fixtures.Shop()


def test_recompute_stores_lists_from_similar_customers_with_reasons(shop):
    [run] = django_recs.recompute("customers", sync=True)
    assert run.status == "succeeded", run.error
    assert run.params["class"] == "django_recs.algorithms.UserKNN" and run.params["k"] == 3
    assert not SimilarItem.objects.filter(run=run).exists()  # similar items stay with ItemKNN
    assert run.metrics["rows_recommendations"] == Recommendation.objects.filter(run=run).count()
    assert run.metrics["user_neighbour_pairs"] > 0 and run.metrics["users_with_recommendations"] > 0
    p, g, u = shop.products, shop.gadgets, shop.users
    # User 7 viewed product 0, which users 0-3 bought: their items come back, the others
    # with product 0 as the reason ("customers who bought product 0 also bought this").
    # A view is not a seen event, so product 0 itself may come back (with no reason: an
    # item does not explain itself).
    items = list(django_recs.recommended_for(u[7], 5, algorithm="customers"))
    personal = [item for item in items if item.recs_source == "personal"]
    assert personal == [p[0], p[2], p[1]]  # bought by all four, then cart (3) before view (1)
    assert [item.recs_reason for item in personal] == [None, p[0], p[0]]
    assert all(item.recs_score > 0 for item in personal)
    gadgets = list(django_recs.recommended_for(u[7], 5, algorithm="customers",
                                               queryset=type(g[0]).objects.all()))
    assert gadgets[0] == g[0] and gadgets[0].recs_reason == p[0]
    # A purchase is seen (EXCLUDE_SEEN): user 0 never gets product 0 back.
    assert p[0] not in [r.item_key for r in Recommendation.objects.filter(run=run, user=u[0])]
    # Items of the other group come only from the fallbacks.
    assert all(item.recs_source != "personal" for item in
               django_recs.recommended_for(u[4], 5, algorithm="customers") if item in p[:3])


def test_no_fold_in_a_user_keeps_the_run_s_list(shop):
    from django_recs.pipeline.foldin import refresh_user

    [run] = django_recs.recompute("customers", sync=True)
    user = shop.users[7]
    before = list(Recommendation.objects.filter(run=run, user=user).values_list("item_key", "rank"))
    assert before
    assert refresh_user(user.pk, "customers") == 0
    assert list(Recommendation.objects.filter(run=run, user=user)
                .values_list("item_key", "rank")) == before


def test_runs_in_every_configured_run_and_in_the_admin(shop):
    runs = django_recs.recompute(sync=True)
    assert {run.algorithm: run.status for run in runs}["customers"] == "succeeded"
    run = Run.objects.get(algorithm="customers", is_active=True)
    client = staff("manager", can_recompute=True)
    page = client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
    assert "<th>user_neighbour_pairs</th>" in page and "<th>rows_recommendations</th>" in page
    listing = client.get(reverse("admin:django_recs_recommendation_changelist"),
                         {"run__algorithm": "customers"}).content.decode()
    assert f"customers #{run.pk}" in listing and "product 1" in listing
    response = client.post(reverse("admin:django_recs_run_recompute"), {"algorithm": "customers"})
    assert response.status_code == 302
    assert Run.objects.filter(algorithm="customers", status="pending").exists()


@pytest.fixture
def random_shop(db, settings, media):
    settings.DJANGO_RECS = {**SHARDED, "ALGORITHMS": {**SHARDED["ALGORITHMS"],
                                                      "customers": CUSTOMERS}}
    return RandomShop()


def test_a_sharded_run_gives_the_rows_of_one_process(random_shop):
    [single] = django_recs.recompute("customers", sync=True)
    assert single.status == "succeeded", single.error
    expected = recommendation_rows(single)

    run = run_through_celery("customers")
    assert run.status == "succeeded", run.error
    plan = run.params["sharding"]
    assert plan["kind"] == "userknn" and plan["similar"] == [] and len(plan["recommend"]) == 3
    assert RunShard.objects.filter(run=run, phase="recommend").count() == 3
    assert not RunShard.objects.filter(run=run, phase="similar").exists()
    assert_same_rows(recommendation_rows(run), expected)
    assert any(row[4] is not None for row in expected)  # reasons are stored
    # Metrics as a single run records them, the neighbour counts summed over the shards.
    assert run.metrics == single.metrics
    assert run.rows_written == single.rows_written and run.progress == 1.0


def test_shard_kind_and_costs():
    from django_recs.algorithms import UserKNN

    class OwnFit(UserKNN):
        def fit(self, matrix, **kwargs):
            return super().fit(matrix, **kwargs)

    assert sharding.shard_kind(UserKNN()) == "userknn"
    assert sharding.shard_kind(OwnFit()) is None
