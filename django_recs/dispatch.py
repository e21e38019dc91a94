"""Triggering runs: :func:`recompute`, and sending a pending run to the Celery workers.

:func:`recompute` starts (or joins) a run per algorithm and runs it here or
enqueues it. :func:`enqueue_run` sends ``django_recs.recompute`` for a pending run once the
current transaction commits. A send that fails (broker down, bad URL, missing
transport library) fails the run at once with the real cause, naming the
broker without its password, so the next trigger can start afresh; it never
raises into the view or command that triggered it.

django_recs binds its tasks with ``shared_task`` and so sends through
Celery's *current* app. In a process where the project never imported its
own app (the ``from .celery import app as celery_app`` line of the project's
``__init__.py``), that is Celery's unconfigured default app, which ignores
CELERY_* settings and sends to amqp on localhost: :func:`unconfigured_celery_app`
detects it for the system check (django_recs.W002) and the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from .conf import recs_settings
from .models import Run
from .pipeline import runs
from .pipeline.tuning import request_tune
from .registry import algorithm_names, build_algorithm, tune_settings

logger = logging.getLogger(__name__)

__all__ = ["broker_url", "enqueue_run", "recompute", "unconfigured_celery_app"]

UNCONFIGURED_APP = (
    "Celery's current app in this process is its unconfigured default, which ignores "
    "CELERY_* settings and sends tasks to {broker}; import the project's Celery app in the "
    "project package's __init__.py (from .celery import app as celery_app)."
)


def recompute(
    *algorithms: str,
    sync: bool = False,
    triggered_by: str = "api",
    using: str = DEFAULT_DB_ALIAS,
    on_progress: Callable[[str, str, float], None] | None = None,
    tune: bool = False,
) -> list[Run]:
    """Start (or join) a run of each named algorithm; all configured when none is named.

    With ``tune=True`` each new run of an algorithm whose ALGORITHMS entry has
    a ``TUNE`` first searches its parameters on the recent history (see
    docs/tuning.md), then fits with the winner; the others run as usual.

    With ``sync=False`` the Celery task ``django_recs.recompute`` is enqueued
    after the current transaction commits and the pending runs are
    returned. With ``sync=True`` each run executes in this process and the
    finished runs are returned (status ``"succeeded"`` or ``"failed"``).
    A run of the same algorithm already pending or running is returned
    instead of starting another. ``on_progress(algorithm, stage, fraction)``
    follows a synchronous run.

    Raises
    ------
    ValueError
        An unknown algorithm name, or an ALGORITHMS entry that cannot be
        built (unknown class, invalid parameters).
    """
    names = list(algorithms) or runs.recompute_order(algorithm_names())
    for name in names:
        build_algorithm(name)  # fail before anything is written
        if tune:
            tune_settings(name)  # a TUNE that is not a dict: E130, before any run starts
    started = []
    for name in names:
        run, created = runs.start_run(name, triggered_by=triggered_by, using=using)
        if created and tune and tune_settings(name) is not None:
            request_tune(run, using=using)
        if created and sync:
            listener = None
            if on_progress is not None:
                def listener(stage, fraction, name=name):
                    on_progress(name, stage, fraction)
            run = runs.execute_run(run.pk, using=using, on_progress=listener)
        elif created:
            enqueue_run(run, using=using)
        started.append(run)
    return started


def current_celery_app():
    """The Celery app that ``shared_task`` tasks send through in this thread."""
    from celery import current_app

    return current_app._get_current_object()


def unconfigured_celery_app() -> bool:
    """Whether tasks would be sent by Celery's fallback app, which no project configured.

    Celery creates that app (named "default", no fix-ups) on first use when
    no app of the project's was created; a project app made by the README's
    ``celery.py`` replaces it as the default for every thread.
    """
    from celery import _state

    app = current_celery_app()
    return app is _state.default_app and app.main == "default" and not app.fixups


def broker_url(app=None) -> str:
    """The URL tasks are sent to, with any password masked."""
    app = app or current_celery_app()
    try:
        return app.connection_for_write().as_uri()
    except Exception as error:  # an unknown transport in the URL: say what it was
        return f"{app.conf.broker_url!r} ({error})"


def enqueue_run(run: Run, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Send ``django_recs.recompute`` for a pending run once the transaction commits.

    The run gets the task's id. When the message cannot be sent, the run is
    marked failed with the cause (and ``run`` updated in place) and the
    failure is logged; nothing is raised to the caller.
    """
    from . import tasks

    def send() -> None:
        app = current_celery_app()
        eager = bool(app.conf.task_always_eager)
        if not eager and unconfigured_celery_app():
            logger.warning("django_recs: %s", UNCONFIGURED_APP.format(broker=broker_url(app)))
        try:
            result = tasks.recompute.apply_async(
                args=[run.algorithm],
                kwargs={"run_id": run.pk, "triggered_by": run.triggered_by},
                soft_time_limit=recs_settings.TASK_SOFT_TIME_LIMIT,
            )
        except Exception as error:
            if eager:  # the task itself ran here and raised: not a sending problem
                raise
            fail_unsent_run(run, error, broker=broker_url(app), using=using)
            return
        task_id = getattr(result, "id", "") or ""
        Run.objects.using(using).filter(pk=run.pk, task_id="").update(task_id=task_id)
        run.task_id = task_id

    transaction.on_commit(send, using=using)


def fail_unsent_run(run: Run, error: BaseException, *, broker: str,
                    using: str = DEFAULT_DB_ALIAS) -> None:
    """Mark a pending run failed because its task could not be sent to ``broker``."""
    cause = f"{type(error).__name__}: {error}".strip().rstrip(".")
    message = (
        f"The task could not be sent to the Celery broker at {broker}: {cause}. "
        "Is the broker running and CELERY_BROKER_URL right? The next trigger starts a new run."
    )
    updated = Run.objects.using(using).filter(pk=run.pk, status=Run.Status.PENDING).update(
        status=Run.Status.FAILED, finished_at=timezone.now(), error=message,
    )
    if updated:
        run.status, run.error = Run.Status.FAILED, message
    logger.error("django_recs: %s run #%s failed: %s", run.algorithm, run.pk, message,
                 extra={"recs_unsent_run": run.pk})


# -- what capture and content ask for once their transaction commits -------------------------


def send_refresh_task(sender, *, user_id, **kwargs) -> None:
    """``django_recs.refresh_user`` for a user whose history changed (REFRESH_ON_RECORD)."""
    from . import tasks

    tasks.refresh_user.delay(user_id)


def send_content_neighbours_task(sender, *, label, key, **kwargs) -> None:
    """``django_recs.content_neighbours`` for an item whose features changed."""
    from . import tasks

    tasks.content_neighbours.delay(label, key)


def connect() -> None:
    """Connect the receivers of capture's and content's signals (from ``AppConfig.ready()``).

    Besides the enqueuing ones: a forgotten user (``capture.user_forgotten``)
    is erased from the files of runs by the pipeline, at once, inside
    forget_user()'s transaction.
    """
    from .capture import user_forgotten, user_history_changed
    from .content.signals import item_features_changed
    from .pipeline.erasure import erase_from_run_files

    user_forgotten.connect(erase_from_run_files, dispatch_uid="django_recs.dispatch.erasure")
    user_history_changed.connect(send_refresh_task, dispatch_uid="django_recs.dispatch.refresh")
    item_features_changed.connect(send_content_neighbours_task,
                                  dispatch_uid="django_recs.dispatch.content_neighbours")
