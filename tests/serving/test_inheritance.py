"""Lists of item models that inherit from another model (multi-table inheritance).

A news site's ``Article(Page)`` (two levels down: ``LiveArticle(Article)``)
and a UUID-keyed ``Video(Asset)`` / ``Trailer(Video)`` go the whole way:
recorded, recomputed, served by ``similar_to`` / ``recommended_for`` and the
tags with their reasons, deleted and forgotten. Their columns live in their
own table and their parents'; the lists' statement joins the parents, so a
list still costs one query. ITEM_MODELS listing a parent with its child
(Page and Article) keys both under Page: one item, in either list.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template import Context, RequestContext, Template
from django.test import RequestFactory, override_settings
from django.urls import path

import django_recs
from django_recs.models import Interaction, PopularItem, SimilarItem
from tests.serving.serving_data import interact, store_neighbours, store_recommendations
from tests.testapp.models import (
    Article,
    Asset,
    Category,
    Event,
    FrontPageArticle,
    LiveArticle,
    Page,
    Trailer,
    Video,
)

pytestmark = pytest.mark.django_db

ALGORITHMS = {
    "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 5},
    "personal": {"class": "django_recs.algorithms.ItemKNN", "k": 5},
    "popular": {"class": "django_recs.algorithms.Popular"},
}
NEWS = {"ITEM_MODELS": ["testapp.Article", "testapp.Video"], "ALGORITHMS": ALGORITHMS,
        "NUM_THREADS": 1, "RECOMMENDATIONS_PER_USER": 5}
PAGES_AND_ARTICLES = {**NEWS, "ITEM_MODELS": ["testapp.Page", "testapp.Article"]}

ITEM_PAGE = Template(
    "{% load recs %}"
    "{% similar_items item 1 as similar %}"
    "<ul id=similar>{% for i in similar %}<li>{{ i }}</li>{% endfor %}</ul>"
    "{% recommended_for request.user 3 model=label exclude=item exclude=similar as recommended %}"
    "<ul id=recommended>{% for i in recommended %}<li>{{ i }}"
    "{% if i.recs_reason %} because of {{ i.recs_reason }}{% endif %}</li>{% endfor %}</ul>"
)


def article_page(request, pk):
    """A news site's article view: records the visit, renders both tags."""
    article = get_object_or_404(Article, pk=pk)
    if request.session.session_key is None:
        request.session.save()
    django_recs.record(request.user, article, "view", session_key=request.session.session_key)
    context = {"item": article, "label": "testapp.Article"}
    return HttpResponse(ITEM_PAGE.render(RequestContext(request, context)))


urlpatterns = [path("articles/<int:pk>/", article_page)]


@dataclass
class Catalogue:
    """Eight items in four planted pairs: each pair bought together by its own customers."""

    model: type  # the listed model, whose instances the lists return
    items: list

    def partner(self, i: int):
        return self.items[i ^ 1]


def articles() -> Catalogue:
    section = Category.objects.create(name="politics")
    return Catalogue(Article, [
        (LiveArticle if i % 3 == 1 else Article).objects.create(
            title=f"a{i}", body=f"body {i}", section=section)
        for i in range(8)
    ])


def videos() -> Catalogue:
    return Catalogue(Video, [
        (Trailer if i % 3 == 1 else Video).objects.create(name=f"v{i}", minutes=i)
        for i in range(8)
    ])


def row(obj) -> dict:
    """Every column value of ``obj``, parents' included, as the ORM loads them."""
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def request_for(user, session_key=None):
    request = RequestFactory().get("/")
    request.user = user
    request.session = SessionStore(session_key=session_key)
    return request


@pytest.mark.parametrize("make", [articles, videos], ids=["integer root", "UUID root"])
def test_the_whole_path_record_recompute_serve_delete_forget(
        make, django_assert_num_queries, django_assert_max_num_queries):
    catalogue = make()
    items, model = catalogue.items, catalogue.model
    customers = [User.objects.create(username=f"c{i}") for i in range(12)]
    reader = User.objects.create(username="reader")
    with override_settings(DJANGO_RECS=NEWS):
        for i, customer in enumerate(customers):
            pair = i % 4
            django_recs.record(customer, items[2 * pair], "purchase")
            django_recs.record(customer, items[2 * pair + 1], "purchase")
        django_recs.record(reader, items[0], "purchase")
        runs = django_recs.recompute(sync=True)
        assert [run.status for run in runs] == ["succeeded"] * 3, [run.error for run in runs]

        # similar_to: the planted partner first for every item, one query each.
        for i, item in enumerate(items):
            with django_assert_num_queries(1):
                [best] = django_recs.similar_to(item, 1)
            assert (type(best), best.pk, best.recs_source) == (model, catalogue.partner(i).pk,
                                                               "similar")
            assert row(best) == row(model.objects.get(pk=best.pk))
            with django_assert_max_num_queries(2):  # topped up from the popular items
                similar = list(django_recs.similar_to(item, 3))
            assert similar[0].pk == best.pk and all(type(obj) is model for obj in similar)

        # recommended_for: the partner of what the reader bought, explained by it.
        with django_assert_num_queries(1):
            [first] = django_recs.recommended_for(reader, 1, model=model)
        assert (first.pk, first.recs_source) == (items[1].pk, "personal")
        assert (type(first.recs_reason), first.recs_reason.pk) == (model, items[0].pk)
        assert row(first.recs_reason) == row(model.objects.get(pk=items[0].pk))

        # An anonymous visitor's history: the neighbours of what they viewed.
        interact(items[2], "view", session_key="anonymous")
        with django_assert_num_queries(1):
            [first] = django_recs.recommended_for(None, 1, model=model, session_key="anonymous")
        assert (first.pk, first.recs_source, first.recs_reason.pk) == (
            items[3].pk, "history", items[2].pk)

        # The tags, reasons included, within the page's budget.
        request = request_for(reader)
        with django_assert_max_num_queries(4):
            html = ITEM_PAGE.render(Context({"request": request, "item": items[2],
                                             "label": model._meta.label}))
        assert f"<ul id=similar><li>{items[3]}</li>" in html
        assert f"<ul id=recommended><li>{items[1]} because of {items[0]}</li>" in html

        # Deleted: no list names it again.
        partner_pk = items[1].pk
        items[1].delete()
        assert not SimilarItem.objects.filter(neighbour_key__in=[str(partner_pk),
                                                                 getattr(partner_pk, "hex", "")]
                                              ).exists()
        assert partner_pk not in [obj.pk for obj in django_recs.similar_to(items[0], 8)]
        assert partner_pk not in [obj.pk for obj in
                                  django_recs.recommended_for(reader, 8, model=model)]

        # Forgotten: the reader's history and recommendations are gone.
        assert django_recs.forget_user(reader) > 0
        assert not Interaction.objects.filter(user=reader).exists()
        assert {obj.recs_source for obj in django_recs.recommended_for(reader, 3, model=model)} \
            == {"popular"}


@pytest.mark.urls(__name__)
def test_an_article_page_records_its_view_and_renders_both_lists(client, monkeypatch):
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    items = articles().items
    customer = User.objects.create_user("customer", password="x")
    with override_settings(DJANGO_RECS=NEWS):
        store_neighbours(items[0], [(items[1], 0.9), (items[2], 0.8)])
        store_recommendations(customer, [(items[5], 0.7, items[4])])
        client.force_login(customer)
        response = client.get(f"/articles/{items[0].pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<ul id=similar><li>a1</li></ul>" in html
    assert "<li>a5 because of a4</li>" in html
    [view] = Interaction.objects.filter(user=customer)  # the view was committed
    assert (view.item_type.model, view.item_key) == ("page", str(items[0].pk))


def test_a_two_level_child_list_and_a_proxy_list_return_their_own_model(
        django_assert_num_queries):
    items = articles().items  # a1 and a4 are LiveArticles
    with override_settings(DJANGO_RECS=NEWS):
        store_neighbours(items[0], [(items[i], 1 - i / 10) for i in range(1, 8)])
        with django_assert_num_queries(1):
            live = list(django_recs.similar_to(items[0], 3, queryset=LiveArticle.objects.all()))
        assert [(type(obj), obj.title, obj.updates) for obj in live] == [
            (LiveArticle, "a1", 0), (LiveArticle, "a4", 0), (LiveArticle, "a7", 0)]
        with django_assert_num_queries(1):
            front = list(django_recs.similar_to(items[0], 2,
                                                queryset=FrontPageArticle.objects.all()))
        assert [(type(obj), obj.title) for obj in front] == [
            (FrontPageArticle, "a1"), (FrontPageArticle, "a2")]
        # An item of an unlisted child is listed as its listed parent.
        live_item = LiveArticle.objects.get(pk=items[1].pk)
        store_neighbours(live_item, [(items[0], 0.5)])
        assert [type(obj) for obj in django_recs.similar_to(live_item, 3)] == [Article]
        assert [type(obj) for obj in django_recs.recommended_for(
            None, 2, model=LiveArticle)] == []  # nothing popular yet, and no error


def test_wrong_models_are_clear_errors():
    items = articles().items
    video = Video.objects.create(name="v")
    with override_settings(DJANGO_RECS=NEWS):
        with pytest.raises(ValueError, match="queryset= is of testapp.Video"):
            django_recs.similar_to(items[0], queryset=Video.objects.all())
        with pytest.raises(ValueError, match="exclude= holds a testapp.Video"):
            django_recs.similar_to(items[0], exclude=[video])
        with pytest.raises(ValueError, match=r"testapp.Asset is not in DJANGO_RECS"):
            django_recs.similar_to(Asset.objects.get(pk=video.pk))


# --- a parent listed with its child -----------------------------------------------------------


@pytest.fixture
def site():
    """Pages p0-p3 that are no articles, and articles a0-a3."""
    pages = [Page.objects.create(title=f"p{i}") for i in range(4)]
    return pages, [Article.objects.create(title=f"a{i}") for i in range(4)]


def test_a_child_list_keeps_to_its_own_table_and_still_fills_up(site, django_assert_num_queries):
    pages, arts = site
    with override_settings(DJANGO_RECS=PAGES_AND_ARTICLES):
        # The best neighbours of a0 are pages that are no articles.
        store_neighbours(arts[0], [(pages[0], 0.9), (pages[1], 0.8), (arts[1], 0.7),
                                   (pages[2], 0.6), (arts[2], 0.5), (arts[3], 0.4)])
        with django_assert_num_queries(1):
            article_list = list(django_recs.similar_to(arts[0], 2))
        assert [(type(obj), obj.title) for obj in article_list] == [
            (Article, "a1"), (Article, "a2")]
        page_of_a0 = Page.objects.get(pk=arts[0].pk)
        with django_assert_num_queries(1):
            page_list = list(django_recs.similar_to(page_of_a0, 3))
        assert [(type(obj), obj.title) for obj in page_list] == [
            (Page, "p0"), (Page, "p1"), (Page, "a1")]
        # Asked for articles, the page of an article gets them.
        assert [obj.title for obj in django_recs.similar_to(
            page_of_a0, 2, queryset=Article.objects.all())] == ["a1", "a2"]
        assert [obj.title for obj in django_recs.similar_to(
            arts[0], 2, exclude=[Page.objects.get(pk=arts[1].pk)])] == ["a2", "a3"]


def test_recorded_as_a_page_or_an_article_it_is_one_item(site):
    pages, arts = site
    users = [User.objects.create(username=f"u{i}") for i in range(3)]
    with override_settings(DJANGO_RECS=PAGES_AND_ARTICLES):
        for user in users:
            django_recs.record(user, arts[0], "purchase")
            django_recs.record(user, Page.objects.get(pk=arts[0].pk), "view")
        django_recs.record(users[0], pages[0], "purchase")
        [run] = django_recs.recompute("popular", sync=True)
        assert run.status == "succeeded", run.error
        popular = list(PopularItem.objects.active("popular").order_by("rank")
                       .values_list("item_key", flat=True))
        assert popular == [str(arts[0].pk), str(pages[0].pk)]  # one row per item
        assert [obj.title for obj in django_recs.recommended_for(None, 3, model=Article)] == ["a0"]
        assert [(type(obj), obj.title) for obj in django_recs.recommended_for(
            None, 3, model=Page)] == [(Page, "a0"), (Page, "p0")]


def test_reasons_from_the_family_come_as_the_model_they_are(site, django_assert_num_queries):
    pages, arts = site
    customer = User.objects.create(username="customer")
    with override_settings(DJANGO_RECS=PAGES_AND_ARTICLES):
        store_recommendations(customer, [(arts[1], 0.9, pages[0]), (arts[2], 0.8, arts[0])])
        with django_assert_num_queries(2):  # the list; then the reason that is no article
            listed = list(django_recs.recommended_for(customer, 2, model=Article))
    assert [(obj.title, type(obj.recs_reason), obj.recs_reason.title) for obj in listed] == [
        ("a1", Page, "p0"), ("a2", Article, "a0")]


def test_a_child_without_an_item_queryset_follows_its_parents(site):
    pages, arts = site
    Page.objects.filter(pk__in=[pages[1].pk, arts[1].pk]).update(published=False)
    setting = {**PAGES_AND_ARTICLES,
               "ITEM_QUERYSETS": {"testapp.Page": "tests.testapp.queries.published_pages"}}
    with override_settings(DJANGO_RECS=setting):
        store_neighbours(arts[0], [(pages[0], 0.9), (pages[1], 0.85), (arts[1], 0.8),
                                   (arts[2], 0.7)])
        assert [obj.title for obj in django_recs.similar_to(arts[0], 3)] == ["a2"]
        assert [obj.title for obj in django_recs.similar_to(
            Page.objects.get(pk=arts[0].pk), 3)] == ["p0", "a2"]


def test_a_child_uses_its_parents_category(site):
    politics, sport = Category.objects.create(name="politics"), Category.objects.create(name="sport")
    arts = [LiveArticle.objects.create(title=f"l{i}", section=politics if i < 3 else sport)
            for i in range(5)]
    users = [User.objects.create(username=f"u{i}") for i in range(5)]
    setting = {**NEWS, "ITEM_MODELS": ["testapp.Article", "testapp.LiveArticle"],
               "CATEGORY": {"testapp.Article": "section"}}
    with override_settings(DJANGO_RECS=setting):
        for i, user in enumerate(users):
            for item in arts[: i + 1]:
                django_recs.record(user, item, "purchase")
        [run] = django_recs.recompute("popular", sync=True)
        assert run.status == "succeeded", run.error
        # l2 has no stored neighbours: its section's popular items come first.
        listed = list(django_recs.similar_to(arts[2], 3))
    assert [(type(obj), obj.title, obj.recs_source) for obj in listed] == [
        (LiveArticle, "l0", "category"), (LiveArticle, "l1", "category"),
        (LiveArticle, "l3", "popular")]


# --- two page types -------------------------------------------------------------------------


def test_two_page_types_are_one_family_and_each_list_keeps_to_its_type(django_assert_num_queries):
    arts = [Article.objects.create(title=f"a{i}") for i in range(3)]
    events = [Event.objects.create(title=f"e{i}") for i in range(3)]
    plain = Page.objects.create(title="about")  # neither type: no item
    users = [User.objects.create(username=f"u{i}") for i in range(4)]
    setting = {**NEWS, "ITEM_MODELS": ["testapp.Article", "testapp.Event"]}
    with override_settings(DJANGO_RECS=setting):
        for user in users:
            for item in (arts[0], events[0], arts[1]):
                django_recs.record(user, item, "purchase")
        django_recs.record(users[0], events[1], "purchase")
        # A row naming the plain page (written before it stopped being an event, say).
        interact(plain, "purchase", user=users[1])
        runs = django_recs.recompute("popular", "similar", sync=True)
        assert [run.status for run in runs] == ["succeeded"] * 2, [run.error for run in runs]
        assert runs[0].metrics["items"] == 4  # a0, a1, e0, e1: the plain page is no item
        assert [obj.title for obj in django_recs.recommended_for(None, 5, model=Event)] == [
            "e0", "e1"]
        with django_assert_num_queries(1):
            [best] = django_recs.similar_to(events[0], 1)
        assert (type(best), best.title) == (Event, "e1")
        assert [obj.title for obj in django_recs.similar_to(arts[0], 3)] == ["a1"]
