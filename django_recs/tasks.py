"""Celery tasks: thin wrappers around :mod:`django_recs.pipeline`.

``django_recs.recompute``, ``django_recs.refresh_user``,
``django_recs.content_neighbours`` and ``django_recs.roll_up_feedback`` take names and primary keys (JSON arguments), are idempotent, acknowledged late (a worker
lost mid-task fails its run at once where Celery reports it, otherwise the
``django_recs.sweep_runs`` task fails it within a minute), retried with
exponential backoff on a database OperationalError, and run under the soft
time limit TASK_SOFT_TIME_LIMIT (read when the task runs). The app never
imports a project's Celery app: ``shared_task`` binds to whichever app the
project's ``celery.py`` configures.

The tasks of a sharded run (``django_recs.similarity_shard``,
``django_recs.assemble_neighbours``, ``django_recs.recommend_shard``,
``django_recs.finish_sharded_run``; see :mod:`django_recs.pipeline.sharding`) take
the run's id and a row range. They are retried on any error but a corrupt
or missing file and the time limit, requeued when their worker is lost (a
shard started MAX_SHARD_STARTS times is given up), and keep their results
(a chord needs a result backend); when one gives up, the run is failed.
"""

from __future__ import annotations

import time

from billiard.exceptions import WorkerLostError
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import before_task_publish, task_failure
from django.db import OperationalError

from .conf import recs_settings
from .pipeline.shards import ShardGivenUp
from .pipeline.snapshot import SnapshotError

__all__ = [
    "assemble_neighbours",
    "content_neighbours",
    "finish_sharded_run",
    "recommend_shard",
    "RunsFailed",
    "recompute",
    "refresh_user",
    "roll_up_feedback",
    "similarity_shard",
    "sweep_runs",
]


class RecsTask(Task):
    """Reads its soft time limit from DJANGO_RECS when the worker runs it."""

    abstract = True

    @property
    def soft_time_limit(self):  # noqa: D401  (Celery reads this attribute)
        return recs_settings.TASK_SOFT_TIME_LIMIT


_RETRY_OPTIONS = {
    "base": RecsTask,
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": False,  # a killed run is failed by heartbeat, not re-run in a loop
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="django_recs.recompute", **_RETRY_OPTIONS)
def recompute(self, algorithm: str | None = None, run_id: int | None = None,
              triggered_by: str = "celery", tune: bool = False):
    """Run ``algorithm``: the given pending run, or a new one (single flight).

    Without ``run_id`` (a beat schedule) a run is started unless one is in
    flight, in which case nothing happens, or unless a run of the algorithm
    started after this message was sent has finished since: then that run
    answers it (coalescing: fifty queued messages make one run, not fifty;
    ``{"run": id, "status": ..., "coalesced": True}``). A run that is no longer pending
    (already done, or taken by another worker) is left alone, so a
    redelivered message is harmless; after a database error the retry
    starts a fresh run. Returns ``{"run": id, "status": ...}``.

    Without ``algorithm`` (the README's nightly schedule) every configured
    algorithm is recomputed in turn, popular ones first, and a list of those
    dicts is returned; in a worker, :class:`RunsFailed` is raised at the end
    when any of them failed, so the failure shows in Celery's log and monitors.

    ``tune=True`` (the weekly schedule of docs/tuning.md) makes each new run
    of an algorithm with a TUNE entry search its parameters first.
    """
    if algorithm is None:
        return _recompute_all(self, triggered_by, tune)
    from . import pipeline
    from .models import Run
    from .pipeline import sharding

    if run_id is None:
        answered = _run_since_sent(algorithm, self.request)
        if answered is not None:
            return {"run": answered.pk, "status": answered.status, "coalesced": True}

    run = None
    if run_id is not None:
        run = Run.objects.filter(pk=run_id).first()
        retrying_failed = (
            run is not None and run.status == Run.Status.FAILED and self.request.retries
        )
        if run is None or retrying_failed:
            run = None  # start afresh below
        elif run.status != Run.Status.PENDING:
            return {"run": run.pk, "status": run.status}
    if run is None:
        run, created = pipeline.start_run(algorithm, triggered_by=triggered_by)
        if not created and run.status != Run.Status.PENDING:
            return {"run": run.pk, "status": run.status}
        if created and tune:
            _request_tune(run)
        _note_task(run, self.request)
    # In a worker the error is re-raised, so Celery logs it and retries OperationalError;
    # in eager mode (tests, CELERY_TASK_ALWAYS_EAGER) the failed run is the answer.
    run = sharding.execute_run(run.pk, raise_errors=not self.request.is_eager,
                               queue=_queue_of(self.request))
    return {"run": run.pk, "status": run.status}


class RunsFailed(Exception):
    """Some runs of a recompute of every algorithm failed (each run holds its error)."""


def _request_tune(run) -> None:
    """Mark a new run to tune first, when its ALGORITHMS entry has a TUNE."""
    from .pipeline.tuning import request_tune
    from .registry import tune_settings

    if tune_settings(run.algorithm) is not None:
        request_tune(run)


def _recompute_all(task, triggered_by: str, tune: bool = False) -> list[dict]:
    """Every configured algorithm in turn, in this worker; one failure does not stop the rest."""
    from . import pipeline
    from .pipeline import sharding
    from .registry import algorithm_names

    outcomes = []
    for name in pipeline.recompute_order(algorithm_names()):
        answered = _run_since_sent(name, task.request)
        if answered is not None:
            outcomes.append({"algorithm": name, "run": answered.pk, "status": answered.status,
                             "error": "", "coalesced": True})
            continue
        run, created = pipeline.start_run(name, triggered_by=triggered_by)
        if created:
            if tune:
                _request_tune(run)
            _note_task(run, task.request)
            run = sharding.execute_run(run.pk, queue=_queue_of(task.request))
        outcomes.append({"algorithm": name, "run": run.pk, "status": run.status,
                         "error": run.error.splitlines()[0] if run.error else ""})
    failed = [outcome for outcome in outcomes if outcome["status"] == "failed"]
    if failed and not task.request.is_eager:
        raise RunsFailed("; ".join(
            f"{outcome['algorithm']} run #{outcome['run']} failed: {outcome['error']}"
            for outcome in failed
        ))
    return outcomes


#: The header that tells when a recompute message was sent (seconds since the epoch).
SENT_AT_HEADER = "django_recs_sent_at"


@before_task_publish.connect(dispatch_uid="django_recs.tasks.sent_at")
def _stamp_the_sending_time(sender=None, headers=None, **kwargs) -> None:
    """Stamp each ``django_recs.recompute`` message with the time it is sent.

    In every process that sends it with this module imported: the web
    process (dispatch imports it), beat and the workers (Celery's
    autodiscovery). A retry is a new message, with a new time.
    """
    if sender == "django_recs.recompute" and headers is not None:
        headers[SENT_AT_HEADER] = time.time()


def _run_since_sent(algorithm: str, request):
    """A finished run of ``algorithm`` created after the message being run was sent, or None.

    Such a run read the interactions this message was sent about, so it
    answers the message: a queue of recompute messages (beat while a worker
    was down, a retry storm) makes one run per algorithm, not one per
    message. A message without the stamp (sent eagerly, or by a process
    that never imported this module) is never coalesced.
    """
    from datetime import datetime, timezone

    from .models import Run

    # A worker has the message's headers as the request's attributes; apply() under "headers".
    sent = getattr(request, SENT_AT_HEADER, None)
    if sent is None:
        sent = (getattr(request, "headers", None) or {}).get(SENT_AT_HEADER)
    if not isinstance(sent, int | float) or isinstance(sent, bool):
        return None
    sent_at = datetime.fromtimestamp(float(sent), tz=timezone.utc)
    return (Run.objects.filter(algorithm=algorithm, created_at__gte=sent_at,
                               status__in=[Run.Status.SUCCEEDED, Run.Status.FAILED])
            .order_by("-created_at").first())


def _note_task(run, request) -> None:
    """Record on a run the task that started it: a lost worker's task then names its run."""
    from .models import Run

    if request.id and not request.is_eager:
        Run.objects.filter(pk=run.pk, task_id="").update(task_id=request.id)


@task_failure.connect(dispatch_uid="django_recs.tasks.lost_worker")
def _fail_the_run_of_a_lost_worker(sender=None, task_id=None, exception=None, kwargs=None,
                                   **extra) -> None:
    """A recompute whose pool process died (SIGKILL, out of memory) fails its run at once.

    Celery's prefork pool reports the task failed with WorkerLostError in the
    worker's main process; the run need not wait for its heartbeat to time
    out. (A solo worker killed whole sends nothing: the sweep fails its run.)
    """
    if getattr(sender, "name", None) != "django_recs.recompute":
        return
    if not isinstance(exception, WorkerLostError):
        return
    from .pipeline import fail_lost_run

    fail_lost_run(task_id=task_id or "", run_id=(kwargs or {}).get("run_id"),
                  cause=f"{type(exception).__name__}: {exception}")


def _queue_of(request) -> str | None:
    """The queue a task came from: a sharded run keeps its shards on it."""
    return (getattr(request, "delivery_info", None) or {}).get("routing_key") or None


@shared_task(name="django_recs.sweep_runs", base=RecsTask, ignore_result=True)
def sweep_runs() -> list[int]:
    """Fail the runs whose worker is gone (schedule it every 30 s); the ids failed.

    A running run without a heartbeat for RUN_HEARTBEAT_TIMEOUT, a run
    waiting for a worker for QUEUE_TIMEOUT: see docs/pipeline.md.
    """
    from .pipeline import sweep_runs as sweep

    return sweep()


@shared_task(name="django_recs.refresh_user", **_RETRY_OPTIONS)
def refresh_user(self, user_id: int, algorithm: str = "personal") -> int:
    """Fold one user's current history into the active ALS run; rows written."""
    from .pipeline.foldin import refresh_user as refresh

    return refresh(int(user_id), algorithm)


@shared_task(name="django_recs.content_neighbours", **_RETRY_OPTIONS)
def content_neighbours(self, model: str, pk: str) -> dict:
    """Recompute one item's content neighbours in the active content runs; rows per algorithm."""
    from .content.updates import update_content_neighbours

    return update_content_neighbours(model, pk)


@shared_task(name="django_recs.roll_up_feedback", **_RETRY_OPTIONS)
def roll_up_feedback(self, settle_seconds: float | None = None) -> dict:
    """Roll up the impressions, clicks and conversions since the last roll-up (docs/feedback.md).

    Idempotent: what is counted moves the roll-up's marks in the same
    transaction. ``settle_seconds`` overrides how old a row must be.
    Returns what was counted and deleted.
    """
    import datetime

    from .feedback.rollup import SETTLE, roll_up

    settle = SETTLE if settle_seconds is None else datetime.timedelta(seconds=settle_seconds)
    return roll_up(settle=settle).as_dict()


# -- sharded runs -------------------------------------------------------------------------------


class ShardTask(RecsTask):
    """A task of a sharded run: when it gives up, the run fails (previous results stay served)."""

    abstract = True

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from .pipeline.sharding import fail_run

        run_id = args[0] if args else kwargs.get("run_id")
        if run_id is not None:
            fail_run(int(run_id), exc, task=self.name)


_SHARD_OPTIONS = {
    **_RETRY_OPTIONS,
    "base": ShardTask,
    # A lost worker's shard goes back to the queue: shards write exactly once.
    "reject_on_worker_lost": True,
    "autoretry_for": (Exception,),
    "dont_autoretry_for": (SnapshotError, ShardGivenUp, SoftTimeLimitExceeded),
    # The chord counts its parts' results.
    "ignore_result": False,
}

#: A callback that runs before every shard has written (a redelivered part
#: counted twice) looks again this often, for up to ten minutes.
_WAIT_FOR_SHARDS = {"countdown": 2, "max_retries": 300}


@shared_task(name="django_recs.similarity_shard", **_SHARD_OPTIONS)
def similarity_shard(self, run_id: int, index: int, start: int, stop: int) -> dict:
    """Neighbours of the items [start, stop) of a sharded ItemKNN run."""
    from .pipeline.shards import compute_similarity_shard

    return compute_similarity_shard(int(run_id), int(index), int(start), int(stop),
                                    worker=self.request.hostname or "")


@shared_task(name="django_recs.recommend_shard", **_SHARD_OPTIONS)
def recommend_shard(self, run_id: int, index: int, start: int, stop: int) -> dict:
    """Recommendations of the users [start, stop) of a sharded run."""
    from .pipeline.shards import compute_recommend_shard

    return compute_recommend_shard(int(run_id), int(index), int(start), int(stop),
                                   worker=self.request.hostname or "")


@shared_task(name="django_recs.assemble_neighbours", **_SHARD_OPTIONS)
def assemble_neighbours(self, run_id: int) -> dict:
    """After the similarity shards: the whole neighbour matrix, then the user shards."""
    from .pipeline.sharding import ShardsIncomplete
    from .pipeline.sharding import assemble_neighbours as assemble

    try:
        return assemble(int(run_id), queue=_queue_of(self.request))
    except ShardsIncomplete as error:
        raise self.retry(exc=error, **_WAIT_FOR_SHARDS) from None


@shared_task(name="django_recs.finish_sharded_run", **_SHARD_OPTIONS)
def finish_sharded_run(self, run_id: int) -> dict:
    """After the last shard: check every shard arrived and swap the run in."""
    from .pipeline.sharding import ShardsIncomplete, finish_run

    try:
        return finish_run(int(run_id))
    except ShardsIncomplete as error:
        raise self.retry(exc=error, **_WAIT_FOR_SHARDS) from None
