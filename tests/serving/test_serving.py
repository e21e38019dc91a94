"""Serving: similar_to() and recommended_for() as loaded, chainable querysets.

Results are written straight into the result tables (see serving_data.py),
so these tests pin down what a shop's visitor sees, independent of the
pipeline. They run on SQLite and, with DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import override_settings

from django_recs import recommended_for, similar_to
from django_recs.conf import DEFAULTS
from django_recs.models import PopularItem, Recommendation, SimilarItem
from tests.serving import serving_data
from tests.serving.serving_data import (
    BASE,
    WITH_CATEGORY,
    active_run,
    inactive_run,
    interact,
    names,
    store_neighbours,
    store_popular,
    store_recommendations,
)
from tests.testapp.models import Gadget, NotAnItem, Product

pytestmark = pytest.mark.django_db

products = serving_data.products  # fixture
customer = serving_data.customer  # fixture


# --- similar_to ---------------------------------------------------------------------


def test_similar_to_serves_stored_neighbours_by_descending_score(products):
    p = products
    store_neighbours(p[0], [(p[3], 0.9), (p[1], 0.7), (p[5], 0.4)])
    items = list(similar_to(p[0], 10))
    assert names(items) == ["p3", "p1", "p5"]  # no popular run, no interactions: nothing else
    assert [item.recs_score for item in items] == pytest.approx([0.9, 0.7, 0.4], rel=1e-9)
    assert {item.recs_source for item in items} == {"similar"}
    assert all(item.recs_reason is None for item in items)
    assert all(isinstance(item, Product) for item in items)


def test_similar_to_is_one_query_and_at_most_n(products, django_assert_num_queries):
    p = products
    store_neighbours(p[0], [(other, 1.0 - i / 20) for i, other in enumerate(p[1:])])
    with django_assert_num_queries(1):
        items = list(similar_to(p[0], 4))
    assert names(items) == ["p1", "p2", "p3", "p4"]


def test_similar_to_never_contains_the_item_itself(products):
    p = products
    store_neighbours(p[0], [(p[0], 1.0), (p[2], 0.5)])  # a self-pair left by a bad run
    store_popular([(p[0], 100.0), (p[4], 50.0)])
    assert names(similar_to(p[0], 5)) == ["p2", "p4"]


def test_similar_to_stays_chainable(products, django_assert_num_queries):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8), (p[3], 0.7)])
    Product.objects.filter(pk=p[2].pk).update(in_stock=False)
    qs = similar_to(p[0], 3).filter(in_stock=True).select_related("category")
    with django_assert_num_queries(1):
        items = list(qs)
        assert [item.category.name for item in items] == ["c1", "c0"]
    assert names(items) == ["p1", "p3"]
    assert similar_to(p[0], 3).count() == 3
    assert similar_to(p[0], 3).first().name == "p1"
    assert list(similar_to(p[0], 3).values_list("name", flat=True)) == ["p1", "p2", "p3"]


def test_queryset_restricts_candidates_and_tops_up_to_n(products):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8), (p[3], 0.7), (p[4], 0.6)])
    store_popular([(p[i], 100.0 - i) for i in (2, 8, 9, 10, 11)])
    Product.objects.filter(pk__in=[p[2].pk, p[3].pk, p[9].pk]).update(in_stock=False)
    in_stock = Product.objects.filter(in_stock=True)
    items = list(similar_to(p[0], 4, queryset=in_stock))
    # The two in-stock neighbours, then the best in-stock popular items.
    assert names(items) == ["p1", "p4", "p8", "p10"]
    assert [item.recs_source for item in items] == ["similar", "similar", "popular", "popular"]


def test_exclude_leaves_items_out_and_tops_up_from_further_down(products, customer):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8), (p[3], 0.7), (p[4], 0.6)])
    store_recommendations(customer, [(p[5], 0.9, p[0]), (p[6], 0.8, None), (p[7], 0.7, None)])
    assert names(similar_to(p[0], 2, exclude=[p[1]])) == ["p2", "p3"]
    # Primary keys, an iterable of any kind, a single item; duplicates and the source are harmless.
    assert names(similar_to(p[0], 2, exclude=(p[1].pk, p[2].pk, p[0].pk, p[1]))) == ["p3", "p4"]
    assert names(similar_to(p[0], 2, exclude=p[1])) == ["p2", "p3"]
    assert names(recommended_for(customer, 2, exclude=similar_to(p[0], 1))) == ["p5", "p6"]
    assert names(recommended_for(customer, 2, exclude=Product.objects.filter(pk=p[5].pk))) == [
        "p6", "p7",
    ]


def test_exclude_refuses_other_models_and_bad_keys(products):
    gadget = Gadget.objects.create(name="g")
    with pytest.raises(ValueError, match="exclude= holds a testapp.Gadget; the list is of testapp.Product"):
        similar_to(products[0], 3, exclude=[gadget])
    with pytest.raises(ValueError, match="exclude= holds 'abc', not a primary key of testapp.Product"):
        recommended_for(None, 3, model=Product, exclude=["abc"])
    with pytest.raises(ValueError, match="not a primary key of testapp.Gadget"):
        similar_to(gadget, 3, exclude=[12])


def test_exclude_works_for_uuid_keys():
    gadgets = [Gadget.objects.create(name=f"g{i}") for i in range(3)]
    store_neighbours(gadgets[0], [(gadgets[1], 0.9), (gadgets[2], 0.8)])
    assert names(similar_to(gadgets[0], 1, exclude=[gadgets[1].pk])) == ["g2"]
    assert names(similar_to(gadgets[0], 1, exclude=[str(gadgets[1].pk)])) == ["g2"]


def test_restricted_list_is_short_only_when_fewer_items_exist(products):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8)])
    store_popular([(item, 1.0) for item in p])
    only_two = Product.objects.filter(pk__in=[p[2].pk, p[7].pk])
    assert sorted(names(similar_to(p[0], 5, queryset=only_two))) == ["p2", "p7"]


def test_item_without_neighbours_gets_popular_items_of_its_category_first(products):
    p = products  # categories: c0 = p0 p3 p6 p9, c1 = p1 p4 p7 p10, c2 = p2 p5 p8 p11
    store_popular([(p[i], 100.0 - i) for i in (1, 2, 3, 4, 5, 6, 9)])
    with override_settings(DJANGO_RECS=WITH_CATEGORY):
        items = list(similar_to(p[0], 5))
    assert names(items) == ["p3", "p6", "p9", "p1", "p2"]
    assert [item.recs_source for item in items] == ["category"] * 3 + ["popular"] * 2
    assert items[0].recs_score == pytest.approx(97.0)


def test_item_without_neighbours_and_no_category_setting_gets_popular_items(products):
    p = products
    store_popular([(p[5], 3.0), (p[1], 2.0), (p[0], 1.0)])
    with override_settings(DJANGO_RECS=BASE):
        assert names(similar_to(p[0], 5)) == ["p5", "p1"]


def test_neighbours_then_category_then_popular(products):
    p = products
    store_neighbours(p[0], [(p[4], 0.5)])
    store_popular([(p[i], 100.0 - i) for i in (1, 4, 6)])
    with override_settings(DJANGO_RECS=WITH_CATEGORY):
        items = list(similar_to(p[0], 3))
    assert [(item.name, item.recs_source) for item in items] == [
        ("p4", "similar"),
        ("p6", "category"),
        ("p1", "popular"),
    ]


def test_a_list_survives_pickling_as_a_cache_would_store_it(products):
    import pickle

    p = products
    store_neighbours(p[0], [(p[3], 0.9), (p[1], 0.7)])
    items = pickle.loads(pickle.dumps(similar_to(p[0], 5)))
    assert [(item.name, item.recs_source) for item in items] == [("p3", "similar"), ("p1", "similar")]
    cached = similar_to(p[0], 5)
    list(cached)
    assert names(pickle.loads(pickle.dumps(cached))) == ["p3", "p1"]


def test_duplicate_stored_rows_do_not_break_a_list(products, customer):
    p = products  # a result table has no unique constraint; PostgreSQL must not fail
    store_neighbours(p[0], [(p[1], 0.9), (p[1], 0.8), (p[2], 0.5)])
    store_recommendations(customer, [(p[3], 0.9, p[5]), (p[3], 0.2, None)])
    store_popular([(p[4], 2.0), (p[4], 1.0)])
    assert names(similar_to(p[0], 5)) == ["p1", "p2", "p4"]
    items = list(recommended_for(customer, 5))
    assert names(items) == ["p3", "p4"]
    assert items[0].recs_score == pytest.approx(0.9) and items[0].recs_reason == p[5]


def test_only_the_active_run_is_served(products, django_assert_num_queries):
    p = products
    old = active_run("similar")
    store_neighbours(p[0], [(p[1], 0.9)], run=old)
    new = inactive_run("similar")
    store_neighbours(p[0], [(p[2], 0.9)], run=new)
    qs_before = similar_to(p[0], 3)
    assert names(qs_before) == ["p1"]
    # Swap: the next query sees the new run, no cache to clear.
    old.is_active = False
    old.save()
    new.is_active = True
    new.save()
    with django_assert_num_queries(1):  # the run is read inside the one statement
        assert names(similar_to(p[0], 1)) == ["p2"]


def test_no_active_run_at_all_is_an_empty_list_not_an_error(products):
    assert list(similar_to(products[0], 5)) == []
    assert list(recommended_for(None, 5)) == []


# --- popularity computed at request time -------------------------------------------


def test_without_popular_run_popularity_is_computed_from_decayed_interactions(products):
    p = products
    for _ in range(4):
        interact(p[7], "purchase", session_key="s1", weight=5.0, days_ago=300)
    for _ in range(2):
        interact(p[2], "view", session_key="s2", weight=1.0)
    interact(p[5], "view", session_key="s3", weight=1.0, days_ago=45)
    items = list(recommended_for(None, 3))
    # 2 fresh views outweigh 20 points of purchases ten half-lives old.
    assert names(items) == ["p2", "p5", "p7"]
    assert items[0].recs_score == pytest.approx(2 * 2**-0.5)
    assert {item.recs_source for item in items} == {"popular"}


def test_half_life_setting_changes_the_computed_popularity(products):
    p = products
    interact(p[1], "view", session_key="s", weight=1.0)
    interact(p[2], "view", session_key="s", weight=3.0, days_ago=10)
    assert names(recommended_for(None, 2)) == ["p2", "p1"]  # default 30 days
    with override_settings(DJANGO_RECS={**BASE, "HALF_LIFE_DAYS": 1}):
        assert names(recommended_for(None, 2)) == ["p1", "p2"]


def test_stored_popular_run_replaces_the_computed_popularity(products):
    p = products
    interact(p[2], "view", session_key="s", weight=10.0)
    store_popular([(p[6], 1.0), (p[4], 0.5)])
    assert names(recommended_for(None, 3)) == ["p6", "p4"]


# --- recommended_for ----------------------------------------------------------------


def test_stored_recommendations_with_reasons(products, customer, django_assert_num_queries):
    p = products
    store_recommendations(customer, [(p[4], 0.8, p[1]), (p[6], 0.6, None), (p[2], 0.3, p[9])])
    with django_assert_num_queries(1):  # the items and their reasons, in one statement
        items = list(recommended_for(customer, 3))
    assert names(items) == ["p4", "p6", "p2"]
    assert [item.recs_reason for item in items] == [p[1], None, p[9]]
    assert [item.recs_score for item in items] == pytest.approx([0.8, 0.6, 0.3])
    assert {item.recs_source for item in items} == {"personal"}


def test_recommendations_without_reasons_cost_one_query(products, customer, django_assert_num_queries):
    p = products
    store_recommendations(customer, [(p[4], 0.8, None), (p[6], 0.6, None)])
    with django_assert_num_queries(1):
        assert names(recommended_for(customer, 2)) == ["p4", "p6"]


def test_bought_items_are_never_recommended_again(products, customer):
    p = products
    store_recommendations(customer, [(p[4], 0.8, None), (p[6], 0.6, None), (p[2], 0.3, None)])
    store_popular([(p[6], 9.0), (p[8], 8.0)])
    interact(p[6], "purchase", user=customer)
    interact(p[2], "view", user=customer)  # a view is not in EXCLUDE_SEEN
    assert names(recommended_for(customer, 4)) == ["p4", "p2", "p8"]


def test_exclude_seen_setting_is_read_at_call_time(products, customer):
    p = products
    store_recommendations(customer, [(p[4], 0.8, None), (p[6], 0.6, None)])
    interact(p[4], "view", user=customer)
    with override_settings(DJANGO_RECS={**BASE, "EXCLUDE_SEEN": ["purchase", "view"]}):
        assert names(recommended_for(customer, 4)) == ["p6"]
    with override_settings(DJANGO_RECS={**BASE, "EXCLUDE_SEEN": []}):
        assert names(recommended_for(customer, 4)) == ["p4", "p6"]


def test_seen_items_of_the_session_are_excluded_too(products, customer):
    p = products
    store_popular([(p[1], 3.0), (p[2], 2.0), (p[3], 1.0)])
    interact(p[1], "purchase", session_key="cart-session")
    assert names(recommended_for(None, 3, session_key="cart-session")) == ["p2", "p3"]
    assert names(recommended_for(customer, 3, session_key="cart-session")) == ["p2", "p3"]


def test_short_stored_list_is_topped_up_from_history_then_popular(products, customer):
    p = products
    store_recommendations(customer, [(p[4], 0.8, p[1])])
    interact(p[1], "view", user=customer)
    store_neighbours(p[1], [(p[7], 0.9), (p[4], 0.5)])
    store_popular([(p[11], 5.0), (p[7], 4.0), (p[10], 3.0)])
    items = list(recommended_for(customer, 4))
    assert [(item.name, item.recs_source) for item in items] == [
        ("p4", "personal"),
        ("p7", "history"),
        ("p11", "popular"),
        ("p10", "popular"),
    ]
    assert [item.recs_reason for item in items] == [p[1], p[1], None, None]


def test_asking_for_the_popular_algorithm_serves_popular_items_alone(products, customer):
    # A "popular" variant of an A/B test: not the visitor's stored list nor their history,
    # though both exist; their bought items are still left out.
    p = products
    store_recommendations(customer, [(p[4], 0.8, p[1])])
    interact(p[1], "purchase", user=customer)
    interact(p[2], "view", session_key="anon-1")
    store_neighbours(p[1], [(p[7], 0.9)])
    store_neighbours(p[2], [(p[6], 0.7)])
    store_popular([(p[11], 5.0), (p[1], 4.5), (p[10], 3.0), (p[9], 2.0)])
    items = list(recommended_for(customer, 3, algorithm="popular"))
    assert [(item.name, item.recs_source) for item in items] == [
        ("p11", "popular"), ("p10", "popular"), ("p9", "popular")]
    anonymous = recommended_for(AnonymousUser(), 2, algorithm="popular", session_key="anon-1")
    assert names(anonymous) == ["p11", "p1"]
    assert names(recommended_for(customer, 3)) == ["p4", "p7", "p11"]  # the usual chain


def test_similar_to_with_the_popular_algorithm_serves_popular_items_alone(products):
    p = products  # categories: c0 = p0 p3 p6 p9, c1 = p1 p4 p7 p10, c2 = p2 p5 p8 p11
    store_neighbours(p[0], [(p[4], 0.5), (p[5], 0.4)])
    store_popular([(p[i], 100.0 - i) for i in (1, 2, 3, 6)])
    with override_settings(DJANGO_RECS=WITH_CATEGORY):
        items = list(similar_to(p[0], 3, algorithm="popular"))
        usual = list(similar_to(p[0], 3))
    assert [(item.name, item.recs_source) for item in items] == [
        ("p3", "category"), ("p6", "category"), ("p1", "popular")]
    assert names(usual) == ["p4", "p5", "p3"]


def test_new_account_gets_recommendations_from_its_recent_history(products, customer):
    p = products
    interact(p[0], "view", user=customer, seconds=30)
    interact(p[3], "view", user=customer)
    store_neighbours(p[0], [(p[5], 0.9), (p[3], 0.8), (p[8], 0.2)])
    store_neighbours(p[3], [(p[8], 0.5), (p[0], 0.8), (p[10], 0.4)])
    active_run("popular")  # with no rows: the list is the history's alone
    items = list(recommended_for(customer, 5))
    # p8 is near both (0.2 + 0.5); the viewed items themselves are not offered.
    assert [(item.name, item.recs_source) for item in items] == [
        ("p5", "history"),
        ("p8", "history"),
        ("p10", "history"),
    ]
    assert items[1].recs_score == pytest.approx(0.7)
    assert [item.recs_reason for item in items] == [p[0], p[3], p[3]]


def test_anonymous_visitor_gets_recommendations_from_the_session(products):
    p = products
    interact(p[2], "view", session_key="anon-1")
    interact(p[9], "view", session_key="someone-else")
    store_neighbours(p[2], [(p[6], 0.7)])
    store_neighbours(p[9], [(p[11], 0.9)])
    store_popular([(p[1], 1.0)])
    items = list(recommended_for(AnonymousUser(), 2, session_key="anon-1"))
    assert [(item.name, item.recs_source) for item in items] == [("p6", "history"), ("p1", "popular")]
    assert items[0].recs_reason == p[2]


def test_logged_in_visitor_history_includes_the_current_session(products, customer):
    p = products
    interact(p[2], "view", session_key="before-login")
    store_neighbours(p[2], [(p[6], 0.7)])
    active_run("popular")  # with no rows
    assert names(recommended_for(customer, 1, session_key="before-login")) == ["p6"]
    assert names(recommended_for(customer, 1)) == []


@pytest.mark.parametrize(
    "visitor",
    [None, AnonymousUser(), User(username="unsaved"), "unknown-account"],
    ids=["none", "anonymous", "unsaved", "unknown-account"],
)
def test_unknown_and_anonymous_visitors_get_popular_items(products, visitor):
    p = products
    if visitor == "unknown-account":
        visitor = User.objects.create_user("nobody")  # no history, no stored rows
    store_popular([(p[3], 2.0), (p[1], 1.0)])
    items = list(recommended_for(visitor, 5))
    assert names(items) == ["p3", "p1"]
    assert {item.recs_source for item in items} == {"popular"}


def test_personal_algorithm_name_is_honoured(products, customer, settings):
    algorithms = settings.DJANGO_RECS.get("ALGORITHMS", DEFAULTS["ALGORITHMS"])
    settings.DJANGO_RECS = {**settings.DJANGO_RECS, "ALGORITHMS": {
        **algorithms, "bpr": {"class": "django_recs.algorithms.ALS"}}}
    p = products
    store_recommendations(customer, [(p[1], 1.0, None)], algorithm="personal")
    store_recommendations(customer, [(p[2], 1.0, None)], algorithm="bpr")
    assert names(recommended_for(customer, 1)) == ["p1"]
    assert names(recommended_for(customer, 1, algorithm="bpr")) == ["p2"]


# --- UUID items ---------------------------------------------------------------------


def test_uuid_items(customer):
    g = [Gadget.objects.create(name=f"g{i}") for i in range(5)]
    store_neighbours(g[0], [(g[2], 0.9), (g[1], 0.5)])
    store_recommendations(customer, [(g[4], 0.7, g[0]), (g[3], 0.6, None)])
    store_popular([(g[1], 9.0), (g[3], 8.0)])
    interact(g[3], "purchase", user=customer)
    assert names(similar_to(g[0], 3)) == ["g2", "g1", "g3"]
    items = list(recommended_for(customer, 3, model=Gadget))
    assert names(items) == ["g4", "g1"]
    assert items[0].recs_reason == g[0]
    assert names(recommended_for(customer, 3, queryset=Gadget.objects.exclude(name="g4"))) == [
        "g1"
    ]


# --- diversity ----------------------------------------------------------------------


def test_max_per_category_caps_a_list_and_fills_from_further_down(products):
    p = products  # c0 = p0 p3 p6 p9, c1 = p1 p4 p7 p10, c2 = p2 p5 p8 p11
    store_neighbours(
        p[0], [(p[3], 0.9), (p[6], 0.8), (p[9], 0.7), (p[1], 0.6), (p[4], 0.5), (p[7], 0.4),
               (p[2], 0.3)]
    )
    with override_settings(DJANGO_RECS={**WITH_CATEGORY, "MAX_PER_CATEGORY": 2}):
        assert names(similar_to(p[0], 5)) == ["p3", "p6", "p1", "p4", "p2"]
        assert names(similar_to(p[0], 5, max_per_category=1)) == ["p3", "p1", "p2"]
    with override_settings(DJANGO_RECS=WITH_CATEGORY):
        assert names(similar_to(p[0], 5)) == ["p3", "p6", "p9", "p1", "p4"]


def test_max_per_category_applies_across_sources_and_leaves_uncategorised_alone(products, customer):
    p = products
    loose = [Product.objects.create(name=f"loose{i}") for i in range(3)]
    store_recommendations(customer, [(p[3], 0.9, None), (p[6], 0.8, None), (loose[0], 0.7, None)])
    store_popular([(p[9], 5.0), (loose[1], 4.0), (loose[2], 3.0), (p[1], 2.0)])
    with override_settings(DJANGO_RECS={**WITH_CATEGORY, "MAX_PER_CATEGORY": 1}):
        assert names(recommended_for(customer, 5)) == ["p3", "loose0", "loose1", "loose2", "p1"]


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [-1, 2.5, "3", True, None])
def test_bad_n_is_a_value_error(products, n):
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        similar_to(products[0], n)
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        recommended_for(None, n)


def test_n_zero_is_an_empty_list(products, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert list(similar_to(products[0], 0)) == []
        assert list(recommended_for(None, 0)) == []


def test_items_of_models_outside_item_models_are_refused(products):
    other = NotAnItem.objects.create(name="x")
    with pytest.raises(ValueError, match="testapp.NotAnItem is not in DJANGO_RECS"):
        similar_to(other)
    with pytest.raises(ValueError, match="testapp.NotAnItem is not in DJANGO_RECS"):
        recommended_for(None, model=NotAnItem)
    with pytest.raises(ValueError, match="needs a model instance"):
        similar_to(42)
    with pytest.raises(ValueError, match="no primary key"):
        similar_to(Product(name="unsaved"))
    with pytest.raises(ValueError, match="queryset= is of testapp.Gadget"):
        similar_to(products[0], queryset=Gadget.objects.all())
    with pytest.raises(ValueError, match="MAX_PER_CATEGORY must be a positive integer"):
        similar_to(products[0], max_per_category=0)


# --- the result tables' querysets ---------------------------------------------------


def test_result_table_querysets_read_the_active_run(products, customer):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8), (p[3], 0.7)])
    store_neighbours(p[0], [(p[4], 0.9)], run=inactive_run("similar"))
    store_recommendations(customer, [(p[5], 0.5, None), (p[6], 0.4, None)])
    store_popular([(p[7], 3.0), (p[8], 2.0)])
    assert [row.neighbour_key for row in SimilarItem.objects.for_item(p[0]).top(2)] == [
        str(p[1].pk),
        str(p[2].pk),
    ]
    assert Recommendation.objects.for_user(customer).count() == 2
    assert Recommendation.objects.for_user(AnonymousUser()).count() == 0
    assert [row.item_key for row in PopularItem.objects.for_model(Product)] == [
        str(p[7].pk),
        str(p[8].pk),
    ]
