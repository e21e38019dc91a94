"""An erasure during a run stays erased: nothing of the user is stored once forget_user() returns.

A run in flight has read the user's history already. It must not bring
their recommendations back with its swap, and a sharded run's files in the
storage (the snapshot of the matrix, the ALS user factors) must not keep
their history until the run is pruned.
"""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

import django_recs
from django_recs import tasks
from django_recs.algorithms import ALS
from django_recs.models import ForgottenUser, Interaction, PopularItem, Recommendation, Run
from django_recs.pipeline import sharding, shards
from django_recs.pipeline.erasure import ERASED_USER
from django_recs.pipeline.snapshot import load_arrays, stored_artifact
from tests.pipeline import pipeline_fixtures, sharding_fixtures
from tests.pipeline.pipeline_fixtures import RECS, interact
from tests.pipeline.sharding_fixtures import SHARDED, run_through_celery

# These tests read the rows layout's Recommendation rows (the lists layout: test_lists_layout.py).
pytestmark = pytest.mark.usefixtures("rows_layout")

shop = pipeline_fixtures.shop  # fixture
random_shop = sharding_fixtures.random_shop  # fixture
media = sharding_fixtures.media  # fixture


class ForgettingALS(ALS):
    """ALS that runs a hook in its compute stage: a forget_user() while the run computes."""

    hook = None

    def fit(self, matrix, **kwargs):
        if ForgettingALS.hook is not None:
            ForgettingALS.hook()
        return super().fit(matrix, **kwargs)


@pytest.fixture
def forgetting_during_compute(settings):
    settings.DJANGO_RECS = {**RECS, "ALGORITHMS": {
        **RECS["ALGORITHMS"],
        "personal": {**RECS["ALGORITHMS"]["personal"],
                     "class": "tests.pipeline.test_erasure.ForgettingALS"},
    }}
    yield ForgettingALS
    ForgettingALS.hook = None


def stored_for(user) -> int:
    return Recommendation.objects.filter(user_id=user.pk).count()


def test_forget_user_during_compute_is_not_undone_by_the_swap(shop, forgetting_during_compute):
    buyer = shop.users[0]
    [before] = django_recs.recompute("personal", sync=True)
    assert stored_for(buyer) > 0
    deleted = []
    forgetting_during_compute.hook = lambda: deleted.append(django_recs.forget_user(buyer))
    [run] = django_recs.recompute("personal", sync=True)
    assert run.status == "succeeded", run.error
    assert deleted and deleted[0] > 0
    # The run computed a list for the user from the history it had loaded; the swap dropped it.
    assert stored_for(buyer) == 0
    assert not Interaction.objects.filter(user=buyer).exists()
    assert {item.recs_source for item in django_recs.recommended_for(buyer, 5)} <= {"popular"}
    assert Recommendation.objects.filter(run=run).exists()  # everyone else keeps theirs


def test_a_forgotten_users_rows_that_slipped_in_are_skipped_and_counted(shop):
    buyer = shop.users[0]
    django_recs.forget_user(buyer)
    # Written around capture (a raw bulk insert racing the erasure, say).
    Interaction.objects.bulk_create([interact(buyer, p, "purchase", 5) for p in shop.products[:3]])
    [run] = django_recs.recompute("personal", sync=True)
    assert run.status == "succeeded"
    assert run.metrics["ignored_forgotten_user"] == 3
    assert stored_for(buyer) == 0


@pytest.mark.parametrize(("spread", "window", "queries"), [
    (1, 1_000_000, 1),  # ids filling their range: one scan
    (1, 128, 3),        # ... in windows of ids
    (50, 1_000_000, 1),  # sparse ids: an IN list
])
def test_the_existing_users_among_many_ids_are_found(db, spread, window, queries, monkeypatch,
                                                     django_assert_num_queries):
    from django_recs.pipeline import erasure
    from django_recs.pipeline.erasure import existing_user_ids

    monkeypatch.setattr(erasure, "ID_WINDOW", window)

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"bulk{i}") for i in range(300)])
    ids = np.array(sorted(user.pk for user in users), dtype=np.int64)
    deleted = ids[::7]
    User.objects.filter(pk__in=deleted.tolist()).delete()
    never = int(ids[-1]) + 1
    asked = np.unique(np.concatenate([ids[::spread], [never]]))
    with django_assert_num_queries(queries):
        found = existing_user_ids(asked)
    assert found.tolist() == sorted(set(asked.tolist()) - set(deleted.tolist()) - {never})


def test_rows_of_a_user_deleted_by_another_process_are_skipped_and_forget_removes_them(shop):
    User = get_user_model()
    stale = User.objects.get(pk=shop.users[1].pk)
    User.objects.filter(pk=stale.pk).delete()  # another process deletes the account
    orphan = django_recs.record(stale, shop.products[4], "purchase")  # this one still records
    assert orphan is not None and Interaction.objects.filter(user_id=stale.pk).count() == 1
    [run] = django_recs.recompute("personal", sync=True)
    assert run.status == "succeeded"
    assert run.metrics["ignored_user_deleted"] == 1
    assert not Recommendation.objects.filter(user_id=stale.pk).exists()
    assert django_recs.forget_user(stale.pk) == 1  # by id: the orphan goes too
    assert not Interaction.objects.filter(user_id=stale.pk).exists()


def test_a_row_for_an_item_deleted_by_another_process_is_ignored_and_forget_item_removes_it(
        shop):
    from django_recs.capture import forget_item
    from tests.testapp.models import Product

    stale = Product.objects.get(pk=shop.products[2].pk)
    Product.objects.filter(pk=stale.pk).delete()  # another process; its receiver ran there
    Interaction.objects.filter(item_key=str(stale.pk)).delete()
    assert django_recs.record(shop.users[7], stale, "purchase") is not None  # an orphan row
    [run] = django_recs.recompute("popular", sync=True)
    assert run.status == "succeeded"
    assert not PopularItem.objects.filter(run=run, item_key=str(stale.pk)).exists()
    assert stale.pk not in {p.pk for p in django_recs.recommended_for(None, 10)}
    assert forget_item(stale) == 1
    assert not Interaction.objects.filter(item_key=str(stale.pk)).exists()


# -- the files of a sharded run ------------------------------------------------------------------


@pytest.fixture
def paused(monkeypatch):
    """Chords are recorded instead of sent: the test plays the workers."""
    sent = []
    monkeypatch.setattr(sharding, "dispatch", lambda run_id, phase, ranges, callback, queue=None:
                        sent.append((phase, [tuple(r) for r in ranges])))
    return sent


def _user_rows(run: Run, user) -> tuple[int, int]:
    """(rows of the user's id, entries in those rows) in the run's current snapshot."""
    stored = stored_artifact(run.artifacts, "snapshot")
    arrays = load_arrays(stored.path, stored.sha256)
    rows = np.flatnonzero(arrays["user_ids"] == user.pk)
    lengths = np.diff(arrays["weights_indptr"])
    return len(rows), int(lengths[rows].sum())


def test_forget_user_rewrites_the_snapshot_of_a_run_in_flight(random_shop, paused,
                                                             django_capture_on_commit_callbacks):
    user = random_shop.users[3]
    run = run_through_celery("similar")
    assert run.status == "running" and _user_rows(run, user)[0] == 1
    old = stored_artifact(run.artifacts, "snapshot")
    with django_capture_on_commit_callbacks(execute=True):
        django_recs.forget_user(user)
    run.refresh_from_db()
    new = stored_artifact(run.artifacts, "snapshot")
    assert new != old and not default_storage.exists(old.path)
    assert _user_rows(run, user) == (0, 0)
    arrays = load_arrays(new.path, new.sha256)
    erased = np.flatnonzero(arrays["user_ids"] == ERASED_USER)
    assert len(erased) == 1 and np.diff(arrays["weights_indptr"])[erased[0]] == 0
    assert np.diff(arrays["seen_indptr"])[erased[0]] == 0

    # The workers go on with the new file and the run finishes without the user.
    [(_, similar_ranges)] = paused
    for index, (start, stop) in enumerate(similar_ranges):
        tasks.similarity_shard.apply(args=[run.pk, index, start, stop], throw=True)
    tasks.assemble_neighbours.apply(args=[run.pk], throw=True)
    _, recommend_ranges = paused[-1]
    for index, (start, stop) in enumerate(recommend_ranges):
        tasks.recommend_shard.apply(args=[run.pk, index, start, stop], throw=True)
    tasks.finish_sharded_run.apply(args=[run.pk], throw=True)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert not Recommendation.objects.filter(user_id=user.pk).exists()
    assert "snapshot" not in run.artifacts and not default_storage.exists(new.path)


def test_a_shard_that_read_the_run_before_the_erasure_reads_the_new_snapshot(
        random_shop, paused, django_capture_on_commit_callbacks):
    user = random_shop.users[5]
    run = run_through_celery("similar")
    stale = Run.objects.get(pk=run.pk)  # a worker loaded the run, then the erasure came
    with django_capture_on_commit_callbacks(execute=True):
        django_recs.forget_user(user)
    snapshot = shards.snapshot_of(stale)
    assert user.pk not in set(snapshot.matrix.user_ids.tolist())
    assert ERASED_USER in set(snapshot.matrix.user_ids.tolist())


def test_forget_user_erases_the_user_factors_of_a_sharded_als_run(
        random_shop, paused, django_capture_on_commit_callbacks):
    user = random_shop.users[2]
    run = run_through_celery("personal")
    assert run.status == "running"
    stored = stored_artifact(run.artifacts, "snapshot")
    row = int(np.flatnonzero(load_arrays(stored.path, stored.sha256)["user_ids"] == user.pk)[0])
    factors = stored_artifact(run.artifacts, "factors")
    assert load_arrays(factors.path, factors.sha256)["user_factors"][row].any()
    with django_capture_on_commit_callbacks(execute=True):
        django_recs.forget_user(user)
    run.refresh_from_db()
    factors = stored_artifact(run.artifacts, "factors")
    user_factors = load_arrays(factors.path, factors.sha256)["user_factors"]
    assert not user_factors[row].any() and user_factors.any()


def test_forget_user_deletes_the_user_files_a_finished_run_still_has(
        random_shop, paused, django_capture_on_commit_callbacks, settings):
    # A run of an earlier version kept its snapshot after it was served.
    run = run_through_celery("similar")
    snapshot = stored_artifact(run.artifacts, "snapshot")
    Run.objects.filter(pk=run.pk).update(status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        django_recs.forget_user(random_shop.users[0])
    run.refresh_from_db()
    assert "snapshot" not in run.artifacts and "snapshot_sha256" not in run.artifacts
    assert not default_storage.exists(snapshot.path)


def test_a_user_forgotten_before_the_snapshot_is_not_in_it(random_shop, paused):
    user = random_shop.users[4]
    django_recs.forget_user(user)
    Interaction.objects.bulk_create([interact(user, random_shop.products[0], "view")])
    run = run_through_celery("similar")
    assert _user_rows(run, user) == (0, 0)
    assert ForgottenUser.objects.filter(user_id=user.pk).exists()


def test_a_user_forgotten_after_the_load_is_scrubbed_from_the_snapshot_when_it_is_recorded(
        random_shop, paused, monkeypatch, django_capture_on_commit_callbacks):
    user = random_shop.users[6]
    original = sharding.save_matrix

    def forget_then_save(run_id, matrix, catalog):
        assert user.pk in set(matrix.user_ids.tolist())  # the matrix was built with them
        django_recs.forget_user(user)  # no file to rewrite yet
        return original(run_id, matrix, catalog)

    monkeypatch.setattr(sharding, "save_matrix", forget_then_save)
    assert SHARDED["SHARDS"] > 1
    with django_capture_on_commit_callbacks(execute=True):
        run = run_through_celery("similar")
    assert _user_rows(run, user) == (0, 0)
