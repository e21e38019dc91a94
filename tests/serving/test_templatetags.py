"""{% load recs %}: the template tags a shop's pages use, and their query budget."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template import Context, RequestContext, Template
from django.test import RequestFactory, override_settings
from django.urls import path

from django_recs.items import item_content_type
from tests.serving.serving_data import (
    interact,
    store_neighbours,
    store_popular,
    store_recommendations,
)
from tests.testapp.models import Category, Poster, Product

pytestmark = pytest.mark.django_db

PRODUCT_PAGE = Template(
    "{% load recs %}<h1>{{ product.name }}</h1>"
    "{% similar_items product 6 as similar %}"
    "<ul id=similar>{% for p in similar %}<li>{{ p.name }}</li>{% endfor %}</ul>"
    "{% recommended_for request.user 8 as recommended %}"
    "<ul id=recommended>{% for p in recommended %}<li>{{ p.name }}"
    "{% if p.recs_reason %} because of {{ p.recs_reason.name }}{% endif %}</li>{% endfor %}</ul>"
)


def product_page(request, pk):
    product = get_object_or_404(Product, pk=pk)
    return HttpResponse(PRODUCT_PAGE.render(RequestContext(request, {"product": product})))


urlpatterns = [path("products/<int:pk>/", product_page)]


@pytest.fixture
def products():
    category = Category.objects.create(name="mugs")
    items = [Product.objects.create(name=f"p{i}", category=category) for i in range(10)]
    item_content_type(Product)  # a running process has the content type cached
    return items


@pytest.fixture
def customer():
    return User.objects.create_user("customer", password="secret")


def render(source: str, **context) -> str:
    return Template("{% load recs %}" + source).render(Context(context))


def request_for(user, session_key=None):
    request = RequestFactory().get("/")
    request.user = user
    request.session = SessionStore(session_key=session_key)
    return request


def test_similar_items_assigns_the_queryset(products):
    p = products
    store_neighbours(p[0], [(p[2], 0.9), (p[1], 0.5)])
    out = render(
        "{% similar_items product 6 as items %}"
        "{% for i in items %}{{ i.name }}={{ i.recs_score|floatformat:1 }};{% endfor %}",
        product=p[0],
    )
    assert out == "p2=0.9;p1=0.5;"


def test_similar_items_of_nothing_is_an_empty_list(products):
    assert render("{% similar_items missing 6 as items %}[{% for i in items %}x{% endfor %}]") == "[]"


def test_recommended_for_uses_the_request_session_for_anonymous_visitors(products):
    p = products
    interact(p[3], "view", session_key="anonymous-session")
    store_neighbours(p[3], [(p[7], 0.9)])
    store_popular([(p[5], 1.0)])
    request = request_for(AnonymousUser(), "anonymous-session")
    out = Template(
        "{% load recs %}{% recommended_for request.user 2 as items %}"
        "{% for i in items %}{{ i.name }}/{{ i.recs_reason.name }};{% endfor %}"
    ).render(Context({"request": request}))
    assert out == "p7/p3;p5/;"


def test_recommended_for_without_a_request_still_works(products, customer):
    store_popular([(products[4], 1.0)])
    assert render("{% recommended_for user 3 as items %}{{ items|length }}", user=customer) == "1"


def test_inclusion_tags_render_the_item_list_template(products, customer):
    p = products
    store_neighbours(p[0], [(p[1], 0.9)])
    store_recommendations(customer, [(p[4], 0.8, p[1])])
    request = request_for(customer)
    html = Template(
        "{% load recs %}"
        '{% show_similar_items product 4 title="Customers who bought this also bought" %}'
        '{% show_recommended_for request.user 4 title="Recommended for you" %}'
    ).render(Context({"request": request, "product": p[0]}))
    assert "<h2 class=\"recs-title\">Customers who bought this also bought</h2>" in html
    assert "<h2 class=\"recs-title\">Recommended for you</h2>" in html
    assert 'data-recs-source="similar"' in html and 'data-recs-source="personal"' in html
    assert '<span class="recs-reason">because of p1</span>' in html


def test_inclusion_tag_renders_nothing_for_an_empty_list(products):
    html = Template("{% load recs %}{% show_similar_items product 4 title='Also bought' %}").render(
        Context({"product": products[0]})
    )
    assert html.strip() == ""


def test_two_lists_on_a_page_do_not_repeat_each_other(products, django_assert_max_num_queries):
    p = products
    # One viewed item: its neighbours are both lists' best candidates.
    store_neighbours(p[0], [(p[i], 1 - i / 10) for i in range(1, 9)])
    interact(p[0], "view", session_key="anonymous-session")
    request = request_for(AnonymousUser(), "anonymous-session")
    page = (
        "{% similar_items product 3 as also_bought %}"
        "<ul id=similar>{% for p in also_bought %}<li>{{ p.name }}</li>{% endfor %}</ul>"
        "{% recommended_for request.user 3 exclude=also_bought as recommended %}"
        "<ul id=recommended>{% for p in recommended %}<li>{{ p.name }}</li>{% endfor %}</ul>"
        "{% show_recommended_for request.user 2 exclude=also_bought %}"
    )
    with django_assert_max_num_queries(3):  # similar; recommended twice (excluding costs nothing)
        html = render(page, product=p[0], request=request)
    assert "<ul id=similar><li>p1</li><li>p2</li><li>p3</li></ul>" in html
    assert "<ul id=recommended><li>p4</li><li>p5</li><li>p6</li></ul>" in html
    assert render("{% recommended_for request.user 3 exclude=missing as r %}{{ r|length }}",
                  request=request) == "3"  # an unknown variable excludes nothing


def test_both_tags_cost_at_most_four_queries(products, customer, django_assert_max_num_queries):
    p = products
    store_neighbours(p[0], [(p[i], 1 - i / 10) for i in range(1, 8)])
    store_recommendations(customer, [(p[i], 1 - i / 10, p[0]) for i in range(2, 9)])
    interact(p[0], "purchase", user=customer)
    request = request_for(customer)
    with django_assert_max_num_queries(4):  # 3: similar; recommended, then its fallbacks
        html = PRODUCT_PAGE.render(Context({"request": request, "product": p[0]}))
    # 7 stored, topped up with p1 (a neighbour of the bought p0); p0 never.
    assert html.count("<li>") == 6 + 8
    assert "<li>p1 because of p0</li>" in html
    assert "<li>p0" not in html


def test_both_tags_for_an_anonymous_session_cost_at_most_four_queries(
    products, django_assert_max_num_queries
):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8)])
    store_neighbours(p[1], [(p[9], 0.7)])
    store_popular([(p[5], 3.0), (p[6], 2.0)])
    interact(p[1], "view", session_key="anonymous-session")
    request = request_for(AnonymousUser(), "anonymous-session")
    # 4: similar, then its fallbacks; the history (one item), then the popular items
    with django_assert_max_num_queries(4):
        html = PRODUCT_PAGE.render(Context({"request": request, "product": p[0]}))
    assert "<ul id=similar><li>p1</li><li>p2</li><li>p5</li>" in html
    assert "<ul id=recommended><li>p9 because of p1</li>" in html


@pytest.mark.urls(__name__)
def test_whole_product_page_for_an_anonymous_visitor(
    client, products, django_assert_max_num_queries
):
    p = products
    store_neighbours(p[0], [(p[1], 0.9), (p[2], 0.8)])
    store_popular([(p[5], 3.0), (p[6], 2.0)])
    session = SessionStore()
    session["seen"] = True
    session.create()
    interact(p[1], "view", session_key=session.session_key)
    store_neighbours(p[1], [(p[9], 0.7)])
    client.cookies["sessionid"] = session.session_key
    # The session and the product, then at most 4 for the two tags.
    with django_assert_max_num_queries(6):
        response = client.get(f"/products/{p[0].pk}/")
    html = response.content.decode()
    assert "<ul id=similar><li>p1</li><li>p2</li><li>p5</li>" in html
    assert "<li>p9 because of p1</li>" in html


# --- the page's product, queryset= and ITEM_QUERYSETS in every tag --------------------

EVERY_TAG = (
    "{% similar_items product 3 SIMILAR as s %}{% for i in s %}{{ i.name }},{% endfor %}|"
    "{% recommended_for user 3 RECOMMENDED as r %}{% for i in r %}{{ i.name }},{% endfor %}|"
    "{% show_similar_items product 3 SIMILAR %}|{% show_recommended_for user 3 RECOMMENDED %}"
)


def every_tag(similar_args: str, recommended_args: str, **context) -> list[list[str]]:
    """The item names each of the four tags shows, given those arguments."""
    source = EVERY_TAG.replace("SIMILAR", similar_args).replace("RECOMMENDED", recommended_args)
    return [re.findall(r"\bp\d+\b", part) for part in render(source, **context).split("|")]


def test_a_product_page_excludes_its_product_and_the_list_above(products, customer):
    p = products
    store_neighbours(p[0], [(p[i], 1 - i / 10) for i in range(1, 9)])
    # The customer's stored recommendations start with the product of the page.
    store_recommendations(customer, [(p[i], 1 - i / 20, None) for i in range(0, 9)])
    request = request_for(customer)
    page = (
        "{% similar_items product 2 as also_bought %}"
        "{% for i in also_bought %}{{ i.name }},{% endfor %}|"
        "{% recommended_for request.user 3 exclude=product as one %}"
        "{% for i in one %}{{ i.name }},{% endfor %}|"
        "{% recommended_for request.user 3 exclude=product exclude=also_bought as both %}"
        "{% for i in both %}{{ i.name }},{% endfor %}|"
        "{% show_recommended_for request.user 3 exclude=also_bought exclude=product %}"
    )
    similar, one, both, shown = render(page, product=p[0], request=request).split("|")
    assert similar == "p1,p2,"
    assert one == "p1,p2,p3,"  # a single item
    assert both == "p3,p4,p5,"  # exclude= more than once: all are left out
    assert re.findall(r"\bp\d+\b", shown) == ["p3", "p4", "p5"]
    missing = "{% recommended_for request.user 3 exclude=missing exclude=product as r %}"
    assert render(missing + "{% for i in r %}{{ i.name }},{% endfor %}",
                  product=p[0], request=request) == "p1,p2,p3,"


def test_every_tag_takes_queryset(products, customer):
    p = products
    store_neighbours(p[0], [(p[i], 1 - i / 10) for i in range(1, 9)])
    store_recommendations(customer, [(p[i], 1 - i / 10, None) for i in range(1, 9)])
    Product.objects.filter(pk__in=[p[1].pk, p[3].pk]).update(in_stock=False)
    lists = every_tag("queryset=in_stock", "queryset=in_stock", product=p[0], user=customer,
                      in_stock=Product.objects.filter(in_stock=True))
    assert lists == [["p2", "p4", "p5"]] * 4


def test_queryset_of_something_else_is_a_clear_error(products):
    with pytest.raises(ValueError, match="queryset= must be a QuerySet, got list"):
        render("{% similar_items product 3 queryset=items as s %}", product=products[0],
               items=[products[1]])


def test_hidden_items_never_appear_in_any_tag(customer):
    posters = [Poster.objects.create(name=f"p{i}", published=i % 2 == 0) for i in range(10)]
    store_neighbours(posters[0], [(posters[i], 1 - i / 10) for i in range(1, 9)])
    store_recommendations(customer, [(posters[i], 1 - i / 10, None) for i in range(1, 9)])
    store_popular([(poster, 1.0) for poster in posters])
    setting = {
        "ITEM_MODELS": ["testapp.Product", "testapp.Poster"],
        "ITEM_QUERYSETS": {"testapp.Poster": "testapp.Poster.objects.browsable"},
    }
    with override_settings(DJANGO_RECS=setting):
        lists = every_tag("", 'model="testapp.Poster"', product=posters[0], user=customer)
    assert lists == [["p2", "p4", "p6"]] * 4
