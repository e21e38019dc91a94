"""Sharded runs in eager mode: the same rows as one process, exactly once, or a failed run.

Celery runs tasks in-process here (CELERY_TASK_ALWAYS_EAGER), so a chord's
shards and callbacks execute inside the recompute task; tests/celery/ runs
them on real workers.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

import django_recs
from django_recs import pipeline, tasks
from django_recs.models import Recommendation, Run, RunShard, ShardStart, SimilarItem
from django_recs.pipeline import foldin, sharding, shards
from django_recs.pipeline.snapshot import CorruptFile, stored_artifact
from tests.pipeline import sharding_fixtures
from tests.pipeline.sharding_fixtures import (
    SHARDED,
    FailingShardKNN,
    assert_same_rows,
    recommendation_rows,
    run_through_celery,
    similar_rows,
)

# These tests read the rows layout's Recommendation rows (the lists layout: test_lists_layout.py).
pytestmark = pytest.mark.usefixtures("rows_layout")

media = sharding_fixtures.media  # fixture
random_shop = sharding_fixtures.random_shop  # fixture


@pytest.fixture
def paused(monkeypatch):
    """Chords are recorded instead of sent: the test plays the workers, step by step."""
    sent = []

    def record(run_id, phase, ranges, callback, *, queue=None):
        sent.append((run_id, phase, [tuple(r) for r in ranges], callback))

    monkeypatch.setattr(sharding, "dispatch", record)
    return sent


def test_sharded_itemknn_run_gives_the_rows_of_one_process(random_shop):
    [single] = django_recs.recompute("similar", sync=True)
    assert single.status == "succeeded"
    expected_similar, expected_recs = similar_rows(single), recommendation_rows(single)

    run = run_through_celery("similar")
    assert run.status == "succeeded", run.error
    assert run.is_active and Run.objects.get(pk=single.pk).is_active is False
    assert_same_rows(similar_rows(run), expected_similar)
    assert_same_rows(recommendation_rows(run), expected_recs)
    plan = run.params["sharding"]
    assert plan["kind"] == "itemknn" and len(plan["similar"]) == 3 and len(plan["recommend"]) == 3
    assert RunShard.objects.filter(run=run, phase="similar").count() == 3
    assert RunShard.objects.filter(run=run, phase="recommend").count() == 3
    # Metrics and rows as a single run records them; timings of the same stages.
    assert run.metrics == single.metrics
    assert run.rows_read == single.rows_read and run.rows_written == single.rows_written
    assert {"load", "matrix", "snapshot", "compute", "swap", "cleanup", "shards_load",
            "shards_compute", "shards_write"} <= set(run.timings)
    assert run.progress == 1.0 and run.stage == "swap"


def test_sharded_als_run_gives_the_rows_of_one_process(random_shop):
    [single] = django_recs.recompute("personal", sync=True)
    expected_similar, expected_recs = similar_rows(single), recommendation_rows(single)

    run = run_through_celery("personal")
    assert run.status == "succeeded", run.error
    assert run.params["sharding"]["kind"] == "als"
    assert_same_rows(recommendation_rows(run), expected_recs)
    assert_same_rows(similar_rows(run), expected_similar)  # similar_items=3: one shard
    assert run.metrics.keys() == single.metrics.keys()
    for name, value in single.metrics.items():
        assert run.metrics[name] == pytest.approx(value), name
    # Fold-in keeps working: the item factors are saved as by a single run.
    user = random_shop.users[0]
    assert foldin.refresh_user(user.pk, "personal") > 0


def test_recompute_through_celery_after_commit_is_sharded(random_shop,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [run] = django_recs.recompute("similar")
    run.refresh_from_db()
    assert run.status == "succeeded" and "sharding" in run.params


def test_files_the_shards_shared_are_deleted_once_the_run_is_served(random_shop, settings,
                                                                    monkeypatch):
    snapshots = []
    original = sharding.save_matrix
    monkeypatch.setattr(sharding, "save_matrix",
                        lambda *args: snapshots.append(original(*args)) or snapshots[-1])
    run = run_through_celery("similar")
    [snapshot] = snapshots
    assert len(snapshot.sha256) == 64
    # Nothing stays with the run: the snapshot (every user's history) and the
    # shards' files are gone.
    assert run.artifacts == {}
    assert not default_storage.exists(snapshot.path)
    shard_files = [m.details["file"] for m in RunShard.objects.filter(run=run, phase="similar")]
    assert shard_files and not any(default_storage.exists(path) for path in shard_files)
    assert not default_storage.exists(f"django_recs/runs/{run.pk}/neighbours.npz")


def test_shards_one_runs_in_process_and_other_algorithms_are_not_sharded(random_shop, settings):
    settings.DJANGO_RECS = {**SHARDED, "SHARDS": 1}
    run = run_through_celery("similar")
    assert run.status == "succeeded" and "sharding" not in run.params
    assert "snapshot" not in run.artifacts
    settings.DJANGO_RECS = SHARDED
    popular = run_through_celery("popular")
    assert popular.status == "succeeded" and "sharding" not in popular.params


def test_automatic_shard_count_of_a_small_shop_runs_in_process(random_shop, settings):
    settings.DJANGO_RECS = {**SHARDED, "SHARDS": 0}
    run = run_through_celery("similar")
    assert run.status == "succeeded" and "sharding" not in run.params


def test_a_bad_shards_setting_fails_the_run(random_shop, settings):
    settings.DJANGO_RECS = {**SHARDED, "SHARDS": -2}
    run = run_through_celery("similar")
    assert run.status == "failed" and "SHARDS must be an integer >= 0" in run.error


# -- exactly once ----------------------------------------------------------------------------------


def test_a_shard_run_twice_writes_its_rows_once(random_shop, paused):
    [single] = django_recs.recompute("similar", sync=True)
    expected_similar, expected_recs = similar_rows(single), recommendation_rows(single)
    run = run_through_celery("similar")
    assert run.status == "running" and run.stage == "compute"
    [(run_id, phase, ranges, callback)] = paused
    assert (run_id, phase, callback) == (run.pk, "similar", "assemble")

    first = shards.compute_similarity_shard(run.pk, 0, *ranges[0])
    rows_after_first = SimilarItem.objects.filter(run=run).count()
    again = shards.compute_similarity_shard(run.pk, 0, *ranges[0])
    assert again == {**first, "already_written": True}
    assert SimilarItem.objects.filter(run=run).count() == rows_after_first == first["rows"] > 0
    with pytest.raises(sharding.ShardsIncomplete, match=r"similar shards \[1, 2\] of 3"):
        sharding.assemble_neighbours(run.pk)
    for index, bounds in enumerate(ranges[1:], start=1):
        shards.compute_similarity_shard(run.pk, index, *bounds)
    sharding.assemble_neighbours(run.pk)
    [_, (_, phase, user_ranges, callback)] = paused
    assert (phase, callback) == ("recommend", "finish")
    with pytest.raises(sharding.ShardsIncomplete, match="recommend shards"):
        sharding.finish_run(run.pk)
    for index, bounds in enumerate(user_ranges):
        shards.compute_recommend_shard(run.pk, index, *bounds)
        shards.compute_recommend_shard(run.pk, index, *bounds)  # redelivered
    assert sharding.finish_run(run.pk)["status"] == "succeeded"
    run.refresh_from_db()
    assert run.status == "succeeded" and run.is_active
    assert_same_rows(similar_rows(run), expected_similar)
    assert_same_rows(recommendation_rows(run), expected_recs)
    # A callback delivered again does nothing.
    assert sharding.finish_run(run.pk)["skipped"]


def test_a_shard_of_a_run_no_longer_running_does_nothing(random_shop, paused):
    run = run_through_celery("similar")
    Run.objects.filter(pk=run.pk).update(status="failed")
    [(_, _, ranges, _)] = paused
    result = shards.compute_similarity_shard(run.pk, 0, *ranges[0])
    assert result["skipped"] and not SimilarItem.objects.filter(run=run).exists()
    assert sharding.assemble_neighbours(run.pk)["skipped"]


def test_finish_refuses_rows_the_shards_did_not_count(random_shop, paused):
    run = run_through_celery("personal")
    [(_, _, ranges, _)] = paused
    for index, bounds in enumerate(ranges):
        shards.compute_recommend_shard(run.pk, index, *bounds)
    extra = Recommendation.objects.filter(run=run).first()
    extra.pk = None
    extra.rank = 99
    extra.save()
    with pytest.raises(RuntimeError, match="recommendations table holds"):
        sharding.finish_run(run.pk)


# -- failures --------------------------------------------------------------------------------------


@pytest.fixture
def failing_after_a_good_run(random_shop, settings):
    """A succeeded, served run of "failing", then shards that raise."""
    settings.DJANGO_RECS = {**SHARDED, "ALGORITHMS": {
        **SHARDED["ALGORITHMS"], "failing": {"class": "django_recs.algorithms.ItemKNN", "k": 5}}}
    [old] = django_recs.recompute("failing", sync=True)
    served = sorted(SimilarItem.objects.active("failing").values_list("item_key", "neighbour_key"))
    settings.DJANGO_RECS = SHARDED
    FailingShardKNN.attempts = 0
    return old, served


def assert_failed_and_old_results_served(run, old, served):
    assert run.status == "failed"
    assert "boom in the shard of items" in run.error
    # Partial rows and files are gone; the previous run is still what is served.
    assert not SimilarItem.objects.filter(run=run).exists()
    assert Run.objects.get(algorithm="failing", is_active=True).pk == old.pk
    assert sorted(SimilarItem.objects.active("failing").values_list(
        "item_key", "neighbour_key")) == served
    assert not default_storage.exists(f"django_recs/runs/{run.pk}/snapshot.npz")
    assert not default_storage.listdir(f"django_recs/runs/{run.pk}/shards")[1]


def test_a_failing_shard_is_retried_then_fails_the_run_and_old_results_stay(
        failing_after_a_good_run, monkeypatch):
    from tests.celery_app import app

    # Without eager propagation, an eager task retries as a worker would.
    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
    run = run_through_celery("failing")
    assert FailingShardKNN.attempts == tasks.similarity_shard.max_retries + 1
    assert_failed_and_old_results_served(run, *failing_after_a_good_run)
    assert "shard task django_recs.similarity_shard" in run.error


def test_a_failing_eager_shard_fails_the_run_with_its_own_error(failing_after_a_good_run):
    run = run_through_celery("failing")
    assert FailingShardKNN.attempts == 1  # eager propagation: no retry
    assert_failed_and_old_results_served(run, *failing_after_a_good_run)
    assert "RuntimeError: boom in the shard" in run.error


def test_a_corrupt_snapshot_is_refused_without_retrying(random_shop, paused, monkeypatch):
    run = run_through_celery("similar")
    loads = []
    original = shards.snapshot_of
    monkeypatch.setattr(shards, "snapshot_of", lambda run: loads.append(run.pk) or original(run))
    snapshot = stored_artifact(run.artifacts, "snapshot")
    with default_storage.open(snapshot.path, "rb") as handle:
        content = bytearray(handle.read())
    content[len(content) // 2] ^= 0xFF
    default_storage.delete(snapshot.path)
    default_storage.save(snapshot.path, ContentFile(bytes(content)))
    [(_, _, ranges, _)] = paused
    # As a worker runs it: the error is recorded, not raised, and not retried.
    result = tasks.similarity_shard.apply(args=[run.pk, 0, *ranges[0]], throw=False)
    assert result.state == "FAILURE" and isinstance(result.result, CorruptFile)
    assert "SHA-256" in str(result.result) and "does not match" in str(result.result)
    assert loads == [run.pk]
    run.refresh_from_db()
    assert run.status == "failed" and "refusing to use it" in run.error
    assert not SimilarItem.objects.filter(run=run).exists()


def test_a_shard_started_too_often_is_given_up_and_old_results_stay(random_shop, paused):
    [old] = django_recs.recompute("similar", sync=True)
    served = sorted(SimilarItem.objects.active("similar").values_list("item_key", "neighbour_key"))
    run = run_through_celery("similar")
    [(_, _, ranges, _)] = paused
    # As if its worker had died every time, mid-shard: counted, never finished.
    for _ in range(shards.MAX_SHARD_STARTS):
        shards.count_start(run.pk, "similar", 0)
    result = tasks.similarity_shard.apply(args=[run.pk, 0, *ranges[0]], throw=False)
    assert result.state == "FAILURE" and isinstance(result.result, shards.ShardGivenUp)
    assert f"started {shards.MAX_SHARD_STARTS} times without finishing" in str(result.result)
    run.refresh_from_db()
    assert run.status == "failed" and "the run is given up" in run.error
    assert not SimilarItem.objects.filter(run=run).exists()
    assert Run.objects.get(algorithm="similar", is_active=True).pk == old.pk
    assert sorted(SimilarItem.objects.active("similar").values_list(
        "item_key", "neighbour_key")) == served


def test_each_start_of_a_shard_is_counted_a_written_one_no_more(random_shop, paused):
    run = run_through_celery("similar")
    [(_, _, ranges, _)] = paused
    shards.compute_similarity_shard(run.pk, 0, *ranges[0])
    shards.compute_similarity_shard(run.pk, 0, *ranges[0])  # delivered again: already written
    assert ShardStart.objects.get(run=run, phase="similar", index=0).count == 1
    assert [shards.count_start(run.pk, "recommend", 2) for _ in range(3)] == [1, 2, 3]
    assert ShardStart.objects.filter(run=run).count() == 2


def test_fail_run_fails_once(random_shop, paused):
    run = run_through_celery("similar")
    assert sharding.fail_run(run.pk, RuntimeError("first"), task="t") is True
    assert sharding.fail_run(run.pk, "second") is False
    run.refresh_from_db()
    assert run.status == "failed" and "first" in run.error and "second" not in run.error


# -- heartbeat and progress ----------------------------------------------------------------------


def test_shards_beat_the_heartbeat_and_report_progress(random_shop, paused, settings):
    settings.DJANGO_RECS = {**SHARDED, "RUN_HEARTBEAT_TIMEOUT": 60}
    run = run_through_celery("similar")
    long_ago = timezone.now() - timedelta(minutes=10)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)
    [(_, _, ranges, _)] = paused
    shards.compute_similarity_shard(run.pk, 0, *ranges[0])
    run.refresh_from_db()
    assert run.heartbeat_at > long_ago + timedelta(minutes=9)
    start = run.params["sharding"]["progress_from"]
    assert run.progress == pytest.approx(start + (0.95 - start) / 6, abs=1e-3)
    assert pipeline.fail_stale_runs("similar") == 0


def test_beating_writes_the_heartbeat_from_a_thread_outside_transactions(transactional_db,
                                                                         monkeypatch):
    run = Run.objects.create(algorithm="x", status="running",
                             heartbeat_at=timezone.now() - timedelta(hours=1))
    monkeypatch.setattr(shards, "HEARTBEAT_INTERVAL", 0.05)
    beats = []
    with shards.beating(run.pk):
        beats.append(Run.objects.get(pk=run.pk).heartbeat_at)
        time.sleep(0.3)
        beats.append(Run.objects.get(pk=run.pk).heartbeat_at)
    assert beats[0] > timezone.now() - timedelta(minutes=1)
    assert beats[1] > beats[0]
    assert not [t for t in threading.enumerate() if t.name == f"recs-shard-{run.pk}"]


# -- planning ----------------------------------------------------------------------------------------


def test_split_ranges_cover_every_row_with_balanced_cost():
    costs = np.r_[np.full(10, 100.0), np.ones(90)]
    ranges = sharding.split_ranges(costs, 4)
    assert ranges[0][0] == 0 and ranges[-1][1] == 100
    assert all(a < b for a, b in ranges)
    assert all(r[1] == s[0] for r, s in zip(ranges, ranges[1:]))
    totals = [costs[a:b].sum() for a, b in ranges]
    assert max(totals) <= 2.1 * costs.sum() / 4  # the expensive rows are spread out
    assert ranges[0][1] <= 5


@pytest.mark.parametrize(("costs", "n", "expected"), [
    ([], 3, []),
    ([5.0], 3, [(0, 1)]),
    ([0, 0, 0, 0], 2, [(0, 2), (2, 4)]),
    ([1, 1, 1], 1, [(0, 3)]),
    ([1, 1], 5, [(0, 1), (1, 2)]),
])
def test_split_ranges_small_cases(costs, n, expected):
    assert sharding.split_ranges(costs, n) == expected


@pytest.mark.parametrize(("costs", "n"), [([1, 2], 0), ([1, -1], 2), ([np.nan], 2),
                                          ([1.0], True), ([1.0], 2.5)])
def test_split_ranges_refuses_bad_input(costs, n):
    with pytest.raises(ValueError):
        sharding.split_ranges(costs, n)


@pytest.mark.parametrize(("setting", "nnz", "expected"), [
    (1, 10**9, 1), (4, 10, 4), (0, 0, 1), (0, 250_000, 1), (0, 250_001, 2),
    (0, 2_000_000, 8), (0, 10**10, 64),
])
def test_shard_count(setting, nnz, expected):
    assert sharding.shard_count(setting, nnz) == expected


@pytest.mark.parametrize("setting", [-1, 1.5, "2", None, True])
def test_shard_count_refuses_bad_settings(setting):
    with pytest.raises(ValueError, match="SHARDS"):
        sharding.shard_count(setting, 100)


def test_shard_kind():
    from django_recs.algorithms import ALS, ItemKNN, Popular
    from tests.pipeline.pipeline_fixtures import Inspecting

    assert sharding.shard_kind(ItemKNN()) == "itemknn"
    assert sharding.shard_kind(FailingShardKNN()) == "itemknn"  # overrides neighbours only
    assert sharding.shard_kind(ALS()) == "als"
    assert sharding.shard_kind(Popular()) is None
    assert sharding.shard_kind(Inspecting()) is None  # its own fit


def test_item_costs_follow_the_users_history_lengths():
    import scipy.sparse as sp

    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=np.float32))
    np.testing.assert_array_equal(sharding.item_costs(X), [2 + 1 + 3, 2 + 3, 3])


def test_item_set_encoding_round_trips():
    items = np.array([0, 5, 5, 999])
    mask = shards.decode_items(shards.encode_items(items, 1000), 1000)
    assert mask.sum() == 3 and mask[[0, 5, 999]].all()
    assert shards.decode_items(shards.encode_items(np.zeros(0, int), 7), 7).sum() == 0


def test_algorithm_of_rebuilds_the_recorded_class_and_refuses_others():
    run = Run(pk=1, params={"class": "django_recs.algorithms.ItemKNN", "k": 7, "n_recommendations": 5})
    algorithm = shards.algorithm_of(run)
    assert type(algorithm).__name__ == "ItemKNN" and algorithm.k == 7
    with pytest.raises(ValueError, match="no algorithm class"):
        shards.algorithm_of(Run(pk=2, params={}))
    with pytest.raises(ValueError, match="not a django_recs Algorithm"):
        shards.algorithm_of(Run(pk=3, params={"class": "django_recs.models.Run"}))


def test_shards_setting_is_checked(settings):
    from django_recs.checks import check_algorithms

    settings.DJANGO_RECS = {**SHARDED, "SHARDS": -1}
    assert "django_recs.E038" in [error.id for error in check_algorithms()]
    settings.DJANGO_RECS = {**SHARDED, "SHARDS": 0}
    assert "django_recs.E038" not in [error.id for error in check_algorithms()]


def test_shard_task_options_are_declared():
    for task in (tasks.similarity_shard, tasks.recommend_shard, tasks.assemble_neighbours,
                 tasks.finish_sharded_run):
        assert task.acks_late is True and task.reject_on_worker_lost is True
        assert task.autoretry_for == (Exception,) and task.max_retries == 5
        assert task.ignore_result is False
    assert tasks.similarity_shard.name == "django_recs.similarity_shard"
    assert tasks.finish_sharded_run.name == "django_recs.finish_sharded_run"


# -- Two copies of one shard at the same time, on every database ---------------------------------


def test_concurrent_copies_of_a_shard_write_once(transactional_db, settings, media):
    from tests.pipeline.sharding_fixtures import RandomShop

    settings.DJANGO_RECS = SHARDED
    RandomShop(seed=3)
    sent = []
    original = sharding.dispatch
    sharding.dispatch = lambda run_id, phase, ranges, callback, queue=None: sent.append(ranges)
    try:
        run = run_through_celery("similar")
    finally:
        sharding.dispatch = original
    start, stop = sent[0][0]
    inside = threading.Event()
    release = threading.Event()
    results = {}
    original_write = shards.write_shard

    def slow_write(run, phase, index, bounds, model, chunks, **kwargs):
        def held(chunks=chunks):
            inside.set()
            release.wait(10)  # the first copy holds its transaction open
            yield from chunks
        if threading.current_thread().name == "first":
            chunks = held()
        return original_write(run, phase, index, bounds, model, chunks, **kwargs)

    def copy(name):
        from django.db import connection

        try:
            results[name] = shards.compute_similarity_shard(run.pk, 0, start, stop)
        finally:
            connection.close()

    shards.write_shard = slow_write
    try:
        first = threading.Thread(target=copy, args=("first",), name="first")
        first.start()
        assert inside.wait(10)
        second = threading.Thread(target=copy, args=("second",), name="second")
        second.start()
        time.sleep(0.5)  # the second copy is now waiting on the first's marker
        release.set()
        first.join(20)
        second.join(20)
    finally:
        shards.write_shard = original_write
    assert results["second"].get("already_written") is True
    marker = RunShard.objects.get(run=run, phase="similar", index=0)
    assert SimilarItem.objects.filter(run=run).count() == marker.rows == results["first"]["rows"]


def test_concurrent_starts_of_a_shard_are_both_counted(transactional_db, settings, media):
    from tests.pipeline.sharding_fixtures import RandomShop

    settings.DJANGO_RECS = SHARDED
    RandomShop(seed=3)
    run = Run.objects.create(algorithm="similar", status=Run.Status.RUNNING)
    barrier = threading.Barrier(2)
    counts = []

    def start():
        from django.db import connection

        try:
            barrier.wait(5)
            counts.append(shards.count_start(run.pk, "similar", 0))
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(counts) == [1, 2]
    assert ShardStart.objects.get(run=run).count == 2
