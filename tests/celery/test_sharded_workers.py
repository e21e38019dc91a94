"""Two real Celery workers share one sharded recompute and produce the rows of one process.

Two ``celery worker`` processes (one task at a time each) consume the same
Redis queue and share the test database and a storage folder (MEDIA_ROOT).
A sharded ItemKNN run and a sharded ALS run end with exactly the rows an
in-process run computes on the same data; and a worker killed (SIGKILL) in
the middle of a shard leaves the old results served until its shard,
delivered again to the other worker, completes the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import django_recs
from django_recs.models import Run, RunShard, SimilarItem
from tests import celery_app
from tests.celery.held_algorithm import HOLD_FILE_VARIABLE
from tests.celery.held_shard import DELAY_VARIABLE, taken_file
from tests.celery.shard_worker_settings import SHARD_RECS
from tests.celery.test_worker import (
    WorkerProcess,
    database_environment,
    finished,
    forget_queue,
    wait_for,
)
from tests.pipeline.sharding_fixtures import (
    RandomShop,
    assert_same_rows,
    recommendation_rows,
    similar_rows,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class ShardWorker(WorkerProcess):
    """``celery -A tests.celery_app worker -P solo`` with the shard worker settings."""

    def __init__(self, name: str, queue: str, folder: Path, extra_env: dict[str, str]):
        self.name, self.queue, self.extra_env = name, queue, extra_env
        self.log = folder / f"{name}.log"

    @property
    def hostname(self) -> str:
        return f"{self.name}-{self.queue}@shards"

    def spawn(self) -> ShardWorker:
        from django.conf import settings

        env = {
            **os.environ,
            **database_environment(),
            "DJANGO_SETTINGS_MODULE": "tests.celery.shard_worker_settings",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_RECS_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", "solo",
             "--concurrency=1", "-Q", self.queue, "-l", "info", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", self.hostname],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.log.exists() or "ready." not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name} did not start:\n{self.log.read_text()}")
            time.sleep(0.2)


@pytest.fixture
def shop(transactional_db, settings, tmp_path):
    """The data, shared settings and storage folder of the test and its workers."""
    settings.DJANGO_RECS = SHARD_RECS
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return RandomShop(seed=1, n_users=48)


@pytest.fixture
def two_workers(shop, settings, tmp_path):
    queue = f"django-recs-shards-{uuid.uuid4().hex[:8]}"
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager, conf.task_default_queue = False, queue
    hold = tmp_path / "hold"
    env = {HOLD_FILE_VARIABLE: str(hold), DELAY_VARIABLE: "0.3"}
    workers = [ShardWorker(name, queue, tmp_path, env) for name in ("first", "second")]
    try:
        yield workers, hold
    finally:
        for worker in workers:
            worker.stop()
        conf.task_always_eager, conf.task_default_queue = saved
        forget_queue(settings.REDIS_URL, queue)


def start(workers) -> None:
    for worker in workers:
        worker.spawn()
    for worker in workers:
        worker.wait_ready()


def logs(workers) -> str:
    return "\n".join(f"--- {w.name}\n{w.log.read_text()[-3000:]}" for w in workers)


def test_two_workers_compute_the_rows_of_one_process(two_workers):
    workers, _hold = two_workers
    expected = {}
    for name in ("similar", "personal"):
        [single] = django_recs.recompute(name, sync=True)
        assert single.status == "succeeded", single.error
        expected[name] = (similar_rows(single), recommendation_rows(single), single.metrics)
    start(workers)
    for name in ("similar", "personal"):
        [run] = django_recs.recompute(name)
        done = wait_for(lambda run=run: finished(run.pk), timeout=90,
                        message=f"run {run.pk} of {name}\n{logs(workers)}")
        assert done.status == "succeeded", done.error
        assert done.is_active and "sharding" in done.params
        similar, recommendations, metrics = expected[name]
        assert_same_rows(similar_rows(done), similar)
        assert_same_rows(recommendation_rows(done), recommendations)
        assert done.metrics.keys() == metrics.keys()
        assert done.metrics["rows_recommendations"] == metrics["rows_recommendations"]
    # Both workers computed shards of the ItemKNN run (each shard takes a moment).
    itemknn = Run.objects.get(algorithm="similar", is_active=True)
    assert {m.worker for m in RunShard.objects.filter(run=itemknn)} == {
        w.hostname for w in workers}


def test_a_killed_worker_s_shard_is_delivered_again_and_the_run_completes(two_workers):
    workers, hold = two_workers
    [old] = django_recs.recompute("similar", sync=True)
    expected_similar, expected_recs = similar_rows(old), recommendation_rows(old)
    served = sorted(SimilarItem.objects.active("similar").values_list("item_key", "neighbour_key"))
    hold.write_text("hold")
    start(workers)
    [run] = django_recs.recompute("similar")
    taken = Path(taken_file(hold))
    wait_for(lambda: taken.exists() and len(taken.read_text().split()) == 2, timeout=60,
             message=f"a shard to be held\n{logs(workers)}")
    pid, held_start = (int(value) for value in taken.read_text().split())
    [holder] = [w for w in workers if w.process.pid == pid]
    [survivor] = [w for w in workers if w is not holder]
    holder.kill()
    hold.unlink()
    # Meanwhile the previous results are served, and the run is still running.
    assert Run.objects.get(algorithm="similar", is_active=True).pk == old.pk
    assert sorted(SimilarItem.objects.active("similar").values_list(
        "item_key", "neighbour_key")) == served
    assert Run.objects.get(pk=run.pk).status == "running"
    done = wait_for(lambda: finished(run.pk), timeout=90,
                    message=f"run {run.pk} after the kill\n{logs(workers)}")
    assert done.status == "succeeded", done.error
    assert_same_rows(similar_rows(done), expected_similar)
    assert_same_rows(recommendation_rows(done), expected_recs)
    held = RunShard.objects.get(run=done, phase="similar", start=held_start)
    assert held.worker == survivor.hostname  # the killed worker never wrote it
    assert RunShard.objects.filter(run=done).count() == 2 * len(done.params["sharding"]["similar"])
