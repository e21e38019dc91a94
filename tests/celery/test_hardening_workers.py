"""Real workers on Redis: dead runs noticed without a trigger, lost processes, coalescing.

- Kill points (PostgreSQL, MySQL/MariaDB): a worker is SIGKILLed at each stage of a small
  run; the old results stay served, and the sweep — a second worker with
  beat inside, sending ``django_recs.sweep_runs`` every second — fails the
  dead run with its stage, no trigger needed.
- A prefork pool process killed mid-run fails its run at once (Celery's
  WorkerLostError), long before the heartbeat would time out.
- Messages queued while no worker ran coalesce into one run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

import django_recs
from django_recs import tasks
from django_recs.models import Run, SimilarItem
from django_recs.pipeline.tracking import STAGES
from tests import celery_app
from tests.celery.held_algorithm import HOLD_FILE_VARIABLE
from tests.celery.kill_points import HOLD_VARIABLE, STAGE_VARIABLE
from tests.celery.sweep_worker_settings import SWEEP_SECONDS
from tests.celery.test_worker import (
    WorkerProcess,
    database_environment,
    forget_queue,
    wait_for,
)
from tests.celery.worker_settings import WORKER_RECS
from tests.pipeline.pipeline_fixtures import Shop

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class RealWorker(WorkerProcess):
    """``celery worker`` on one queue, with the given pool, settings and environment."""

    def __init__(self, queue: str, log: Path, *, pool: str = "solo", beat: Path | None = None,
                 settings_module: str = "tests.celery.worker_settings", **environment: str):
        self.queue, self.log, self.pool, self.beat = queue, log, pool, beat
        self.settings_module, self.environment = settings_module, environment

    def start(self, timeout: float = 60) -> RealWorker:
        env = {**os.environ, **database_environment(),
               "DJANGO_SETTINGS_MODULE": self.settings_module, "CELERY_TASK_ALWAYS_EAGER": "0",
               "REDIS_URL": settings.REDIS_URL, **self.environment}
        command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
                   "-P", self.pool, "-c", "1", "-Q", self.queue, "-l", "info",
                   "--without-gossip", "--without-mingle", "--without-heartbeat",
                   "-n", f"{self.queue}@%h"]
        if self.beat is not None:
            command += ["-B", "-s", str(self.beat)]
        self.log.write_text("")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log.open("w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: "ready." in self.log.read_text() or self.process.poll() is not None,
                 timeout=timeout, message=f"the worker to start (log: {self.log})")
        assert self.process.poll() is None, self.log.read_text()
        return self

    def pool_processes(self) -> list[int]:
        """The pids of the prefork pool's processes (Linux: /proc)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


@pytest.fixture
def queues(settings):
    """The test sends to a queue of its own; the sweeper has another."""
    settings.DJANGO_RECS = WORKER_RECS
    names = [f"django-recs-hardening-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_default_queue
    conf.task_always_eager, conf.task_default_queue = False, names[0]
    yield names
    conf.task_always_eager, conf.task_default_queue = saved
    for name in names:
        forget_queue(settings.REDIS_URL, name)


@pytest.fixture
def workers(queues, transactional_db):
    started: list[RealWorker] = []
    yield started
    for worker in started:
        worker.stop()


def served(algorithm: str = "similar") -> list[tuple]:
    return sorted(SimilarItem.objects.active(algorithm).values_list(
        "item_key", "neighbour_key", "rank"))


@pytest.mark.server_db
def test_a_worker_killed_at_each_stage_leaves_old_results_and_is_failed_by_the_sweep(
        queues, workers, tmp_path):
    run_queue, sweep_queue = queues
    shop = Shop()
    [old] = django_recs.recompute("similar", sync=True)
    before = served()
    assert old.status == "succeeded" and before
    sweeper = RealWorker(sweep_queue, tmp_path / "sweeper.log", beat=tmp_path / "beat",
                         settings_module="tests.celery.sweep_worker_settings",
                         DJANGO_RECS_TEST_SWEEP_QUEUE=sweep_queue)
    workers.append(sweeper.start())
    hold = tmp_path / "hold"
    hold.write_text("hold")
    timeout = WORKER_RECS["RUN_HEARTBEAT_TIMEOUT"]
    for stage in STAGES:
        worker = RealWorker(run_queue, tmp_path / f"worker-{stage}.log",
                            **{STAGE_VARIABLE: stage, HOLD_VARIABLE: str(hold)})
        workers.append(worker.start())
        [run] = django_recs.recompute("similar")
        wait_for(lambda run=run, stage=stage: Run.objects.filter(
            pk=run.pk, status="running", stage=stage).exists(),
            message=f"run {run.pk} to reach {stage} (log: {worker.log})")
        worker.kill()

        # The previous results are what is served, whatever the stage.
        assert Run.objects.get(algorithm="similar", is_active=True).pk == old.pk
        assert served() == before
        assert {p.pk for p in django_recs.similar_to(shop.products[0], 2)} == {
            shop.products[1].pk, shop.products[2].pk}
        # No trigger: the sweep notices the silent heartbeat and fails the run.
        dead = wait_for(lambda run=run: Run.objects.filter(pk=run.pk, status="failed").first(),
                        timeout=timeout + 20 * SWEEP_SECONDS,
                        message=f"the sweep to fail run {run.pk} (log: {sweeper.log})")
        assert dead.error.startswith(f"No heartbeat for more than {timeout} s")
        assert f"in stage {stage!r}: the worker was stopped or killed" in dead.error
        # Its partial rows go right after (a partition dropped on PostgreSQL).
        wait_for(lambda dead=dead: not SimilarItem.objects.filter(run=dead).exists(),
                 message=f"the rows of run {dead.pk} to be deleted")
        assert served() == before



def test_a_killed_prefork_process_fails_its_run_at_once(queues, workers, tmp_path, settings):
    run_queue, _ = queues
    Shop()
    hold = tmp_path / "hold"
    hold.write_text("hold")  # HeldItemKNN waits in fit while it exists
    worker = RealWorker(run_queue, tmp_path / "prefork.log", pool="prefork",
                        settings_module="tests.celery.lost_worker_settings",
                        **{HOLD_FILE_VARIABLE: str(hold)})
    workers.append(worker.start())
    [run] = django_recs.recompute("similar")
    wait_for(lambda: Run.objects.filter(pk=run.pk, status="running", stage="compute").exists(),
             message=f"the run to compute (log: {worker.log})")
    [child] = worker.pool_processes()
    os.kill(child, signal.SIGKILL)
    # Failed by the worker's main process: the heartbeat timeout there is ten minutes.
    dead = wait_for(lambda: Run.objects.filter(pk=run.pk, status="failed").first(),
                    timeout=60, message=f"the run to fail (log: {worker.log})")
    assert dead.error.startswith("The worker process running this run was lost in stage "
                                 "'compute' (WorkerLostError")
    assert "SIGKILL" in dead.error or "signal 9" in dead.error


def test_recompute_messages_queued_while_no_worker_ran_make_one_run(queues, workers, tmp_path):
    run_queue, _ = queues
    Shop()
    results = [tasks.recompute.delay("popular") for _ in range(12)]  # beat, a retry storm
    workers.append(RealWorker(run_queue, tmp_path / "worker.log").start())
    outcomes = [result.get(timeout=120) for result in results]
    assert Run.objects.filter(algorithm="popular").count() == 1
    [run] = Run.objects.filter(algorithm="popular")
    assert run.status == "succeeded"
    assert sum(1 for outcome in outcomes if outcome.get("coalesced")) == 11
    assert {outcome["run"] for outcome in outcomes} == {run.pk}
