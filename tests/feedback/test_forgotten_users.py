"""The erasure tombstone holds for the feedback too, and a bad session cookie never fails a list.

A forgotten user (``forget_user()``) is recorded nowhere until
``unforget_user()``: not their clicks, not their impressions (dropped when a
buffer is written, whichever process buffered them), and their login sends
no ``session_joined``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

import django_recs
from django_recs.capture import session_joined
from django_recs.feedback import flush_impressions
from django_recs.models import Click, ForgottenUser, Impression, Interaction
from tests.feedback.conftest import FEEDBACK
from tests.feedback.test_clicks import SHOP, browser, links
from tests.feedback.test_impressions import request_for
from tests.serving.serving_data import store_neighbours, store_popular
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def products():
    items = [Product.objects.create(name=f"p{i}") for i in range(5)]
    store_neighbours(items[0], [(items[1], 0.9), (items[2], 0.8), (items[3], 0.7)])
    store_popular([(item, 10.0 - i) for i, item in enumerate(items)])
    return items


@pytest.fixture
def customer():
    return User.objects.create_user("customer", password="x")


@override_settings(**SHOP)
def test_a_forgotten_users_click_is_not_recorded(products, customer):
    client = browser(customer)
    link = links(client, products[0])[0]  # shown before the erasure
    django_recs.forget_user(customer)
    assert client.get(link).status_code == 200
    assert not Click.objects.exists()
    assert not Interaction.objects.filter(event="click").exists()
    django_recs.unforget_user(customer)
    assert client.get(link).status_code == 200
    assert Click.objects.get().user_id == customer.pk


@override_settings(DJANGO_RECS=FEEDBACK)
def test_a_forgotten_users_buffered_impressions_are_dropped_when_written(products, customer):
    other = User.objects.create_user("other")
    for user in (customer, other):
        django_recs.recommended_for(user, 3, placement="home", request=request_for(user))
    # Forgotten by another process: this process's buffer still holds the row.
    ForgottenUser.objects.create(user_id=customer.pk)
    assert flush_impressions() == 1
    assert list(Impression.objects.values_list("user_id", flat=True)) == [other.pk]


@override_settings(DJANGO_RECS=FEEDBACK)
def test_forget_user_sends_user_forgotten_once(products, customer):
    from django_recs.capture import user_forgotten

    calls = []

    def receiver(sender, user_id, using, **kwargs):
        calls.append(user_id)

    user_forgotten.connect(receiver)
    try:
        django_recs.forget_user(customer)
    finally:
        user_forgotten.disconnect(receiver)
    assert calls == [customer.pk]


@pytest.mark.urls("tests.testapp.urls")
def test_a_forgotten_users_login_sends_no_session_joined(products, customer, client):
    joined = []

    def receiver(sender, session_keys, user_id, **kwargs):
        joined.append(user_id)

    other = User.objects.create_user("other", password="x")
    session_joined.connect(receiver)
    try:
        client.get(f"/products/{products[0].pk}/")
        client.post("/login/", {"username": "other", "password": "x"})
        assert joined == [other.pk]  # an ordinary login joins the session
        client.logout()
        client.get(f"/products/{products[1].pk}/")
        django_recs.forget_user(customer)
        client.post("/login/", {"username": "customer", "password": "x"})
    finally:
        session_joined.disconnect(receiver)
    assert joined == [other.pk]
    assert not Interaction.objects.filter(user=None).exists()  # erased, not joined


@override_settings(DJANGO_RECS=FEEDBACK)
@pytest.mark.parametrize("cookie", ["k" * 41, "bad\x00key"])
def test_a_list_for_a_request_whose_cookie_is_no_session_key_is_served(products, cookie):
    request = request_for()
    request.session._session_key = cookie  # the cookie's text, as the middleware sets it
    items = django_recs.recommended_for(None, 3, placement="home", request=request)
    assert len(items) == 3
    assert len(django_recs.similar_to(products[0], 3, placement="pdp", request=request)) == 3
