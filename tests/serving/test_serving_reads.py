"""How a list is read: its statements, their count, swaps, chaining, and the pieces.

test_serving.py pins down what a visitor sees; these pin down what it costs
and the building blocks (candidates.py, diversity.py, expressions.py). They
run on SQLite and, with DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_recs import recommended_for, similar_to
from django_recs.models import Run
from django_recs.pipeline import swap_active_run
from django_recs.serving.candidates import Candidate, ItemColumns, pick
from django_recs.serving.diversity import cap_per_category, check_cap
from django_recs.serving.ordering import ListPosition
from tests.serving import serving_data
from tests.serving.serving_data import (
    WITH_CATEGORY,
    active_run,
    inactive_run,
    interact,
    names,
    store_neighbours,
    store_popular,
    store_recommendations,
)
from tests.testapp.models import Gadget, Product

pytestmark = pytest.mark.django_db

products = serving_data.products  # fixture
customer = serving_data.customer  # fixture


# --- statements per list --------------------------------------------------------------


def test_a_full_stored_list_is_one_query_a_short_one_two(products, django_assert_num_queries):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8), (p[3], 0.7)])
    store_popular([(p[5], 2.0), (p[6], 1.0)])
    with django_assert_num_queries(1):
        assert names(similar_to(p[0], 3)) == ["p1", "p2", "p3"]
    with django_assert_num_queries(2):  # the neighbours, then the fallbacks
        assert names(similar_to(p[0], 5)) == ["p1", "p2", "p3", "p5", "p6"]


def test_the_returned_list_is_loaded_iterating_it_costs_nothing(
    products, customer, django_assert_num_queries
):
    p = products
    store_recommendations(customer, [(p[4], 0.8, p[1]), (p[6], 0.6, None)])
    items = recommended_for(customer, 2)
    with django_assert_num_queries(0):
        assert names(items) == ["p4", "p6"]
        assert len(items) == 2 and items and items.count() == 2 and items.exists()
        assert items.first().name == "p4" and items[1].name == "p6"
        assert items[0].recs_reason == p[1]
        assert items[0].price == Decimal("2.50") and items[0].in_stock is True


def test_history_led_chain_is_one_query_when_the_history_fills_the_list(
    products, django_assert_num_queries
):
    p = products
    interact(p[2], "view", session_key="anon")
    store_neighbours(p[2], [(p[6], 0.7), (p[4], 0.5)])
    store_popular([(p[1], 1.0)])
    with django_assert_num_queries(1):
        items = list(recommended_for(AnonymousUser(), 2, session_key="anon"))
    assert [(i.name, i.recs_source) for i in items] == [("p6", "history"), ("p4", "history")]
    with django_assert_num_queries(2):  # short: the stored popular items are read next
        items = list(recommended_for(AnonymousUser(), 4, session_key="anon"))
    assert [(i.name, i.recs_source) for i in items] == [
        ("p6", "history"), ("p4", "history"), ("p1", "popular"),
    ]


def test_the_first_statement_reports_the_runs_the_second_names(
    products, django_assert_num_queries
):
    p = products
    store_popular([(p[1], 1.0), (p[2], 0.5)])
    popular_run = Run.objects.get(algorithm="popular", is_active=True)
    with CaptureQueriesContext(connection) as captured:
        assert names(similar_to(p[0], 2)) == ["p1", "p2"]
    first, second = (q["sql"] for q in captured.captured_queries)
    assert "recs_state" in first and "recs_state" not in second
    # The second statement names the popular run instead of looking it up,
    # and leaves out recent popularity, which only stands in for it.
    run_id = connection.ops.quote_name("run_id")
    assert "recs_run" not in second and f"recs_pop.{run_id} = {popular_run.pk} " in second
    assert "recs_win" not in second


def test_without_an_active_popular_run_only_recent_popularity_is_read_second(products):
    p = products
    interact(p[5], "purchase", session_key="other")
    store_neighbours(p[0], [(p[1], 0.9)])
    with CaptureQueriesContext(connection) as captured:
        assert names(similar_to(p[0], 3)) == ["p1", "p5"]
    second = captured.captured_queries[1]["sql"]
    assert "recs_win" in second and "recs_pop" not in second


def test_recent_popularity_stands_in_with_a_second_query_while_no_popular_run_exists(
    products, django_assert_num_queries
):
    p = products
    interact(p[2], "view", session_key="anon")
    interact(p[5], "purchase", session_key="other", weight=3.0)
    store_neighbours(p[2], [(p[6], 0.7)])
    with django_assert_num_queries(2):
        items = list(recommended_for(AnonymousUser(), 4, session_key="anon"))
    assert [(i.name, i.recs_source) for i in items] == [
        ("p6", "history"),
        ("p5", "popular"),
        ("p2", "popular"),
    ]


def test_a_page_stays_within_four_queries_when_both_lists_need_fallbacks(
    products, customer, django_assert_max_num_queries
):
    p = products  # no popular run: every fallback is read
    store_neighbours(p[0], [(p[1], 0.9)])
    store_recommendations(customer, [(p[4], 0.8, p[1])])
    interact(p[3], "view", user=customer)
    store_neighbours(p[3], [(p[7], 0.5)])
    with override_settings(DJANGO_RECS=WITH_CATEGORY), django_assert_max_num_queries(4):
        similar = list(similar_to(p[0], 6))
        recommended = list(recommended_for(customer, 6))
    # Recent popularity: the one viewed item.
    assert [(i.name, i.recs_source) for i in similar] == [("p1", "similar"), ("p3", "popular")]
    assert [(i.name, i.recs_source) for i in recommended] == [
        ("p4", "personal"),
        ("p7", "history"),
        ("p3", "popular"),
    ]


# --- swaps -----------------------------------------------------------------------------


def test_a_swap_by_the_pipeline_is_seen_by_the_next_list(products, django_assert_num_queries):
    p = products
    store_neighbours(p[0], [(p[1], 0.9)], run=active_run("similar"))
    before = similar_to(p[0], 1)
    new = Run.objects.create(algorithm="similar", status=Run.Status.RUNNING,
                             started_at=timezone.now())
    store_neighbours(p[0], [(p[2], 0.9)], run=new)
    swap_active_run(new)  # the pipeline's swap: an UPDATE, no model signal
    with django_assert_num_queries(1):
        assert names(similar_to(p[0], 1)) == ["p2"]
    assert names(before) == ["p1"]  # a list read before the swap keeps its items


def test_a_run_deactivated_without_successor_falls_back_at_once(products):
    p = products
    run = active_run("similar")
    store_neighbours(p[0], [(p[1], 0.9)], run=run)
    store_popular([(p[5], 1.0)])
    assert names(similar_to(p[0], 1)) == ["p1"]
    Run.objects.filter(pk=run.pk).update(is_active=False)
    assert names(similar_to(p[0], 1)) == ["p5"]


# --- chaining ----------------------------------------------------------------------------


def test_a_chained_list_keeps_order_and_explanations_in_one_query(
    products, customer, django_assert_num_queries
):
    p = products
    store_recommendations(customer, [(p[4], 0.8, p[1]), (p[2], 0.6, None), (p[6], 0.3, p[9])])
    Product.objects.filter(pk=p[2].pk).update(in_stock=False)
    chained = recommended_for(customer, 3).filter(in_stock=True).select_related("category")
    with django_assert_num_queries(1):
        items = list(chained)
        assert [item.category.name for item in items] == ["c1", "c0"]
    assert names(items) == ["p4", "p6"]
    assert [item.recs_reason for item in items] == [p[1], p[9]]
    assert [item.recs_source for item in items] == ["personal", "personal"]
    assert [item.recs_score for item in items] == pytest.approx([0.8, 0.3])
    reordered = recommended_for(customer, 3).order_by("-name")
    assert names(reordered) == ["p6", "p4", "p2"]
    assert reordered[0].recs_score == pytest.approx(0.3)


def test_a_chained_list_survives_pickling(products, customer):
    p = products
    store_recommendations(customer, [(p[4], 0.8, p[1]), (p[6], 0.6, None)])
    chained = recommended_for(customer, 2).filter(in_stock=True)
    items = pickle.loads(pickle.dumps(chained))
    assert [(i.name, i.recs_reason) for i in items] == [("p4", p[1]), ("p6", None)]


def test_a_queryset_that_loads_more_than_rows_reads_the_items_itself(
    products, django_assert_num_queries
):
    p = products
    store_neighbours(p[0], [(p[3], 0.9), (p[1], 0.7)])
    shaped = Product.objects.select_related("category").only("name", "category__name")
    with django_assert_num_queries(2):  # the candidates, then the queryset's own read
        items = list(similar_to(p[0], 2, queryset=shaped))
        assert [item.category.name for item in items] == ["c0", "c1"]
    assert names(items) == ["p3", "p1"]
    assert [item.recs_score for item in items] == pytest.approx([0.9, 0.7])
    assert items[0].get_deferred_fields() == {"in_stock", "price"}


def test_an_empty_queryset_gives_an_empty_list_without_a_query(products, django_assert_num_queries):
    store_neighbours(products[0], [(products[1], 0.9)])
    with django_assert_num_queries(0):
        assert list(similar_to(products[0], 3, queryset=Product.objects.none())) == []


def test_an_empty_list_is_empty_when_chained(products):
    items = similar_to(products[0], 3)
    assert list(items) == [] and list(items.filter(in_stock=True)) == []
    assert items.count() == 0


# --- other databases' SQL -------------------------------------------------------------------


def test_history_sql_without_vendor_aggregates_gives_the_same_list(
    products, customer, monkeypatch
):
    p = products
    interact(p[0], "view", user=customer, seconds=30)
    interact(p[3], "view", user=customer)
    store_neighbours(p[0], [(p[5], 0.9), (p[3], 0.8), (p[8], 0.2)])
    store_neighbours(p[3], [(p[8], 0.5), (p[0], 0.8), (p[10], 0.4)])
    store_popular([(p[11], 1.0)])
    expected = [(i.name, i.recs_source, i.recs_reason) for i in recommended_for(customer, 4)]
    assert expected[:3] == [("p5", "history", p[0]), ("p8", "history", p[3]),
                            ("p10", "history", p[3])]
    # Window functions and IN (...), as on databases without PostgreSQL's
    # ARRAY_AGG or SQLite's bare columns.
    monkeypatch.setattr(connection, "vendor", "other")
    with CaptureQueriesContext(connection) as captured:
        got = [(i.name, i.recs_source, i.recs_reason) for i in recommended_for(customer, 4)]
    assert got == expected
    assert "ROW_NUMBER() OVER" in captured.captured_queries[-1]["sql"]


# --- reasons of another model ------------------------------------------------------------


def test_reasons_of_another_item_model_cost_one_more_query(
    products, customer, django_assert_num_queries
):
    p = products
    gadget = Gadget.objects.create(name="g0")
    store_recommendations(customer, [(p[4], 0.8, gadget), (p[6], 0.6, p[1])])
    with django_assert_num_queries(2):
        items = list(recommended_for(customer, 2))
    assert [item.recs_reason for item in items] == [gadget, p[1]]


# --- building blocks ------------------------------------------------------------------


def test_item_columns_build_instances_equal_to_the_orm(products):
    gadget = Gadget.objects.create(name="g")
    connection = connections["default"]
    for obj in (products[0], gadget):
        model = type(obj)
        reader = ItemColumns.of(model, connection)
        assert ItemColumns.of(model, connection) is reader  # cached per connection
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {reader.select_list('t')} FROM {connection.ops.quote_name(model._meta.db_table)} t"
                f" WHERE t.{connection.ops.quote_name(model._meta.pk.column)} = %s",
                [model._meta.pk.get_db_prep_value(obj.pk, connection)],
            )
            row = cursor.fetchone()
        built = reader.build("default", row, connection)
        loaded = model.objects.get(pk=obj.pk)
        assert built == loaded and not built._state.adding and built._state.db == "default"
        assert {f.attname: getattr(built, f.attname) for f in model._meta.concrete_fields} == {
            f.attname: getattr(loaded, f.attname) for f in model._meta.concrete_fields
        }
        assert reader.convert_pk(row[reader.pk_index], connection) == obj.pk


def test_pick_orders_by_source_then_score_and_keeps_an_items_first_source():
    candidates = [
        Candidate(source=1, pk=7, score=9.0),
        Candidate(source=0, pk=3, score=0.5),
        Candidate(source=0, pk=2, score=0.5),
        Candidate(source=0, pk=5, score=0.9),
        Candidate(source=1, pk=5, score=10.0),  # proposed by source 0 already
    ]
    assert [(c.source, c.pk) for c in pick(candidates, 10)] == [(0, 5), (0, 2), (0, 3), (1, 7)]
    assert [c.pk for c in pick(candidates, 2)] == [5, 2]
    assert pick([], 3) == []


def test_pick_caps_categories_after_removing_duplicates():
    candidates = [
        Candidate(source=0, pk=1, score=0.9, category="a"),
        Candidate(source=0, pk=2, score=0.8, category="a"),
        Candidate(source=0, pk=3, score=0.7, category=None),
        Candidate(source=0, pk=4, score=0.6, category=None),
        Candidate(source=1, pk=1, score=5.0, category="a"),
        Candidate(source=1, pk=5, score=4.0, category="b"),
    ]
    assert [c.pk for c in pick(candidates, 10, cap=1)] == [1, 3, 4, 5]


def test_cap_per_category_keeps_order_and_never_caps_missing_categories():
    ranked = [("x", "a"), ("y", "a"), ("z", None), ("w", None), ("v", "b"), ("u", "a")]
    kept = cap_per_category(ranked, 2, key=lambda item: item[1])
    assert [name for name, _ in kept] == ["x", "y", "z", "w", "v"]
    assert cap_per_category([], 1, key=lambda item: item) == []


@pytest.mark.parametrize("cap", [0, -1, 1.5, "2", True, None])
def test_a_bad_cap_is_a_value_error(cap):
    with pytest.raises(ValueError, match="MAX_PER_CATEGORY must be a positive integer"):
        check_cap(cap)
    with pytest.raises(ValueError, match="MAX_PER_CATEGORY must be a positive integer"):
        cap_per_category([1], cap, key=lambda item: item)


def test_list_position_numbers_the_entries_and_nothing_else(products):
    p = products
    entries = [(p[5].pk, "similar", 1.0, None), (p[2].pk, "similar", 0.5, None)]
    qs = Product.objects.filter(pk__in=[p[2].pk, p[5].pk, p[7].pk]).annotate(
        recs_order=ListPosition(entries)
    )
    assert {i.name: i.recs_order for i in qs} == {"p5": 0, "p2": 1, "p7": None}
    assert names(qs.exclude(recs_order=None).order_by("recs_order")) == ["p5", "p2"]
    empty = Product.objects.annotate(recs_order=ListPosition([])).filter(pk=p[0].pk)
    assert empty.get().recs_order is None


def test_inactive_runs_rows_are_never_read(products):
    p = products
    store_neighbours(p[0], [(p[1], 0.9)], run=inactive_run("similar"))
    assert list(similar_to(p[0], 3)) == []
