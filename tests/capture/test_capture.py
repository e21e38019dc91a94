"""record(), anonymous sessions joining on login, item deletion, forgetting a user."""

from __future__ import annotations

import datetime
import math
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

import django_recs
from django_recs.models import Interaction, PopularItem, Recommendation, Run, SimilarItem
from tests.testapp.models import Gadget, NotAnItem, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password="secret")


@pytest.fixture
def bob():
    return User.objects.create_user("bob", password="secret")


@pytest.fixture
def product():
    return Product.objects.create(name="Teapot")


@pytest.fixture
def gadget():
    return Gadget.objects.create(name="Kettle")


def test_record_writes_one_row_with_one_insert(alice, product, django_assert_num_queries):
    ContentType.objects.get_for_model(Product)  # Django caches content types per process
    with django_assert_num_queries(2) as captured:  # is the user forgotten? then the INSERT
        interaction = django_recs.record(alice, product, "purchase")
    assert "forgottenuser" in captured.captured_queries[0]["sql"].lower()
    assert captured.captured_queries[1]["sql"].lstrip().upper().startswith("INSERT")
    with django_assert_num_queries(1):  # an anonymous visitor: the INSERT alone
        django_recs.record(None, product, session_key="s" * 32)
    Interaction.objects.filter(user=None).delete()
    row = Interaction.objects.get()
    assert row.pk == interaction.pk
    assert (row.user_id, row.event, row.weight) == (alice.pk, "purchase", 5.0)  # EVENTS default
    assert row.item_type == ContentType.objects.get_for_model(Product)
    assert row.item_key == str(product.pk)
    assert abs((timezone.now() - row.timestamp).total_seconds()) < 60


def test_record_uuid_item_explicit_weight_and_naive_timestamp(alice, gadget):
    when = datetime.datetime(2011, 12, 9, 12, 50)
    django_recs.record(alice, gadget, "cart", weight=Decimal("2.5"), timestamp=when)
    row = Interaction.objects.get()
    assert row.item_key == gadget.pk.hex
    assert row.weight == 2.5
    assert row.timestamp == timezone.make_aware(when)


def test_anonymous_visitor_records_under_the_session_key(product):
    django_recs.record(AnonymousUser(), product, session_key="s" * 32)
    django_recs.record(None, product, "cart", session_key="t" * 32)
    rows = Interaction.objects.order_by("pk")
    assert [(r.user_id, r.session_key, r.event) for r in rows] == [
        (None, "s" * 32, "view"), (None, "t" * 32, "cart"),
    ]


BAD_INPUT = [
    ({"weight": math.nan}, "finite"),
    ({"weight": math.inf}, "finite"),
    ({"weight": -1}, ">= 0"),
    ({"weight": "3"}, "must be a number"),
    ({"weight": True}, "must be a number"),
    ({"event": "clicked"}, "unknown event 'clicked'"),
    ({"item": "unsaved product"}, "not saved yet"),
    ({"item": "unsaved gadget"}, "not saved yet"),  # a UUID pk is set before saving
    ({"item": "not an item"}, "testapp.NotAnItem is not in DJANGO_RECS\\['ITEM_MODELS'\\]"),
    ({"item": "a string"}, "item must be a model instance"),
    ({"user": None}, "needs a user or a session_key"),
    ({"user": "anonymous"}, "needs a user or a session_key"),
    ({"user": "unsaved user"}, "user .* is not saved yet"),
    ({"user": "a product"}, "user must be a auth.User instance"),
    ({"user": None, "session_key": "x" * 41}, "at most 40"),
    ({"timestamp": "2011-12-09"}, "timestamp must be a datetime"),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_raises_value_error_and_writes_nothing(alice, product, change, message):
    items = {
        "unsaved product": Product(name="x"),
        "unsaved gadget": Gadget(name="x"),
        "not an item": NotAnItem.objects.create(name="x"),
        "a string": "teapot",
    }
    users = {"anonymous": AnonymousUser(), "unsaved user": User(username="x"), "a product": product}
    kwargs = {"user": alice, "item": product, "event": "view", **change}
    kwargs["item"] = items.get(kwargs["item"], kwargs["item"]) if isinstance(kwargs["item"], str) \
        else kwargs["item"]
    if isinstance(kwargs["user"], str):
        kwargs["user"] = users[kwargs["user"]]
    user, item, event = kwargs.pop("user"), kwargs.pop("item"), kwargs.pop("event")
    with pytest.raises(ValueError, match=message):
        django_recs.record(user, item, event, **kwargs)
    assert Interaction.objects.count() == 0


def test_an_order_that_rolls_back_leaves_no_interaction(alice, product):
    class PaymentDeclined(Exception):
        pass

    with pytest.raises(PaymentDeclined), transaction.atomic():
        django_recs.record(alice, product, "purchase")
        assert Interaction.objects.count() == 1
        raise PaymentDeclined
    assert Interaction.objects.count() == 0


@pytest.mark.urls("tests.testapp.urls")
def test_anonymous_history_joins_the_account_on_a_real_login(client, alice, bob, product):
    teapot, kettle = product, Product.objects.create(name="Kettle")
    other_visitor = django_recs.record(None, kettle, session_key="someone-else-entirely-1234")
    assert client.get(f"/products/{teapot.pk}/").status_code == 200
    assert client.get(f"/products/{kettle.pk}/").status_code == 200
    anonymous_key = client.session.session_key
    assert Interaction.objects.filter(session_key=anonymous_key, user=None).count() == 2

    response = client.post("/login/", {"username": "alice", "password": "secret"})
    assert response.status_code == 302  # logged in
    assert client.session.session_key != anonymous_key  # login() cycled the key

    history = Interaction.objects.filter(user=alice).order_by("pk")
    assert [row.item_key for row in history] == [str(teapot.pk), str(kettle.pk)]
    other_visitor.refresh_from_db()
    assert other_visitor.user_id is None  # someone else's session is untouched
    assert not Interaction.objects.filter(user=bob).exists()

    client.get(f"/products/{teapot.pk}/")  # signed in now: recorded for alice
    assert Interaction.objects.filter(user=alice).count() == 3


def test_join_session_function(alice, product):
    django_recs.record(None, product, session_key="abc12345")
    django_recs.record(None, product, session_key="other123")
    from django_recs.capture import join_session

    assert join_session("abc12345", alice) == 1
    assert join_session(["abc12345"], alice) == 0  # already joined
    assert Interaction.objects.filter(user=alice).count() == 1


@override_settings(DJANGO_RECS={**settings.DJANGO_RECS, "REFRESH_ON_RECORD": True})
def test_refresh_on_record_enqueues_after_commit(alice, product, monkeypatch,
                                                 django_capture_on_commit_callbacks):
    from django_recs import tasks

    enqueued = []
    monkeypatch.setattr(tasks.refresh_user, "delay", lambda user_id: enqueued.append(user_id))
    with django_capture_on_commit_callbacks(execute=True):
        django_recs.record(alice, product)
        assert enqueued == []  # not before the commit
    assert enqueued == [alice.pk]


# --- Deleting items and users, forgetting users --------------------------------------------


def _stored_results(product_pk: str, other_pk: str, user):
    run = Run.objects.create(algorithm="similar", status="succeeded", is_active=True)
    ct = ContentType.objects.get_for_model(Product)
    SimilarItem.objects.create(run=run, item_type=ct, item_key=product_pk, neighbour_type=ct,
                               neighbour_key=other_pk, score=0.5, rank=0)
    SimilarItem.objects.create(run=run, item_type=ct, item_key=other_pk, neighbour_type=ct,
                               neighbour_key=product_pk, score=0.5, rank=0)
    Recommendation.objects.create(run=run, user=user, item_type=ct, item_key=product_pk,
                                  score=1.0, rank=0)
    Recommendation.objects.create(run=run, user=user, item_type=ct, item_key=other_pk,
                                  score=1.0, rank=1, reason_type=ct, reason_key=product_pk)
    PopularItem.objects.create(run=run, item_type=ct, item_key=product_pk, score=3, rank=0)
    PopularItem.objects.create(run=run, item_type=ct, item_key=other_pk, score=2, rank=1)


def test_deleting_an_item_removes_its_interactions_and_stored_results(alice, product, gadget):
    other = Product.objects.create(name="Cup")
    django_recs.record(alice, product)
    django_recs.record(alice, other)
    django_recs.record(alice, gadget)
    _stored_results(str(product.pk), str(other.pk), alice)

    product.delete()

    assert sorted(Interaction.objects.values_list("item_key", flat=True)) == sorted(
        [str(other.pk), gadget.pk.hex]
    )
    assert not SimilarItem.objects.exists()  # it was item or neighbour of both rows
    assert list(Recommendation.objects.values_list("item_key", "reason_key")) == [
        (str(other.pk), "")
    ]
    assert list(PopularItem.objects.values_list("item_key", flat=True)) == [str(other.pk)]

    gadget.delete()  # UUID keys too
    assert list(Interaction.objects.values_list("item_key", flat=True)) == [str(other.pk)]


def test_deleting_a_user_removes_their_interactions(alice, bob, product):
    django_recs.record(alice, product)
    django_recs.record(bob, product)
    alice.delete()
    assert list(Interaction.objects.values_list("user_id", flat=True)) == [bob.pk]


def test_forget_user_deletes_interactions_and_recommendations(alice, bob, product):
    other = Product.objects.create(name="Cup")
    for _ in range(3):
        django_recs.record(alice, product)
    django_recs.record(bob, product)
    _stored_results(str(product.pk), str(other.pk), alice)
    assert django_recs.forget_user(alice) == 3 + 2
    assert not Interaction.objects.filter(user=alice).exists()
    assert not Recommendation.objects.filter(user=alice).exists()
    assert Interaction.objects.filter(user=bob).count() == 1
    assert django_recs.forget_user(alice.pk) == 0


def test_recs_forget_command_reports_rows(alice, product, capsys):
    django_recs.record(alice, product)
    django_recs.record(alice, product, "cart")
    call_command("recs_forget", "--user", str(alice.pk))
    out = capsys.readouterr().out
    assert f"Deleted 2 rows stored for user {alice.pk}" in out
    assert "2 django_recs.Interaction" in out
    assert not Interaction.objects.exists()


def test_recs_forget_rejects_a_bad_id():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a valid user id"):
        call_command("recs_forget", "--user", "abc")


# --- Admin ------------------------------------------------------------------------------------


@pytest.mark.urls("tests.testapp.urls")
def test_admin_lists_interactions_read_only_with_item_links_and_no_query_per_row(
    admin_client, alice, django_assert_max_num_queries
):
    def page_queries(n_products):
        Interaction.objects.all().delete()
        for i in range(n_products):
            product = Product.objects.create(name=f"Product {i}")
            gadget = Gadget.objects.create(name=f"Gadget {i}")
            django_recs.record(alice, product, "purchase")
            django_recs.record(None, gadget, session_key=f"session-{i:04d}")
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get("/admin/django_recs/interaction/")
        assert response.status_code == 200
        return len(captured), response.content.decode()

    few, _ = page_queries(2)
    many, html = page_queries(20)
    assert many == few  # one query per item model on the page, not per row
    product = Product.objects.get(name="Product 7")
    gadget = Gadget.objects.get(name="Gadget 7")
    assert f'<a href="/admin/testapp/product/{product.pk}/change/">Product 7</a>' in html
    assert f'<a href="/admin/testapp/gadget/{gadget.pk}/change/">Gadget 7</a>' in html
    assert "alice" in html

    filtered = admin_client.get("/admin/django_recs/interaction/?event=purchase").content.decode()
    assert "Product 7" in filtered and "Gadget 7" not in filtered
    searched = admin_client.get("/admin/django_recs/interaction/?q=alice").content.decode()
    assert "Product 3" in searched and "Gadget 3" not in searched
    assert admin_client.get("/admin/django_recs/interaction/add/").status_code == 403
    with django_assert_max_num_queries(few):
        admin_client.get("/admin/django_recs/interaction/")


def test_interaction_str_names_the_visitor(alice, product):
    row = django_recs.record(alice, product)
    assert str(row).startswith(str(alice.pk))
    anonymous = django_recs.record(None, product, session_key=uuid.uuid4().hex)
    assert "session" in str(anonymous)
