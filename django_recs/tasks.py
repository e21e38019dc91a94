"""Celery tasks: thin wrappers around :mod:`django_recs.pipeline`.

``django_recs.recompute``, ``django_recs.refresh_user`` and
``django_recs.content_neighbours`` take names and primary keys (JSON arguments), are idempotent, acknowledged late (a worker
lost mid-task leaves the message to be redelivered), retried with
exponential backoff on a database OperationalError, and run under the soft
time limit TASK_SOFT_TIME_LIMIT (read when the task runs). The app never
imports a project's Celery app: ``shared_task`` binds to whichever app the
project's ``celery.py`` configures.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.db import OperationalError

from .conf import recs_settings

__all__ = ["content_neighbours", "recompute", "refresh_user"]


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
def recompute(self, algorithm: str, run_id: int | None = None, triggered_by: str = "celery"):
    """Run ``algorithm``: the given pending run, or a new one (single flight).

    Without ``run_id`` (a beat schedule) a run is started unless one is in
    flight, in which case nothing happens. A run that is no longer pending
    (already done, or taken by another worker) is left alone, so a
    redelivered message is harmless; after a database error the retry
    starts a fresh run. Returns ``{"run": id, "status": ...}``.
    """
    from . import pipeline
    from .models import Run

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
    # In a worker the error is re-raised, so Celery logs it and retries OperationalError;
    # in eager mode (tests, CELERY_TASK_ALWAYS_EAGER) the failed run is the answer.
    run = pipeline.execute_run(run.pk, raise_errors=not self.request.is_eager)
    return {"run": run.pk, "status": run.status}


@shared_task(name="django_recs.refresh_user", **_RETRY_OPTIONS)
def refresh_user(self, user_id: int, algorithm: str = "personal") -> int:
    """Fold one user's current history into the active ALS run; rows written."""
    from .foldin import refresh_user as refresh

    return refresh(int(user_id), algorithm)


@shared_task(name="django_recs.content_neighbours", **_RETRY_OPTIONS)
def content_neighbours(self, model: str, pk: str) -> dict:
    """Recompute one item's content neighbours in the active content runs; rows per algorithm."""
    from .content.updates import update_content_neighbours

    return update_content_neighbours(model, pk)
