"""Tuned runs: recompute(tune=True), recs_recompute --tune, the re-use of the last tune, checks."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.management import call_command
from django.urls import reverse

import django_recs
from django_recs import tasks
from django_recs.models import Interaction, Run
from tests.django.test_admin_runs import staff
from tests.pipeline.pipeline_fixtures import RECS, interact
from tests.testapp.models import Product

SPACE = {"l2": [0.01, 1000.0], "budget_s": 600}
EASE = {"class": "django_recs.algorithms.EASE", "l2": 1000.0, "TUNE": SPACE}
TUNED = {**RECS, "ALGORITHMS": {"ease": EASE, "popular": {"class": "django_recs.algorithms.Popular"}}}


class GroupShop:
    """60 users in 3 groups of 5 products, each buying 4 of their group's over 60 days."""

    def __init__(self):
        rng = np.random.default_rng(0)
        User = get_user_model()
        self.users = [User.objects.create(username=f"g{i}") for i in range(60)]
        self.products = [Product.objects.create(name=f"p{i}") for i in range(15)]
        rows = []
        for index, user in enumerate(self.users):
            group = index % 3
            for slot, item in enumerate(rng.choice(5, size=4, replace=False)):
                rows.append(interact(user, self.products[group * 5 + item], "purchase", 5,
                                     days_ago=60 - 15 * slot - rng.uniform(0, 10)))
        Interaction.objects.bulk_create(rows)


@pytest.fixture
def shop(db, settings):
    settings.DJANGO_RECS = TUNED
    return GroupShop()


def test_a_tuned_run_records_the_winner_and_its_validation_metrics(shop):
    [run] = django_recs.recompute("ease", sync=True, tune=True)
    assert run.status == "succeeded", run.error
    record = run.params["tune"]
    assert set(record["params"]) == {"l2"} and record["params"]["l2"] in (0.01, 1000.0)
    assert run.params["l2"] == record["params"]["l2"]  # the run fitted with the winner
    assert record["trials"] == 2 and record["exhausted"] and record["metric"] == "ndcg@10"
    assert "reused_from" not in record
    assert run.metrics["tune_validation_ndcg@10"] == record["validation_metrics"]["ndcg"]
    assert run.metrics["tune_trials"] == 2
    # The configured l2=1000.0 was tried first: the winner is at least as good.
    assert run.metrics["tune_configured_ndcg@10"] == record["configured_validation_metrics"]["ndcg"]
    assert run.metrics["tune_validation_ndcg@10"] >= run.metrics["tune_configured_ndcg@10"]
    assert "tune" in run.timings
    # The next plain run re-uses the chosen parameters and says where they came from.
    [again] = django_recs.recompute("ease", sync=True)
    assert again.status == "succeeded", again.error
    assert again.params["l2"] == record["params"]["l2"]
    assert again.params["tune"]["reused_from"] == run.pk and "tune" not in again.timings
    # ... and so does the one after it (the chain survives pruning of the tuned run).
    [third] = django_recs.recompute("ease", sync=True)
    assert third.params["tune"]["reused_from"] == run.pk


def test_the_admin_shows_the_tuned_parameters(shop):
    [run] = django_recs.recompute("ease", sync=True, tune=True)
    client = staff("manager", can_recompute=True)
    page = client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
    assert "tune_validation_ndcg@10" in page and "reused_from" not in page


def test_without_tune_an_entry_with_tune_runs_its_configured_parameters(shop):
    [run] = django_recs.recompute("ease", sync=True)
    assert run.status == "succeeded" and run.params["l2"] == 1000.0 and "tune" not in run.params


def test_tune_leaves_algorithms_without_tune_alone(shop):
    runs = django_recs.recompute(sync=True, tune=True)
    statuses = {run.algorithm: run for run in runs}
    assert statuses["popular"].status == "succeeded" and "tune" not in statuses["popular"].params
    assert "tune" in statuses["ease"].params


def test_a_search_that_cannot_split_falls_back_and_says_why(db, settings):
    settings.DJANGO_RECS = TUNED
    user = get_user_model().objects.create(username="only")
    products = [Product.objects.create(name=f"x{i}") for i in range(3)]
    Interaction.objects.bulk_create([interact(user, p, "purchase", 5) for p in products])
    [run] = django_recs.recompute("ease", sync=True, tune=True)
    assert run.status == "succeeded", run.error
    assert "error" in run.params["tune"] and run.params["l2"] == 1000.0
    # A failed search is not re-used.
    [again] = django_recs.recompute("ease", sync=True)
    assert "tune" not in again.params


def test_the_command_tunes_and_prints_the_choice(shop):
    out = StringIO()
    call_command("recs_recompute", "ease", "--sync", "--tune", stdout=out)
    text = out.getvalue()
    run = Run.objects.get(algorithm="ease", is_active=True)
    assert f"ease: l2={run.params['l2']} (validation ndcg@10 " in text
    assert "2 settings tried" in text


def test_the_metric_may_name_its_list_length(shop, settings):
    settings.DJANGO_RECS = {**TUNED, "ALGORITHMS": {
        "ease": {**EASE, "k": 3, "TUNE": {"k": [2, 3], "metric": "recall@5"}}}}
    [run] = django_recs.recompute("ease", sync=True, tune=True)
    assert run.status == "succeeded", run.error
    assert run.params["tune"]["metric"] == "recall@5" and run.params["k"] in (2, 3)
    assert "tune_validation_recall@5" in run.metrics


def test_the_task_tunes_when_asked(shop):
    result = tasks.recompute.delay("ease", tune=True).get()
    run = Run.objects.get(pk=result["run"])
    assert run.status == "succeeded" and run.params["tune"]["trials"] == 2


@pytest.mark.parametrize(
    ("tune", "code", "text"),
    [
        ([1, 2], "E130", "must be a dict"),
        ({"lambda": [1.0]}, "E131", "lambda not parameter"),
        ({"budget_s": 60}, "E131", "names no parameter"),
        ({"l2": []}, "E132", "l2 has no values"),
        ({"l2": [100.0, 0]}, "E132", "l2 must be a number > 0"),
        ({"l2": {"min": 0, "max": 10, "log": True}}, "E132", "log range"),
        ({"l2": [1.0], "budget_s": -1}, "E133", "budget_s"),
        ({"l2": [1.0], "metric": "speed"}, "E133", "unknown metric 'speed'"),
        ({"l2": [1.0], "metric": "ndcg@0"}, "E133", "list length must be an integer >= 1"),
        ({"l2": [1.0], "metric": "ndcg@x"}, "E133", "list length must be an integer >= 1"),
        ({"l2": [1.0], "validation_fraction": 2}, "E133", "validation_fraction"),
    ],
)
def test_bad_tune_entries_are_system_check_errors(db, settings, tune, code, text):
    settings.DJANGO_RECS = {**RECS, "ALGORITHMS": {"ease": {**EASE, "TUNE": tune}}}
    errors = [e for e in checks.run_checks() if e.id.startswith("django_recs.E13")]
    assert [e.id for e in errors] == [f"django_recs.{code}"]
    assert text in errors[0].msg and errors[0].hint


def test_content_algorithms_cannot_be_tuned(db, settings):
    content = {"class": "django_recs.algorithms.ContentKNN", "TUNE": {"k": [5, 10]}}
    settings.DJANGO_RECS = {**RECS, "ALGORITHMS": {"content": content}}
    assert "django_recs.E134" in [e.id for e in checks.run_checks()]


def test_a_good_tune_entry_passes_the_checks(db, settings):
    settings.DJANGO_RECS = TUNED
    assert not [e for e in checks.run_checks() if e.id.startswith("django_recs.E13")]


def test_a_sharded_tuned_run_fits_its_shards_with_the_winner(shop, settings, tmp_path):
    from django_recs.models import RunShard

    settings.MEDIA_ROOT = str(tmp_path / "media")
    walk = {"class": "django_recs.algorithms.RP3beta", "k": 3,
            "TUNE": {"beta": [0.0, 0.5], "k": [2, 4]}}
    settings.DJANGO_RECS = {**TUNED, "SHARDS": 2, "ALGORITHMS": {"walk": walk}}
    result = tasks.recompute.delay("walk", tune=True).get()
    run = Run.objects.get(pk=result["run"])
    assert run.status == "succeeded", run.error
    assert run.params["sharding"]["kind"] == "itemknn"
    assert RunShard.objects.filter(run=run).count() >= 2
    chosen = run.params["tune"]["params"]
    assert run.params["k"] == chosen["k"] and run.params["beta"] == chosen["beta"]
    assert run.metrics["tune_trials"] == 5  # the configured k=3 first, then the grid of 4


def test_a_tune_that_is_not_a_dict_fails_before_any_run_starts(db, settings):
    settings.DJANGO_RECS = {**RECS, "ALGORITHMS": {
        "popular": {"class": "django_recs.algorithms.Popular"},
        "ease": {**EASE, "TUNE": [1, 2]}}}
    with pytest.raises(ValueError, match="TUNE'\\] must be a dict"):
        django_recs.recompute(sync=True, tune=True)
    assert not Run.objects.exists()
