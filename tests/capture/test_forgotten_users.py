"""A forgotten user stays forgotten: no way in records them until the shop lifts it.

``forget_user()`` used to delete the rows and nothing more: the next
``recs_import --from-sources`` brought a customer's history back from the
shop's orders (0 rows to 29), and signals, record() and imports went on
recording them.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings

import django_recs
from django_recs.capture import is_forgotten, join_session
from django_recs.models import ForgottenUser, Interaction
from tests.testapp.models import Order, OrderLine, Product

pytestmark = pytest.mark.django_db

PURCHASES = {"model": "testapp.OrderLine", "event": "purchase", "user": "order.customer",
             "item": "product", "weight": "quantity"}


def with_purchases():
    return override_settings(DJANGO_RECS={**settings.DJANGO_RECS, "SOURCES": [PURCHASES]})


@pytest.fixture
def customer():
    return User.objects.create_user("customer", password="pw")


@pytest.fixture
def products():
    return [Product.objects.create(name=f"p{i}") for i in range(4)]


def rows_of(user) -> int:
    return Interaction.objects.filter(user_id=user.pk).count()


def test_the_backfill_does_not_bring_a_forgotten_customer_back(customer, products, capsys):
    with with_purchases():
        order = Order.objects.create(customer=customer)
        for product in products:
            OrderLine.objects.create(order=order, product=product, quantity=2)
        assert rows_of(customer) == 4  # recorded live
        assert django_recs.forget_user(customer) == 4
        call_command("recs_import", "--from-sources")
    assert rows_of(customer) == 0
    assert "4 rows of forgotten users not recorded" in capsys.readouterr().out


def test_live_signals_and_record_record_nothing_for_a_forgotten_user(customer, products):
    django_recs.forget_user(customer)
    with with_purchases():
        order = Order.objects.create(customer=customer)
        OrderLine.objects.create(order=order, product=products[0])
    assert django_recs.record(customer, products[1], "purchase") is None
    assert rows_of(customer) == 0


def test_record_many_and_the_csv_import_skip_a_forgotten_user(customer, products, tmp_path):
    other = User.objects.create_user("other")
    django_recs.forget_user(customer.pk)  # by id
    written = django_recs.record_many([(customer, products[0]), (customer.pk, products[1]),
                                       (other, products[2])])
    assert written == 1 and rows_of(customer) == 0
    path = tmp_path / "history.csv"
    path.write_text(f"user,item\n{customer.pk},testapp.product:{products[0].pk}\n"
                    f"{other.pk},testapp.product:{products[3].pk}\n")
    call_command("recs_import", str(path), verbosity=0)
    assert rows_of(customer) == 0 and rows_of(other) == 2


@pytest.mark.urls("tests.testapp.urls")
def test_a_forgotten_user_signing_in_erases_the_sessions_history_instead_of_joining_it(
        customer, products):
    client = Client()
    client.get(f"/products/{products[0].pk}/")  # anonymous, recorded under the session
    assert Interaction.objects.filter(user=None).count() == 1
    django_recs.forget_user(customer)
    client.post("/login/", {"username": "customer", "password": "pw"})
    assert rows_of(customer) == 0 and not Interaction.objects.exists()
    client.get(f"/products/{products[1].pk}/")  # signed in: record_view records nothing
    assert not Interaction.objects.exists()
    assert join_session(["whatever-key"], customer) == 0


def test_unforget_user_lifts_it(customer, products):
    django_recs.forget_user(customer)
    assert is_forgotten(customer.pk)
    assert django_recs.unforget_user(customer) is True
    assert not is_forgotten(customer.pk)
    assert django_recs.record(customer, products[0]) is not None
    assert django_recs.unforget_user(customer) is False  # not forgotten any more


def test_the_tombstone_outlives_the_account(customer, products):
    django_recs.forget_user(customer)
    customer_id = customer.pk
    customer.delete()
    assert ForgottenUser.objects.filter(user_id=customer_id).exists()
    django_recs.forget_user(customer_id)  # again, by id: still one tombstone
    assert ForgottenUser.objects.filter(user_id=customer_id).count() == 1


def test_recs_forget_lift(customer, capsys):
    call_command("recs_forget", "--user", str(customer.pk))
    assert is_forgotten(customer.pk)
    call_command("recs_forget", "--user", str(customer.pk), "--lift")
    assert not is_forgotten(customer.pk)
    assert "recorded again" in capsys.readouterr().out


@pytest.mark.parametrize("user_id", ["abc", str(2**63), "1.5"])
def test_recs_forget_refuses_what_is_no_user_id(user_id):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a valid user id"):
        call_command("recs_forget", "--user", user_id)
    assert not ForgottenUser.objects.exists()
