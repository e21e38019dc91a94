"""Bad arguments to the lists are ValueErrors raised before any SQL; a visitor's input never is.

A programming error (an unknown algorithm, an absurd ``n``, a session key of
the wrong type) gets a ValueError naming it, and the caller's transaction
stays usable; what comes from a visitor (a session cookie) or a template
variable missing from the context renders a list, never a 500.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.template import Context, RequestContext, Template
from django.test import RequestFactory

import django_recs
from django_recs.models import Interaction
from tests.serving.serving_data import store_neighbours, store_popular
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def products():
    return [Product.objects.create(name=f"p{i}") for i in range(4)]


@pytest.fixture
def customer():
    return User.objects.create_user("customer")


def _still_usable() -> None:
    assert Interaction.objects.count() >= 0


def test_an_unknown_algorithm_is_a_value_error_naming_the_configured_ones(products, customer):
    store_popular([(products[1], 3.0)])
    with pytest.raises(ValueError, match="unknown algorithm 'nope': DJANGO_RECS\\['ALGORITHMS'\\] "
                                         "configures 'similar', 'personal', 'popular'"):
        django_recs.similar_to(products[0], algorithm="nope")
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        django_recs.recommended_for(customer, algorithm="nope")


def test_an_unconfigured_default_algorithm_still_serves_the_fallbacks(products, settings):
    settings.DJANGO_RECS = {**settings.DJANGO_RECS, "ALGORITHMS": {
        "popular": {"class": "django_recs.algorithms.Popular"}}}
    store_popular([(products[1], 3.0)])
    assert [p.pk for p in django_recs.similar_to(products[0], 1)] == [products[1].pk]


@pytest.mark.parametrize("n", [10**19, 2**63, 10_001])
def test_an_absurd_n_is_a_value_error_before_any_sql(products, customer, n):
    with transaction.atomic():
        with pytest.raises(ValueError, match="n must be a non-negative integer <= 10000"):
            django_recs.similar_to(products[0], n)
        with pytest.raises(ValueError, match="n must be a non-negative integer <= 10000"):
            django_recs.recommended_for(customer, n)
        _still_usable()


@pytest.mark.parametrize(("session_key", "message"), [
    (12345, "session_key must be a string, got int 12345"),
    ("a\x00b", "contains a NUL character"),
    ("x" * 41, "at most 40"),
])
def test_a_session_key_no_column_holds_is_a_value_error(products, customer, session_key, message):
    with transaction.atomic():
        with pytest.raises(ValueError, match=message):
            django_recs.recommended_for(customer, session_key=session_key)
        with pytest.raises(ValueError, match=message):
            django_recs.similar_to(products[0], session_key=session_key)
        _still_usable()


@pytest.mark.parametrize("value", [[1, 2], "not a queryset"])
def test_a_queryset_that_is_no_queryset_is_a_value_error(products, value):
    with pytest.raises(ValueError, match="queryset= must be a QuerySet"):
        django_recs.recommended_for(None, 2, queryset=value)
    with pytest.raises(ValueError, match="model= must be a model class"):
        django_recs.recommended_for(None, 2, model=5)


# -- the template tags ----------------------------------------------------------------------


def test_a_missing_n_renders_the_default_length(products):
    store_neighbours(products[0], [(p, 1.0 - i / 10) for i, p in enumerate(products[1:])])
    page = Template("{% load recs %}{% similar_items product n as items %}"
                    "{{ items|length }}").render(Context({"product": products[0]}))
    assert page == "3"
    page = Template("{% load recs %}{% recommended_for None n as items %}{{ items|length }}"
                    ).render(Context({}))
    assert page == "0"


@pytest.mark.parametrize("cookie", ["a\x00bcdefgh", "y" * 41])
def test_a_bad_session_cookie_renders_the_list_of_an_unknown_visitor(products, cookie):
    store_popular([(products[2], 3.0), (products[1], 2.0)])
    request = RequestFactory().get("/")
    request.session = SessionStore(session_key=cookie)  # what SessionMiddleware makes of it
    assert request.session.session_key == cookie
    page = Template("{% load recs %}{% recommended_for None 2 as items %}"
                    "{% for p in items %}{{ p.name }} {% endfor %}").render(
        RequestContext(request, {}))
    assert page == "p2 p1 "
