"""PostgreSQL with prepared statements: the lists' statements are prepared, the lists unchanged.

Django turns prepared statements on with ``OPTIONS["prepare_threshold"]``;
the lists' statements then run on a cursor binding parameters on the server
(see :func:`django_recs.serving.candidates.statement_cursor`). Here the threshold is
set on the test connection itself (0: prepare at the first run), and every
kind of list is read unprepared, prepared, and prepared with the generic
plans docs/serving.md recommends: the lists must be the same.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import override_settings

from django_recs import recommended_for, similar_to
from tests.serving import serving_data
from tests.serving.serving_data import (
    WITH_CATEGORY,
    interact,
    store_neighbours,
    store_popular,
    store_recommendations,
)
from tests.testapp.models import Gadget, Product

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

products = serving_data.products  # fixture
customer = serving_data.customer  # fixture


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def threshold():
    """Set the connection's prepare threshold for a block; restore it after."""
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.prepare_threshold

    def set_to(value):
        raw.prepare_threshold = value

    yield set_to
    raw.prepare_threshold = saved
    with connection.cursor() as cursor:
        cursor.execute("RESET plan_cache_mode")
        cursor.execute("DEALLOCATE ALL")


def _shop(products, customer):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8)])
    store_neighbours(p[3], [(p[7], 0.5), (p[4], 0.4)])
    store_recommendations(customer, [(p[4], 0.8, p[1]), (p[6], 0.6, None)])
    store_popular([(p[i], 12.0 - i) for i in (5, 8, 9, 10, 11, 2)])
    interact(p[3], "view", session_key="anon")
    interact(p[8], "purchase", session_key="anon")
    interact(p[3], "view", user=customer)
    gadgets = [Gadget.objects.create(name=f"g{i}") for i in range(3)]
    store_neighbours(gadgets[0], [(gadgets[2], 0.7), (gadgets[1], 0.6)])
    return gadgets


def _lists(p, customer, gadgets):
    """Every kind of list, as (name, source, score, reason) tuples."""
    in_stock = Product.objects.filter(in_stock=True, price__gte=1)
    lists = {
        "stored neighbours": similar_to(p[0], 2),
        "neighbours, then fallbacks": similar_to(p[0], 6),
        "no neighbours": similar_to(p[11], 4, user=customer, session_key="anon"),
        "stored, with reasons": recommended_for(customer, 5, session_key="anon"),
        "anonymous history": recommended_for(AnonymousUser(), 4, session_key="anon"),
        "unknown visitor": recommended_for(None, 3, model=Product),
        "restricted": similar_to(p[3], 4, queryset=in_stock),
        "one per category": similar_to(p[0], 4, max_per_category=1),
        "excluding": recommended_for(customer, 3, exclude=[p[4], p[5].pk]),
        "uuid keys": similar_to(gadgets[0], 2),
    }
    return {
        name: [(i.name, i.recs_source, round(i.recs_score, 6), i.recs_reason) for i in items]
        for name, items in lists.items()
    }


def test_every_list_is_the_same_prepared_and_with_generic_plans(products, customer, threshold):
    with override_settings(DJANGO_RECS=WITH_CATEGORY):
        gadgets = _shop(products, customer)
        unprepared = _lists(products, customer, gadgets)
        assert not any("recs_source" in s for s in _prepared_statements())

        threshold(0)
        assert _lists(products, customer, gadgets) == unprepared
        assert _lists(products, customer, gadgets) == unprepared  # the prepared ones, reused
        with connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")
        assert _lists(products, customer, gadgets) == unprepared

    assert unprepared["no neighbours"][0][1] == "category"
    assert unprepared["anonymous history"][0][:2] == ("p7", "history")
    assert len([s for s in _prepared_statements() if "recs_source" in s]) >= 5


def test_without_recent_popularity_run_the_stand_in_prepares_too(products, threshold):
    p = products
    interact(p[5], "purchase", session_key="other", weight=3.0)
    interact(p[2], "view", session_key="other")
    before = [(i.name, i.recs_source) for i in similar_to(p[0], 3)]
    threshold(0)
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    assert [(i.name, i.recs_source) for i in similar_to(p[0], 3)] == before
    assert before == [("p5", "popular"), ("p2", "popular")]


def test_the_orms_own_queries_are_left_unprepared(products, threshold):
    threshold(0)
    store_neighbours(products[0], [(products[1], 0.9)])
    assert [i.name for i in similar_to(products[0], 1)] == ["p1"]
    assert Product.objects.filter(name="p1").count() == 1
    statements = _prepared_statements()
    assert any("recs_source" in s for s in statements)
    assert not any("testapp_product" in s and "recs_source" not in s for s in statements)


def test_prepared_lists_follow_a_swap_done_by_another_connection(transactional_db, threshold):
    """The pipeline swaps and drops partitions on its own connection: plans made before are redone."""
    import threading

    from django_recs.models import Run, SimilarItem
    from django_recs.pipeline import swap_active_run
    from django_recs.storage.partitions import create_run_partition, drop_run_partition
    from tests.testapp.models import Category

    category = Category.objects.create(name="c")
    p = [Product.objects.create(name=f"p{i}", category=category, price=1) for i in range(3)]
    old = Run.objects.create(algorithm="similar", status="succeeded", is_active=True)
    create_run_partition(SimilarItem, old.pk, using="default")
    store_neighbours(p[0], [(p[1], 0.9)], run=old)
    threshold(0)
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    for _ in range(2):  # prepared, then reused
        assert [i.name for i in similar_to(p[0], 1)] == ["p1"]

    def pipeline_run():
        from django.db import connection as own

        try:
            new = Run.objects.create(algorithm="similar", status="running")
            create_run_partition(SimilarItem, new.pk, using="default")
            store_neighbours(p[0], [(p[2], 0.8)], run=new)
            swap_active_run(new)
            drop_run_partition(SimilarItem, old.pk, using="default")
        finally:
            own.close()

    worker = threading.Thread(target=pipeline_run)
    worker.start()
    worker.join(30)
    assert [i.name for i in similar_to(p[0], 1)] == ["p2"]
    assert any("recs_source" in s for s in _prepared_statements())
