"""Values no column or kernel can hold: refused with a ValueError before any SQL.

Huge weights (finite ones that overflow float32, integers no float holds),
float primary keys, NUL characters: each is bad input named in a ValueError,
skipped and reported in a batch when asked, and never breaks the caller's
transaction.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

import django_recs
from django_recs.capture.importing import InvalidRows
from django_recs.models import Interaction
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return User.objects.create_user("alice")


@pytest.fixture
def products():
    return [Product.objects.create(name=f"P{i}") for i in range(3)]


def _still_usable() -> None:
    """The caller's transaction can still run queries."""
    assert Interaction.objects.count() >= 0


# -- weights ------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [1e39, 1e308, 3e38, 1_000_001.0, 10**400, -(10**400)],
                         ids=["1e39", "1e308", "3e38", "1e6+1", "10**400", "-10**400"])
def test_record_refuses_a_weight_outside_the_range(alice, products, weight):
    with transaction.atomic():
        with pytest.raises(ValueError, match="weight must be"):
            django_recs.record(alice, products[0], weight=weight)
        _still_usable()
    assert not Interaction.objects.exists()


def test_max_weight_is_a_setting(alice, products, settings):
    settings.DJANGO_RECS = {**settings.DJANGO_RECS, "MAX_WEIGHT": 10}
    django_recs.record(alice, products[0], weight=10)
    with pytest.raises(ValueError, match=r"weight must be <= 10 \(DJANGO_RECS\['MAX_WEIGHT'\]\)"):
        django_recs.record(alice, products[0], weight=10.5)
    assert Interaction.objects.count() == 1


@pytest.mark.parametrize("weight", [1e39, 1e308, 10**400], ids=["1e39", "1e308", "10**400"])
def test_record_many_reports_and_skips_a_huge_weight(alice, products, weight):
    rows = [(alice, products[0], "view", 2.0), (alice, products[1], "view", weight)]
    with pytest.raises(InvalidRows, match="interaction 2: weight must be"):
        django_recs.record_many(rows)
    assert not Interaction.objects.exists()
    assert django_recs.record_many(rows, skip_invalid=True) == 1
    assert list(Interaction.objects.values_list("weight", flat=True)) == [2.0]


@pytest.mark.parametrize("weight", ["1e39", "1e308", "1" + "0" * 400],
                         ids=["1e39", "1e308", "10**400"])
def test_recs_import_refuses_a_huge_weight_naming_its_line(alice, products, tmp_path, weight):
    path = tmp_path / "interactions.csv"
    path.write_text(f"user,item,event,weight\n{alice.pk},{products[0].pk},view,1\n"
                    f"{alice.pk},{products[1].pk},view,{weight}\n")
    with pytest.raises(CommandError, match="line 3: weight must be"):
        call_command("recs_import", str(path), verbosity=0)
    assert not Interaction.objects.exists()


def test_an_event_whose_default_weight_check_reports_is_never_written(alice, products, settings):
    settings.DJANGO_RECS = {**settings.DJANGO_RECS,
                            "EVENTS": {"view": 1.0, "broken": -1, "nan": float("nan")}}
    for event in ("broken", "nan"):
        with pytest.raises(ValueError, match=rf"EVENTS'\]\['{event}'\].*E020"):
            django_recs.record(alice, products[0], event)
    with pytest.raises(InvalidRows, match=r"interaction 1: DJANGO_RECS\['EVENTS'\]\['broken'\]"):
        django_recs.record_many([(alice, products[0], "broken")])
    django_recs.record(alice, products[0], "broken", weight=2.0)  # an explicit weight is fine
    assert list(Interaction.objects.values_list("event", "weight")) == [("broken", 2.0)]


# -- primary keys ------------------------------------------------------------------------------


def test_float_primary_keys_are_refused_not_truncated(alice, products):
    other = User.objects.create_user("other")
    rows = [(other.pk + 0.7, (Product, products[1].pk + 0.9)),  # 2.7 would have been 2
            (float(alice.pk), (Product, float(products[0].pk)))]  # an integral float is fine
    with pytest.raises(InvalidRows) as raised:
        django_recs.record_many(rows)
    [error] = raised.value.result.errors
    assert error.where == "interaction 1" and "has a fraction" in error.message
    assert django_recs.record_many(rows, skip_invalid=True) == 1
    assert list(Interaction.objects.values_list("user_id", "item_key")) == [
        (alice.pk, str(products[0].pk))]


@pytest.mark.parametrize("pk", [2**63, -(2**63) - 1, 10**400, float("inf"), float("nan"), True],
                         ids=["2**63", "-2**63-1", "10**400", "inf", "nan", "True"])
def test_a_primary_key_no_column_holds_is_reported_not_sent_to_the_database(alice, products, pk):
    with transaction.atomic():
        with pytest.raises(InvalidRows, match="interaction 1: "):
            django_recs.record_many([(alice, (Product, pk))])
        with pytest.raises(InvalidRows, match="interaction 1: user"):
            django_recs.record_many([(pk, products[0])])
        _still_usable()
    assert not Interaction.objects.exists()


# -- NUL characters and other text no column holds -----------------------------------------


def test_record_refuses_a_nul_in_the_session_key_inside_the_callers_transaction(products):
    with transaction.atomic():
        with pytest.raises(ValueError, match="session_key 'a\\\\x00b' contains a NUL"):
            django_recs.record(None, products[0], session_key="a\x00b")
        django_recs.record(None, products[0], session_key="fine-key")  # the transaction works
    assert list(Interaction.objects.values_list("session_key", flat=True)) == ["fine-key"]


def test_record_many_reports_a_nul_by_position(products):
    rows = [{"item": products[0], "session_key": "good-key"},
            {"item": products[1], "session_key": "bad\x00key"}]
    with pytest.raises(InvalidRows, match="interaction 2: session_key .* contains a NUL"):
        django_recs.record_many(rows)
    assert django_recs.record_many(rows, skip_invalid=True) == 1


@pytest.mark.parametrize("key", [" ", "k ", "good-key  "])
def test_record_refuses_a_session_key_ending_with_a_space_on_every_database(products, key):
    # MySQL/MariaDB compare "k " equal to "k" and " " equal to "": such a
    # key would join another session there, or break the visitor check.
    alice = User.objects.create_user("alice-space")
    with transaction.atomic():
        with pytest.raises(ValueError, match="ends with a space"):
            django_recs.record(None, products[0], session_key=key)
        with pytest.raises(ValueError, match="ends with a space"):
            django_recs.record(alice, products[0], session_key=key)
        with pytest.raises(InvalidRows, match="interaction 1: session_key .* ends with a space"):
            django_recs.record_many([{"item": products[0], "session_key": key}])
        django_recs.record(None, products[0], session_key=" lead-space")  # kept as it is
    assert list(Interaction.objects.values_list("session_key", flat=True)) == [" lead-space"]


def test_recs_import_names_the_line_of_a_nul(products, tmp_path):
    path = tmp_path / "nul.csv"
    path.write_text(f"user,item,event,weight,timestamp,session_key\n"
                    f",{products[0].pk},view,,,good-key\n,{products[1].pk},view,,,bad\x00key\n")
    with pytest.raises(CommandError, match="line 3: session_key .* contains a NUL"):
        call_command("recs_import", str(path), verbosity=0)
    assert not Interaction.objects.exists()


def test_a_timestamp_without_a_utc_equivalent_is_refused(alice, products, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    earliest = datetime.datetime(1, 1, 1, 0, 0)  # in Tokyo: before year 1 in UTC
    with pytest.raises(ValueError, match="cannot be stored"):
        django_recs.record(alice, products[0], timestamp=earliest)
    with pytest.raises(InvalidRows, match="interaction 1: timestamp .* cannot be stored"):
        django_recs.record_many([(alice, products[0], "view", None, earliest)])
    assert not Interaction.objects.exists()
