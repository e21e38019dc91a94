"""Coalescing: a recompute message that a finished run has answered since it was sent does nothing.

Fifty queued ``django_recs.recompute`` messages for one algorithm (beat
while the worker was down, a retry storm) ran fifty full runs back to back
on a one-process worker. tests/celery/test_hardening_workers.py queues real
messages; here the stamp a sent message carries is given to the task.
"""

from __future__ import annotations

import time

import pytest

from django_recs import tasks
from django_recs.models import Run
from tests.pipeline import pipeline_fixtures

shop = pipeline_fixtures.shop  # fixture


def received(algorithm=None, *, sent_at: float):
    """The task as a worker runs a message sent at ``sent_at``."""
    args = [algorithm] if algorithm else []
    return tasks.recompute.apply(args=args, headers={tasks.SENT_AT_HEADER: sent_at}).get()


def test_messages_sent_before_a_run_that_finished_do_nothing(shop):
    sent = time.time() - 1  # fifty messages queued a second ago
    first = received("similar", sent_at=sent)
    assert "coalesced" not in first and first["status"] == "succeeded"
    for _ in range(49):
        assert received("similar", sent_at=sent) == {
            "run": first["run"], "status": "succeeded", "coalesced": True}
    assert Run.objects.filter(algorithm="similar").count() == 1


def test_a_message_sent_after_the_last_run_started_runs_again(shop):
    first = received("similar", sent_at=time.time() - 1)
    later = received("similar", sent_at=time.time())
    assert "coalesced" not in later and later["run"] != first["run"]
    assert Run.objects.filter(algorithm="similar").count() == 2


def test_a_failed_run_answers_the_messages_queued_before_it(shop):
    sent = time.time() - 1
    first = received("broken", sent_at=sent)
    assert first["status"] == "failed"
    assert received("broken", sent_at=sent)["coalesced"] is True
    assert Run.objects.filter(algorithm="broken").count() == 1


def test_the_nightly_message_coalesces_per_algorithm(shop):
    sent = time.time() - 1
    received("popular", sent_at=sent)
    outcomes = {o["algorithm"]: o for o in received(sent_at=sent)}
    assert outcomes["popular"]["coalesced"] is True
    assert "coalesced" not in outcomes["similar"]
    assert Run.objects.filter(algorithm="popular").count() == 1


@pytest.mark.parametrize("stamp", [None, "yesterday", True])
def test_a_message_without_a_usable_stamp_is_never_coalesced(shop, stamp):
    received("similar", sent_at=time.time() - 1)
    result = tasks.recompute.apply(args=["similar"], headers={tasks.SENT_AT_HEADER: stamp}).get()
    assert "coalesced" not in result
    assert Run.objects.filter(algorithm="similar").count() == 2


def test_a_sent_message_is_stamped_with_its_sending_time():
    headers: dict = {}
    before = time.time()
    tasks._stamp_the_sending_time(sender="django_recs.recompute", headers=headers)
    assert before <= headers[tasks.SENT_AT_HEADER] <= time.time()
    other: dict = {}
    tasks._stamp_the_sending_time(sender="django_recs.refresh_user", headers=other)
    assert other == {}
