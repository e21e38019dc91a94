"""SOURCES and register_source(): shop saves recorded as interactions, and their checks."""

from __future__ import annotations

import logging
import re

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.db import connection, transaction
from django.test import override_settings

import django_recs
from django_recs.capture.sources import parse_source, source_values
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
    Wishlist,
    WishlistEntry,
)

pytestmark = pytest.mark.django_db

PURCHASES = {"model": "testapp.OrderLine", "event": "purchase", "user": "order.customer",
             "item": "product", "weight": "quantity", "timestamp": "order.created"}
RATINGS = {"model": "testapp.Review", "event": "rating", "user": "author", "item": "product",
           "weight": "stars", "when": "saved"}
GOOD_RATINGS = {"model": "testapp.Review", "event": "rating", "user": "author",
                "item": "product", "weight": "tests.testapp.sources.review_weight",
                "when": "tests.testapp.sources.is_positive_review"}
WISHLISTS = {"model": "testapp.WishlistEntry", "event": "wishlist", "user": "wishlist.owner",
             "item": "gadget", "timestamp": "added"}
CARTS = {"model": "testapp.CartLine", "event": "cart", "user": "user", "item": "product",
         "weight": "quantity", "session_key": "session_key"}
VARIANT_PURCHASES = {"model": "testapp.VariantLine", "event": "purchase",
                     "user": "order.customer", "item": "tests.testapp.sources.parent_product",
                     "weight": "quantity"}
OWNED_CARTS = {"model": "testapp.CartLine", "event": "cart", "user": "user", "item": "product",
               "when": "user_set"}


def sources(*entries, **extra):
    return override_settings(DJANGO_RECS={**settings.DJANGO_RECS, "SOURCES": list(entries),
                                          **extra})


@pytest.fixture
def alice():
    return User.objects.create_user("alice")


@pytest.fixture
def teapot():
    return Product.objects.create(name="Teapot")


def rows():
    return list(Interaction.objects.order_by("pk").values_list(
        "user_id", "item_key", "event", "weight"))


def test_order_line_created_records_a_purchase_weighted_by_quantity(alice, teapot):
    with sources(PURCHASES):
        order = Order.objects.create(customer=alice)
        line = OrderLine.objects.create(order=order, product=teapot, quantity=3)
        line.quantity = 4
        line.save()  # when="created": an update records nothing
    assert rows() == [(alice.pk, str(teapot.pk), "purchase", 3.0)]
    interaction = Interaction.objects.get()
    assert interaction.timestamp == order.created
    assert interaction.source_type == ContentType.objects.get_for_model(OrderLine)
    assert interaction.source_key == str(line.pk)


def test_source_reads_the_user_and_item_ids_without_loading_them(alice, teapot,
                                                                  django_assert_num_queries):
    with sources({**PURCHASES, "timestamp": None}):
        order = Order.objects.create(customer=alice)
        ContentType.objects.get_for_model(OrderLine)
        ContentType.objects.get_for_model(Product)
        line = OrderLine(order=order, product=teapot)
        # The order is cached on the line; customer and product are read by id:
        # the line's INSERT, then in a savepoint (the test runs in a
        # transaction) the erasure check and the interaction's INSERT; no
        # SELECT of the customer or the product.
        assert connection.in_atomic_block
        with django_assert_num_queries(5) as captured:
            line.save()
        selects = [q["sql"] for q in captured.captured_queries if "SELECT" in q["sql"].upper()]
        assert len(selects) == 1 and "forgottenuser" in selects[0].lower()
    assert Interaction.objects.count() == 1


def test_review_saved_records_each_save(alice, teapot):
    with sources(RATINGS):
        review = Review.objects.create(author=alice, product=teapot, stars=2)
        review.stars = 5
        review.save()
    assert rows() == [(alice.pk, str(teapot.pk), "rating", 2.0),
                      (alice.pk, str(teapot.pk), "rating", 5.0)]


def test_dotted_predicate_and_callable_weight(alice, teapot):
    with sources(GOOD_RATINGS):
        Review.objects.create(author=alice, product=teapot, stars=2)  # predicate false
        Review.objects.create(author=alice, product=teapot, stars=4)
        Review.objects.create(author=alice, product=teapot, stars=5)
    assert rows() == [(alice.pk, str(teapot.pk), "rating", 3.0),
                      (alice.pk, str(teapot.pk), "rating", 4.5)]


def test_wishlist_through_model_with_uuid_items_records_add_and_create(alice):
    kettle, lamp = Gadget.objects.create(name="Kettle"), Gadget.objects.create(name="Lamp")
    with sources(WISHLISTS):
        wishlist = Wishlist.objects.create(owner=alice)
        wishlist.gadgets.add(kettle)  # m2m .add(): bulk_create, no post_save
        lamp.wishlists.add(wishlist)  # the reverse side
        wishlist.gadgets.add(kettle)  # already there: nothing new
        WishlistEntry.objects.create(wishlist=wishlist, gadget=lamp)
    assert rows() == [(alice.pk, kettle.pk.hex, "wishlist", 2.0),
                      (alice.pk, lamp.pk.hex, "wishlist", 2.0),
                      (alice.pk, lamp.pk.hex, "wishlist", 2.0)]


def test_anonymous_cart_source_records_under_the_session_key(alice, teapot):
    with sources(CARTS):
        CartLine.objects.create(session_key="visitor-session-1", product=teapot, quantity=2)
        CartLine.objects.create(user=alice, product=teapot)
        CartLine.objects.create(product=teapot)  # neither: skipped
    assert list(Interaction.objects.order_by("pk").values_list(
        "user_id", "session_key", "weight")) == [(None, "visitor-session-1", 2.0),
                                                 (alice.pk, "", 1.0)]


def test_guest_checkout_records_nothing_and_logs_a_count(teapot, caplog):
    with sources(PURCHASES), caplog.at_level(logging.DEBUG, logger="django_recs.capture"):
        order = Order.objects.create(customer=None)
        OrderLine.objects.create(order=order, product=teapot)
        OrderLine.objects.create(order=order, product=teapot)
    assert Interaction.objects.count() == 0
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("has no user (2 such rows so far)" in m for m in messages)


@pytest.mark.parametrize("weight", ["tests.testapp.sources.broken_weight",
                                    "tests.testapp.sources.negative_weight"])
def test_a_failing_source_never_breaks_the_shops_save(alice, teapot, caplog, weight):
    with sources({**PURCHASES, "weight": weight}), transaction.atomic():
        order = Order.objects.create(customer=alice)
        line = OrderLine.objects.create(order=order, product=teapot)
        # The shop's transaction is still usable after the failure.
        assert OrderLine.objects.filter(pk=line.pk).exists()
    assert OrderLine.objects.count() == 1
    assert Interaction.objects.count() == 0
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "could not record testapp.OrderLine" in errors[0].getMessage()


def test_an_order_that_rolls_back_leaves_no_interaction(alice, teapot):
    with sources(PURCHASES), pytest.raises(RuntimeError), transaction.atomic():
        order = Order.objects.create(customer=alice)
        OrderLine.objects.create(order=order, product=teapot, quantity=2)
        assert Interaction.objects.count() == 1
        raise RuntimeError("payment declined")
    assert Interaction.objects.count() == 0


def test_register_source_with_callables(alice, teapot):
    from django_recs.capture import unregister_source

    django_recs.register_source(
        Review, event="rating", user="author", item="product",
        weight=lambda review: review.stars * 10.0, when=lambda review, created: True,
    )
    try:
        Review.objects.create(author=alice, product=teapot, stars=3)
        assert rows() == [(alice.pk, str(teapot.pk), "rating", 30.0)]
        assert not [m for m in checks.run_checks() if m.id.startswith("django_recs.E")]
    finally:
        unregister_source(Review, event="rating")
    Review.objects.create(author=alice, product=teapot, stars=3)
    assert Interaction.objects.count() == 1


def test_sources_follow_setting_changes(alice, teapot):
    with sources(PURCHASES):
        pass
    order = Order.objects.create(customer=alice)
    OrderLine.objects.create(order=order, product=teapot)
    assert Interaction.objects.count() == 0  # disconnected again


# --- An item function: the parent product of a variant -----------------------------------------


@pytest.fixture
def teapot_in_two_sizes(teapot):
    return Variant.objects.create(product=teapot, name="0.5 l"), \
        Variant.objects.create(product=teapot, name="1 l")


def test_an_item_function_records_the_parent_product_of_a_variant(alice, teapot,
                                                                   teapot_in_two_sizes):
    small, large = teapot_in_two_sizes
    with sources(VARIANT_PURCHASES):
        order = Order.objects.create(customer=alice)
        VariantLine.objects.create(order=order, variant=small, quantity=2)
        VariantLine.objects.create(order=order, variant=large)
        VariantLine.objects.create(order=order, variant=None)  # None: skipped
    assert rows() == [(alice.pk, str(teapot.pk), "purchase", 2.0),
                      (alice.pk, str(teapot.pk), "purchase", 1.0)]
    assert {i.item_type.model_class() for i in Interaction.objects.all()} == {Product}


def test_register_source_with_an_item_callable(alice, teapot, teapot_in_two_sizes):
    from django_recs.capture import unregister_source

    django_recs.register_source(VariantLine, event="purchase", user="order.customer",
                                item=lambda line: line.variant.product)
    try:
        VariantLine.objects.create(order=Order.objects.create(customer=alice),
                                   variant=teapot_in_two_sizes[0])
        assert not [m for m in checks.run_checks() if m.id.startswith("django_recs.E")]
    finally:
        unregister_source(VariantLine, event="purchase")
    assert rows() == [(alice.pk, str(teapot.pk), "purchase", 5.0)]  # the event's weight


@pytest.mark.parametrize(("function", "problem"), [
    ("tests.testapp.sources.line_order",
     r"item function tests\.testapp\.sources\.line_order returned a testapp\.Order \(.*\), not "
     r"an instance of a model in DJANGO_RECS\['ITEM_MODELS'\] \(or None to skip the row\)"),
    ("tests.testapp.sources.draft_product",
     r"item function tests\.testapp\.sources\.draft_product returned an unsaved testapp\.Product"),
])
def test_an_item_function_returning_no_item_is_a_clear_error_that_never_breaks_the_save(
        alice, teapot_in_two_sizes, caplog, function, problem):
    entry = {**VARIANT_PURCHASES, "item": function}
    with sources(entry):
        line = VariantLine.objects.create(order=Order.objects.create(customer=alice),
                                          variant=teapot_in_two_sizes[0])
        with pytest.raises(ValueError, match=problem):
            source_values(parse_source(entry), line)
    assert Interaction.objects.count() == 0
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "could not record testapp.VariantLine" in error.getMessage()
    assert re.search(problem, str(error.exc_info[1]))


# --- when="user_set": the save that gives a row its user ----------------------------------------


def test_user_set_records_the_save_that_gives_an_anonymous_line_its_owner(alice, teapot):
    with sources(OWNED_CARTS):
        line = CartLine.objects.create(session_key="visitor-session-1", product=teapot)
        assert Interaction.objects.count() == 0  # anonymous: not yet
        line = CartLine.objects.get(pk=line.pk)  # after login, in another request
        line.user = alice
        line.save()
        assert rows() == [(alice.pk, str(teapot.pk), "cart", 3.0)]
        line.quantity = 2
        line.save()  # the same user again: nothing
        again = CartLine.objects.get(pk=line.pk)
        again.save()
    assert Interaction.objects.count() == 1


def test_user_set_records_a_row_created_with_its_user_once(alice, teapot):
    with sources(OWNED_CARTS):
        line = CartLine.objects.create(user=alice, product=teapot)
        line.save()
        CartLine.objects.get(pk=line.pk).save()
    assert rows() == [(alice.pk, str(teapot.pk), "cart", 3.0)]


def test_user_set_ignores_a_change_of_user_and_a_save_that_does_not_write_it(alice, teapot):
    bob = User.objects.create_user("bob")
    with sources(OWNED_CARTS):
        line = CartLine.objects.create(user=alice, product=teapot)
        line.user = bob
        line.save()  # one user for another: not "set"
        anonymous = CartLine.objects.create(session_key="s", product=teapot)
        anonymous.user = bob
        anonymous.save(update_fields=["quantity"])  # the user is not written
        assert Interaction.objects.count() == 1
        anonymous.save(update_fields=["user"])
    assert rows() == [(alice.pk, str(teapot.pk), "cart", 3.0),
                      (bob.pk, str(teapot.pk), "cart", 3.0)]


def test_user_set_reads_a_deferred_user_with_one_query_at_save_only(alice, teapot,
                                                                    django_assert_num_queries):
    with sources(OWNED_CARTS):
        anonymous = CartLine.objects.create(session_key="s", product=teapot)
        owned = CartLine.objects.create(user=alice, product=teapot)
        with django_assert_num_queries(1):  # loading costs no query per row
            lines = list(CartLine.objects.only("quantity").order_by("pk"))
        assert [line.pk for line in lines] == [anonymous.pk, owned.pk]
        for line in lines:
            line.user = alice
            line.save()
    # The stored user was read: only the line that had none records.
    assert rows()[1:] == [(alice.pk, str(teapot.pk), "cart", 3.0)]
    assert Interaction.objects.count() == 2


def test_user_set_needs_the_user_field_of_the_row_itself():
    entry = {**PURCHASES, "when": "user_set"}
    with sources(entry):
        [error] = [m for m in checks.run_checks() if m.id.startswith("django_recs.E")]
    assert error.id == "django_recs.E015"
    assert error.msg == ("DJANGO_RECS['SOURCES'][0]: when 'user_set' needs a user path that is "
                         "a ForeignKey of testapp.OrderLine itself, got 'order.customer'.")
    assert "Use 'created' or 'saved' there" in error.hint


# --- System checks ------------------------------------------------------------------------------

BROKEN = [
    ({**PURCHASES, "model": "testapp.Basket"}, "E011", "not an installed model"),
    ({**PURCHASES, "user": "order.custmer"}, "E012", "has no field or attribute 'custmer'"),
    ({**PURCHASES, "user": "product"}, "E012", "not the user model"),
    ({**PURCHASES, "item": "order.lines"}, "E012", "to-many relation"),
    ({**PURCHASES, "event": "buy"}, "E013", "unknown event 'buy'"),
    ({**PURCHASES, "weight": -2}, "E014", "finite number >= 0"),
    ({**PURCHASES, "weight": float("nan")}, "E014", "finite number >= 0"),
    ({**PURCHASES, "weight": [1]}, "E014", "not a number"),
    ({**PURCHASES, "weight": "order"}, "E014", "not a number"),
    ({**PURCHASES, "weight": "shop.weights.missing"}, "E016", "neither an attribute path"),
    ({**PURCHASES, "when": "sometimes"}, "E015", "'created', 'saved', 'user_set'"),
    ({**PURCHASES, "when": "tests.testapp.sources.missing"}, "E015", "not an importable"),
    ({**PURCHASES, "item": "order"}, "E017", "not in DJANGO_RECS\\['ITEM_MODELS'\\]"),
    ({**PURCHASES, "item": "shop.recs.parent_product"}, "E018",
     "item 'shop.recs.parent_product' is neither an attribute path on the model nor an "
     "importable function \\(No module named 'shop'\\)"),
    ({**PURCHASES, "item": "tests.testapp.sources.NOT_CALLABLE"}, "E018", "is not callable"),
    ({**PURCHASES, "item": "prodct"}, "E012", "has no field or attribute 'prodct'"),
    ({**VARIANT_PURCHASES, "select_related": "variant__prodct"}, "E012",
     "select_related .*'prodct'"),
    ({**VARIANT_PURCHASES, "select_related": ["quantity"]}, "E012",
     "select_related 'quantity' goes through 'quantity', which is not a ForeignKey"),
    ({**VARIANT_PURCHASES, "select_related": [1]}, "E010", "must be a list of lookups"),
    ({**PURCHASES, "colour": "red"}, "E010", "unknown key"),
    ({"model": "testapp.OrderLine", "event": "purchase"}, "E010", "missing 'user', 'item'"),
    ("testapp.OrderLine", "E010", "must be a dict"),
]


@pytest.mark.parametrize(("entry", "code", "message"), BROKEN, ids=[b[2] for b in BROKEN])
def test_checks_report_broken_sources_with_id_and_hint(entry, code, message):
    with sources(entry):
        errors = [m for m in checks.run_checks() if m.id.startswith("django_recs.E")]
    assert [m.id for m in errors] == [f"django_recs.{code}"]
    assert re.search(message, errors[0].msg)
    assert errors[0].hint


@pytest.mark.parametrize(("events", "code"), [
    ({"view": -1.0}, "E020"), ({"view": "heavy"}, "E020"), ({}, "E020"), ({"x" * 33: 1.0}, "E021"),
])
def test_checks_report_bad_event_weights(events, code):
    with override_settings(DJANGO_RECS={**settings.DJANGO_RECS, "EVENTS": events}):
        ids = [m.id for m in checks.run_checks() if m.id.startswith("django_recs.E02")]
    assert f"django_recs.{code}" in ids


def test_checks_pass_for_every_example_source():
    with sources(PURCHASES, RATINGS, GOOD_RATINGS, WISHLISTS, CARTS, VARIANT_PURCHASES,
                 {**VARIANT_PURCHASES, "select_related": ["variant__product", "order"]},
                 OWNED_CARTS):
        errors = [m for m in checks.run_checks() if m.id.startswith("django_recs.E")]
    assert errors == []


def test_checks_report_empty_item_models():
    with override_settings(DJANGO_RECS={**settings.DJANGO_RECS, "ITEM_MODELS": []}):
        ids = [m.id for m in checks.run_checks()]
    assert "django_recs.E001" in ids
