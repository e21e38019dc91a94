"""Clicks: a link's token, followed by the visitor it was shown to, counts once."""

from __future__ import annotations

import datetime
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone

from django_recs.feedback import flush_impressions
from django_recs.feedback.clicks import CLICK_PARAMETER
from django_recs.feedback.ids import smallest_id_at
from django_recs.feedback.tokens import make_token
from django_recs.items import item_content_type
from django_recs.models import Click, Impression, Interaction
from tests.feedback.conftest import FEEDBACK
from tests.serving.serving_data import store_neighbours
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_recs.feedback.middleware.ClickMiddleware",
]
SHOP = {"DJANGO_RECS": FEEDBACK, "ROOT_URLCONF": "tests.feedback.shop_urls",
        "MIDDLEWARE": MIDDLEWARE}


@pytest.fixture
def products():
    items = [Product.objects.create(name=f"p{i}") for i in range(5)]
    store_neighbours(items[0], [(items[1], 0.9), (items[2], 0.8), (items[3], 0.7)])
    item_content_type(Product)
    return items


@pytest.fixture
def customer():
    return User.objects.create_user("customer", password="x")


def browser(user=None) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER)
    if user is not None:
        client.force_login(user)
    return client


def links(client: Client, product) -> list[str]:
    """The item links of the product page's logged list."""
    page = client.get(f"/products/{product.pk}/").content.decode()
    return [href.replace("&amp;", "&") for href in re.findall(r"href='([^']+)'", page)]


def token_of(link: str) -> str:
    return link.split(f"{CLICK_PARAMETER}=")[1]


@override_settings(**SHOP)
def test_following_a_link_records_the_click_and_a_click_interaction(products, customer):
    client = browser(customer)
    first = links(client, products[0])[1]
    assert client.get(first).status_code == 200
    click = Click.objects.get()
    impression = Impression.objects.get(source_key=str(products[0].pk))
    assert (click.impression_id, click.position) == (impression.id, 1)
    assert (click.item_key, click.user_id) == (str(products[2].pk), customer.pk)
    interaction = Interaction.objects.get(event="click")
    assert (interaction.user_id, interaction.item_key, interaction.weight) == (
        customer.pk, str(products[2].pk), 0.5)


@override_settings(**SHOP)
def test_a_replayed_link_counts_once(products, customer):
    client = browser(customer)
    link = links(client, products[0])[0]
    for _ in range(3):
        assert client.get(link).status_code == 200
    assert Click.objects.count() == 1
    assert Interaction.objects.filter(event="click").count() == 1


@override_settings(**SHOP)
def test_an_anonymous_visitors_click_is_recorded_under_their_session(products):
    client = browser()
    link = links(client, products[0])[0]
    client.get(link)
    click = Click.objects.get()
    assert click.user_id is None
    assert click.session_key == client.session.session_key


@override_settings(**SHOP)
def test_another_visitors_token_is_not_counted(products, customer):
    link = links(browser(customer), products[0])[0]
    stranger = browser(User.objects.create_user("stranger"))
    assert stranger.get(link).status_code == 200
    assert browser().get(link).status_code == 200  # anonymous, another session
    assert not Click.objects.exists()


@override_settings(**SHOP)
def test_bots_and_prefetches_are_not_counted(products, customer):
    client = browser(customer)
    link = links(client, products[0])[0]
    client.get(link, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Googlebot/2.1)")
    client.get(link, HTTP_SEC_PURPOSE="prefetch;prerender")
    assert not Click.objects.exists()
    client.get(link)
    assert Click.objects.count() == 1


@pytest.mark.parametrize("change", [
    lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
    lambda token: token[:10],
    lambda token: "garbage",
    lambda token: "",
    lambda token: "%00%ff" * 10,
])
@override_settings(**SHOP)
def test_a_tampered_or_malformed_token_records_nothing_and_the_page_renders(
        products, customer, change):
    client = browser(customer)
    link = links(client, products[0])[0]
    path, token = link.split(f"{CLICK_PARAMETER}=")
    response = client.get(path + f"{CLICK_PARAMETER}=" + change(token))
    assert response.status_code == 200 and b"<h1>" in response.content
    assert not Click.objects.exists()


@override_settings(**SHOP)
def test_an_expired_token_records_nothing(products, customer):
    client = browser(customer)
    links(client, products[0])  # the session and login as on a real visit
    from django_recs.feedback.visitors import binding
    from django_recs.serving.visitors import Visitor

    old = smallest_id_at(timezone.now() - datetime.timedelta(days=7, minutes=1))
    token = make_token(old, 0, item_content_type(Product).pk, str(products[1].pk),
                       binding(Visitor(user_id=customer.pk)))
    assert client.get(f"/products/{products[1].pk}/?{CLICK_PARAMETER}={token}").status_code == 200
    assert not Click.objects.exists()
    fresh = make_token(smallest_id_at(timezone.now() - datetime.timedelta(days=6)), 0,
                       item_content_type(Product).pk, str(products[1].pk),
                       binding(Visitor(user_id=customer.pk)))
    client.get(f"/products/{products[1].pk}/?{CLICK_PARAMETER}={fresh}")
    assert Click.objects.count() == 1


@override_settings(**SHOP)
def test_a_link_to_an_item_deleted_since_records_nothing(products, customer):
    client = browser(customer)
    link = links(client, products[0])[0]
    products[1].delete()
    assert client.get(link).status_code == 404
    assert not Click.objects.exists()


@override_settings(**SHOP)
def test_the_beacon_records_a_posted_token_and_always_answers_204(products, customer):
    client = browser(customer)
    token = token_of(links(client, products[0])[2])
    assert client.post("/recs/click/", {"token": "forged"}).status_code == 204
    assert client.post("/recs/click/", {}).status_code == 204
    assert not Click.objects.exists()
    assert client.post("/recs/click/", {"token": token}).status_code == 204
    assert Click.objects.get().position == 2
    assert client.get("/recs/click/").status_code == 405


@override_settings(**SHOP)
def test_the_beacon_needs_no_csrf_token(products, customer):
    client = Client(HTTP_USER_AGENT=BROWSER, enforce_csrf_checks=True)
    client.force_login(customer)
    token = token_of(links(client, products[0])[0])
    assert client.post("/recs/click/", {"token": token}).status_code == 204
    assert Click.objects.count() == 1


@override_settings(**SHOP)
def test_a_click_on_a_list_shown_to_nobody_known_gives_the_visitor_a_session(products):
    flush_impressions()
    impression = smallest_id_at(timezone.now())
    token = make_token(impression, 0, item_content_type(Product).pk, str(products[1].pk), b"")
    client = browser()
    assert client.post("/recs/click/", {"token": token}).status_code == 204
    click = Click.objects.get()
    assert click.session_key and click.session_key == client.cookies["sessionid"].value


@override_settings(**{**SHOP, "DJANGO_RECS": {**FEEDBACK, "CLICK_EVENT": None}})
def test_with_click_event_none_a_click_is_no_interaction(products, customer):
    client = browser(customer)
    client.get(links(client, products[0])[0])
    assert Click.objects.count() == 1
    assert not Interaction.objects.filter(event="click").exists()


@override_settings(**SHOP)
def test_with_impressions_turned_off_links_record_nothing(products, customer):
    client = browser(customer)
    link = links(client, products[0])[0]
    with override_settings(DJANGO_RECS={**FEEDBACK, "IMPRESSIONS": False}):
        assert client.get(link).status_code == 200
    assert not Click.objects.exists()


@override_settings(**SHOP)
def test_a_database_error_while_recording_never_errors_the_page(products, customer,
                                                               monkeypatch, caplog):
    client = browser(customer)
    link = links(client, products[0])[0]

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("django_recs.feedback.clicks.insert_interaction", broken)
    assert client.get(link).status_code == 200
    assert not Click.objects.exists()  # the click and its interaction: both or neither
    assert "could not be recorded" in caplog.text
