"""An experiment at several placements: one variant per visitor on all, one result, one
running experiment per placement held by the database, promotion at each placement.

Marker-free: these run on SQLite, PostgreSQL and MariaDB alike.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

import django_recs
from django_recs.experiments import start, stop
from django_recs.experiments.results import experiment_results
from django_recs.feedback import flush_impressions
from django_recs.models import Experiment, ExperimentPlacement, Impression, PlacementAlgorithm
from tests.experiments import test_routing
from tests.experiments.conftest import EXPERIMENTS
from tests.experiments.experiment_data import experiment, request_for
from tests.experiments.test_routing import requests_in, variant_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settings_on")]

BOTH = "product-also-bought, product-more"
products = test_routing.products  # fixture


@pytest.fixture
def settings_on():
    with override_settings(DJANGO_RECS=EXPERIMENTS):
        yield


def running() -> dict[str, int]:
    return dict(ExperimentPlacement.objects.exclude(running_placement=None)
                .values_list("running_placement", "experiment_id"))


def test_placements_are_a_comma_list_and_a_row_each(products):
    made = experiment(placement=" product-also-bought ,product-more,", running=False)
    assert made.placements == BOTH
    assert made.placement_list == ["product-also-bought", "product-more"]
    assert running() == {}
    start(made)
    assert running() == {"product-also-bought": made.pk, "product-more": made.pk}
    listed = experiment(placement=["home", "cart"], running=False)  # a list is taken too
    assert listed.placements == "home, cart"


def test_a_visitor_has_one_variant_at_every_placement_and_one_result(products):
    made = experiment(placement=BOTH)
    for variant, shown in (("A", [1, 2]), ("B", [5, 6])):
        request = requests_in(variant)
        assert variant_of(request, "product-more") == variant
        for placement in ("product-also-bought", "product-more"):
            items = django_recs.similar_to(products[0], 2, placement=placement, request=request)
            assert [p.pk for p in items] == [products[i].pk for i in shown]
    assert variant_of(requests_in("A"), "elsewhere") is None  # not one of its placements
    flush_impressions()
    rows = Impression.objects.filter(experiment=made)
    assert sorted(rows.values_list("placement", "variant")) == [
        ("product-also-bought", "A"), ("product-also-bought", "B"),
        ("product-more", "A"), ("product-more", "B")]
    results = experiment_results(made, resamples=100)
    assert [(v.name, v.visitors, v.impressions) for v in results.variants] == [
        ("A", 1, 2), ("B", 1, 2)]


def test_one_running_experiment_per_placement_held_by_the_database(products):
    first = experiment(placement="product-also-bought, home")
    second = experiment(placement="cart, home", running=False)
    second.status = Experiment.Status.RUNNING
    with pytest.raises(ValidationError, match="already runs at placement 'home'"):
        second.full_clean()
    second.status = Experiment.Status.DRAFT
    with pytest.raises(ValidationError, match="already runs at placement 'home'"):
        start(second)
    # Past validation, the unique column refuses it, and the save changes nothing.
    second.status = Experiment.Status.RUNNING
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
    second.refresh_from_db()
    assert second.status == "draft"
    assert running() == {"product-also-bought": first.pk, "home": first.pk}
    # Once the first stops, its placements are free: the second starts.
    stop(first)
    start(second)
    assert running() == {"cart": second.pk, "home": second.pk}


def test_a_placement_taken_out_of_a_running_experiment_is_freed(products):
    made = experiment(placement=BOTH)
    made.placements = "product-more"
    made.save()
    assert running() == {"product-more": made.pk}
    assert list(made.placement_rows.values_list("placement", flat=True)) == ["product-more"]
    other = experiment(placement="product-also-bought")
    assert running() == {"product-more": made.pk, "product-also-bought": other.pk}


def test_promote_serves_the_winner_at_each_placement(products):
    made = experiment(placement=BOTH)
    stop(made, promote_variant="B")
    assert dict(PlacementAlgorithm.objects.values_list("placement", "algorithm")) == {
        "product-also-bought": "similar-bm25", "product-more": "similar-bm25"}
    for placement in ("product-also-bought", "product-more"):
        items = django_recs.similar_to(products[0], 2, placement=placement,
                                       request=request_for())
        assert [p.pk for p in items] == [products[5].pk, products[6].pk]


@pytest.mark.parametrize("placements,message", [
    ("", "At least one placement"),
    (" , ", "At least one placement"),
    ("home, cart, home", "listed twice"),
    ("x" * 65, "at most 64 characters"),
    ("home\tpage", "no control characters"),
])
def test_bad_placements_are_refused_by_validation(placements, message):
    made = Experiment(name="bad", placements=placements)
    with pytest.raises(ValidationError, match=message):
        made.full_clean()


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_placements_to_rows_and_back():
    """0012 → 0014 keeps each experiment's placement and a running one's claim; and back."""
    executor = MigrationExecutor(connection)
    before, after = [("django_recs", "0012_experiments")], [("django_recs",
                                                            "0014_experiment_placements")]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        OldExperiment = old.get_model("django_recs", "Experiment")
        OldExperiment.objects.create(name="on", placement="home", status="running",
                                     running_placement="home", salt="s1")
        OldExperiment.objects.create(name="off", placement="home", status="stopped",
                                     salt="s2")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        NewExperiment = new.get_model("django_recs", "Experiment")
        Row = new.get_model("django_recs", "ExperimentPlacement")
        assert sorted(NewExperiment.objects.values_list("name", "placements")) == [
            ("off", "home"), ("on", "home")]
        assert sorted(Row.objects.values_list("experiment__name", "placement",
                                              "running_placement")) == [
            ("off", "home", None), ("on", "home", "home")]
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        assert sorted(old.get_model("django_recs", "Experiment").objects.values_list(
            "name", "placement", "running_placement")) == [
            ("off", "home", None), ("on", "home", "home")]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("django_recs"))
