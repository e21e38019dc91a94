"""Serving at a placement in an experiment: the variant's list, logged with its experiment."""

from __future__ import annotations

import pytest
from django.contrib.auth import login
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.template import Context, Template
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

import django_recs
from django_recs.experiments import route, start, stop
from django_recs.experiments.units import SESSION_KEY
from django_recs.feedback import flush_impressions
from django_recs.items import item_content_type
from django_recs.models import Experiment, ExperimentVisitor, Impression, PlacementAlgorithm
from django_recs.serving.visitors import Visitor
from tests.experiments.conftest import EXPERIMENTS
from tests.experiments.experiment_data import experiment, request_for
from tests.serving.serving_data import store_neighbours, store_popular
from tests.testapp.models import Category, Product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settings_on")]


@pytest.fixture
def settings_on():
    with override_settings(DJANGO_RECS=EXPERIMENTS):
        yield


@pytest.fixture
def products():
    category = Category.objects.create(name="mugs")
    items = [Product.objects.create(name=f"p{i}", category=category) for i in range(8)]
    store_neighbours(items[0], [(items[1], 0.9), (items[2], 0.8)], algorithm="similar")
    store_neighbours(items[0], [(items[5], 0.9), (items[6], 0.8)], algorithm="similar-bm25")
    store_popular([(item, 10.0 - i) for i, item in enumerate(items)])
    item_content_type(Product)
    return items


def variant_of(request, placement="product-also-bought"):
    found = route(placement, Visitor.of(request.user, request.session.session_key), request)
    return found.variant if found else None


def requests_in(variant: str, placement="product-also-bought"):
    """A fresh anonymous request that the experiment assigns to ``variant``."""
    for _ in range(200):
        request = request_for()
        if variant_of(request, placement) == variant:
            return request
    raise AssertionError(f"no visitor drawn into {variant}")


def test_each_variant_serves_its_algorithm_and_the_impression_names_experiment_and_variant(
        products):
    made = experiment()
    for variant, shown in (("A", [1, 2]), ("B", [5, 6])):
        request = requests_in(variant)
        items = django_recs.similar_to(products[0], 2, placement="product-also-bought",
                                       request=request)
        assert [p.pk for p in items] == [products[i].pk for i in shown]
    flush_impressions()
    rows = {row.variant: row for row in Impression.objects.all()}
    assert set(rows) == {"A", "B"}
    assert rows["A"].algorithm == "similar" and rows["B"].algorithm == "similar-bm25"
    assert {row.experiment_id for row in rows.values()} == {made.pk}
    assert all(row.visitor_unit.startswith("v") for row in rows.values())


def test_the_template_tag_goes_through_the_experiment(products):
    experiment(arms=(("A", "similar", 1, True), ("B", "similar-bm25", 1, False)))
    request = requests_in("B")
    html = Template("{% load recs %}{% similar_items product 2 placement='product-also-bought' "
                    "as items %}{% for p in items %}{{ p.name }} {% endfor %}").render(
        Context({"request": request, "product": products[0]}))
    assert html.split() == ["p5", "p6"]


def test_a_hold_out_variant_shows_an_empty_list_and_still_counts_the_visitor(products):
    made = experiment(arms=(("control", "none", 1, True), ("B", "similar", 1, False)))
    request = requests_in("control")
    items = django_recs.similar_to(products[0], 2, placement="product-also-bought",
                                   request=request)
    assert list(items) == []
    flush_impressions()
    row = Impression.objects.get()
    assert (row.experiment_id, row.variant, row.algorithm, row.items) == (
        made.pk, "control", "none", "")
    assert row.visitor_unit == request.session[SESSION_KEY]


def test_a_hold_out_still_checks_the_pages_arguments(products):
    experiment(arms=(("control", "none", 1, True), ("B", "similar", 1, False)))
    request = requests_in("control")
    with pytest.raises(ValueError):
        django_recs.similar_to(products[0], -1, placement="product-also-bought", request=request)


def test_the_variant_is_kept_when_the_anonymous_visitor_logs_in(products):
    experiment()
    user = User.objects.create_user("ann", password="x")
    session = SessionStore()
    request = request_for(session=session)
    before = variant_of(request)
    unit = session[SESSION_KEY]
    session.save()
    old_key = session.session_key
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    assert request.session.session_key != old_key  # login() cycled the key
    assert variant_of(request) == before
    assert ExperimentVisitor.objects.get(user=user).unit == unit
    # Another device of the same account: the account's unit, the same variant.
    other_device = request_for(user=user)
    assert variant_of(other_device) == before
    assert other_device.session[SESSION_KEY] == unit


def test_an_account_with_a_unit_keeps_it_at_login(products):
    experiment()
    user = User.objects.create_user("bob", password="x")
    ExperimentVisitor.objects.create(user=user, unit="u-established")
    request = request_for()
    variant_of(request)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    assert request.session[SESSION_KEY] == "u-established"


def test_serving_in_a_running_experiment_costs_no_query_once_the_process_knows_it(products):
    experiment()
    experiment(placement="home")  # another placement's experiment changes nothing here
    user = User.objects.create_user("carl", password="x")
    request = request_for(user=user)
    django_recs.similar_to(products[0], 2, placement="product-also-bought", request=request)
    with CaptureQueriesContext(connection) as in_experiment:
        django_recs.similar_to(products[0], 2, placement="product-also-bought", request=request)
    with CaptureQueriesContext(connection) as plain:
        django_recs.similar_to(products[0], 2, request=request)
    assert len(in_experiment) == len(plain)


def test_stopping_an_experiment_takes_effect_at_once_in_this_process(products):
    made = experiment(arms=(("A", "none", 1, True), ("B", "none", 1, False)))
    request = request_for()
    assert list(django_recs.similar_to(products[0], 2, placement="product-also-bought",
                                       request=request)) == []
    stop(made)
    items = django_recs.similar_to(products[0], 2, placement="product-also-bought",
                                   request=request)
    assert [p.pk for p in items] == [products[1].pk, products[2].pk]


def test_bots_and_unknown_visitors_are_left_out(products):
    experiment(arms=(("A", "none", 1, True), ("B", "none", 1, False)))
    bot = request_for(agent="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert len(django_recs.similar_to(products[0], 2, placement="product-also-bought",
                                      request=bot)) == 2
    assert SESSION_KEY not in bot.session
    assert len(django_recs.similar_to(products[0], 2, placement="product-also-bought")) == 2


def test_one_running_experiment_per_placement_in_the_database_and_in_validation(products):
    experiment()
    second = experiment(running=False)
    second.status = Experiment.Status.RUNNING
    with pytest.raises(ValidationError, match="already runs"):
        second.full_clean()
    with pytest.raises(ValidationError, match="already runs"):
        second.status = Experiment.Status.DRAFT
        start(second)
    second.status = Experiment.Status.RUNNING
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
    # Drafts and stopped experiments at the same placement are fine.
    experiment(running=False)


def test_start_refuses_variants_that_cannot_run(products):
    made = experiment(arms=(("A", "similar", 1, True), ("B", "nonesuch", 1, False)),
                      running=False)
    with pytest.raises(ValidationError, match="'nonesuch' is not in"):
        start(made)
    one = experiment(arms=(("A", "similar", 1, True),), running=False, placement="home")
    with pytest.raises(ValidationError, match="at least two"):
        start(one)
    no_control = experiment(arms=(("A", "similar", 1, False), ("B", "popular", 1, False)),
                            running=False, placement="cart")
    with pytest.raises(ValidationError, match="Exactly one variant must be the control"):
        start(no_control)


def test_promote_serves_the_winner_to_everyone_and_logs_no_experiment(products):
    made = experiment()
    with pytest.raises(ValueError, match="no variant 'C'"):
        stop(made, promote_variant="C")
    stop(made, promote_variant="B")
    assert PlacementAlgorithm.objects.get(placement="product-also-bought").algorithm == \
        "similar-bm25"
    made.refresh_from_db()
    assert (made.status, made.promoted_variant) == ("stopped", "B")
    for _ in range(5):
        items = django_recs.similar_to(products[0], 2, placement="product-also-bought",
                                       request=request_for())
        assert [p.pk for p in items] == [products[5].pk, products[6].pk]
    flush_impressions()
    assert set(Impression.objects.values_list("algorithm", "experiment_id")) == {
        ("similar-bm25", None)}


def test_forget_user_deletes_the_accounts_unit(products):
    experiment()
    user = User.objects.create_user("dora", password="x")
    variant_of(request_for(user=user))
    assert ExperimentVisitor.objects.filter(user=user).exists()
    django_recs.forget_user(user)
    assert not ExperimentVisitor.objects.filter(user=user).exists()
