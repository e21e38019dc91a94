"""The admin: experiments with their variants, started, stopped, promoted; the check."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.test import override_settings
from django.urls import reverse

from django_recs.models import Experiment, PlacementAlgorithm
from tests.experiments.conftest import EXPERIMENTS
from tests.experiments.experiment_data import experiment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("settings_on")]


@pytest.fixture
def settings_on():
    with override_settings(DJANGO_RECS=EXPERIMENTS):
        yield


@pytest.fixture
def admin_client(client):
    User.objects.create_superuser("admin", "a@example.com", "x")
    client.login(username="admin", password="x")
    return client


def add_form(variants, placements="home, cart"):
    data = {"name": "home test", "placements": placements, "minimum_effect": "0.1",
            "variants-TOTAL_FORMS": str(len(variants)), "variants-INITIAL_FORMS": "0",
            "variants-MIN_NUM_FORMS": "0", "variants-MAX_NUM_FORMS": "1000"}
    for i, (name, algorithm, weight, control) in enumerate(variants):
        data.update({f"variants-{i}-name": name, f"variants-{i}-algorithm": algorithm,
                     f"variants-{i}-weight": str(weight)})
        if control:
            data[f"variants-{i}-is_control"] = "on"
    return data


def test_an_experiment_is_made_with_its_variants_then_started_stopped_and_promoted(admin_client):
    page = admin_client.post(reverse("admin:django_recs_experiment_add"),
                             add_form([("A", "similar", 1, True), ("B", "none", 1, False)]))
    assert page.status_code == 302
    made = Experiment.objects.get()
    assert made.status == "draft" and made.variants.count() == 2
    assert made.placement_list == ["home", "cart"]
    status = reverse("admin:django_recs_experiment_status", args=[made.pk])
    admin_client.post(status, {"action": "start"})
    made.refresh_from_db()
    assert made.status == "running" and running_placements(made) == ["cart", "home"]
    page = admin_client.get(reverse("admin:django_recs_experiment_results", args=[made.pk]))
    assert "No visitors yet." in page.content.decode()
    assert "Stop and promote B" in page.content.decode()
    admin_client.post(status, {"action": "stop", "promote": "B"})
    made.refresh_from_db()
    assert (made.status, running_placements(made), made.promoted_variant) == ("stopped", [], "B")
    assert made.results["variants"][1]["name"] == "B"
    assert dict(PlacementAlgorithm.objects.values_list("placement", "algorithm")) == {
        "home": "none", "cart": "none"}


def running_placements(experiment) -> list[str]:
    return sorted(experiment.placement_rows.exclude(running_placement=None)
                  .values_list("running_placement", flat=True))


@pytest.mark.parametrize("placements,message", [
    ("", "This field is required"),
    ("home, home", "listed twice"),
    ("home, " + "x" * 65, "at most 64 characters"),
])
def test_the_form_refuses_bad_placements(admin_client, placements, message):
    page = admin_client.post(reverse("admin:django_recs_experiment_add"),
                             add_form([("A", "similar", 1, True), ("B", "none", 1, False)],
                                      placements=placements))
    assert page.status_code == 200
    assert message in page.content.decode()
    assert not Experiment.objects.exists()


@pytest.mark.parametrize("variants,message", [
    ([("A", "similar", 1, True)], "at least two variants"),
    ([("A", "similar", 1, True), ("B", "similar", 1, True)], "Exactly one variant"),
    ([("A", "similar", 1, True), ("B", "simlar", 1, False)], "is not in"),
])
def test_the_form_refuses_variants_that_cannot_run(admin_client, variants, message):
    page = admin_client.post(reverse("admin:django_recs_experiment_add"), add_form(variants))
    assert page.status_code == 200
    assert message in page.content.decode()
    assert not Experiment.objects.exists()


def test_a_second_experiment_at_a_running_placement_does_not_start(admin_client):
    experiment(placement="home")
    second = experiment(placement="cart, home", running=False)
    page = admin_client.post(reverse("admin:django_recs_experiment_status", args=[second.pk]),
                             {"action": "start"}, follow=True)
    assert "already runs at placement &#x27;home&#x27;" in page.content.decode()
    second.refresh_from_db()
    assert second.status == "draft"


def test_variants_are_read_only_once_it_runs(admin_client):
    made = experiment()
    page = admin_client.get(reverse("admin:django_recs_experiment_change", args=[made.pk]))
    assert 'name="variants-0-weight"' not in page.content.decode()


@pytest.mark.parametrize("value", [-1, "10", float("nan"), True])
def test_a_bad_refresh_interval_is_e110(value):
    with override_settings(DJANGO_RECS={**EXPERIMENTS, "EXPERIMENT_REFRESH_SECONDS": value}):
        ids = [message.id for message in run_checks()]
    assert "django_recs.E110" in ids


def test_a_good_refresh_interval_passes():
    assert "django_recs.E110" not in [message.id for message in run_checks()]
