"""The recompute run: load -> matrix -> compute -> write -> swap. No Celery here.

A :class:`~django_recs.models.Run` goes from pending to running to succeeded
or failed. Its rows are written under its own id while the previous run is
still served; one short transaction then makes it the active run of its
algorithm, and only after that are older rows deleted, in batches. A reader
therefore sees either the old rows or the new ones, never a mix or nothing.

Single flight is the database's job: the partial unique constraint
``recs_run_single_flight`` allows one pending or running run per algorithm,
so a second trigger fails to insert and gets the run in flight instead.
MySQL/MariaDB have no partial unique constraint: there a trigger holds a
named lock of the algorithm (``GET_LOCK``, :func:`storage.locks.run_start_lock`)
while it looks for a run in flight and creates one.
A run whose heartbeat is older than RUN_HEARTBEAT_TIMEOUT (its worker was
killed) is marked failed by the sweep task or by the next trigger, which
then starts afresh; a lost prefork child fails its run at once.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import numpy as np
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from ..algorithms.base import Algorithm
from ..conf import exclude_seen_events, max_weight, recs_settings, seconds
from ..kernels import limit_blas_threads, resolve_num_threads
from ..matrix import InteractionMatrix, index_keys
from ..models import PopularItem, Recommendation, RecommendationList, Run, SimilarItem
from ..registry import algorithm_config, build_algorithm
from ..storage.locks import run_start_lock
from ..storage.partitions import drop_run_partition, is_partitioned
from ..storage.read import ItemCatalog, LoadedInteractions, load_interactions
from .artifacts import delete_artifacts, save_artifacts
from .erasure import absent_users, purge_forgotten_users
from .tracking import STAGES, ProgressListener, RunTracker
from .writing import write_results

logger = logging.getLogger("django_recs.pipeline")

#: Result tables, each holding rows of many runs.
RESULT_MODELS = (SimilarItem, Recommendation, RecommendationList, PopularItem)

#: Rows deleted per statement when old rows are cleaned up.
DELETE_BATCH = 50_000


def recompute_order(names: list[str]) -> list[str]:
    """``names`` with the popular algorithms first, the others in their configured order.

    Popular items are the last fallback of every list, and the quickest to
    compute: a first recompute of everything serves them soonest.
    """
    from ..algorithms import Popular
    from ..registry import AlgorithmConfigError, algorithm_class

    def is_popular(name: str) -> bool:
        try:
            return issubclass(algorithm_class(name), Popular)
        except AlgorithmConfigError:
            return False

    return sorted(names, key=lambda name: not is_popular(name))


def start_run(
    algorithm: str, *, triggered_by: str = "", using: str = DEFAULT_DB_ALIAS
) -> tuple[Run, bool]:
    """A pending run of ``algorithm``, or the one already pending or running.

    Returns ``(run, created)``. The database guarantees at most one pending
    or running run per algorithm; a run with a stale heartbeat is failed
    first, so a killed worker does not block the algorithm forever.
    Raises :class:`~django_recs.storage.locks.RunStartLockTimeout` on
    MySQL/MariaDB when another trigger held the algorithm's lock for 30 s.
    """
    with run_start_lock(algorithm, using=using) as locked:
        fail_stale_runs(algorithm, using=using)
        if locked:  # MySQL/MariaDB: no other trigger of the algorithm runs this
            in_flight = _in_flight(algorithm, using)
            if in_flight is not None:
                return in_flight, False
            return _create_run(algorithm, triggered_by, using), True
    for _attempt in range(5):
        try:
            with transaction.atomic(using=using):
                run = _create_run(algorithm, triggered_by, using)
            return run, True
        except IntegrityError:
            in_flight = _in_flight(algorithm, using)
            if in_flight is not None:
                return in_flight, False
            # The run in flight finished between our insert and our read: try again.
    raise RuntimeError(f"could not start or find a run of {algorithm!r}")


def _create_run(algorithm: str, triggered_by: str, using: str) -> Run:
    now = timezone.now()
    return Run.objects.using(using).create(
        algorithm=algorithm, status=Run.Status.PENDING, created_at=now, heartbeat_at=now,
        triggered_by=triggered_by[:150],
    )


def _in_flight(algorithm: str, using: str) -> Run | None:
    return (
        Run.objects.using(using)
        .filter(algorithm=algorithm, status__in=[Run.Status.PENDING, Run.Status.RUNNING])
        .first()
    )


def fail_stale_runs(algorithm: str | None = None, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Mark failed the runs in flight whose worker is gone; the number failed.

    A worker killed mid-run stops beating: a running run whose heartbeat is
    older than RUN_HEARTBEAT_TIMEOUT is dead. A run that waits for a worker
    to take its task — pending, or sharded with its shards in the queue,
    where nothing beats — is given QUEUE_TIMEOUT. Each gets an error saying
    which happened; partial rows and files are deleted.
    """
    return sum(_fail_in_flight(run, stale_run_error(run), using)
               for run in stale_runs(algorithm, using=using))


def _fail_in_flight(run: Run, error: str, using: str) -> bool:
    """Mark a run failed with ``error`` unless it moved on meanwhile; its rows and files go."""
    updated = Run.objects.using(using).filter(pk=run.pk, status=run.status).update(
        status=Run.Status.FAILED, finished_at=timezone.now(), error=error,
    )
    if updated:
        delete_run_rows([run.pk], using=using)
        delete_artifacts(run)
    return bool(updated)


def stale_runs(algorithm: str | None = None, *, using: str = DEFAULT_DB_ALIAS):
    """The runs in flight (of ``algorithm``, or all) whose worker is gone: see fail_stale_runs."""
    now = timezone.now()

    def silent_since(timeout: float) -> Q:
        cutoff = now - timedelta(seconds=timeout)
        return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)

    in_queue = Q(status=Run.Status.PENDING) | Q(status=Run.Status.RUNNING,
                                                 params__has_key="sharding")
    stale = Run.objects.using(using).filter(
        status__in=[Run.Status.PENDING, Run.Status.RUNNING]
    ).filter(
        (in_queue & silent_since(seconds("QUEUE_TIMEOUT")))
        | (~in_queue & silent_since(seconds("RUN_HEARTBEAT_TIMEOUT")))
    )
    if algorithm is not None:
        stale = stale.filter(algorithm=algorithm)
    return stale


def sweep_runs(*, using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """Fail every run whose worker is gone, whatever its algorithm; the ids failed.

    What the ``django_recs.sweep_runs`` task runs (every 30 s in the
    documented beat schedule), so a killed worker's run is failed within a
    minute without waiting for the next trigger of its algorithm.
    """
    return [run.pk for run in stale_runs(using=using)
            if _fail_in_flight(run, stale_run_error(run), using)]


def stale_run_error(run: Run) -> str:
    """Why a run in flight is given up: its worker died, or no worker ever took it."""
    if run.status == Run.Status.PENDING:
        sent = f"sent as task {run.task_id}" if run.task_id else "never sent"
        return (
            f"No worker started this run within {seconds('QUEUE_TIMEOUT'):g} s of its "
            f"creation ({run.created_at:%Y-%m-%d %H:%M:%S} UTC; its task was {sent}): is a "
            "Celery worker running, consuming the queue django_recs's tasks are sent to?"
        )
    last = f"{run.heartbeat_at or run.created_at:%Y-%m-%d %H:%M:%S} UTC"
    if "sharding" in (run.params or {}):
        return (
            f"No shard of this run worked for more than {seconds('QUEUE_TIMEOUT'):g} s (last "
            f"heartbeat at {last}): its shard tasks were lost, or no worker takes them."
        )
    return (
        f"No heartbeat for more than {seconds('RUN_HEARTBEAT_TIMEOUT'):g} s (last at {last}) "
        f"in stage {run.stage!r}: the worker was stopped or killed."
    )


def fail_lost_run(*, task_id: str = "", run_id: int | None = None, cause: str = "",
                  using: str = DEFAULT_DB_ALIAS) -> list[int]:
    """Fail at once the run in flight of a task whose worker process was lost; the ids failed.

    Celery's prefork pool notices a child that died (SIGKILL, out of memory)
    and reports the task failed with WorkerLostError: the run need not wait
    for its heartbeat to time out. The run is found by ``run_id`` or by the
    task that started it.
    """
    match = Q(task_id=task_id) if task_id else Q(pk__in=[])
    if run_id is not None:
        match |= Q(pk=run_id)
    lost = Run.objects.using(using).filter(match, status__in=[Run.Status.PENDING,
                                                             Run.Status.RUNNING])
    return [run.pk for run in lost if _fail_in_flight(run, (
        f"The worker process running this run was lost in stage {run.stage!r} "
        f"({cause or 'WorkerLostError'}): it was killed, ran out of memory or crashed."
    ), using)]


# -- executing --------------------------------------------------------------------


def execute_run(
    run_id: int,
    *,
    using: str = DEFAULT_DB_ALIAS,
    on_progress: ProgressListener | None = None,
    raise_errors: bool = False,
) -> Run:
    """Claim a pending run and execute it: load, matrix, compute, write, swap.

    Only a pending run is executed (claimed atomically, so a redelivered task
    does nothing); the run is returned as it ends. An exception marks the
    run failed with its stage and error, deletes its partial rows and leaves
    the previous results served; it is re-raised when ``raise_errors``.
    ``on_progress(stage, fraction)`` is called as the run advances.
    """
    return run_claimed(run_id, _execute, using=using, on_progress=on_progress,
                       raise_errors=raise_errors)


def run_claimed(
    run_id: int,
    body: Callable[[Run, RunTracker, str], None],
    *,
    using: str = DEFAULT_DB_ALIAS,
    on_progress: ProgressListener | None = None,
    raise_errors: bool = False,
) -> Run:
    """Claim a pending run and call ``body(run, tracker, using)`` under its tracker.

    What :func:`execute_run` does with the in-process stages; a sharded run
    (:mod:`django_recs.sharding`) passes its own body. Failures are handled
    as documented there.
    """
    now = timezone.now()
    claimed = Run.objects.using(using).filter(pk=run_id, status=Run.Status.PENDING).update(
        status=Run.Status.RUNNING, started_at=now, heartbeat_at=now, stage=STAGES[0], progress=0.0
    )
    run = Run.objects.using(using).get(pk=run_id)
    if not claimed:
        return run
    tracker = RunTracker(run, using=using, on_progress=on_progress)
    try:
        with tracker.watching():
            body(run, tracker, using)
    except BaseException as error:
        _mark_failed(run, tracker, error, using)
        if raise_errors or not isinstance(error, Exception):
            raise
    run.refresh_from_db(using=using)
    return run


@dataclass
class PreparedRun:
    """A run after its load and matrix stages: what the compute stage needs."""

    algorithm: Algorithm
    matrix: InteractionMatrix
    catalog: ItemCatalog
    interactions: int
    ignored: int
    threads: int
    n_recommendations: int
    #: Rows skipped per reason (see :func:`screen_interactions`), shown on the run.
    skipped: dict[str, int] = field(default_factory=dict)


def _execute(run: Run, tracker: RunTracker, using: str) -> None:
    prepared = prepare_run(run, tracker, using)
    complete_run(run, tracker, prepared, using)


def prepare_run(run: Run, tracker: RunTracker, using: str) -> PreparedRun:
    """Record the run's params, then the load and matrix stages (and the tune, when asked)."""
    from .tuning import TUNE_REQUESTED, reuse_last_tune, tune_run

    tuning = bool((run.params or {}).get(TUNE_REQUESTED))
    algorithm = build_algorithm(run.algorithm)
    tune_record = None
    if not tuning:
        algorithm, tune_record = reuse_last_tune(run.algorithm, algorithm, using=using)
    half_life = recs_settings.HALF_LIFE_DAYS
    threads = resolve_num_threads(recs_settings.NUM_THREADS)
    n_recommendations = int(recs_settings.RECOMMENDATIONS_PER_USER)
    run.params = {
        "class": algorithm_config(run.algorithm)["class"],
        **algorithm.get_params(),
        "n_recommendations": n_recommendations,
        "half_life_days": half_life,
        "exclude_seen": exclude_seen_events(),
        "num_threads": threads,
    }
    if tune_record is not None:
        run.params["tune"] = tune_record
    Run.objects.using(using).filter(pk=run.pk).update(params=run.params)

    with tracker.stage("load"):
        loaded = load_interactions(using=using, with_timestamps=half_life is not None or tuning)
        tracker.rows_read = len(loaded)
    with tracker.stage("matrix"):
        loaded, skipped = screen_interactions(loaded, using=using)
        matrix, ignored = build_matrix(loaded, half_life_days=half_life, now=time.time())
        catalog = loaded.catalog
        if getattr(algorithm, "uses_item_features", False):
            # Content algorithms: every featured item becomes a column, with its features.
            from ..content.loading import prepare_item_features

            matrix, catalog = prepare_item_features(algorithm, matrix, catalog, using=using)
    if tuning:
        with tracker.stage("tune"):
            algorithm, record = tune_run(run.algorithm, algorithm, loaded,
                                         half_life_days=half_life, num_threads=threads,
                                         progress=tracker.progress)
        run.params = {**run.params, **algorithm.get_params(), "tune": record}
        Run.objects.using(using).filter(pk=run.pk).update(params=run.params)
    return PreparedRun(algorithm, matrix, catalog, tracker.rows_read,
                       ignored + sum(skipped.values()), threads, n_recommendations, skipped)


def complete_run(run: Run, tracker: RunTracker, prepared: PreparedRun, using: str) -> None:
    """The compute, write and swap stages in this process, then the cleanup."""
    algorithm, matrix, catalog = prepared.algorithm, prepared.matrix, prepared.catalog
    threads, n_recommendations = prepared.threads, prepared.n_recommendations
    with tracker.stage("compute"), limit_blas_threads(threads):
        result = algorithm.fit(
            matrix,
            n_recommendations=n_recommendations,
            num_threads=threads,
            progress=tracker.progress,
        )
    with tracker.stage("write"):
        # Rows stream through one COPY on the run's connection: progress is only
        # noted here and written by the heartbeat thread (its own connection).
        written = write_results(run, algorithm, result, matrix, catalog,
                                using=using, progress=tracker.note_progress)
        run.artifacts = save_artifacts(run, result, catalog)
        tracker.rows_written = sum(written.values())
    metrics = {
        **base_metrics(prepared),
        **{f"rows_{name}": count for name, count in written.items()},
        **{key: value for key, value in result.counts.items() if _is_json_number(value)},
    }
    if result.recommended is not None and algorithm.personal:
        recommended = result.recommended
        metrics["users_with_recommendations"] = int((recommended >= 0).any(axis=1).sum())
        metrics["item_coverage"] = float(
            len(np.unique(recommended[recommended >= 0])) / max(1, matrix.n_items)
        )
    metrics.update(tune_metrics(run.params))
    with tracker.stage("swap"):
        swap_active_run(run, metrics=metrics, timings=tracker.timings_so_far(), using=using,
                        rows_read=tracker.rows_read, rows_written=tracker.rows_written)
    tracker.timings["cleanup"] = clean_up_after(run, using=using)
    Run.objects.using(using).filter(pk=run.pk).update(timings=tracker.timings)


def tune_metrics(params: dict | None) -> dict:
    """The validation numbers of the tune a run's parameters came from (none when untuned)."""
    record = (params or {}).get("tune")
    if not isinstance(record, dict) or not isinstance(record.get("validation_metrics"), dict):
        return {}
    metric = str(record.get("metric", "ndcg@10"))
    k = metric.partition("@")[2] or "10"
    values = record["validation_metrics"]
    numbers = {f"tune_validation_{name}@{k}": values[name]
               for name in ("precision", "recall", "ndcg", "hit_rate")
               if _is_json_number(values.get(name))}
    configured = record.get("configured_validation_metrics")
    if isinstance(configured, dict):
        numbers.update({f"tune_configured_{name}@{k}": configured[name]
                        for name in ("precision", "recall", "ndcg", "hit_rate")
                        if _is_json_number(configured.get(name))})
    numbers["tune_trials"] = int(record.get("trials", 0))
    return numbers


def base_metrics(prepared: PreparedRun) -> dict:
    """The metrics every run records about its input matrix."""
    matrix = prepared.matrix
    return {
        "users": matrix.n_users,
        "items": matrix.n_items,
        "interactions": prepared.interactions,
        "pairs": int(matrix.nnz),
        "density": float(matrix.nnz / max(1, matrix.n_users * matrix.n_items)),
        "ignored_interactions": int(prepared.ignored),
        **{f"ignored_{reason}": int(count) for reason, count in prepared.skipped.items() if count},
    }


def clean_up_after(run: Run, *, using: str = DEFAULT_DB_ALIAS) -> float:
    """Delete older rows and prune old runs after a swap; returns the seconds it took.

    The run has succeeded and is served: a failure here is only logged.
    """
    started = time.perf_counter()
    try:
        delete_inactive_rows(run.algorithm, using=using)
        prune_runs(run.algorithm, using=using)
    except Exception:
        logger.exception("django_recs: could not clean up after run %s of %r",
                         run.pk, run.algorithm)
    return round(time.perf_counter() - started, 4)


def _is_json_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def screen_interactions(
    loaded: LoadedInteractions, *, using: str = DEFAULT_DB_ALIAS
) -> tuple[LoadedInteractions, dict[str, int]]:
    """The loaded rows a run can use, and how many it skips per reason.

    - ``weight_above_max``: a weight above MAX_WEIGHT, written around
      capture's validation (a bulk insert of the shop's own, an older
      version): one such row (1e39) would overflow the float32 kernels and
      fail every run until someone deleted it by hand.
    - ``forgotten_user``: a user erased by ``forget_user()`` (a row a
      concurrent write slipped in): never computed on.
    - ``user_deleted``: a user that no longer exists (``record()`` for a user
      another process deleted writes such an orphan row; the table has no
      foreign-key constraint): no list is computed for nobody.
    """
    too_heavy = loaded.weights > max_weight()
    forgotten, deleted = absent_users(loaded.users, using=using)
    skipped = {
        "weight_above_max": int(too_heavy.sum()),
        "forgotten_user": int(forgotten.sum()),
        "user_deleted": int(deleted.sum()),
    }
    if not any(skipped.values()):
        return loaded, skipped
    return _keep(loaded, ~(too_heavy | forgotten | deleted)), skipped


def _keep(loaded: LoadedInteractions, rows: np.ndarray) -> LoadedInteractions:
    """The loaded interactions of the rows where ``rows`` is True (same catalog)."""
    return replace(
        loaded, users=loaded.users[rows], items=loaded.items[rows],
        weights=loaded.weights[rows], seen=loaded.seen[rows],
        timestamps=None if loaded.timestamps is None else loaded.timestamps[rows],
    )


def build_matrix(
    loaded: LoadedInteractions, *, half_life_days: float | None = None, now: float | None = None
) -> tuple[InteractionMatrix, int]:
    """The users x items matrix of loaded interactions, and how many were ignored.

    Rows are the distinct users (``user_ids`` = their pks, ascending);
    columns are the catalog's items (``item_ids`` = column numbers).
    Interactions with a negative or non-finite weight (written around
    record()'s validation) are ignored rather than failing the run.
    """
    usable = np.isfinite(loaded.weights) & (loaded.weights >= 0)
    ignored = int((~usable).sum())
    users, items, weights, seen = loaded.users, loaded.items, loaded.weights, loaded.seen
    timestamps = loaded.timestamps
    if ignored:
        users, items, weights, seen = users[usable], items[usable], weights[usable], seen[usable]
        timestamps = None if timestamps is None else timestamps[usable]
    user_ids, rows = index_keys(users.astype(np.int64))
    matrix = InteractionMatrix.from_arrays(
        rows, items, weights, seen,
        shape=(len(user_ids), len(loaded.catalog)),
        user_ids=user_ids.astype(np.int64),
        item_ids=np.arange(len(loaded.catalog), dtype=np.int64),
        timestamps=timestamps,
        half_life_days=half_life_days,
        now=now if now is not None else time.time(),
    )
    return matrix, ignored


# -- swapping and cleaning up -------------------------------------------------------


def swap_active_run(
    run: Run,
    *,
    metrics: dict | None = None,
    timings: dict | None = None,
    rows_read: int | None = None,
    rows_written: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Make ``run`` the succeeded, active run of its algorithm in one short transaction."""
    now = timezone.now()
    fields = {"status": Run.Status.SUCCEEDED, "is_active": True, "finished_at": now,
              "heartbeat_at": now, "progress": 1.0, "stage": "swap"}
    if metrics is not None:
        fields["metrics"] = metrics
    if timings is not None:
        fields["timings"] = timings
    if rows_read is not None:
        fields["rows_read"] = rows_read
    if rows_written is not None:
        fields["rows_written"] = rows_written
    with transaction.atomic(using=using):
        # Users forgotten since the load: what the run computed for them goes with the
        # swap. First, before any run is locked (the lock order of erasure.py).
        purge_forgotten_users(run, using=using)
        runs = Run.objects.using(using)
        # Lock the algorithm's active run so two swaps serialise.
        list(runs.select_for_update().filter(algorithm=run.algorithm, is_active=True))
        runs.filter(algorithm=run.algorithm, is_active=True).exclude(pk=run.pk).update(
            is_active=False
        )
        updated = runs.filter(pk=run.pk, status=Run.Status.RUNNING).update(**fields)
        if not updated:
            raise RuntimeError(
                f"run {run.pk} is no longer running (declared dead?); its results are discarded"
            )


def active_run(algorithm: str, *, using: str = DEFAULT_DB_ALIAS) -> Run | None:
    """The run whose rows are served for ``algorithm``, or None."""
    return Run.objects.using(using).filter(algorithm=algorithm, is_active=True).first()


def delete_inactive_rows(algorithm: str, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete the rows of every finished, inactive run of ``algorithm`` (in batches)."""
    run_ids = list(
        Run.objects.using(using)
        .filter(algorithm=algorithm, is_active=False,
                status__in=[Run.Status.SUCCEEDED, Run.Status.FAILED])
        .values_list("pk", flat=True)
    )
    return delete_run_rows(run_ids, using=using)


def delete_run_rows(run_ids: list[int], *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete the result rows of the given runs.

    On PostgreSQL a run's own partition is dropped. Other rows are deleted
    DELETE_BATCH rows per statement: a run's rows are written together, so
    their primary keys are (nearly) contiguous and deleting by key range
    keeps each statement short.
    """
    deleted = 0
    for model in RESULT_MODELS:
        partitioned = is_partitioned(model, using)
        for run_id in run_ids:
            if partitioned:
                deleted += drop_run_partition(model, run_id, using=using)
            rows = model.objects.using(using).filter(run_id=run_id)
            bounds = rows.aggregate(low=Min("pk"), high=Max("pk"))
            if bounds["low"] is None:
                continue
            for start in range(bounds["low"], bounds["high"] + 1, DELETE_BATCH):
                count, _ = rows.filter(pk__gte=start, pk__lt=start + DELETE_BATCH).delete()
                deleted += count
    return deleted


def prune_runs(algorithm: str, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete the metadata of finished, inactive runs beyond the newest KEEP_RUNS."""
    keep = max(0, int(recs_settings.KEEP_RUNS))
    finished = (
        Run.objects.using(using)
        .filter(algorithm=algorithm, is_active=False,
                status__in=[Run.Status.SUCCEEDED, Run.Status.FAILED])
        .order_by("-created_at", "-pk")
    )
    old = list(finished[keep:])
    if not old:
        return 0
    delete_run_rows([run.pk for run in old], using=using)
    for run in old:
        delete_artifacts(run)
    Run.objects.using(using).filter(pk__in=[run.pk for run in old]).delete()
    return len(old)


def _mark_failed(run: Run, tracker: RunTracker, error: BaseException, using: str) -> None:
    """Record the failure (stage, error), delete the run's partial rows and files."""
    summary = "".join(traceback.format_exception_only(type(error), error)).strip()
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    logger.error("django_recs: run %s of %r failed in stage %s: %s",
                 run.pk, run.algorithm, tracker.current_stage, summary)
    try:
        connection = connections[using]
        if connection.in_atomic_block and connection.needs_rollback:
            return  # the caller's transaction is broken; it rolls the run back anyway
        if not connection.is_usable():
            connection.close()
        Run.objects.using(using).filter(pk=run.pk).update(
            status=Run.Status.FAILED,
            finished_at=timezone.now(),
            stage=tracker.current_stage,
            timings=tracker.timings,
            rows_read=tracker.rows_read,
            error=f"{summary}\n\nStage: {tracker.current_stage}\n\n{details}"[:20_000],
        )
        delete_run_rows([run.pk], using=using)
        delete_artifacts(run)
    except Exception:  # the database may be what failed; the heartbeat timeout covers it
        logger.exception("django_recs: could not record the failure of run %s", run.pk)

