"""Concurrency on PostgreSQL: single flight under simultaneous triggers, and readers
during a swap (real transactions, one connection per thread)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

import django_recs
from django_recs import pipeline
from django_recs.models import Run, SimilarItem
from tests.pipeline.pipeline_fixtures import RECS, Shop

pytestmark = [pytest.mark.postgres]


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
    assert connection.vendor == "postgresql"
    for _round in range(3):
        results, errors = in_threads(
            lambda i: pipeline.start_run("similar", triggered_by=f"thread {i}"), 8
        )
        assert not errors
        created = [run for run, was_created in results if was_created]
        assert len(created) == 1
        assert {run.pk for run, _ in results} == {created[0].pk}
        assert Run.objects.filter(algorithm="similar", status="pending").count() == 1
        Run.objects.filter(pk=created[0].pk).update(status="failed")


def test_simultaneous_recompute_calls_return_the_same_pending_run(shop_committed,
                                                                  django_capture_on_commit_callbacks):
    results, errors = in_threads(lambda i: django_recs.recompute("popular"), 6)
    assert not errors
    assert len({runs[0].pk for runs in results}) == 1


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
