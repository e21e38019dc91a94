"""Content similarity of inheritance models, over the items the shop shows only.

A news site's ``Article(Page)`` is described by its title (a Page column)
and body (an Article column). Its ITEM_QUERYSETS entry — or, for a child
without one, its parent's — is the rule of what the site shows: a draft
has no features, is nobody's content neighbour, and gets its own neighbours
on the save that publishes it, not on the save of the draft.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

import django_recs
from django_recs.content.updates import update_content_neighbours
from django_recs.models import SimilarItem
from tests.content import numpy_kernels
from tests.testapp.models import Article, LiveArticle, Page

kernels_or_numpy = numpy_kernels.kernels_or_numpy  # autouse fixture

FEATURES = {"testapp.Article": {"text": {"title": 2.0, "body": 1.0}}}
NEWS = {
    "ITEM_MODELS": ["testapp.Article"],
    "EVENTS": {"view": 1.0},
    "ALGORITHMS": {"content": {"class": "django_recs.algorithms.ContentKNN", "k": 5}},
    "ITEM_FEATURES": FEATURES,
    "ITEM_QUERYSETS": {"testapp.Article": "tests.testapp.queries.published_articles"},
    "NUM_THREADS": 1,
}
#: The rule is Page's; Article, listed with it, follows it.
PAGE_RULE = {**NEWS, "ITEM_MODELS": ["testapp.Page", "testapp.Article"],
             "ITEM_QUERYSETS": {"testapp.Page": "tests.testapp.queries.published_pages"}}


@pytest.fixture
def newsroom(db):
    """Two python articles and two bread ones, published; a python draft; a plain page."""
    def article(title, body, model=Article, published=True):
        return model.objects.create(title=title, body=body, published=published)

    return {
        "web": article("Python web frameworks", "django and flask for python"),
        "tips": article("Python tips", "python idioms and tips", model=LiveArticle),
        "bread": article("Bread baking", "sourdough bread at home"),
        "sourdough": article("Sourdough starter", "bread baking with a starter"),
        "draft": article("Python secrets", "python django idioms unpublished", published=False),
        "page": Page.objects.create(title="Python about us"),
    }


def neighbours(item) -> list[str]:
    rows = SimilarItem.objects.active("content").filter(item_key=str(item.pk)).order_by("rank")
    return list(rows.values_list("neighbour_key", flat=True))


def named(newsroom, keys) -> set[str]:
    by_key = {str(item.pk): name for name, item in newsroom.items()}
    return {by_key[key] for key in keys}


@pytest.mark.parametrize("setting", [NEWS, PAGE_RULE], ids=["own rule", "parent's rule"])
def test_a_content_run_covers_the_published_items_only(newsroom, setting):
    with override_settings(DJANGO_RECS=setting):
        [run] = django_recs.recompute("content", sync=True)
        assert run.status == "succeeded", run.error
        assert run.metrics["items"] == 4  # not the draft, not the plain page
        assert neighbours(newsroom["draft"]) == []
        named_anywhere = set(SimilarItem.objects.values_list("neighbour_key", flat=True))
        assert str(newsroom["draft"].pk) not in named_anywhere
        assert named(newsroom, neighbours(newsroom["web"])[:1]) == {"tips"}
        assert named(newsroom, neighbours(newsroom["bread"])[:1]) == {"sourdough"}
        listed = list(django_recs.similar_to(newsroom["web"], 3, algorithm="content"))
    assert [(type(obj), obj.title) for obj in listed][:1] == [(Article, "Python tips")]
    assert "Python secrets" not in [obj.title for obj in listed]


def test_a_draft_with_interactions_gets_no_features(newsroom):
    reader = User.objects.create(username="editor")
    with override_settings(DJANGO_RECS=NEWS):
        django_recs.record(reader, newsroom["draft"])  # an editor previewed it
        [run] = django_recs.recompute("content", sync=True)
    assert run.metrics["items"] == 5 and run.metrics["items_without_features"] == 1
    assert neighbours(newsroom["draft"]) == []
    assert str(newsroom["draft"].pk) not in set(
        SimilarItem.objects.values_list("neighbour_key", flat=True))


@pytest.mark.parametrize("setting", [NEWS, PAGE_RULE], ids=["own rule", "parent's rule"])
def test_an_article_gets_neighbours_when_it_is_published(newsroom, setting,
                                                         django_capture_on_commit_callbacks):
    with override_settings(DJANGO_RECS=setting):
        django_recs.recompute("content", sync=True)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            scoop = LiveArticle.objects.create(title="Python scoop", body="python django news",
                                               published=False)
        assert len(callbacks) == 1  # the task ran, and computed nothing for a draft
        assert neighbours(scoop) == []
        assert update_content_neighbours("testapp.LiveArticle", scoop.pk) == {}
        with django_capture_on_commit_callbacks(execute=True):
            scoop.published = True
            scoop.save()
        assert named(newsroom, neighbours(scoop)[:2]) == {"web", "tips"}
        # Saved through its Page, the same item is updated the same way.
        assert update_content_neighbours("testapp.Page", scoop.pk) == {
            "content": len(neighbours(scoop))}


def test_in_a_family_each_item_is_described_by_its_most_specific_featured_model(db):
    alpha = Article.objects.create(title="Alpha", body="python django")
    beta = Article.objects.create(title="Beta", body="python django")
    about = Page.objects.create(title="Alpha Beta")  # shares its words with the titles only
    setting = {**NEWS, "ITEM_MODELS": ["testapp.Page", "testapp.Article"], "ITEM_QUERYSETS": {},
               "ITEM_FEATURES": {"testapp.Page": {"text": {"title": 1.0}}, **FEATURES}}
    with override_settings(DJANGO_RECS=setting):
        [run] = django_recs.recompute("content", sync=True)
        assert run.status == "succeeded", run.error
        assert run.metrics["items"] == 3  # each item once, though Page lists the articles too
        # The articles by Article's entry, the page by Page's: never neighbours of each other.
        assert neighbours(alpha) == [str(beta.pk)]
        assert neighbours(about) == []
        stored = neighbours(alpha)
        # Saved as a Page, the article is still described as an Article.
        assert update_content_neighbours("testapp.Page", alpha.pk) == {"content": 1}
        assert neighbours(alpha) == stored
