"""forget_user() removes a user's impressions, clicks and attributions; sessions expire."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

import django_recs
from django_recs.capture import forget_user_details
from django_recs.feedback import roll_up
from django_recs.feedback.buffer import COLUMNS, buffer
from django_recs.models import Click, Conversion, DailyFeedback, Impression, Interaction
from tests.feedback.conftest import FEEDBACK
from tests.feedback.feedback_data import bought, clicked, later, shown
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic():
    products = [Product.objects.create(name=f"p{i}") for i in range(3)]
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    for user in (alice, bob):
        impression = shown(later(), products, user=user)
        clicked(impression, 0, products[0], later(minutes=1), user=user)
        bought(products[0], later(minutes=2), user=user, value=4.0)
    anonymous = shown(later(), products, session_key="s" * 32)
    clicked(anonymous, 1, products[1], later(minutes=1), session_key="s" * 32)
    with override_settings(DJANGO_RECS=FEEDBACK):
        roll_up(settle=datetime.timedelta(0), now=later(days=1), retention=False)
    return alice, bob


@override_settings(DJANGO_RECS=FEEDBACK)
def test_forget_user_deletes_their_impressions_clicks_and_conversions(traffic):
    alice, bob = traffic
    deleted = forget_user_details(alice)
    assert deleted["django_recs.Impression"] == 1
    assert deleted["django_recs.Click"] == 1
    assert deleted["django_recs.Conversion"] == 1
    assert deleted["django_recs.Interaction"] == 1
    for model in (Impression, Click, Conversion, Interaction):
        assert not model.objects.filter(user=alice).exists()
        assert model.objects.filter(user=bob).exists()
    assert Impression.objects.filter(user=None).count() == 1  # the anonymous session's
    # The daily numbers are sums over everyone: they stay.
    assert DailyFeedback.objects.get().impressions == 3


@override_settings(DJANGO_RECS=FEEDBACK)
def test_forget_user_returns_the_total_and_the_command_prints_each_table(traffic, capsys):
    alice, bob = traffic
    assert django_recs.forget_user(alice) == 4
    call_command("recs_forget", "--user", str(bob.pk))
    out = capsys.readouterr().out
    assert "1 django_recs.Impression" in out and "1 django_recs.Conversion" in out


@override_settings(DJANGO_RECS=FEEDBACK)
def test_forget_user_drops_the_users_buffered_impressions(traffic):
    alice, bob = traffic
    user_at = COLUMNS.index("user_id")
    for user in (alice, bob, None):
        row = [None] * len(COLUMNS)
        row[user_at] = None if user is None else user.pk
        buffer.add(tuple(row))
    django_recs.forget_user(alice.pk)
    assert sorted((row[user_at] or 0) for row in buffer.take()) == [0, bob.pk]


@override_settings(DJANGO_RECS=FEEDBACK)
def test_deleting_a_user_deletes_their_feedback_rows(traffic):
    alice, _ = traffic
    alice_id = alice.pk
    alice.delete()
    for model in (Impression, Click, Conversion):
        assert not model.objects.filter(user_id=alice_id).exists()
        assert model.objects.exists()


@override_settings(DJANGO_RECS={**FEEDBACK, "IMPRESSION_RETENTION_DAYS": 30})
def test_session_rows_expire_with_the_retention(traffic):
    roll_up(settle=datetime.timedelta(0), now=later(days=31))
    assert not Impression.objects.exists() and not Click.objects.exists()
