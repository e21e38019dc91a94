"""Property-based: a setting that passes ``manage.py check`` breaks no page.

For generated values of the DJANGO_RECS settings a page reads or writes
with: the checks never raise, and when they report no django_recs error, a
product page with both tags renders and a view records. A value that would
fail a page must be reported by the checks instead (MAX_PER_CATEGORY='2'
passed them and then failed every page with a tag).
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.core.checks import run_checks
from django.template import RequestContext, Template
from django.test import RequestFactory, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import django_recs
from tests.serving.serving_data import store_neighbours, store_popular
from tests.testapp.models import Category, Product

pytestmark = pytest.mark.django_db

PROPERTIES = settings(max_examples=80, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow])

names = st.sampled_from(["view", "purchase", "cart", "category", "nope", "testapp.Product",
                         "testapp.product", "category.name", "pk", "", "a\x00b"])
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-3, max_value=10**13),
              st.floats(allow_nan=True, allow_infinity=True), names,
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(names, inner, max_size=3)),
    max_leaves=6,
)

#: Settings read by a page (serving, the tags, record) and their usual shapes.
SETTINGS = {
    "MAX_PER_CATEGORY": st.one_of(st.sampled_from([None, 1, 2, "2", 0, -1, 1.5]), values),
    "CATEGORY": st.one_of(st.sampled_from([{"testapp.Product": "category"},
                                           {"testapp.Product": "nope"},
                                           {"testapp.Product": "category.nope"}, "category"]),
                          values),
    "EXCLUDE_SEEN": st.one_of(st.sampled_from(["purchase", ["purchase"], [], None]), values),
    "EVENTS": st.one_of(st.sampled_from([{"view": -1}, {"view": float("nan")},
                                         {"view": 1.0, "purchase": 1e39}]), values),
    "MAX_WEIGHT": st.one_of(st.sampled_from([1, 1e6, 0, "1e6", float("inf")]), values),
    "HALF_LIFE_DAYS": st.one_of(st.sampled_from([None, 30, 0, -1, float("inf")]), values),
    "ITEM_QUERYSETS": st.one_of(
        st.sampled_from([{"testapp.Gadget": "tests.testapp.queries.gadgets"},
                         {"testapp.Product": "nope.nope"}]), values),
    "CONTENT_FALLBACK": st.one_of(st.sampled_from([None, False, "similar", "nope"]), values),
    "ALGORITHMS": st.one_of(st.sampled_from([{}, {"similar": {"class": "nope"}}]), values),
    "NUM_THREADS": st.one_of(st.sampled_from([0, -1, "x", 2]), values),
    "REFRESH_ON_RECORD": values,
}


@pytest.fixture
def page():
    category = Category.objects.create(name="mugs")
    products = [Product.objects.create(name=f"p{i}", category=category) for i in range(5)]
    store_neighbours(products[0], [(p, 1.0 - i / 10) for i, p in enumerate(products[1:])])
    store_popular([(products[3], 2.0), (products[4], 1.0)])
    return {"products": products, "customer": User.objects.create_user("customer")}


TEMPLATE = Template(
    "{% load recs %}{% similar_items product 3 as also_bought %}"
    "{% recommended_for request.user 3 exclude=product exclude=also_bought as for_you %}"
    "{{ also_bought|length }} {{ for_you|length }}"
)


#: The suite's settings with a category, so that what depends on one is exercised.
BASE = {**django_settings.DJANGO_RECS, "CATEGORY": {"testapp.Product": "category"}}


@st.composite
def recs_settings(draw) -> dict:
    chosen = draw(st.sets(st.sampled_from(sorted(SETTINGS)), min_size=1, max_size=2))
    return {name: draw(SETTINGS[name]) for name in chosen}


@PROPERTIES
@given(changed=recs_settings(), signed_in=st.booleans())
def test_settings_that_pass_the_checks_break_no_page(page, changed, signed_in):
    with override_settings(DJANGO_RECS={**BASE, **changed}):
        errors = [m for m in run_checks(tags=["django_recs"])
                  if m.id.startswith("django_recs.E")]
        if errors:
            return  # reported by manage.py check: the shop fixes it before deploying
        request = RequestFactory().get("/")
        request.user = page["customer"] if signed_in else AnonymousUser()
        request.session = SessionStore()
        rendered = TEMPLATE.render(RequestContext(request, {"product": page["products"][0]}))
        assert rendered.split() and all(part.isdigit() for part in rendered.split())
        django_recs.record_view(request, page["products"][1])
