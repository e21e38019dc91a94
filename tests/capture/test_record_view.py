"""record_view(request, item): the documented way to record from a view, never a 500.

The session key comes from the visitor's cookie. record() with
``request.session.session_key`` failed the page (HTTP 500) for a cookie of 41
characters or more, and recorded 32-40-character cookies under a key no
session has; record_view() records under the real session, or logs and
records nothing.
"""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory

import django_recs
from django_recs.models import Interaction
from tests.testapp.models import NotAnItem, Product

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.testapp.urls")]


@pytest.fixture
def product():
    return Product.objects.create(name="Teapot")


def visit(product, cookie: str | None = None) -> Client:
    client = Client(raise_request_exception=False)
    if cookie is not None:
        client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    response = client.get(f"/products/{product.pk}/")
    assert response.status_code == 200, response.content[:500]
    return client


def test_an_anonymous_visitor_is_recorded_under_a_new_session_that_exists(product):
    client = visit(product)
    [row] = Interaction.objects.all()
    assert row.user_id is None and row.event == "view"
    assert row.session_key == client.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.filter(session_key=row.session_key).exists()
    visit_again = client.get(f"/products/{product.pk}/")
    assert visit_again.status_code == 200
    assert set(Interaction.objects.values_list("session_key", flat=True)) == {row.session_key}


@pytest.mark.parametrize("length", [41, 64, 200])
def test_a_cookie_longer_than_a_session_key_records_nothing_and_logs(product, length, caplog):
    with caplog.at_level(logging.INFO, logger="django_recs.capture"):
        visit(product, "k" * length)
    assert not Interaction.objects.exists()
    assert f"the session cookie ({length} characters) is no session key" in caplog.text


@pytest.mark.parametrize("length", [32, 40])
def test_a_cookie_naming_no_session_is_recorded_under_a_real_session(product, length):
    made_up = "m" * length
    client = visit(product, made_up)
    [row] = Interaction.objects.all()
    assert row.session_key != made_up
    assert row.session_key == client.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.filter(session_key=row.session_key).exists()


def test_a_cookie_with_a_nul_records_nothing(product):
    visit(product, "abc\x00defghijk")
    assert not Interaction.objects.exists()


def test_a_signed_in_visitor_is_recorded_as_the_user_with_the_session(product):
    user = User.objects.create_user("alice", password="pw")
    client = Client()
    client.force_login(user)
    client.get(f"/products/{product.pk}/")
    [row] = Interaction.objects.all()
    assert row.user_id == user.pk
    assert row.session_key == client.session.session_key


def test_record_view_takes_an_event_and_weight(product):
    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    request.user, request.session = AnonymousUser(), SessionStore()
    row = django_recs.record_view(request, product, "cart", weight=2.0)
    assert (row.event, row.weight) == ("cart", 2.0)
    assert row.session_key == request.session.session_key


def test_programming_errors_still_raise(product):
    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    request.user, request.session = AnonymousUser(), SessionStore()
    with pytest.raises(ValueError, match="testapp.NotAnItem is not in"):
        django_recs.record_view(request, NotAnItem.objects.create(name="x"))
    with pytest.raises(ValueError, match="unknown event 'clicked'"):
        django_recs.record_view(request, product, "clicked")
