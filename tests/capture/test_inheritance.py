"""Item models that inherit from another model (multi-table inheritance), and proxies.

A news site's ``Article(Page)`` (primary key ``page_ptr``, two levels down
``LiveArticle(Article)``) and a UUID-keyed ``Video(Asset)`` / ``Trailer(Video)``
are items like any other: ``manage.py check`` accepts them, and every way of
recording, deleting and forgetting works. An item is keyed by its *root*
model's content type (Page, Asset) and the shared primary key value, so the
same article recorded as a Page, an Article, a LiveArticle or a proxy is one
item.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

import django_recs
from django_recs.capture.importing import InvalidRows
from django_recs.models import Interaction, PopularItem, Recommendation, Run, SimilarItem
from tests.testapp.models import (
    Article,
    ArticleRead,
    Asset,
    FrontPageArticle,
    LiveArticle,
    Page,
    Trailer,
    Video,
)

pytestmark = pytest.mark.django_db

EVENTS = {"view": 1.0, "read": 2.0, "purchase": 5.0}
ARTICLES = {"ITEM_MODELS": ["testapp.Article", "testapp.Video"], "EVENTS": EVENTS}
#: A parent listed with its child: one family, keyed under Page.
PAGES_AND_ARTICLES = {"ITEM_MODELS": ["testapp.Page", "testapp.Article"], "EVENTS": EVENTS}


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password="secret")


def keys(rows=None):
    """(content type model, key) of each interaction, in insertion order."""
    rows = Interaction.objects.order_by("pk") if rows is None else rows
    return [(row.item_type.model, row.item_key) for row in rows]


# --- manage.py check ------------------------------------------------------------------------


def e003(setting):
    with override_settings(DJANGO_RECS=setting):
        return [m for m in checks.run_checks() if m.id == "django_recs.E003"]


@pytest.mark.parametrize("labels", [
    ["testapp.Article"],                          # parent link to an integer key
    ["testapp.LiveArticle"],                      # two levels down
    ["testapp.Video", "testapp.Trailer"],         # UUID root, a child and a grandchild
    ["testapp.FrontPageArticle"],                 # a proxy of a child
    ["testapp.Page", "testapp.Article", "testapp.LiveArticle"],
])
def test_check_accepts_inheritance_models(labels):
    assert e003({"ITEM_MODELS": labels}) == []


def test_manage_py_check_passes_with_an_inheritance_model():
    with override_settings(DJANGO_RECS=ARTICLES):
        call_command("check")  # raises SystemCheckError on an error


def test_check_still_refuses_a_primary_key_that_cannot_be_a_key():
    [error] = e003({"ITEM_MODELS": ["sessions.Session"]})
    assert "sessions.Session's primary key is a CharField" in error.msg
    assert "parent links of multi-table inheritance" in error.msg
    assert error.hint


# --- keying ---------------------------------------------------------------------------------


def test_children_are_keyed_by_their_root_content_type_and_shared_key(alice):
    article = Article.objects.create(title="Budget")
    live = LiveArticle.objects.create(title="Election night")
    video = Video.objects.create(name="Interview")
    trailer = Trailer.objects.create(name="Teaser", film="Dune")
    with override_settings(DJANGO_RECS=ARTICLES):
        for item in (article, live, video, trailer):
            django_recs.record(alice, item)
    assert keys() == [
        ("page", str(article.pk)), ("page", str(live.pk)),
        ("asset", video.pk.hex), ("asset", trailer.pk.hex),
    ]
    assert live.pk == live.article_ptr_id == live.page_ptr_id == live.id


def test_one_item_whichever_model_it_is_recorded_as(alice):
    live = LiveArticle.objects.create(title="Election night")
    as_page, as_article = Page.objects.get(pk=live.pk), Article.objects.get(pk=live.pk)
    as_proxy = FrontPageArticle.objects.get(pk=live.pk)
    with override_settings(DJANGO_RECS=PAGES_AND_ARTICLES):
        for item in (as_page, as_article, live, as_proxy):
            django_recs.record(alice, item)
    assert keys() == [("page", str(live.pk))] * 4


def test_a_child_of_a_listed_model_is_an_item_but_a_parent_of_one_is_not(alice):
    live = LiveArticle.objects.create(title="Election night")
    plain = Page.objects.create(title="About us")
    with override_settings(DJANGO_RECS=ARTICLES):
        django_recs.record(alice, live)  # a LiveArticle is an Article
        with pytest.raises(ValueError, match=r"testapp.Page is not in DJANGO_RECS\['ITEM_MODELS'\]"):
            django_recs.record(alice, plain)
        with pytest.raises(ValueError, match="not in DJANGO_RECS"):
            django_recs.record(alice, Asset.objects.create(name="raw footage"))
    assert keys() == [("page", str(live.pk))]


def test_a_source_whose_item_is_an_inheritance_child(alice):
    article = LiveArticle.objects.create(title="Election night")
    source = {"model": "testapp.ArticleRead", "event": "read", "user": "reader",
              "item": "article"}
    with override_settings(DJANGO_RECS={**ARTICLES, "SOURCES": [source]}):
        assert [m for m in checks.run_checks() if m.id.startswith("django_recs.E01")] == []
        read = ArticleRead.objects.create(reader=alice, article=article)
    row = Interaction.objects.get()
    assert (row.item_type.model, row.item_key, row.event) == ("page", str(article.pk), "read")
    # The source row is named by its own model, for the backfill to find it again.
    assert (row.source_type, row.source_key) == (
        ContentType.objects.get_for_model(ArticleRead), str(read.pk))


def test_record_many_and_the_csv_import_key_children_the_same_way(alice, tmp_path):
    article = Article.objects.create(title="Budget")
    live = LiveArticle.objects.create(title="Election night")
    trailer = Trailer.objects.create(name="Teaser")
    csv = tmp_path / "events.csv"
    csv.write_text(f"user,item\n{alice.pk},testapp.article:{live.pk}\n"
                   f"{alice.pk},testapp.video:{trailer.pk}\n")
    with override_settings(DJANGO_RECS=ARTICLES):
        django_recs.record_many([(alice, article), (alice.pk, (LiveArticle, live.pk)),
                                 (alice.pk, (FrontPageArticle, article.pk)),
                                 (alice.pk, (Video, trailer.pk.hex))])
        call_command("recs_import", str(csv), stdout=None)
        with pytest.raises(InvalidRows, match=f"no testapp.Article with primary key {live.pk + 99}"):
            django_recs.record_many([(alice.pk, (Article, live.pk + 99))])
        with pytest.raises(InvalidRows, match=r"testapp.Page is not in DJANGO_RECS"):
            django_recs.record_many([(alice.pk, (Page, article.pk))])
    assert sorted(keys()) == sorted([
        ("page", str(article.pk)), ("page", str(live.pk)), ("page", str(article.pk)),
        ("asset", trailer.pk.hex), ("page", str(live.pk)), ("asset", trailer.pk.hex),
    ])


# --- deleting and forgetting ----------------------------------------------------------------


def store_results(item, other, user):
    """A neighbour pair, a recommendation explained by ``item`` and a popular row, as a run leaves them."""
    run = Run.objects.create(algorithm="similar", status="succeeded", is_active=True)
    ct = ContentType.objects.get_for_model(type(item)._meta.get_parent_list()[-1])
    a, b = str(item.pk), str(other.pk)
    SimilarItem.objects.create(run=run, item_type=ct, item_key=a, neighbour_type=ct,
                               neighbour_key=b, score=0.5, rank=0)
    Recommendation.objects.create(run=run, user=user, item_type=ct, item_key=b, score=1.0,
                                  rank=0, reason_type=ct, reason_key=a)
    PopularItem.objects.create(run=run, item_type=ct, item_key=a, score=3, rank=0)


@pytest.mark.parametrize("delete", [
    lambda article: article.delete(),
    lambda article: Page.objects.get(pk=article.pk).delete(),        # through the root
    lambda article: FrontPageArticle.objects.get(pk=article.pk).delete(),  # through a proxy
    lambda article: Article.objects.filter(pk=article.pk).delete(),  # a queryset delete
], ids=["article", "its page", "a proxy", "queryset"])
@pytest.mark.parametrize("model", [Article, LiveArticle])
def test_deleting_an_article_forgets_it_everywhere(alice, delete, model):
    article = model.objects.create(title="Election night")
    other = Article.objects.create(title="Budget")
    with override_settings(DJANGO_RECS=ARTICLES):
        django_recs.record(alice, article)
        django_recs.record(alice, other)
        store_results(article, other, alice)
        delete(article)
    assert keys() == [("page", str(other.pk))]
    assert not SimilarItem.objects.exists()
    assert list(Recommendation.objects.values_list("item_key", "reason_key")) == [
        (str(other.pk), "")]
    assert not PopularItem.objects.exists()


def test_deleting_a_uuid_child_forgets_it(alice):
    trailer, video = Trailer.objects.create(name="Teaser"), Video.objects.create(name="Cut")
    with override_settings(DJANGO_RECS=ARTICLES):
        django_recs.record(alice, trailer)
        django_recs.record(alice, video)
        trailer.delete()
    assert keys() == [("asset", video.pk.hex)]


def test_a_child_deleted_with_keep_parents_stays_an_item_of_a_listed_parent(alice):
    article = Article.objects.create(title="Budget")
    pk = article.pk
    with override_settings(DJANGO_RECS=PAGES_AND_ARTICLES):
        django_recs.record(alice, article)
        article.delete(keep_parents=True)  # no longer an article, still a page
        assert keys() == [("page", str(pk))]
        Page.objects.get(pk=pk).delete()
        assert keys() == []


def test_a_child_deleted_with_keep_parents_is_forgotten_when_only_it_is_listed(alice):
    article = Article.objects.create(title="Budget")
    with override_settings(DJANGO_RECS=ARTICLES):
        django_recs.record(alice, article)
        article.delete(keep_parents=True)  # the page is left, but it is no item
    assert keys() == []


def test_forget_user_removes_their_article_history(alice):
    article = LiveArticle.objects.create(title="Election night")
    other = Article.objects.create(title="Budget")
    with override_settings(DJANGO_RECS=ARTICLES):
        django_recs.record(alice, article)
        django_recs.record(alice, other, "read")
        store_results(article, other, alice)
        assert django_recs.forget_user(alice) == 2 + 1
    assert not Interaction.objects.exists() and not Recommendation.objects.exists()


# --- admin ----------------------------------------------------------------------------------


@pytest.mark.urls("tests.testapp.urls")
def test_admin_names_and_links_an_item_as_the_most_specific_listed_model(admin_client, alice):
    live = LiveArticle.objects.create(title="Election night")
    page = Page.objects.create(title="About us")
    with override_settings(DJANGO_RECS=PAGES_AND_ARTICLES):
        django_recs.record(alice, Page.objects.get(pk=live.pk))
        django_recs.record(alice, page)
        html = admin_client.get("/admin/django_recs/interaction/").content.decode()
    # Article is registered in the admin, Page is not: a name without a link.
    assert f'<a href="/admin/testapp/article/{live.pk}/change/">Election night</a>' in html
    assert "About us" in html and "(deleted)" not in html
