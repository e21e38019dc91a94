"""Visitors with known click and purchase probabilities, driven through the whole path.

Serving at a placement in an experiment, the impressions written, clicks
recorded from the lists' tokens, purchases recorded through capture; then
the results (and the admin's page) read what happened.
"""

from __future__ import annotations

import random
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings
from django.urls import reverse

import django_recs
from django_recs.experiments.results import experiment_results
from django_recs.feedback import flush_impressions, record_click
from django_recs.items import item_content_type
from django_recs.models import Click
from tests.experiments.conftest import EXPERIMENTS
from tests.experiments.experiment_data import experiment, request_for
from tests.serving.serving_data import store_neighbours, store_popular
from tests.testapp.models import Category, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def products():
    category = Category.objects.create(name="mugs")
    items = [Product.objects.create(name=f"p{i}", category=category) for i in range(8)]
    store_neighbours(items[0], [(items[1], 0.9), (items[2], 0.8)], algorithm="similar")
    store_neighbours(items[0], [(items[5], 0.9), (items[6], 0.8)], algorithm="similar-bm25")
    store_popular([(item, 10.0 - i) for i, item in enumerate(items)])
    item_content_type(Product)
    return items


def simulate(products, made, *, visitors: int, click: dict, buy: dict, seed: int) -> dict:
    """Drive ``visitors`` anonymous visitors; ``click``/``buy``: probability per variant.

    Deterministic: the visitors' units come from the seed too (and the
    experiment has a fixed id and salt, see ``simulated``), so which visitor
    lands in which variant is the same on every run and database.
    """
    rng = random.Random(seed)
    units = random.Random(seed + 1_000)
    with mock.patch("django_recs.experiments.units.secrets.token_urlsafe",
                    lambda nbytes: units.randbytes(nbytes).hex()):
        return _visit(products, made, rng, visitors=visitors, click=click, buy=buy)


def simulated(**fields):
    """An experiment as ``experiment()`` makes it, with a fixed id and salt."""
    return experiment(pk=90_001, salt="simulated", **fields)


def _visit(products, made, rng, *, visitors: int, click: dict, buy: dict) -> dict:
    assigned = {}
    for _ in range(visitors):
        session = SessionStore()
        session.create()
        request = request_for(session=session)
        items = django_recs.similar_to(products[0], 2, placement="product-also-bought",
                                       request=request)
        variant = next(iter(assigned_variant(request, made)))
        assigned[variant] = assigned.get(variant, 0) + 1
        if items and rng.random() < click[variant]:
            record_click(request_for(session=session), items[0].recs_impression.token(0))
        if rng.random() < buy[variant]:
            django_recs.record(None, products[3], "purchase", session_key=session.session_key,
                               value=rng.choice([10.0, 20.0, 80.0]))
    flush_impressions()
    return assigned


def assigned_variant(request, made):
    from django_recs.experiments.assignment import choose
    from django_recs.experiments.units import SESSION_KEY

    names = list(made.variants.order_by("id").values_list("name", flat=True))
    index = choose(made.pk, made.salt, request.session[SESSION_KEY], [1.0, 2.0])
    return [names[index]]


@override_settings(DJANGO_RECS=EXPERIMENTS)
def test_a_real_difference_is_found_and_shown_on_the_admins_page(products, client):
    made = simulated(minimum_effect=1.0)
    split = simulate(products, made, visitors=1600, click={"A": 0.10, "B": 0.20},
                     buy={"A": 0.04, "B": 0.10}, seed=1)
    results = experiment_results(made)
    a, b = results.variants
    assert (a.visitors, b.visitors) == (split["A"], split["B"])
    assert a.impressions == a.visitors and b.impressions == b.visitors
    assert a.clicked_impressions + b.clicked_impressions == Click.objects.count()
    assert results.enough_data and not results.sample_ratio_mismatch
    assert b.conversion_difference["p_value"] < 0.05
    assert b.conversion_lift["lift"] > 0 and b.conversion_lift["low"] > 0
    assert results.verdict[0].startswith("B converts") and "better than A" in results.verdict[0]
    assert b.click_through_difference["p_value"] < 0.05
    # The admin's page says the same.
    User.objects.create_superuser("admin", "a@example.com", "x")
    client.login(username="admin", password="x")
    page = client.get(reverse("admin:django_recs_experiment_results", args=[made.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "B converts" in html and "fixed-horizon" in html
    assert html.count('class="recs-variant"') == 2
    assert "Sample ratio mismatch" not in html


@override_settings(DJANGO_RECS=EXPERIMENTS)
def test_equal_variants_are_reported_as_no_significant_difference(products):
    made = simulated(minimum_effect=1.0,
                      arms=(("A", "similar", 1, True), ("B", "similar", 1, False)))
    simulate(products, made, visitors=1600, click={"A": 0.15, "B": 0.15},
             buy={"A": 0.06, "B": 0.06}, seed=2)
    results = experiment_results(made)
    assert results.enough_data
    assert results.verdict[0].startswith("No significant difference in conversion between B and A")
    assert results.variants[1].conversion_difference["p_value"] >= 0.05


@override_settings(DJANGO_RECS=EXPERIMENTS)
def test_a_hold_out_is_measured_by_its_visitors_purchases(products):
    made = simulated(minimum_effect=1.0, arms=(("none", "none", 1, True),
                                                ("B", "similar", 1, False)))
    simulate(products, made, visitors=1600, click={"none": 0.0, "B": 0.2},
             buy={"none": 0.03, "B": 0.09}, seed=3)
    results = experiment_results(made)
    control, b = results.variants
    assert control.impressions == control.visitors > 0 and control.ctr is None
    assert control.converters > 0
    assert b.click_through_difference is None  # no lists to click in the hold-out
    assert b.conversion_difference["p_value"] < 0.05


@override_settings(DJANGO_RECS=EXPERIMENTS)
def test_too_few_visitors_says_how_many_more_are_needed(products):
    made = simulated(minimum_effect=0.1)
    simulate(products, made, visitors=400, click={"A": 0.1, "B": 0.1},
             buy={"A": 0.05, "B": 0.05}, seed=4)
    results = experiment_results(made)
    assert not results.enough_data
    assert results.verdict[0].startswith("Not enough data yet: about ")
    assert results.required_per_variant > 10_000
