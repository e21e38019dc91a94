"""record_many(), `recs_import FILE.csv` and `recs_import --from-sources`."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import django_recs
from django_recs.capture.importing import InvalidRows, backfill_sources
from django_recs.models import Interaction
from tests.testapp.models import (
    CartLine,
    Gadget,
    Order,
    OrderLine,
    Product,
    Review,
    Variant,
    VariantLine,
)

pytestmark = pytest.mark.django_db

PURCHASES = {"model": "testapp.OrderLine", "event": "purchase", "user": "order.customer",
             "item": "product", "weight": "quantity", "timestamp": "order.created"}
GOOD_RATINGS = {"model": "testapp.Review", "event": "rating", "user": "author",
                "item": "product", "weight": "tests.testapp.sources.review_weight",
                "when": "tests.testapp.sources.is_positive_review"}


def recs(**extra):
    return override_settings(DJANGO_RECS={**settings.DJANGO_RECS, **extra})


@pytest.fixture
def shop():
    users = [User.objects.create_user(f"customer{i}") for i in range(3)]
    products = [Product.objects.create(name=f"Product {i}") for i in range(4)]
    gadgets = [Gadget.objects.create(name=f"Gadget {i}") for i in range(2)]
    return users, products, gadgets


# --- record_many --------------------------------------------------------------------------------


def test_record_many_accepts_instances_pks_pairs_and_text(shop):
    (ann, ben, _), (p0, p1, p2, _), (g0, _) = shop
    when = datetime.datetime(2011, 5, 1, 9, 30, tzinfo=datetime.timezone.utc)
    written = django_recs.record_many([
        (ann, p0),
        (ben.pk, (Product, p1.pk), "purchase", 2, when),
        {"user": ann, "item": g0, "event": "cart", "weight": 0.5},
        {"item": f"testapp.product:{p2.pk}", "session_key": "anon-1"},
        (None, f"testapp.Gadget:{g0.pk}", "view", None, None, "anon-2"),
    ])
    assert written == 5
    # Bulk writes go in (user, time) order, not input order: compare as sets.
    assert set(Interaction.objects.values_list(
        "user_id", "item_key", "event", "weight", "session_key")) == {
        (ann.pk, str(p0.pk), "view", 1.0, ""),
        (ben.pk, str(p1.pk), "purchase", 2.0, ""),
        (ann.pk, g0.pk.hex, "cart", 0.5, ""),
        (None, str(p2.pk), "view", 1.0, "anon-1"),
        (None, g0.pk.hex, "view", 1.0, "anon-2"),
    }
    assert Interaction.objects.get(user=ben).timestamp == when


def test_record_many_writes_nothing_when_one_is_bad_and_names_each(shop):
    (ann, _, _), (p0, *_), _ = shop
    interactions = [
        (ann, p0),
        (ann, p0, "clicked"),
        (ann, p0, "view", float("nan")),
        (ann, p0, "view", -3),
        (None, p0),
        (999_999, p0),
        (ann, (Product, 999_999)),
        (ann, "testapp.category:1"),
        (ann, p0),
    ]
    with pytest.raises(InvalidRows) as raised:
        django_recs.record_many(interactions)
    message = str(raised.value)
    assert "7 invalid row(s); nothing was written." in message
    for expected in [
        "interaction 2: unknown event 'clicked'",
        "interaction 3: weight must be finite",
        "interaction 4: weight must be >= 0",
        "interaction 5: no user and no session_key",
        "interaction 6: no auth.User with primary key 999999",
        "interaction 7: no testapp.Product with primary key 999999",
        "interaction 8: item 'testapp.category:1': 'testapp.category' is not in",
    ]:
        assert expected in message
    assert isinstance(raised.value, ValueError)
    assert Interaction.objects.count() == 0

    assert django_recs.record_many(interactions, skip_invalid=True) == 2
    assert Interaction.objects.count() == 2


def test_record_many_is_all_or_nothing_across_chunks(shop):
    (ann, _, _), (p0, *_), _ = shop
    interactions = [(ann, p0)] * 25 + [(ann, p0, "nope")]
    with pytest.raises(InvalidRows, match="interaction 26"):
        django_recs.record_many(interactions, batch_size=10)  # two chunks written, then rolled back
    assert Interaction.objects.count() == 0


# --- CSV import ---------------------------------------------------------------------------------


def write_csv(tmp_path, text: str):
    path = tmp_path / "interactions.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_import_with_header(shop, tmp_path, capsys):
    (ann, ben, _), (p0, p1, *_), (g0, _) = shop
    path = write_csv(tmp_path, (
        "user,item,event,weight,timestamp,session_key\n"
        f"{ann.pk},testapp.product:{p0.pk},purchase,2,2011-12-09 12:50:00,\n"
        f"{ben.pk},testapp.Product:{p1.pk},,,2011-12-09T12:51:00+01:00,\n"
        f",testapp.gadget:{g0.pk},cart,1.5,,visitor-1\n"
    ))
    call_command("recs_import", path)
    captured = capsys.readouterr()
    assert "Recorded 3 interactions from 3 rows." in captured.out
    assert "recs_import [" in captured.err and "100%" in captured.err  # the progress bar
    rows = sorted(Interaction.objects.values_list(
        "user_id", "item_key", "event", "weight", "session_key", "timestamp"),
        key=lambda row: row[0] or 1e9)
    utc = datetime.timezone.utc
    assert rows[0] == (ann.pk, str(p0.pk), "purchase", 2.0, "",
                       datetime.datetime(2011, 12, 9, 12, 50, tzinfo=utc))
    assert rows[1][:5] == (ben.pk, str(p1.pk), "view", 1.0, "")
    assert rows[1][5] == datetime.datetime(2011, 12, 9, 11, 51, tzinfo=utc)
    assert rows[2][:5] == (None, g0.pk.hex, "cart", 1.5, "visitor-1")
    assert abs((timezone.now() - rows[2][5]).total_seconds()) < 60


def test_csv_import_without_header_and_bare_pks_for_one_item_model(shop, tmp_path):
    (ann, *_), (p0, p1, *_), _ = shop
    path = write_csv(tmp_path, f"{ann.pk},{p0.pk},purchase,3,2011-01-02 03:04:05\n"
                               f"{ann.pk},{p1.pk},view,,\n")
    with recs(ITEM_MODELS=["testapp.Product"]):
        call_command("recs_import", path, verbosity=0)
    assert set(Interaction.objects.values_list("item_key", "weight")) == {
        (str(p0.pk), 3.0), (str(p1.pk), 1.0)}


def test_csv_bare_pk_needs_a_label_when_there_are_several_item_models(shop, tmp_path):
    (ann, *_), (p0, *_), _ = shop
    path = write_csv(tmp_path, f"user,item\n{ann.pk},{p0.pk}\n")
    with pytest.raises(CommandError, match="line 2: item .* must be written 'app_label.model:pk'"):
        call_command("recs_import", path, verbosity=0)


BAD_CSV = (
    "user,item,event,weight,timestamp\n"
    "{ann},testapp.product:{p0},purchase,1,2011-01-01 10:00\n"
    "{ann},testapp.product:{p0},purchase,-1,2011-01-01 10:00\n"
    "{ann},testapp.product:{p0},purchase,1,yesterday\n"
    "{ann},testapp.product:424242,purchase,1,\n"
    "{ann},testapp.product:{p0}\n"
    "{ann},testapp.product:{p0},view,1,,,,\n"
    "abc,testapp.product:{p0},view,,\n"
    "{ann},testapp.gadget:not-a-uuid,view,,\n"
)


def test_csv_import_writes_nothing_when_a_line_is_bad(shop, tmp_path):
    (ann, *_), (p0, *_), _ = shop
    path = write_csv(tmp_path, BAD_CSV.format(ann=ann.pk, p0=p0.pk))
    with pytest.raises(CommandError) as raised:
        call_command("recs_import", path, verbosity=0)
    message = str(raised.value)
    assert "6 invalid row(s); nothing was written." in message
    for expected in [
        "line 3: weight must be >= 0, got -1.0",
        "line 4: timestamp 'yesterday' is not an ISO 8601 date and time",
        "line 5: no testapp.Product with primary key 424242",
        "line 7: expected 5 columns (user, item, event, weight, timestamp), got 8",
        "line 8: user 'abc' is not a auth.User primary key",
        "line 9: item 'testapp.gadget:not-a-uuid': 'not-a-uuid' is not a testapp.Gadget primary key",
    ]:
        assert expected in message
    assert "line 6" not in message  # user and item only: the defaults fill the rest
    assert Interaction.objects.count() == 0


def test_csv_import_skip_invalid_writes_the_good_rows_and_reports_the_bad(shop, tmp_path, capsys):
    (ann, *_), (p0, *_), _ = shop
    path = write_csv(tmp_path, BAD_CSV.format(ann=ann.pk, p0=p0.pk))
    call_command("recs_import", path, "--skip-invalid", verbosity=0)
    captured = capsys.readouterr()
    assert "Recorded 2 interactions from 8 rows; 6 invalid rows skipped." in captured.out
    assert "skipped line 3: weight must be >= 0" in captured.err
    assert Interaction.objects.count() == 2


def test_csv_import_errors_for_missing_file_and_arguments(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("recs_import", str(tmp_path / "missing.csv"), verbosity=0)
    with pytest.raises(CommandError, match="either a CSV file or --from-sources"):
        call_command("recs_import", verbosity=0)
    with pytest.raises(CommandError, match="unknown or repeated columns"):
        call_command("recs_import", write_csv(tmp_path, "user,item,colour\n1,2,red\n"),
                     verbosity=0)


# --- Backfill from SOURCES ----------------------------------------------------------------------


def years_of_orders(shop):
    (ann, ben, _), (p0, p1, p2, _), _ = shop
    lines = []
    for day, (customer, product, quantity) in enumerate(
        [(ann, p0, 1), (ann, p1, 2), (ben, p0, 3), (None, p2, 1), (ben, p2, 5)]
    ):
        order = Order.objects.create(customer=customer)
        created = timezone.make_aware(datetime.datetime(2010, 1, 1 + day, 12))
        Order.objects.filter(pk=order.pk).update(created=created)
        lines.append(OrderLine.objects.create(order=order, product=product, quantity=quantity))
    Review.objects.create(author=ann, product=p0, stars=5)
    Review.objects.create(author=ben, product=p1, stars=1)  # the predicate skips it
    return lines


def test_backfill_records_existing_rows_once(shop, capsys):
    (ann, ben, _), (p0, p1, p2, _), _ = shop
    years_of_orders(shop)  # recorded before the sources are configured
    assert Interaction.objects.count() == 0
    with recs(SOURCES=[PURCHASES, GOOD_RATINGS]):
        call_command("recs_import", "--from-sources")
        first = capsys.readouterr()
        assert "Recorded 5 interactions from 7 rows; 0 already recorded; 2 not recorded" in \
            first.out
        assert "100%" in first.err
        rows = list(Interaction.objects.order_by("event", "timestamp").values_list(
            "user_id", "item_key", "event", "weight"))
        assert rows == [
            (ann.pk, str(p0.pk), "purchase", 1.0),
            (ann.pk, str(p1.pk), "purchase", 2.0),
            (ben.pk, str(p0.pk), "purchase", 3.0),
            (ben.pk, str(p2.pk), "purchase", 5.0),
            (ann.pk, str(p0.pk), "rating", 4.5),
        ]
        purchase_days = sorted(Interaction.objects.filter(event="purchase")
                               .values_list("timestamp__day", flat=True))
        assert purchase_days == [1, 2, 3, 5]  # the orders' own dates

        call_command("recs_import", "--from-sources")  # twice: nothing twice
        assert "Recorded 0 interactions from 7 rows; 5 already recorded" in capsys.readouterr().out
        assert Interaction.objects.count() == 5

        order = Order.objects.create(customer=ann)
        OrderLine.objects.create(order=order, product=p2)  # recorded live
        assert backfill_sources().written == 0  # and not again by the backfill
    assert Interaction.objects.count() == 6


def test_backfill_with_a_bad_row_writes_nothing(shop):
    years_of_orders(shop)
    broken = {**PURCHASES, "weight": "tests.testapp.sources.negative_weight"}
    with recs(SOURCES=[GOOD_RATINGS, broken]):
        with pytest.raises(CommandError, match=r"testapp.OrderLine #\d+: .*weight must be >= 0"):
            call_command("recs_import", "--from-sources", verbosity=0)
        assert Interaction.objects.count() == 0
        result = backfill_sources(skip_invalid=True)
    assert (result.written, result.bad_rows) == (1, 4)
    assert Interaction.objects.count() == 1


VARIANT_PURCHASES = {"model": "testapp.VariantLine", "event": "purchase",
                     "user": "order.customer", "item": "tests.testapp.sources.parent_product",
                     "weight": "quantity", "select_related": ["variant__product"]}


def variant_orders(shop, lines):
    """``lines`` order lines of variants of the first two products, and one without variant."""
    (ann, ben, _), (p0, p1, *_), _ = shop
    variants = [Variant.objects.create(product=p, name=size) for p in (p0, p1)
                for size in ("S", "L")]
    order = Order.objects.create(customer=ann)
    for i in range(lines):
        VariantLine.objects.create(order=order, variant=variants[i % 4], quantity=1 + i % 4)
    VariantLine.objects.create(order=Order.objects.create(customer=ben), variant=None)


def test_backfill_calls_an_item_function_per_row(shop):
    (ann, _, _), (p0, p1, *_), _ = shop
    variant_orders(shop, 4)
    with recs(SOURCES=[VARIANT_PURCHASES]):
        result = backfill_sources()
        assert (result.written, result.not_recorded) == (4, 1)  # no variant: skipped
        assert sorted(Interaction.objects.values_list("user_id", "item_key", "weight")) == [
            (ann.pk, str(p0.pk), 1.0), (ann.pk, str(p0.pk), 2.0),
            (ann.pk, str(p1.pk), 3.0), (ann.pk, str(p1.pk), 4.0)]
        assert backfill_sources().written == 0  # once


def backfill_queries(shop, lines, source) -> int:
    VariantLine.objects.all().delete()
    Interaction.objects.all().delete()
    variant_orders(shop, lines)
    with recs(SOURCES=[source]), CaptureQueriesContext(connection) as captured:
        assert backfill_sources().written == lines
    return len(captured)


def test_backfill_loads_the_select_related_of_an_item_function_with_each_row(shop):
    # Declared: no query per row. Without it: the function's two per row.
    assert backfill_queries(shop, 2, VARIANT_PURCHASES) == \
        backfill_queries(shop, 8, VARIANT_PURCHASES)
    undeclared = {**VARIANT_PURCHASES, "select_related": None}
    assert backfill_queries(shop, 8, undeclared) - backfill_queries(shop, 2, undeclared) == 12


def test_backfill_reports_an_item_function_that_returns_no_item(shop):
    variant_orders(shop, 2)
    broken = {**VARIANT_PURCHASES, "item": "tests.testapp.sources.line_order"}
    with recs(SOURCES=[broken]), pytest.raises(
        CommandError, match=r"testapp.VariantLine #\d+: .*item function "
                            r"tests.testapp.sources.line_order returned a testapp.Order"):
        call_command("recs_import", "--from-sources", verbosity=0)
    assert Interaction.objects.count() == 0


def test_backfill_of_a_user_set_source_records_the_rows_that_have_a_user(shop):
    (ann, _, _), (p0, p1, *_), _ = shop
    CartLine.objects.create(user=ann, product=p0)
    CartLine.objects.create(session_key="anonymous", product=p1)
    owned = {"model": "testapp.CartLine", "event": "cart", "user": "user", "item": "product",
             "when": "user_set"}
    with recs(SOURCES=[owned]):
        result = backfill_sources()
    assert (result.written, result.not_recorded) == (1, 1)
    assert list(Interaction.objects.values_list("user_id", "item_key")) == [(ann.pk, str(p0.pk))]


def test_record_many_reads_a_queryset_between_writes(shop):
    (ann, ben, _), (p0, p1, *_), _ = shop
    for user, product in [(ann, p0), (ben, p1), (ann, p1)]:
        Review.objects.create(author=user, product=product, stars=4)
    reviews = Review.objects.order_by("pk").iterator(chunk_size=1)
    written = django_recs.record_many(
        ((review.author_id, (Product, review.product_id), "rating", review.stars)
         for review in reviews),
        batch_size=1,
    )
    assert written == 3
    assert sorted(Interaction.objects.values_list("user_id", "weight")) == sorted([
        (ann.pk, 4.0), (ben.pk, 4.0), (ann.pk, 4.0)])


def test_streamed_import_looks_up_new_users_between_chunks(shop):
    users, products, _ = shop
    more_users = [User.objects.create_user(f"late{i}") for i in range(5)]
    interactions = [(u.pk, (Product, p.pk)) for u in users for p in products]
    interactions += [(u.pk, (Product, products[0].pk)) for u in more_users]
    interactions += [(123456, (Product, products[0].pk))]
    with pytest.raises(InvalidRows, match=r"interaction 18: no auth.User with primary key 123456"):
        django_recs.record_many(interactions, batch_size=4)
    assert Interaction.objects.count() == 0
    assert django_recs.record_many(interactions[:-1], batch_size=4) == 17


# --- files that are no CSV of interactions ---------------------------------------------------


def _import(path):
    with pytest.raises(CommandError) as raised:
        call_command("recs_import", str(path), verbosity=0)
    assert not Interaction.objects.exists()
    return str(raised.value)


def test_a_field_longer_than_the_csv_limit_is_a_command_error_naming_its_line(shop, tmp_path):
    (ann, *_), (p0, *_), _ = shop
    path = tmp_path / "long.csv"
    path.write_text(f"user,item\n{ann.pk},{p0.pk}\n{ann.pk},{'9' * 131_073}\n")
    assert _import(path) == ("line 3: not readable as CSV: field larger than field limit "
                             "(131072)")


@pytest.mark.parametrize("header", ["user,event,weight", "user,product,event"])
def test_a_header_without_an_item_column_is_not_read_as_data(shop, tmp_path, header):
    (ann, *_), (p0, *_), _ = shop
    path = tmp_path / "no-item.csv"
    path.write_text(f"{header}\n{ann.pk},{p0.pk},view\n")
    message = _import(path)
    assert message.startswith("line 1: the header ")
    assert "item is required" in message and "unknown event" not in message


def test_a_file_that_is_not_utf8_is_a_command_error(shop, tmp_path):
    (ann, *_), (p0, *_), _ = shop
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"user,item,event\n{ann.pk},{p0.pk},view\n".encode() + b"\xff\xfe,\n")
    assert "the file is not UTF-8 text" in _import(path)
