"""What an event is worth: a SOURCES entry's ``value`` and ``record(value=)``."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import checks
from django.core.management import call_command

import django_recs
from django_recs.models import Interaction
from tests.capture.test_capture_sources import PURCHASES, sources
from tests.testapp.models import Order, OrderLine, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(django_user_model):
    return Order.objects.create(customer=django_user_model.objects.create_user("alice"))


@pytest.fixture
def teapot():
    return Product.objects.create(name="Teapot", price=Decimal("12.50"))


@pytest.mark.parametrize("value, expected", [
    ("product.price * quantity", 37.5),
    ("quantity * product.price * 2", 75.0),
    ("quantity", 3.0),
    ("tests.testapp.sources.line_value", 37.5),
    (4, 4.0),
    (None, None),
])
def test_a_sources_value_is_stored_with_the_interaction(order, teapot, value, expected):
    entry = {**PURCHASES, "value": value} if value is not None else PURCHASES
    with sources(entry):
        OrderLine.objects.create(order=order, product=teapot, quantity=3)
    assert Interaction.objects.get().value == expected


def test_register_source_takes_a_value_function(order, teapot):
    django_recs.register_source("testapp.OrderLine", event="purchase", user="order.customer",
                                item="product", value=lambda line: 9.0)
    try:
        OrderLine.objects.create(order=order, product=teapot, quantity=1)
    finally:
        django_recs.capture.unregister_source("testapp.OrderLine", event="purchase")
    assert Interaction.objects.get().value == 9.0


def test_the_backfill_records_values(order, teapot):
    line = OrderLine.objects.create(order=order, product=teapot, quantity=2)
    with sources({**PURCHASES, "value": "product.price * quantity"}):
        Interaction.objects.all().delete()
        call_command("recs_import", "--from-sources", verbosity=0)
    assert Interaction.objects.get(source_key=str(line.pk)).value == 25.0


def test_record_takes_a_value(order, teapot):
    interaction = django_recs.record(order.customer, teapot, "purchase", value=Decimal("3.20"))
    assert interaction.value == 3.2
    for bad in (-1, float("nan"), "3", True):
        with pytest.raises(ValueError, match="value"):
            django_recs.record(order.customer, teapot, "purchase", value=bad)


BROKEN_VALUES = [
    (-3, "finite number >= 0"),
    (float("inf"), "finite number >= 0"),
    ([2], "not a number"),
    ("", "not a number"),
    ("product.prize * quantity", "has no field or attribute 'prize'"),
    ("product.name * quantity", "'product.name' is a CharField, not a number"),
    ("order * quantity", "'order' is a ForeignKey"),
    ("shop.values.missing", "neither an attribute path"),
]


@pytest.mark.parametrize(("value", "message"), BROKEN_VALUES, ids=[b[1] for b in BROKEN_VALUES])
def test_checks_report_a_broken_value_as_e019(value, message):
    with sources({**PURCHASES, "value": value}):
        errors = [m for m in checks.run_checks() if m.id.startswith("django_recs.E")]
    assert [m.id for m in errors] == ["django_recs.E019"]
    assert re.search(re.escape(message), errors[0].msg), errors[0].msg
    assert errors[0].hint


def test_a_value_is_validated_like_a_weight_before_any_sql(order, teapot,
                                                           django_assert_num_queries):
    from django_recs.capture.validation import MAX_VALUE

    assert django_recs.record(order.customer, teapot, "purchase",
                              value=MAX_VALUE).value == MAX_VALUE
    for bad, message in ((MAX_VALUE * 10, "<= 1e"), (10**400, "too large for a float"),
                         (Decimal("1e400"), "finite"), (float("inf"), "finite"),
                         (float("-inf"), "finite")):
        with django_assert_num_queries(0), pytest.raises(ValueError, match=message):
            django_recs.record(order.customer, teapot, "purchase", value=bad)
    assert Interaction.objects.filter(value__isnull=False).count() == 1


def test_record_view_passes_the_value_through(order, teapot, rf):
    request = rf.get("/")
    request.user = order.customer
    from django.contrib.sessions.backends.db import SessionStore

    request.session = SessionStore()
    interaction = django_recs.record_view(request, teapot, "purchase", value=12.5)
    assert interaction.value == 12.5 and interaction.user_id == order.customer.pk
    with pytest.raises(ValueError, match="value"):
        django_recs.record_view(request, teapot, "purchase", value=-1)
