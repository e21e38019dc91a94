"""Concurrency on every database: single flight under simultaneous triggers, and
readers during a swap (real transactions, one connection per thread).

PostgreSQL and SQLite hold single flight with a partial unique constraint,
MySQL/MariaDB with a named lock per algorithm: the same tests prove both.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections

import django_recs
from django_recs import pipeline
from django_recs.models import Run, SimilarItem
from tests.pipeline.pipeline_fixtures import RECS, Shop

TRIGGERS = 20


@pytest.fixture
def shop_committed(transactional_db, settings):
    settings.DJANGO_RECS = RECS
    return Shop()


def in_threads(target, n):
    """Run ``target(i)`` in n threads released together; returns results and errors."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def worker(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as error:  # reported by the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_simultaneous_triggers_start_exactly_one_run(shop_committed):
    for _round in range(3):
        results, errors = in_threads(
            lambda i: pipeline.start_run("similar", triggered_by=f"thread {i}"), TRIGGERS
        )
        assert not errors
        created = [run for run, was_created in results if was_created]
        assert len(created) == 1
        assert {run.pk for run, _ in results} == {created[0].pk}
        assert Run.objects.filter(algorithm="similar", status="pending").count() == 1
        Run.objects.filter(pk=created[0].pk).update(status="failed")


@pytest.fixture
def held_runs(monkeypatch):
    """Runs that wait, once loaded, until every other trigger has returned.

    ``trigger(i)`` (a recompute) reports its return; a run executes only
    after TRIGGERS - 1 triggers returned, so a trigger arriving while it is
    in flight can never find it finished. Were two runs created, their two
    triggers would both wait and the run's wait times out: the test fails.
    """
    from django_recs.pipeline import runs

    returned, lock, all_returned = [0], threading.Lock(), threading.Event()
    prepare = runs.prepare_run

    def held_prepare(run, tracker, using):
        all_returned.wait(30)
        return prepare(run, tracker, using)

    monkeypatch.setattr(runs, "prepare_run", held_prepare)

    def trigger(call):
        result = call()
        with lock:
            returned[0] += 1
            if returned[0] == TRIGGERS - 1:
                all_returned.set()
        return result

    trigger.all_returned = all_returned
    return trigger


def test_simultaneous_recompute_calls_return_the_same_run(shop_committed, held_runs):
    # Each trigger commits its run and sends its task (eager here) in its own thread.
    results, errors = in_threads(lambda i: held_runs(lambda: django_recs.recompute("popular")),
                                 TRIGGERS)
    assert not errors
    assert held_runs.all_returned.is_set()
    assert len({runs[0].pk for runs in results}) == 1
    [run] = Run.objects.filter(algorithm="popular")
    assert run.status == "succeeded"


def test_simultaneous_synchronous_recomputes_execute_exactly_one_run(shop_committed, held_runs):
    results, errors = in_threads(
        lambda i: held_runs(lambda: django_recs.recompute("similar", sync=True)), TRIGGERS)
    assert not errors
    assert held_runs.all_returned.is_set()
    # One trigger created the run and executed it; the others got that run in flight.
    assert len({runs[0].pk for runs in results}) == 1
    [run] = Run.objects.filter(algorithm="similar")
    assert run.status == "succeeded" and run.is_active
    assert SimilarItem.objects.active("similar").filter(run=run).exists()


def test_readers_never_see_a_mix_or_nothing_during_a_run(shop_committed):
    [first] = django_recs.recompute("similar", sync=True)
    assert first.status == "succeeded"
    stop = threading.Event()
    observations = []

    def read():
        try:
            while not stop.is_set():
                rows = list(SimilarItem.objects.active("similar").values_list("run_id", flat=True))
                observations.append((len(rows), set(rows)))
        finally:
            connections.close_all()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            [run] = django_recs.recompute("similar", sync=True)
            assert run.status == "succeeded"
    finally:
        stop.set()
        reader.join()
    assert len(observations) > 10
    assert all(count > 0 and len(run_ids) == 1 for count, run_ids in observations)
    assert len({next(iter(ids)) for _, ids in observations}) >= 2  # it did see swaps
