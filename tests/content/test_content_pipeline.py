"""Content-based and hybrid runs on the configured database (SQLite by default,
PostgreSQL with DATABASE_URL): runs cover items nobody bought, a new item gets
neighbours through the on-commit task, serving and its fallback chain."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import default_storage
from django.template import Context, Template

import django_recs
from django_recs.content.updates import update_content_neighbours
from django_recs.models import Interaction, SimilarItem
from tests.content import numpy_kernels
from tests.content_shop.models import Book, Brand, Tag

kernels_or_numpy = numpy_kernels.kernels_or_numpy  # autouse fixture

RECS = {
    "ITEM_MODELS": ["testapp.Product", "content_shop.Book"],
    "EVENTS": {"view": 1.0, "purchase": 5.0},
    "ALGORITHMS": {
        "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 5},
        "content": {"class": "django_recs.algorithms.ContentKNN", "k": 5},
        "hybrid": {"class": "django_recs.algorithms.Hybrid", "k": 5, "shrink": 2.0},
        "popular": {"class": "django_recs.algorithms.Popular"},
    },
    "ITEM_FEATURES": {
        "content_shop.Book": {
            "text": {"title": 2.0, "description": 1.0},
            "categorical": {"brand": 1.0, "tags": 0.5},
        },
    },
    "NUM_THREADS": 1,
    "RECOMMENDATIONS_PER_USER": 5,
}


class Bookshop:
    """Python books bought together, baking books bought together, two books nobody bought."""

    def __init__(self):
        oreilly, packt, penguin = (Brand.objects.create(name=n)
                                   for n in ("O'Reilly", "Packt", "Penguin"))
        self.tags = {n: Tag.objects.create(name=n) for n in ("programming", "web", "cooking")}
        self.brands = {"oreilly": oreilly, "packt": packt, "penguin": penguin}

        def book(title, description, brand, *tags):
            created = Book.objects.create(title=title, description=description, brand=brand)
            created.tags.set([self.tags[t] for t in tags])
            return created

        self.cookbook = book("Python Cookbook", "recipes for python programmers", oreilly,
                             "programming")
        self.fluent = book("Fluent Python", "clear concise python programming", oreilly,
                           "programming")
        self.django = book("Learning Django", "web development with python and django", packt,
                           "programming", "web")  # nobody bought it
        self.bread = book("Bread Baking", "sourdough bread recipes", penguin, "cooking")
        self.vegan = book("The Vegan Baker", "vegan cakes and bread baking", penguin, "cooking")
        self.blank = book("", "", None)  # no features at all
        User = get_user_model()
        self.users = [User.objects.create(username=f"reader{i}") for i in range(6)]
        ct = ContentType.objects.get_for_model(Book)
        rows = []
        for user in self.users[:3]:
            rows += [(user, self.cookbook), (user, self.fluent)]
        for user in self.users[3:]:
            rows += [(user, self.bread), (user, self.vegan)]
        Interaction.objects.bulk_create([
            Interaction(user=user, item_type=ct, item_key=str(item.pk), event="purchase",
                        weight=5.0)
            for user, item in rows
        ])


@pytest.fixture
def shop(db, settings):
    settings.DJANGO_RECS = RECS
    return Bookshop()


def stored_neighbours(algorithm, book):
    return list(
        SimilarItem.objects.active(algorithm)
        .filter(item_key=str(book.pk), item_type=ContentType.objects.get_for_model(Book))
        .order_by("rank").values_list("neighbour_key", flat=True)
    )


def titles(items):
    return [item.title for item in items]


def test_content_run_gives_neighbours_to_items_nobody_bought(shop):
    [run] = django_recs.recompute("content", sync=True)
    assert run.status == "succeeded", run.error
    # Learning Django has no interactions, yet shares words, a tag and the python theme.
    neighbours = stored_neighbours("content", shop.django)
    assert neighbours[:2] and set(neighbours[:2]) <= {str(shop.cookbook.pk), str(shop.fluent.pk)}
    assert stored_neighbours("content", shop.bread)[0] == str(shop.vegan.pk)
    assert stored_neighbours("content", shop.blank) == []
    assert run.metrics["items_without_features"] == 1
    assert run.metrics["items"] == 6  # every book, not only the four with interactions
    assert default_storage.exists(run.artifacts["item_features"])
    assert titles(django_recs.similar_to(shop.django, 2, algorithm="content")) in (
        ["Python Cookbook", "Fluent Python"], ["Fluent Python", "Python Cookbook"])


def test_hybrid_run_blends_and_serves_through_similar_to_and_the_tag(shop):
    [run] = django_recs.recompute("hybrid", sync=True)
    assert run.status == "succeeded", run.error
    assert run.metrics["items_without_interactions"] == 2  # Learning Django and the blank one
    assert stored_neighbours("hybrid", shop.django)  # pure content for the unbought book
    items = django_recs.similar_to(shop.bread, 3, algorithm="hybrid")
    assert titles(items)[0] == "The Vegan Baker"
    assert items[0].recs_source == "similar" and items[0].recs_score > 0
    rendered = Template(
        "{% load recs %}{% similar_items book 1 'hybrid' as items %}"
        "{% for b in items %}{{ b.title }}{% endfor %}"
    ).render(Context({"book": shop.bread}))
    assert rendered == "The Vegan Baker"


def test_a_new_item_gets_content_neighbours_when_its_transaction_commits(
    shop, django_capture_on_commit_callbacks
):
    django_recs.recompute("content", "hybrid", sync=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        new = Book.objects.create(title="Django for APIs", description="build web apis with python",
                                  brand=shop.brands["packt"])
        new.tags.add(shop.tags["web"])
    assert len(callbacks) == 2  # the save, then the tag
    for algorithm in ("content", "hybrid"):
        neighbours = stored_neighbours(algorithm, new)
        assert neighbours[0] == str(shop.django.pk), algorithm  # "django", Packt, web, python
        assert str(new.pk) not in neighbours
    assert titles(django_recs.similar_to(new, 1, algorithm="content")) == ["Learning Django"]


def test_the_on_commit_task_scores_like_a_full_run(shop, django_capture_on_commit_callbacks):
    django_recs.recompute("content", sync=True)
    before = stored_neighbours("content", shop.django)
    SimilarItem.objects.filter(item_key=str(shop.django.pk)).delete()
    with django_capture_on_commit_callbacks(execute=True):
        shop.django.save()
    assert stored_neighbours("content", shop.django) == before


def test_edits_change_content_rows_but_not_blended_rows_of_bought_items(
    shop, django_capture_on_commit_callbacks
):
    django_recs.recompute("content", "hybrid", sync=True)
    hybrid_before = stored_neighbours("hybrid", shop.bread)
    with django_capture_on_commit_callbacks(execute=True):
        shop.bread.title = "Python bread"
        shop.bread.description = "python programming recipes"
        shop.bread.brand = shop.brands["oreilly"]
        shop.bread.save()
    assert stored_neighbours("content", shop.bread)[0] in {str(shop.cookbook.pk),
                                                            str(shop.fluent.pk)}
    assert stored_neighbours("hybrid", shop.bread) == hybrid_before  # it has interactions


def test_task_does_nothing_without_an_active_run_or_for_a_deleted_item(
    shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        book = Book.objects.create(title="Orphan", description="no run yet")
    assert len(callbacks) == 1 and SimilarItem.objects.count() == 0
    assert update_content_neighbours("content_shop.Book", book.pk) == {}
    django_recs.recompute("content", sync=True)
    pk = book.pk
    book.delete()
    assert update_content_neighbours("content_shop.Book", pk) == {}
    assert update_content_neighbours("content_shop.Nope", 1) == {}
    written = update_content_neighbours("content_shop.Book", str(shop.cookbook.pk))
    assert written == {"content": len(stored_neighbours("content", shop.cookbook))}


def test_nothing_is_enqueued_without_a_content_algorithm(db, settings,
                                                         django_capture_on_commit_callbacks):
    settings.DJANGO_RECS = {**RECS, "ALGORITHMS": {
        "similar": {"class": "django_recs.algorithms.ItemKNN"}}}
    with django_capture_on_commit_callbacks() as callbacks:
        Book.objects.create(title="Quiet")
    assert callbacks == []
    settings.DJANGO_RECS = {**RECS, "ITEM_FEATURES": {}}
    with django_capture_on_commit_callbacks() as callbacks:
        Book.objects.create(title="Quiet")
    assert callbacks == []


def test_fallback_chain_serves_content_neighbours_before_popular_items(shop, settings):
    django_recs.recompute("similar", "content", "popular", sync=True)
    # ItemKNN has nothing for the unbought book: content neighbours fill in first.
    items = list(django_recs.similar_to(shop.django, 4))
    sources = [item.recs_source for item in items]
    assert sources[:2] == ["content", "content"], sources
    assert set(titles(items[:2])) == {"Python Cookbook", "Fluent Python"}
    assert "popular" in sources[2:]
    settings.DJANGO_RECS = {**RECS, "CONTENT_FALLBACK": False}
    assert "content" not in [item.recs_source for item in django_recs.similar_to(shop.django, 4)]


def test_recent_history_is_extended_with_content_neighbours(shop):
    django_recs.recompute("similar", "content", "popular", sync=True)
    ct = ContentType.objects.get_for_model(Book)
    Interaction.objects.create(session_key="visitor-1", item_type=ct,
                               item_key=str(shop.django.pk), event="view", weight=1.0)
    items = list(django_recs.recommended_for(None, 3, session_key="visitor-1",
                                             model="content_shop.Book"))
    by_source = {item.title: item.recs_source for item in items}
    assert by_source.get("Python Cookbook") == "history_content"
    assert next(i for i in items if i.title == "Python Cookbook").recs_reason == shop.django
