"""Categories stored by the popular run: text the database agrees on, ranks within each."""

from __future__ import annotations

import numpy as np
import pytest

import django_recs
from django_recs.categories import catalog_categories, ranks_within
from django_recs.models import PopularItem
from django_recs.storage.read import ItemCatalog
from tests.testapp.models import Category, Product

from . import pipeline_fixtures

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
