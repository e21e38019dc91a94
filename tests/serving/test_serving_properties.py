"""Property-based: the lists raise nothing but ValueError, the tags nothing at all for a visitor.

similar_to() and recommended_for() get arguments from code: whatever they
are, the call returns a list or raises ValueError before any SQL, and the
caller's transaction stays usable. The template tags get the visitor's
session cookie and variables that may be missing from the context: whatever
those are, the page renders.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import django_recs
from django_recs.models import Interaction
from tests.serving.serving_data import store_neighbours, store_popular, store_recommendations
from tests.testapp.models import Gadget, Product

pytestmark = pytest.mark.django_db

PROPERTIES = settings(max_examples=80, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow])

any_text = st.text(st.characters(codec=None, categories=None), max_size=50)
EDGE_TEXT = ["a\x00b", "\ud800", "k" * 41, "m" * 40, "", "similar", "personal", "popular",
             "nope"]
EDGE_NUMBERS = [10**19, 2**63, -1, 0, 1, 6, 10_000, 10_001, 2.5, True, float("nan"), None]
texts = st.one_of(st.sampled_from(EDGE_TEXT), any_text)
numbers = st.one_of(st.sampled_from(EDGE_NUMBERS), st.integers(), st.floats())
anything = st.one_of(texts, numbers, st.lists(st.integers(), max_size=3), st.binary(max_size=4))


@pytest.fixture
def shop():
    products = [Product.objects.create(name=f"p{i}") for i in range(6)]
    customer = User.objects.create_user("customer")
    store_neighbours(products[0], [(p, 1.0 - i / 10) for i, p in enumerate(products[1:4])])
    store_recommendations(customer, [(products[4], 0.9, products[0])])
    store_popular([(products[5], 3.0), (products[1], 2.0)])
    Interaction.objects.create(user=None, session_key="good-key-1234", item_type_id=1,
                               item_key=str(products[2].pk), event="view", weight=1.0)
    return {"products": products, "customer": customer, "gadget": Gadget.objects.create(name="g")}


@st.composite
def list_arguments(draw) -> dict:
    """Keyword arguments of a list: one or two from anywhere, the others fine."""
    fine = {
        "n": st.sampled_from([0, 1, 3, 10]),
        "algorithm": st.none(),
        "session_key": st.sampled_from([None, "good-key-1234"]),
        "exclude": st.sampled_from([(), None]),
        "max_per_category": st.none(),
        "user": st.sampled_from(["customer", None, "anonymous"]),
    }
    wild = {
        "n": numbers,
        "algorithm": st.one_of(texts, numbers),
        "session_key": st.one_of(texts, numbers),
        "exclude": st.one_of(anything, st.lists(anything, max_size=3)),
        "max_per_category": numbers,
        "user": st.one_of(st.sampled_from(["customer", "anonymous"]), anything),
    }
    chosen = draw(st.sets(st.sampled_from(sorted(wild)), min_size=1, max_size=2))
    return {name: draw(wild[name] if name in chosen else fine[name]) for name in fine}


def _call(function, shop, arguments: dict):
    arguments = dict(arguments)
    user, n = arguments.pop("user"), arguments.pop("n")
    if user in ("customer", "anonymous"):
        user = shop["customer"] if user == "customer" else AnonymousUser()
    arguments = {key: value for key, value in arguments.items() if value is not None}
    if function is django_recs.similar_to:
        return function(shop["products"][0], n, user=user, **arguments)
    return function(user, n, **arguments)


@PROPERTIES
@given(arguments=list_arguments(), function=st.sampled_from(["similar_to", "recommended_for"]))
def test_a_list_or_a_value_error_and_the_transaction_stays_usable(shop, arguments, function):
    call = getattr(django_recs, function)
    with transaction.atomic():
        try:
            items = list(_call(call, shop, arguments))
        except ValueError:
            items = None
        assert Interaction.objects.exists()  # the transaction still works
    if items is not None:
        assert len(items) <= arguments["n"]
        assert all(isinstance(item, Product) and item.recs_score == item.recs_score
                   for item in items)


PAGE = Template(
    "{% load recs %}"
    "{% similar_items product n as also_bought %}"
    "{% recommended_for request.user count exclude=product exclude=also_bought as for_you %}"
    "{% show_recommended_for request.user count exclude=missing %}"
    "{{ also_bought|length }}/{{ for_you|length }}"
)


@PROPERTIES
@given(cookie=st.one_of(texts, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789",
                                       min_size=8, max_size=45)),
       n=st.sampled_from([3, None, "", "missing"]), signed_in=st.booleans())
def test_a_product_page_renders_whatever_the_cookie_and_missing_variables(shop, cookie, n,
                                                                          signed_in):
    request = RequestFactory().get("/")
    request.user = shop["customer"] if signed_in else AnonymousUser()
    request.session = SessionStore(session_key=cookie)  # what SessionMiddleware makes of it
    context = {"product": shop["products"][0]}
    if n != "missing":
        context.update(n=n, count=n)
    with transaction.atomic():
        page = PAGE.render(RequestContext(request, context))
        assert Interaction.objects.exists()
    also_bought, for_you = page.rsplit("/", 1)[0][-1], page.rsplit("/", 1)[1]
    assert also_bought.isdigit() and for_you.isdigit()


@PROPERTIES
@given(cookie=st.one_of(texts, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789",
                                       min_size=30, max_size=45)))
def test_record_view_never_raises_for_a_cookie(shop, cookie):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request.session = SessionStore(session_key=cookie)
    with transaction.atomic():
        before = Interaction.objects.count()
        row = django_recs.record_view(request, shop["products"][1])
        assert Interaction.objects.count() == before + (row is not None)
    if row is not None:  # recorded under the session that exists, not the cookie's text
        assert row.session_key == request.session.session_key
        assert SessionStore().exists(row.session_key)


def test_a_context_without_the_request_renders_too(shop):
    page = Template("{% load recs %}{% recommended_for None 2 as items %}{{ items|length }}")
    assert page.render(Context({})) == "2"
