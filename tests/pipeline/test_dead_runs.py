"""A dead run is noticed within a minute without any trigger.

A killed worker's run used to stay ``running`` until someone triggered its
algorithm again after RUN_HEARTBEAT_TIMEOUT (300 s): with only a nightly
beat, a kill meant a day without new results, and the admin's run page
reloaded forever. Now the heartbeat times out in tens of seconds, the
``django_recs.sweep_runs`` task fails dead runs of every algorithm, a lost
prefork child fails its run at once, and the admin fails what it shows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from billiard.exceptions import WorkerLostError
from celery.signals import task_failure
from django.urls import reverse
from django.utils import timezone

from django_recs import tasks
from django_recs.conf import DEFAULTS
from django_recs.models import Run, SimilarItem
from tests.django.test_admin_runs import staff
from tests.pipeline import pipeline_fixtures

shop = pipeline_fixtures.shop  # fixture


def in_flight(algorithm: str, status: str, *, silent_for: float, **fields) -> Run:
    """A run in flight whose last heartbeat was ``silent_for`` seconds ago."""
    beat = timezone.now() - timedelta(seconds=silent_for)
    return Run.objects.create(algorithm=algorithm, status=status, stage="compute",
                              created_at=beat - timedelta(seconds=5), heartbeat_at=beat,
                              **fields)


def test_the_heartbeat_timeout_is_tens_of_seconds():
    assert 10 <= DEFAULTS["RUN_HEARTBEAT_TIMEOUT"] <= 60
    assert DEFAULTS["QUEUE_TIMEOUT"] >= 5 * DEFAULTS["RUN_HEARTBEAT_TIMEOUT"]


def test_the_sweep_task_fails_dead_runs_of_every_algorithm_and_only_those(shop):
    timeout = DEFAULTS["RUN_HEARTBEAT_TIMEOUT"]
    dead = in_flight("similar", "running", silent_for=timeout + 5)
    SimilarItem.objects.create(run=dead, item_type_id=1, item_key="1", neighbour_type_id=1,
                               neighbour_key="2", score=1.0, rank=0)  # a partial row
    also_dead = in_flight("personal", "running", silent_for=timeout * 3)
    alive = in_flight("popular", "running", silent_for=1)
    queued = in_flight("broken", "pending", silent_for=timeout * 3)  # waits for a busy worker

    failed = tasks.sweep_runs.delay().get()

    assert sorted(failed) == sorted([dead.pk, also_dead.pk])
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.finished_at is not None
    assert dead.error.startswith(f"No heartbeat for more than {timeout} s")
    assert "in stage 'compute': the worker was stopped or killed" in dead.error
    assert not SimilarItem.objects.filter(run=dead).exists()
    assert Run.objects.get(pk=alive.pk).status == "running"
    assert Run.objects.get(pk=queued.pk).status == "pending"
    assert tasks.sweep_runs.delay().get() == []


def test_a_sharded_run_waiting_for_its_shards_gets_the_queue_timeout(shop, settings):
    settings.DJANGO_RECS = {**settings.DJANGO_RECS, "QUEUE_TIMEOUT": 300}
    waiting = in_flight("similar", "running", silent_for=120, params={"sharding": {"shards": 3}})
    assert tasks.sweep_runs.delay().get() == []
    Run.objects.filter(pk=waiting.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=6))
    assert tasks.sweep_runs.delay().get() == [waiting.pk]
    waiting.refresh_from_db()
    assert waiting.error.startswith("No shard of this run worked for more than 300 s")


def test_a_lost_prefork_child_fails_its_run_at_once(shop):
    run = in_flight("similar", "running", silent_for=0, task_id="task-1")
    other = in_flight("personal", "running", silent_for=0, task_id="task-2")
    # What Celery's prefork pool sends in the worker's main process.
    task_failure.send(sender=tasks.recompute, task_id="task-1",
                      exception=WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL)."),
                      args=["similar"], kwargs={}, traceback=None, einfo=None)
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("The worker process running this run was lost in stage "
                                "'compute' (WorkerLostError: Worker exited prematurely: signal 9")
    assert Run.objects.get(pk=other.pk).status == "running"
    # By run id too (a run "Recompute now" created), and never for another task's failure.
    task_failure.send(sender=tasks.refresh_user, task_id="task-2",
                      exception=WorkerLostError("lost"), args=[], kwargs={"run_id": other.pk})
    assert Run.objects.get(pk=other.pk).status == "running"
    task_failure.send(sender=tasks.recompute, task_id="unknown",
                      exception=WorkerLostError("lost"), args=[], kwargs={"run_id": other.pk})
    assert Run.objects.get(pk=other.pk).status == "failed"


def test_the_admin_shows_a_dead_run_failed_and_stops_reloading(shop):
    dead = in_flight("similar", "running", silent_for=DEFAULTS["RUN_HEARTBEAT_TIMEOUT"] + 5)
    client = staff("manager", can_recompute=False)
    page = client.get(reverse("admin:django_recs_run_change", args=[dead.pk])).content.decode()
    assert "data-recs-refresh" not in page
    assert "No heartbeat for more than" in page
    assert Run.objects.get(pk=dead.pk).status == "failed"


@pytest.mark.parametrize("status", ["pending", "running"])
def test_a_trigger_that_finds_a_dead_run_starts_a_new_one_at_once(shop, status):
    import django_recs

    silent = (DEFAULTS["QUEUE_TIMEOUT"] if status == "pending"
              else DEFAULTS["RUN_HEARTBEAT_TIMEOUT"]) + 5
    dead = in_flight("similar", status, silent_for=silent)
    [fresh] = django_recs.recompute("similar", sync=True)
    assert fresh.pk != dead.pk and fresh.status == "succeeded"
    assert Run.objects.get(pk=dead.pk).status == "failed"


@pytest.mark.parametrize("setting", ["RUN_HEARTBEAT_TIMEOUT", "QUEUE_TIMEOUT", "PENDING_TIMEOUT"])
def test_a_timeout_that_check_reports_falls_back_to_its_default(shop, settings, setting):
    settings.DJANGO_RECS = {**settings.DJANGO_RECS, setting: "300"}
    dead = in_flight("similar", "running", silent_for=DEFAULTS["RUN_HEARTBEAT_TIMEOUT"] + 5)
    client = staff("manager", can_recompute=False)
    assert client.get(reverse("admin:django_recs_run_changelist")).status_code == 200
    assert Run.objects.get(pk=dead.pk).status == "failed"  # its default applied


def test_a_failed_heartbeat_is_logged_and_the_next_one_still_written(caplog):
    # SQLite's file stays locked through a run's own long write: the beats
    # that fail meanwhile must not end the heartbeat, or the sweep would
    # take the run for dead once it outlives HEARTBEAT_TIMEOUT.
    import threading

    from django.db import OperationalError

    from django_recs.pipeline.tracking import beat_until

    stop = threading.Event()
    calls = []

    def beat():
        calls.append(len(calls))
        if len(calls) <= 2:
            raise OperationalError("database is locked")
        if len(calls) == 4:
            stop.set()

    with caplog.at_level("WARNING", logger="django_recs"):
        beat_until(stop, beat, run_id=7, using="default", interval=0.01)
    assert len(calls) == 4
    failures = [r for r in caplog.records if "heartbeat of run 7 failed" in r.getMessage()]
    assert len(failures) == 2 and "database is locked" in failures[0].getMessage()
    assert all(r.exc_info is None for r in failures)
