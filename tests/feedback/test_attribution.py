"""Attribution: a purchase goes to the last click of the same visitor on the same item in the window."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

import django_recs
from django_recs.feedback import roll_up
from django_recs.models import Click, Conversion, DailyFeedback, Interaction
from tests.feedback.conftest import FEEDBACK
from tests.feedback.feedback_data import bought, clicked, later, shown
from tests.feedback.test_clicks import SHOP, browser, links
from tests.serving.serving_data import store_neighbours
from tests.testapp.models import Order, OrderLine, Product

pytestmark = pytest.mark.django_db

WEEK = datetime.timedelta(days=7)


@pytest.fixture
def products():
    return [Product.objects.create(name=f"p{i}", price=Decimal(f"{i + 1}.50")) for i in range(4)]


@pytest.fixture
def alice():
    return User.objects.create_user("alice")


def attributed() -> dict[int, int]:
    """interaction id -> click id of every conversion."""
    return dict(Conversion.objects.values_list("interaction_id", "click_id"))


@pytest.mark.parametrize("after, counts", [
    (datetime.timedelta(0), True),
    (datetime.timedelta(seconds=1), True),
    (WEEK, True),
    (WEEK + datetime.timedelta(microseconds=1), False),
    (-datetime.timedelta(microseconds=1), False),
])
@override_settings(DJANGO_RECS=FEEDBACK)
def test_the_window_includes_both_ends(products, alice, after, counts):
    impression = shown(later(), products, user=alice)
    click = clicked(impression, 1, products[1], later(minutes=1), user=alice)
    purchase = bought(products[1], later(minutes=1) + after, user=alice)
    roll_up(settle=datetime.timedelta(0), now=later(days=30))
    assert attributed() == ({purchase.pk: click.pk} if counts else {})


@override_settings(DJANGO_RECS={**FEEDBACK, "ATTRIBUTION_WINDOW_DAYS": 2})
def test_the_window_is_the_setting(products, alice):
    impression = shown(later(), products, user=alice)
    clicked(impression, 0, products[0], later(), user=alice)
    inside = bought(products[0], later(days=2), user=alice)
    bought(products[0], later(days=2, seconds=1), user=alice)
    roll_up(settle=datetime.timedelta(0), now=later(days=30))
    assert list(attributed()) == [inside.pk]


@override_settings(DJANGO_RECS=FEEDBACK)
def test_the_last_click_before_the_purchase_wins(products, alice):
    home = shown(later(), products, user=alice, placement="home")
    page = shown(later(hours=1), products, user=alice, placement="product")
    clicked(home, 2, products[2], later(minutes=5), user=alice)
    last = clicked(page, 0, products[2], later(hours=2), user=alice)
    clicked(page, 1, products[2], later(hours=5), user=alice)  # after the purchase
    purchase = bought(products[2], later(hours=3), user=alice)
    roll_up(settle=datetime.timedelta(0), now=later(days=30))
    assert attributed() == {purchase.pk: last.pk}
    row = DailyFeedback.objects.get(placement="product")
    assert (row.clicks, row.conversions) == (2, 1)
    assert DailyFeedback.objects.get(placement="home").conversions == 0


@override_settings(DJANGO_RECS=FEEDBACK)
def test_only_the_same_visitor_and_item_count(products, alice):
    bob = User.objects.create_user("bob")
    impression = shown(later(), products, user=alice)
    clicked(impression, 0, products[0], later(minutes=1), user=alice)
    bought(products[0], later(hours=1), user=bob)                      # another visitor
    bought(products[1], later(hours=1), user=alice)                    # another item
    bought(products[0], later(hours=1), session_key="s" * 32)          # an anonymous session
    bought(products[0], later(hours=1), user=alice, event="cart")      # not a conversion event
    roll_up(settle=datetime.timedelta(0), now=later(days=30))
    assert attributed() == {}


@override_settings(DJANGO_RECS=FEEDBACK)
def test_an_anonymous_click_and_purchase_of_one_session(products):
    impression = shown(later(), products, session_key="s" * 32)
    click = clicked(impression, 3, products[3], later(minutes=1), session_key="s" * 32)
    purchase = bought(products[3], later(minutes=9), session_key="s" * 32, value=12.0)
    bought(products[3], later(minutes=9), session_key="t" * 32)
    roll_up(settle=datetime.timedelta(0), now=later(days=30))
    assert attributed() == {purchase.pk: click.pk}
    assert DailyFeedback.objects.get().revenue == 12.0


@override_settings(DJANGO_RECS={**FEEDBACK, "CONVERSION_EVENTS": ["purchase", "cart"]})
def test_every_conversion_event_counts_and_a_click_converts_once(products, alice):
    impression = shown(later(), products, user=alice)
    clicked(impression, 0, products[0], later(minutes=1), user=alice)
    bought(products[0], later(minutes=2), user=alice, event="cart")
    bought(products[0], later(minutes=3), user=alice, value=4.0)
    bought(products[0], later(days=1), user=alice, value=6.0)
    roll_up(settle=datetime.timedelta(0), now=later(days=30))
    row = DailyFeedback.objects.get()
    assert Conversion.objects.count() == 3
    assert (row.clicks, row.conversions, row.revenue) == (1, 1, 10.0)
    assert row.revenue_squares == 100.0  # one impression earned 10


MERGE_SETTINGS = {**SHOP, "DJANGO_RECS": {**FEEDBACK, "SOURCES": [{
    "model": "testapp.OrderLine", "event": "purchase", "user": "order.customer",
    "item": "product", "value": "product.price * quantity"}]}}


@override_settings(**MERGE_SETTINGS)
def test_an_anonymous_visitor_who_logs_in_keeps_the_attribution(products):
    store_neighbours(products[0], [(products[1], 0.9), (products[2], 0.8)])
    User.objects.create_user("carol", password="secret")
    client = browser()
    link = links(client, products[0])[1]
    assert client.get(link).status_code == 200
    anonymous = Click.objects.get()
    assert anonymous.user_id is None and anonymous.session_key

    response = client.post("/login/", {"username": "carol", "password": "secret"})
    assert response.status_code == 302
    carol = User.objects.get(username="carol")
    assert Click.objects.get().user_id == carol.pk  # the session's click became hers
    order = Order.objects.create(customer=carol)
    OrderLine.objects.create(order=order, product=products[2], quantity=3)  # a SOURCES purchase
    purchase = Interaction.objects.get(event="purchase")
    assert purchase.value == pytest.approx(3 * 3.5)

    roll_up(settle=datetime.timedelta(0))
    conversion = Conversion.objects.get()
    assert (conversion.interaction_id, conversion.click_id) == (purchase.pk, anonymous.pk)
    row = DailyFeedback.objects.get(placement="product-also-bought")
    assert (row.clicks, row.conversions, row.revenue) == (1, 1, pytest.approx(10.5))


@override_settings(**MERGE_SETTINGS)
def test_conversions_attributed_before_the_login_become_the_users(products):
    store_neighbours(products[0], [(products[1], 0.9)])
    User.objects.create_user("dave", password="secret")
    client = browser()
    client.get(links(client, products[0])[0])
    session = client.session.session_key
    django_recs.record(None, products[1], "purchase", session_key=session, value=2.0)
    roll_up(settle=datetime.timedelta(0))
    assert Conversion.objects.get().session_key == session
    client.post("/login/", {"username": "dave", "password": "secret"})
    dave = User.objects.get(username="dave")
    assert Conversion.objects.get().user_id == dave.pk
    assert django_recs.forget_user(dave) >= 3  # interactions, the click, the conversion
    assert not Conversion.objects.exists() and not Click.objects.exists()
