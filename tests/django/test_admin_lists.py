"""The admin of stored lists (the "lists" layout): each user's list, read-only, with names."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

import django_recs
from django_recs.models import Interaction, RecommendationList
from tests.pipeline import pipeline_fixtures
from tests.pipeline.pipeline_fixtures import interact
from tests.testapp.models import Product

shop = pipeline_fixtures.shop  # fixture

CHANGELIST = "admin:django_recs_recommendationlist_changelist"


def staff(username="manager"):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="django_recs", codename="view_recommendationlist"))
    client = Client()
    client.force_login(user)
    return client


def product_link(product):
    url = reverse("admin:testapp_product_change", args=[product.pk])
    return f'<a href="{url}">{product.name}</a>'


def entry_rows(page: str) -> list[list[str]]:
    """The cells of the entries table on a list's page."""
    table = re.search(r'<table class="recs-table recs-list">.*?<tbody>(.*?)</tbody>', page, re.S)
    return [re.findall(r"<td>(.*?)</td>", row, re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)]


def test_a_users_list_shows_every_entry_with_names_links_scores_and_reasons(shop):
    [run] = django_recs.recompute("similar", sync=True)
    user = shop.users[0]
    product_type = ContentType.objects.get_for_model(Product)
    stored = RecommendationList.objects.get(run=run, user=user, item_type=product_type)
    client = staff()
    page = client.get(reverse("admin:django_recs_recommendationlist_change", args=[stored.pk]))
    assert page.status_code == 200
    products = {str(p.pk): p for p in shop.products}
    rows = entry_rows(page.content.decode())
    assert len(rows) == stored.length == len(stored.entries) > 0
    for rank, (cells, (key, score, reason_type, reason_key)) in enumerate(
            zip(rows, stored.entries, strict=True)):
        assert cells[0] == str(rank)
        assert cells[1] == product_link(products[key])
        assert cells[2] == f"{score:.4f}"
        assert reason_type == product_type.pk  # ItemKNN names a product of the history
        assert cells[3] == product_link(products[reason_key])
    # user0 bought products 0-2 (not recommended again); their neighbours come first.
    assert rows[0][1] != product_link(shop.products[0])


def test_the_changelist_shows_the_active_runs_lists_with_their_first_items(shop):
    [old] = django_recs.recompute("similar", sync=True)
    [new] = django_recs.recompute("similar", sync=True)
    client = staff()
    content = client.get(reverse(CHANGELIST)).content.decode()
    lists = RecommendationList.objects.filter(run=new)
    assert content.count('class="field-length"') == lists.count() > 0
    assert f"similar #{new.pk}" in content and f"similar #{old.pk}<" not in content
    first = lists.filter(user=shop.users[0], item_type__model="product").get()
    key = first.entries[0][0]
    assert product_link(Product.objects.get(pk=key)) in content
    # Any kept run on request.
    every = client.get(reverse(CHANGELIST) + "?run=all").content.decode()
    assert every.count('class="field-length"') == RecommendationList.objects.count()
    # Searching by username finds that user's lists only.
    found = client.get(reverse(CHANGELIST) + "?q=user0").content.decode()
    assert found.count('class="field-length"') == lists.filter(user=shop.users[0]).count()


def test_names_are_resolved_without_a_query_per_list_or_entry(shop, django_assert_max_num_queries):
    django_recs.recompute("similar", sync=True)
    client = staff()
    with django_assert_max_num_queries(15) as small:
        client.get(reverse(CHANGELIST))
    Interaction.objects.bulk_create(
        [interact(user, product, "view") for user in shop.users for product in shop.products]
        + [interact(user, shop.gadgets[1], "view") for user in shop.users[:3]]
    )
    [run] = django_recs.recompute("similar", sync=True)
    assert RecommendationList.objects.filter(run=run).count() > 8
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get(reverse(CHANGELIST))
    assert "gadget" in page.content.decode()
    stored = RecommendationList.objects.filter(run=run).order_by("-length").first()
    url = reverse("admin:django_recs_recommendationlist_change", args=[stored.pk])
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200


def test_an_item_gone_from_the_catalog_is_shown_by_its_key(shop):
    [run] = django_recs.recompute("similar", sync=True)
    stored = RecommendationList.objects.filter(run=run, item_type__model="product").first()
    # A row deleted behind the ORM's back (raw SQL, a bulk import): its entry stays stored.
    RecommendationList.objects.filter(pk=stored.pk).update(
        items=stored.items.replace("[", '[["999999",0.5],', 1), length=stored.length + 1)
    page = staff().get(reverse("admin:django_recs_recommendationlist_change", args=[stored.pk]))
    rows = entry_rows(page.content.decode())
    assert rows[0] == ["0", "<i>999999 (deleted)</i>", "0.5000", "-"]
    assert len(rows) == stored.length + 1


def test_stored_lists_are_read_only(shop):
    [run] = django_recs.recompute("similar", sync=True)
    stored = RecommendationList.objects.filter(run=run).first()
    client = staff()
    assert client.get(reverse("admin:django_recs_recommendationlist_add")).status_code == 403
    url = reverse("admin:django_recs_recommendationlist_change", args=[stored.pk])
    assert client.post(url, {"items": "[]", "length": 0}).status_code == 403
    delete = reverse("admin:django_recs_recommendationlist_delete", args=[stored.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    stored.refresh_from_db()
    assert stored.length > 0
