"""Categories stored by the popular run: text the database agrees on, ranks within each."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.template import Context, Template
from django.test import override_settings

import django_recs
from django_recs.categories import (
    _usable_lookup,
    catalog_categories,
    category_lookup,
    ranks_within,
)
from django_recs.checks import check_categories
from django_recs.models import PopularItem
from django_recs.storage.read import ItemCatalog
from tests.content_shop.models import Book, Tag
from tests.pipeline import pipeline_fixtures
from tests.testapp.models import Category, Product

shop = pipeline_fixtures.shop  # fixture


def test_ranks_within_counts_each_category_in_list_order():
    categories = np.array(["b", "a", None, "b", "a", "b", ""], dtype=object)
    np.testing.assert_array_equal(ranks_within(categories), [0, 0, -1, 1, 1, 2, 0])
    np.testing.assert_array_equal(ranks_within(np.array([None, None], dtype=object)), [-1, -1])
    assert len(ranks_within(np.array([], dtype=object))) == 0


def test_catalog_categories_follow_the_category_setting(db, settings):
    shoes, hats = Category.objects.create(name="shoes"), Category.objects.create(name="hats")
    a = Product.objects.create(name="a", category=shoes)
    b = Product.objects.create(name="b")
    c = Product.objects.create(name="c", category=hats)
    from django_recs.items import item_content_type

    ct = item_content_type(Product).pk
    catalog = ItemCatalog(np.array([ct, ct, ct, 999]),
                          np.array([str(a.pk), str(b.pk), str(c.pk), "x"]))
    settings.DJANGO_RECS = {"ITEM_MODELS": ["testapp.Product"]}
    assert catalog_categories(catalog, using="default") is None
    settings.DJANGO_RECS = {"ITEM_MODELS": ["testapp.Product"],
                            "CATEGORY": {"testapp.Product": "category"}}
    assert catalog_categories(catalog, using="default").tolist() == [
        str(shoes.pk), None, str(hats.pk), None]


def test_the_popular_run_stores_each_item_s_category_and_rank_there(shop, settings):
    settings.DJANGO_RECS = {**pipeline_fixtures.RECS, "CATEGORY": {"testapp.Product": "category"}}
    shoes, hats = Category.objects.create(name="shoes"), Category.objects.create(name="hats")
    for i, product in enumerate(shop.products):
        product.category = (shoes, hats, None)[i % 3]
        product.save()
    [run] = django_recs.recompute("popular", sync=True)
    assert run.status == "succeeded"
    rows = list(PopularItem.objects.filter(run=run).order_by("rank")
                .values_list("item_key", "category", "category_rank"))
    assert rows
    expected_category = {str(p.pk): (None if p.category_id is None else str(p.category_id))
                         for p in shop.products}
    seen: dict[str | None, int] = {}
    for key, category, category_rank in rows:
        if key in expected_category:  # a product (gadgets have no category)
            assert category == expected_category[key]
        if category is None:
            assert category_rank is None
        else:
            assert category_rank == seen.get(category, 0)
            seen[category] = category_rank + 1
    assert set(seen) >= {str(shoes.pk)}


def test_without_a_category_setting_the_popular_run_stores_none(shop, settings):
    settings.DJANGO_RECS = pipeline_fixtures.RECS
    [run] = django_recs.recompute("popular", sync=True)
    assert run.status == "succeeded"
    assert PopularItem.objects.filter(run=run).exists()
    assert not PopularItem.objects.filter(run=run, category__isnull=False).exists()
    assert not PopularItem.objects.filter(run=run, category_rank__isnull=False).exists()


@pytest.mark.parametrize("category_path", ["category", "category__name"])
def test_an_item_without_neighbours_is_served_its_category_from_the_run(shop, settings,
                                                                         category_path):
    settings.DJANGO_RECS = {**pipeline_fixtures.RECS,
                            "CATEGORY": {"testapp.Product": category_path.replace("__", ".")}}
    shoes, hats = Category.objects.create(name="shoes"), Category.objects.create(name="hats")
    for i, product in enumerate(shop.products):
        product.category = (shoes, hats)[i % 2]
        product.save()
    [run] = django_recs.recompute("popular", sync=True)
    lonely = Product.objects.create(name="new", category=hats)
    items = list(django_recs.similar_to(lonely, 3))
    hat_keys = {p.pk for p in shop.products if p.category_id == hats.pk}
    category_items = [item for item in items if item.recs_source == "category"]
    assert category_items and {item.pk for item in category_items} <= hat_keys
    popular_hats = [int(key) for key in PopularItem.objects.filter(
        run=run, category__isnull=False, item_key__in=[str(k) for k in hat_keys]
    ).order_by("category_rank").values_list("item_key", flat=True)]
    assert [item.pk for item in category_items] == popular_hats[:len(category_items)]


# --- The CATEGORY setting's checks: one category per item ----------------------------------

ITEMS = ["testapp.Product", "testapp.Gadget", "content_shop.Book"]

BROKEN_CATEGORIES = [
    ({"content_shop.Book": "tags"}, "E066",
     "'tags' on content_shop.Book goes through 'tags', a many-to-many relation: an item may "
     "have several categories that way, while django_recs keeps one per item, so "
     "content_shop.Book is served without categories",
     'e.g. a "main category" ForeignKey: "CATEGORY": {"content_shop.Book": "main_category"}'),
    ({"testapp.Product": "orderline.order"}, "E066",
     "goes through 'orderline', a reverse relation", '"main category" ForeignKey'),
    ({"content_shop.Book": "brand.book"}, "E066", "goes through 'book', a reverse relation",
     "main_category"),
    ({"testapp.Product": "categry"}, "E065",
     "'categry' does not resolve on testapp.Product: 'categry' of testapp.Product is not a "
     "field", "Did you mean 'category'? CATEGORY is read in SQL"),
    ({"testapp.Product": "category.title"}, "E065", "'title' of testapp.Category is not a field",
     "Fields of testapp.Category: id, name"),
    ({"testapp.Product": "objects"}, "E065", "is an attribute, not a database field",
     "each step is a field"),
    ({"testapp.Product": "name.upper"}, "E065", "goes on past 'name', which is not a relation",
     "Only the last step"),
    ({"testapp.Product": 3}, "E065", "3 is not a dotted path of fields", "brand.category"),
    ({"testapp.NotAnItem": "name"}, "E064", "testapp.NotAnItem is not in "
     "DJANGO_RECS['ITEM_MODELS']", 'Add "testapp.NotAnItem" to ITEM_MODELS'),
    ({"shop.Nope": "category"}, "E064", "names 'shop.Nope', which is not an installed model",
     "app_label.ModelName"),
    ("category", "E064", "DJANGO_RECS['CATEGORY'] must be a dict", '"CATEGORY": {"shop.Product"'),
]


def with_category(category, **extra):
    return override_settings(DJANGO_RECS={"ITEM_MODELS": ITEMS, "CATEGORY": category, **extra})


@pytest.mark.parametrize(("category", "code", "message", "hint"), BROKEN_CATEGORIES,
                         ids=[b[1] + " " + str(b[0]) for b in BROKEN_CATEGORIES])
def test_checks_report_category_paths_that_cannot_give_one_category(category, code, message,
                                                                    hint):
    with with_category(category):
        [error] = check_categories()
    assert error.id == f"django_recs.{code}"
    assert message in error.msg
    assert hint in error.hint


@pytest.mark.parametrize("category", [
    {}, None, {"testapp.Product": "category"}, {"testapp.Product": "category.name"},
    {"testapp.Product": "category__pk"}, {"content_shop.Book": "brand.country"},
    {"testapp.Product": None},
])
def test_checks_pass_to_one_category_paths(category):
    with with_category(category):
        assert check_categories() == []


def test_manage_py_check_refuses_a_to_many_category():
    with with_category({"content_shop.Book": "tags"}), \
            pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "(django_recs.E066) DJANGO_RECS['CATEGORY']['content_shop.Book']" in str(raised.value)
    assert 'HINT: Use a path that gives each item one category' in str(raised.value)


def test_category_lookup_never_hands_sql_a_path_that_is_not_to_one(caplog):
    _usable_lookup.cache_clear()  # the warning is logged once per process
    with with_category({"content_shop.Book": "tags", "testapp.Product": "category.name"}), \
            caplog.at_level(logging.WARNING, logger="django_recs.categories"):
        assert category_lookup(Product) == "category__name"
        assert category_lookup(Book) is None
        assert category_lookup(Book) is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # once, not on every list
    assert warnings[0].startswith("django_recs: CATEGORY of content_shop.Book is not used: "
                                  "'tags' on content_shop.Book goes through 'tags'")
    assert "django_recs.E066" in warnings[0]


# --- A product page when CATEGORY is to-many (the check silenced) ---------------------------

PAGE = Template("{% load recs %}{% similar_items book 3 as items %}"
                "{% for b in items %}{{ b.title }}:{{ b.recs_source }} {% endfor %}")


@pytest.fixture
def books_in_two_categories(db, settings):
    """Books tagged 'novels', one also 'poetry'; CATEGORY names the tags (to-many)."""
    settings.SILENCED_SYSTEM_CHECKS = ["django_recs.E066"]
    settings.DJANGO_RECS = {
        "ITEM_MODELS": ["content_shop.Book"], "NUM_THREADS": 1,
        "CATEGORY": {"content_shop.Book": "tags"}, "MAX_PER_CATEGORY": 2,
        "ALGORITHMS": {"similar": {"class": "django_recs.algorithms.ItemKNN", "k": 5},
                       "popular": {"class": "django_recs.algorithms.Popular"}},
    }
    novels, poetry = Tag.objects.create(name="novels"), Tag.objects.create(name="poetry")
    books = [Book.objects.create(title=f"book{i}") for i in range(5)]
    for book in books:
        book.tags.add(novels)
    reader = User.objects.create(username="reader")
    for book in books[1:]:
        django_recs.record(reader, book, "view")
    [run] = django_recs.recompute("popular", sync=True)
    assert run.status == "succeeded"
    book = Book.objects.create(title="new, in two categories")
    book.tags.add(novels, poetry)
    return book


def assert_page_served_without_categories(book):
    page = PAGE.render(Context({"book": book}))
    assert page.split() == ["book1:popular", "book2:popular", "book3:popular"]
    items = list(django_recs.similar_to(book, 4, queryset=Book.objects.filter(in_stock=True)))
    assert [item.recs_source for item in items] == ["popular"] * 4
    reader = User.objects.get(username="reader")
    assert len(django_recs.recommended_for(reader, 3, algorithm="similar")) <= 3
    assert not PopularItem.objects.filter(category__isnull=False).exists()


def test_a_to_many_category_serves_a_product_page_without_categories(books_in_two_categories):
    # Before: SQLite silently took one of the book's tags as its category.
    assert_page_served_without_categories(books_in_two_categories)


@pytest.mark.postgres
def test_a_to_many_category_never_fails_a_product_page_on_postgresql(books_in_two_categories):
    # Before: ProgrammingError "more than one row returned by a subquery used as an expression".
    assert_page_served_without_categories(books_in_two_categories)
