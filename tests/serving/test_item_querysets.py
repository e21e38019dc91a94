"""ITEM_QUERYSETS: the items a shop shows, the default candidates of every list.

A Poster is published or not; the shop's rule is ``Poster.objects.browsable()``.
Hidden posters are stored everywhere a list could take them from (neighbours,
recommendations, popular items, a visitor's history, recent interactions)
and must never be served. These run on SQLite and, with DATABASE_URL, on
PostgreSQL.
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core import checks
from django.test import override_settings
from django.utils.module_loading import import_string

from django_recs import recommended_for, similar_to
from django_recs.items import ItemQuerysetError
from tests.serving.serving_data import (
    BASE,
    interact,
    names,
    store_neighbours,
    store_popular,
    store_recommendations,
)
from tests.testapp.models import Poster, Product

pytestmark = pytest.mark.django_db

ITEM_MODELS = [*BASE["ITEM_MODELS"], "testapp.Poster"]
BY_FUNCTION = {**BASE, "ITEM_MODELS": ITEM_MODELS,
               "ITEM_QUERYSETS": {"testapp.Poster": "tests.testapp.queries.visible_posters"}}
BY_MANAGER_METHOD = {**BASE, "ITEM_MODELS": ITEM_MODELS,
                     "ITEM_QUERYSETS": {"testapp.Poster": "testapp.Poster.objects.browsable"}}
UNRESTRICTED = {**BASE, "ITEM_MODELS": ITEM_MODELS}


@pytest.fixture
def posters():
    """12 posters; p1, p4, p7 and p10 are unpublished."""
    return [Poster.objects.create(name=f"p{i}", published=i % 3 != 1) for i in range(12)]


@pytest.fixture
def hidden(posters):
    return {poster.name for poster in posters if not poster.published}


@pytest.fixture
def customer():
    return User.objects.create_user("customer", password="x")


def store_everywhere(p, customer):
    """Hidden posters at the top of every source of both chains."""
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8), (p[4], 0.7), (p[3], 0.6)])
    store_neighbours(p[5], [(p[7], 0.9), (p[6], 0.8)])
    store_recommendations(customer, [(p[10], 0.9, None), (p[9], 0.8, None)])
    store_popular([(p[1], 9.0), (p[4], 8.0), (p[8], 7.0), (p[11], 6.0)])
    interact(p[5], "view", user=customer)
    interact(p[5], "view", session_key="anonymous")


@pytest.mark.parametrize("setting", [BY_FUNCTION, BY_MANAGER_METHOD],
                         ids=["function", "manager method"])
def test_hidden_items_never_appear_in_any_list(posters, hidden, customer, setting):
    p = posters
    store_everywhere(p, customer)
    with override_settings(DJANGO_RECS=setting):
        lists = {
            "similar, then popular": similar_to(p[0], 6),
            "similar of a hidden item": similar_to(p[1], 6),
            "personal, history, popular": recommended_for(customer, 8, model=Poster),
            "anonymous history, popular": recommended_for(
                AnonymousUser(), 8, model=Poster, session_key="anonymous"),
            "unknown visitor: popular": recommended_for(None, 8, model=Poster),
        }
        served = {name: names(items) for name, items in lists.items()}
    assert served == {
        "similar, then popular": ["p2", "p3", "p8", "p11"],
        "similar of a hidden item": ["p8", "p11"],
        "personal, history, popular": ["p9", "p6", "p8", "p11"],
        "anonymous history, popular": ["p6", "p8", "p11"],
        "unknown visitor: popular": ["p8", "p11"],
    }
    assert not hidden & {name for items in served.values() for name in items}


def test_recent_popularity_honours_it_too(posters, hidden):
    p = posters
    for i, poster in enumerate(p[:6]):  # no popular run: popularity from recent interactions
        interact(poster, "purchase", session_key=f"s{i}", weight=i + 1.0)
    with override_settings(DJANGO_RECS=BY_FUNCTION):
        items = list(recommended_for(None, 8, model=Poster))
    assert names(items) == ["p5", "p3", "p2", "p0"]
    assert {item.recs_source for item in items} == {"popular"}


def test_without_the_setting_every_item_is_a_candidate(posters, customer):
    p = posters
    store_everywhere(p, customer)
    with override_settings(DJANGO_RECS=UNRESTRICTED):
        assert names(similar_to(p[0], 3)) == ["p1", "p2", "p4"]


def test_an_explicit_queryset_replaces_the_setting(posters, customer):
    p = posters
    store_everywhere(p, customer)
    with override_settings(DJANGO_RECS=BY_FUNCTION):
        assert names(similar_to(p[0], 3, queryset=Poster.objects.all())) == ["p1", "p2", "p4"]
        in_stock_like = Poster.objects.browsable().exclude(name="p2")
        assert names(similar_to(p[0], 3, queryset=in_stock_like)) == ["p3", "p8", "p11"]


def test_the_callable_runs_for_every_list_and_is_resolved_once(posters, customer):
    p = posters
    store_everywhere(p, customer)
    visible = mock.Mock(side_effect=lambda: Poster.objects.browsable())
    with mock.patch("tests.testapp.queries.visible_posters", visible), \
            mock.patch("django_recs.items.import_string", wraps=import_string) as imported, \
            override_settings(DJANGO_RECS=BY_FUNCTION):
        assert names(similar_to(p[0], 2)) == ["p2", "p3"]
        Poster.objects.filter(pk=p[2].pk).update(published=False)  # hidden from now on
        assert names(similar_to(p[0], 2)) == ["p3", "p8"]
        recommended_for(customer, 2, model=Poster)
    assert visible.call_count == 3
    assert imported.call_count == 1


def test_a_settings_change_is_seen_by_the_next_list(posters, customer):
    p = posters
    store_everywhere(p, customer)
    with override_settings(DJANGO_RECS=BY_FUNCTION):
        assert names(similar_to(p[0], 1)) == ["p2"]
    with override_settings(DJANGO_RECS=UNRESTRICTED):
        assert names(similar_to(p[0], 1)) == ["p1"]


def test_other_item_models_are_unaffected(posters):
    product = Product.objects.create(name="mug")
    other = Product.objects.create(name="cup")
    store_neighbours(product, [(other, 0.5)])
    with override_settings(DJANGO_RECS=BY_FUNCTION):
        assert names(similar_to(product, 3)) == ["cup"]


@pytest.mark.parametrize(("path", "message"), [
    ("tests.testapp.queries.missing",
     r"DJANGO_RECS\['ITEM_QUERYSETS'\]\['testapp.Poster'\]: cannot resolve "
     r"'tests.testapp.queries.missing'"),
    ("testapp.Poster.objects.missing", "cannot resolve 'testapp.Poster.objects.missing'"),
    ("tests.testapp.queries.NOT_CALLABLE", "'tests.testapp.queries.NOT_CALLABLE' is not callable"),
    ("tests.testapp.queries.poster_manager",
     "returned a ManagerFromPosterQuerySet, not a QuerySet of testapp.Poster"),
    ("tests.testapp.queries.gadgets",
     "returned a QuerySet of testapp.Gadget, not of testapp.Poster"),
    ("tests.testapp.queries.first_posters", "returned a sliced QuerySet"),
])
def test_a_broken_entry_is_a_clear_error_at_list_time(posters, path, message):
    setting = {**BASE, "ITEM_MODELS": ITEM_MODELS, "ITEM_QUERYSETS": {"testapp.Poster": path}}
    with override_settings(DJANGO_RECS=setting), pytest.raises(ItemQuerysetError, match=message):
        similar_to(posters[0], 3)


# --- manage.py check ------------------------------------------------------------------


def recs_errors() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if m.id.startswith("django_recs.E07")]


@pytest.mark.parametrize("setting", [BY_FUNCTION, BY_MANAGER_METHOD],
                         ids=["function", "manager method"])
def test_check_accepts_both_forms(setting, django_assert_num_queries):
    with override_settings(DJANGO_RECS=setting), django_assert_num_queries(0):
        assert recs_errors() == []


@pytest.mark.parametrize(("queries", "check_id", "message"), [
    (["testapp.Poster"], "E070", "must be a dict"),
    ({"testapp.Gadget": "tests.testapp.queries.gadgets",
      "testapp.Poster": "tests.testapp.queries.visible_posters"}, "E071",
     "names 'testapp.Gadget', which is not a model in ITEM_MODELS"),
    ({"testapp.Nope": "tests.testapp.queries.gadgets"}, "E071", "names 'testapp.Nope'"),
    ({"testapp.Poster": "tests.testapp.queries.missing"}, "E072", "cannot resolve"),
    ({"testapp.Poster": "testapp.Poster.objects.nope"}, "E072", "cannot resolve"),
    ({"testapp.Poster": 42}, "E072", "is 42, not a dotted path"),
    ({"testapp.Poster": "tests.testapp.queries.NOT_CALLABLE"}, "E072", "is not callable"),
    ({"testapp.Poster": "tests.testapp.queries.poster_manager"}, "E073", "not a QuerySet"),
    ({"testapp.Poster": "tests.testapp.queries.gadgets"}, "E073", "QuerySet of testapp.Gadget"),
    ({"testapp.Poster": "tests.testapp.queries.first_posters"}, "E073", "sliced"),
    ({"testapp.Poster": "tests.testapp.queries.broken"}, "E073",
     "raised RuntimeError: no catalogue today"),
])
def test_check_reports_a_broken_setting(queries, check_id, message):
    setting = {**BASE, "ITEM_MODELS": ["testapp.Product", "testapp.Poster"],
               "ITEM_QUERYSETS": queries}
    with override_settings(DJANGO_RECS=setting):
        errors = recs_errors()
    assert [error.id for error in errors] == [f"django_recs.{check_id}"]
    assert message in errors[0].msg
    assert errors[0].hint
