"""Sharded runs: one recompute spread over several Celery workers, with the rows of one.

With SHARDS != 1, a run that goes through Celery (``recompute(sync=False)``,
the ``django_recs.recompute`` task) is split once its matrix is built::

    recompute task: load → matrix → snapshot (one .npz + SHA-256 in the storage)
      ItemKNN: chord(similarity shards over item ranges) → assemble_neighbours
               chord(recommendation shards over user ranges) → finish_sharded_run
      ALS:     train here (every thread) → factors to the storage
               chord(recommendation shards over user ranges) → finish_sharded_run
      UserKNN: chord(recommendation shards over user ranges: each finds its
               users' neighbours, then their votes) → finish_sharded_run

Shards (:mod:`django_recs.shards`) write their rows under the run's id with
a RunShard row each, exactly once. ``finish_sharded_run`` checks that every
planned shard has its row and that the tables hold exactly the rows the
shards counted, then swaps the run in (:func:`runs.swap_active_run`) and
cleans up as an in-process run does. A shard that fails is retried; when its
retries are exhausted the run is failed (rows and files deleted, previous
results still served). Ranges are contiguous and balanced by an estimate of
their work, so a best-selling item does not make one shard the straggler.

Algorithms other than ItemKNN, ALS and UserKNN (or subclasses that override ``fit``),
``sync=True`` runs and runs whose plan has fewer than two shards execute in
one process as before. See docs/scaling.md.
"""

from __future__ import annotations

import logging
import math
import time
import traceback

import numpy as np
import scipy.sparse as sp
from celery.exceptions import Retry
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from ..algorithms.als import ALS
from ..algorithms.itemknn import ItemKNN, neighbour_counts
from ..algorithms.userknn import UserKNN, neighbour_costs
from ..conf import recs_settings
from ..kernels import limit_blas_threads
from ..models import (
    ForgottenUser,
    Recommendation,
    RecommendationList,
    Run,
    RunShard,
    SimilarItem,
)
from ..storage.partitions import create_run_partition, is_partitioned
from . import runs
from .artifacts import save_item_factors
from .erasure import scrub_run_files
from .results import similar_item_columns
from .shards import (
    FACTORS,
    NEIGHBOURS,
    RECOMMEND,
    SHARD_FILE_PREFIX,
    SIMILAR,
    SNAPSHOT,
    beating,
    decode_items,
    load_shard_rows,
    running_run,
    snapshot_of,
    write_shard,
)
from .snapshot import (
    CHECKSUM_SUFFIX,
    add_artifacts,
    remove_artifacts,
    run_path,
    save_arrays,
    save_csr,
    save_matrix,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AUTO_SHARD_PAIRS",
    "ShardsIncomplete",
    "assemble_neighbours",
    "execute_run",
    "fail_run",
    "finish_run",
    "shard_count",
    "shard_kind",
    "split_ranges",
]

#: SHARDS = 0: one shard per this many stored (user, item) pairs...
AUTO_SHARD_PAIRS = 250_000
#: ...and at most this many shards.
MAX_AUTO_SHARDS = 64



class ShardsIncomplete(RuntimeError):
    """A callback ran before every planned shard had written its rows."""


# -- planning -----------------------------------------------------------------------------------


def shard_count(setting, nnz: int) -> int:
    """Shards for a run with ``nnz`` stored pairs under SHARDS = ``setting``.

    1 means the run executes in one process; 0 is automatic: one shard per
    AUTO_SHARD_PAIRS pairs, at most MAX_AUTO_SHARDS.

    Raises
    ------
    ValueError
        ``setting`` is not an integer >= 0.
    """
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise ValueError(f"SHARDS must be an integer >= 0, got {setting!r}")
    if setting == 0:
        return max(1, min(MAX_AUTO_SHARDS, math.ceil(int(nnz) / AUTO_SHARD_PAIRS)))
    return setting


def split_ranges(costs, n_shards: int) -> list[tuple[int, int]]:
    """Contiguous ranges covering every row, each with about the same total cost.

    ``costs`` (one number >= 0 per row) estimates each row's work. Returns at
    most ``n_shards`` non-empty ``(start, stop)`` ranges in order; an empty
    input gives no range.

    Raises
    ------
    ValueError
        ``n_shards`` < 1, or a negative or non-finite cost.
    """
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise ValueError(f"n_shards must be an integer >= 1, got {n_shards!r}")
    if costs.size and (not np.isfinite(costs).all() or costs.min() < 0):
        raise ValueError("costs must be finite and >= 0")
    n = costs.size
    if n == 0:
        return []
    # Every row costs a little, so rows without work still spread out.
    weights = costs + max(float(costs.mean()), 1.0) * 1e-3
    cumulative = np.cumsum(weights)
    targets = cumulative[-1] * np.arange(1, min(n_shards, n)) / min(n_shards, n)
    cuts = np.searchsorted(cumulative, targets, side="left") + 1
    bounds = np.unique(np.concatenate(([0], np.clip(cuts, 1, n), [n])))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def item_costs(weights: sp.csr_matrix) -> np.ndarray:
    """Similarity work per item: the total history length of the item's users."""
    lengths = np.diff(weights.indptr)
    return np.bincount(weights.indices, weights=np.repeat(lengths, lengths).astype(np.float64),
                       minlength=weights.shape[1])


def itemknn_user_costs(weights: sp.csr_matrix, neighbours: sp.csr_matrix, n: int) -> np.ndarray:
    """Recommendation work per user: history entries times their neighbours, plus the reasons."""
    per_item = np.diff(neighbours.indptr).astype(np.float64)
    expanded = np.concatenate(([0.0], np.cumsum(per_item[weights.indices])))
    lengths = np.diff(weights.indptr)
    return expanded[weights.indptr[1:]] - expanded[weights.indptr[:-1]] + lengths * float(n)


def als_user_costs(weights: sp.csr_matrix) -> np.ndarray:
    """Scoring work per user: every user with a history scores every item."""
    return (np.diff(weights.indptr) > 0).astype(np.float64)


def userknn_user_costs(weights: sp.csr_matrix) -> np.ndarray:
    """UserKNN work per user: its neighbours' accumulation (the votes cost far less)."""
    return neighbour_costs(weights)


def shard_kind(algorithm) -> str | None:
    """"itemknn", "als" or "userknn" when the algorithm can be sharded, else None.

    A subclass that overrides ``fit`` computes something of its own, so it
    runs in one process; content-based algorithms too.
    """
    if getattr(algorithm, "uses_item_features", False):
        return None
    if isinstance(algorithm, ItemKNN) and type(algorithm).fit is ItemKNN.fit:
        return "itemknn"
    if isinstance(algorithm, ALS) and type(algorithm).fit is ALS.fit:
        return "als"
    if isinstance(algorithm, UserKNN) and type(algorithm).fit is UserKNN.fit:
        return "userknn"
    return None


# -- starting (the recompute task) -------------------------------------------------------------


def execute_run(
    run_id: int, *, using: str = DEFAULT_DB_ALIAS, raise_errors: bool = False,
    queue: str | None = None,
) -> Run:
    """What the recompute task runs: in process with SHARDS = 1, else maybe sharded.

    A sharded run returns once its shards are dispatched (still running);
    with Celery in eager mode the shards run inside this call and the run
    returns finished. ``queue``: where to send the shard tasks (the
    recompute task's own queue; None = the default routing).
    """
    if recs_settings.SHARDS == 1:
        return runs.execute_run(run_id, using=using, raise_errors=raise_errors)

    def body(run: Run, tracker: runs.RunTracker, using: str) -> None:
        _start(run, tracker, using, queue)

    return runs.run_claimed(run_id, body, using=using, raise_errors=raise_errors)


def _start(run: Run, tracker: runs.RunTracker, using: str, queue: str | None) -> None:
    prepared = runs.prepare_run(run, tracker, using)
    matrix = prepared.matrix
    kind = shard_kind(prepared.algorithm)
    n_shards = shard_count(recs_settings.SHARDS, matrix.nnz)
    if kind is None or n_shards < 2 or matrix.nnz == 0 or matrix.n_items < 2:
        runs.complete_run(run, tracker, prepared, using)
        return
    Run.objects.using(using).filter(pk=run.pk).update(
        rows_read=tracker.rows_read, metrics=runs.base_metrics(prepared)
    )
    started = time.perf_counter()
    snapshot = save_matrix(run.pk, matrix, prepared.catalog)
    run.artifacts = add_artifacts(run.pk, snapshot.artifacts(SNAPSHOT), using=using)
    _scrub(run, matrix, using)
    tracker.timings["snapshot"] = round(time.perf_counter() - started, 4)

    plan = {"kind": kind, "shards": n_shards, "compute_started": time.time()}
    with tracker.stage("compute"):
        if kind == "itemknn":
            plan[SIMILAR] = split_ranges(item_costs(matrix.weights), n_shards)
            plan["total"] = 2 * len(plan[SIMILAR])
            phase, ranges, callback = SIMILAR, plan[SIMILAR], "assemble"
        elif kind == "userknn":
            # A user's neighbours and votes need the whole matrix but nothing
            # of other users' results: one phase over user ranges.
            plan[SIMILAR] = []
            plan[RECOMMEND] = split_ranges(userknn_user_costs(matrix.weights), n_shards)
            plan["total"] = len(plan[RECOMMEND])
            plan["counts"] = {"items": int(matrix.n_items), "users": int(matrix.n_users)}
            phase, ranges, callback = RECOMMEND, plan[RECOMMEND], "finish"
        else:
            plan.update(_train(run, prepared, tracker, using))
            plan[RECOMMEND] = split_ranges(als_user_costs(matrix.weights), n_shards)
            plan["total"] = len(plan[SIMILAR]) + len(plan[RECOMMEND])
            phase, ranges, callback = RECOMMEND, plan[RECOMMEND], "finish"
        plan["progress_from"] = tracker.overall
        run.params = {**run.params, "sharding": plan}
        # Everything the shards read is saved before the first one is sent
        # (in eager mode the whole run finishes inside dispatch).
        Run.objects.using(using).filter(pk=run.pk).update(
            params=run.params, timings=tracker.timings_so_far(), heartbeat_at=timezone.now()
        )
        prepare_partitions(run.pk, using=using)
        try:
            dispatch(run.pk, phase, ranges, callback, queue=queue)
        except BaseException as error:
            # Eager shards ran here (tests): a shard that gave up has failed the run already;
            # otherwise fail it with every file the shards recorded, and with the shard's
            # own error (eager propagation stops at its first retry).
            run.refresh_from_db(using=using, fields=["artifacts", "status"])
            if run.status == Run.Status.FAILED and isinstance(error, Exception):
                return
            if isinstance(error, Retry) and isinstance(error.exc, BaseException):
                raise error.exc from None
            raise


def _train(run: Run, prepared: runs.PreparedRun, tracker, using: str) -> dict:
    """ALS: factors trained here, saved for the shards (and for fold-in)."""
    algorithm, matrix, threads = prepared.algorithm, prepared.matrix, prepared.threads
    with limit_blas_threads(threads):
        user_factors, item_factors = algorithm.fit_factors(
            matrix, num_threads=threads, progress=lambda fraction: tracker.progress(0.8 * fraction)
        )
        similar = algorithm.similar_from_factors(item_factors, num_threads=threads)
    stored = save_arrays(run_path(run.pk, "factors.npz"),
                         {"user_factors": user_factors, "item_factors": item_factors})
    run.artifacts = add_artifacts(
        run.pk,
        {**stored.artifacts(FACTORS),
         "item_factors": save_item_factors(run.pk, item_factors, prepared.catalog)},
        using=using,
    )
    _scrub(run, matrix, using)
    ranges = []
    if similar is not None:
        # Item neighbours by cosine of the factors: one pass here, stored as one shard.
        ranges = [(0, matrix.n_items)]
        columns = similar_item_columns(run.pk, similar, prepared.catalog)
        write_shard(run, SIMILAR, 0, ranges[0], SimilarItem,
                    [columns] if len(columns["run_id"]) else [], using=using)
    counts = {"users": int(matrix.n_users), "items": int(matrix.n_items),
              "users_with_history": int((np.diff(matrix.weights.indptr) > 0).sum())}
    return {"counts": counts, SIMILAR: ranges}


def _scrub(run: Run, matrix, using: str) -> None:
    """Right after a file with rows per user is recorded: users forgotten meanwhile are removed.

    The matrix was built without the users forgotten before the load; one
    forgotten since could be in the file, and its erasure found no file to
    rewrite (it waits on the run's row while the file is recorded, so it is
    seen here). Without such a user nothing is read.
    """
    forgotten = ForgottenUser.objects.using(using).values_list("user_id", flat=True)
    users = np.intersect1d(matrix.user_ids, np.fromiter(forgotten, dtype=np.int64))
    if len(users) and scrub_run_files(run.pk, user_ids=users.tolist(), using=using):
        run.refresh_from_db(using=using, fields=["artifacts"])


def prepare_partitions(run_id: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """On PostgreSQL, the run's partitions, so that shards append to them side by side."""
    for model in (SimilarItem, Recommendation, RecommendationList):
        if is_partitioned(model, using):
            create_run_partition(model, run_id, using=using)


def dispatch(run_id: int, phase: str, ranges, callback: str, *, queue: str | None = None) -> None:
    """Send a chord: one shard task per range, then the callback."""
    from celery import chord, signature

    # The tasks by name (django_recs/tasks.py defines them): the pipeline never imports them.
    shard_task = "django_recs.similarity_shard" if phase == SIMILAR else "django_recs.recommend_shard"
    callback_task = ("django_recs.assemble_neighbours" if callback == "assemble"
                     else "django_recs.finish_sharded_run")
    options = {"queue": queue} if queue else {}
    header = [signature(shard_task, args=(run_id, index, start, stop), immutable=True, **options)
              for index, (start, stop) in enumerate(ranges)]
    chord(header, signature(callback_task, args=(run_id,), immutable=True, **options)).apply_async()


# -- the callbacks ---------------------------------------------------------------------------------


def _markers(run_id: int, phase: str, ranges, using: str) -> list[RunShard]:
    """The RunShard rows of a phase, in order; ShardsIncomplete unless every range has one."""
    markers = list(RunShard.objects.using(using).filter(run_id=run_id, phase=phase)
                   .order_by("index"))
    found = {(m.index, m.start, m.stop) for m in markers}
    expected = {(index, start, stop) for index, (start, stop) in enumerate(ranges)}
    if found != expected:
        missing = sorted(index for index, _start, _stop in expected - found)
        raise ShardsIncomplete(
            f"run {run_id}: {phase} shards {missing} of {len(ranges)} have not written their rows"
        )
    return markers


def assemble_neighbours(run_id: int, *, using: str = DEFAULT_DB_ALIAS,
                        queue: str | None = None) -> dict:
    """ItemKNN, after the similarity shards: stack their rows, plan and send the user shards."""
    run = running_run(run_id, using=using)
    if run is None:
        return {"run": run_id, "skipped": "the run is not running"}
    plan = run.params["sharding"]
    with beating(run_id, using=using):
        markers = _markers(run_id, SIMILAR, plan[SIMILAR], using)
        neighbours = sp.vstack([load_shard_rows(marker) for marker in markers], format="csr")
        stored = save_csr(run_path(run_id, "neighbours.npz"), neighbours)
        add_artifacts(run_id, stored.artifacts(NEIGHBOURS), using=using)
        matrix = snapshot_of(run).matrix
        n = int(run.params.get("n_recommendations", recs_settings.RECOMMENDATIONS_PER_USER))
        plan[RECOMMEND] = split_ranges(itemknn_user_costs(matrix.weights, neighbours, n),
                                       int(plan["shards"]))
        plan["total"] = len(plan[SIMILAR]) + len(plan[RECOMMEND])
        plan["counts"] = {"items": int(matrix.n_items), "users": int(matrix.n_users),
                          **neighbour_counts(neighbours)}
        run.params = {**run.params, "sharding": plan}
        Run.objects.using(using).filter(pk=run_id).update(params=run.params)
    dispatch(run_id, RECOMMEND, plan[RECOMMEND], "finish", queue=queue)
    return {"run": run_id, "recommend_shards": len(plan[RECOMMEND])}


def finish_run(run_id: int, *, using: str = DEFAULT_DB_ALIAS) -> dict:
    """After the last shard: check every shard arrived, swap the run in, clean up."""
    run = running_run(run_id, using=using)
    if run is None:
        return {"run": run_id, "skipped": "the run is not running"}
    plan = run.params["sharding"]
    with beating(run_id, using=using):
        recommend = _markers(run_id, RECOMMEND, plan[RECOMMEND], using)
        similar = _markers(run_id, SIMILAR, plan[SIMILAR], using)
        rows = {"similar": sum(m.rows for m in similar),
                "recommendations": sum(m.rows for m in recommend), "popular": 0}
        _check_rows(run, rows, using)
        metrics = {**(run.metrics or {}), **{f"rows_{name}": count for name, count in rows.items()},
                   **plan.get("counts", {}), **_shard_counts(recommend),
                   **_list_metrics(recommend, run.metrics or {}),
                   **runs.tune_metrics(run.params)}
        shards = similar + recommend
        timings = {
            **(run.timings or {}),
            "compute": round(time.time() - float(plan["compute_started"]), 4),
            **{f"shards_{part}": round(sum(m.seconds.get(part, 0.0) for m in shards), 4)
               for part in ("load", "compute", "write")},
        }
        started = time.perf_counter()
        runs.swap_active_run(run, metrics=metrics, timings=timings, using=using,
                                 rows_read=run.rows_read, rows_written=sum(rows.values()))
        timings["swap"] = round(time.perf_counter() - started, 4)
    # Served from here on: what follows is housekeeping, only logged when it fails.
    try:
        _drop_intermediate_files(run_id, using)
    except Exception:
        logger.exception("django_recs: could not delete the shard files of run %s", run_id)
    timings["cleanup"] = runs.clean_up_after(run, using=using)
    Run.objects.using(using).filter(pk=run_id).update(timings=timings)
    return {"run": run_id, "status": Run.Status.SUCCEEDED.value, "rows": sum(rows.values())}


def _check_rows(run: Run, rows: dict, using: str) -> None:
    """The tables hold exactly the rows the shards counted (no shard twice, none lost).

    An erasure during the run (forget_user()) deletes the user's rows the
    shards had written: then fewer recommendations are right, never more.
    """
    run_id = run.pk
    stored = {"similar": SimilarItem.objects.using(using).filter(run_id=run_id).count(),
              "recommendations": Recommendation.objects.using(using).filter(run_id=run_id).count()
              + RecommendationList.objects.using(using).filter(run_id=run_id).count()}
    erased = ForgottenUser.objects.using(using).filter(forgotten_at__gte=run.created_at).exists()
    for table, count in stored.items():
        if count == rows[table] or (table == "recommendations" and erased
                                    and count < rows[table]):
            continue
        raise RuntimeError(
            f"run {run_id}: the {table} table holds {count} rows, its shards wrote {rows[table]}"
        )


def _shard_counts(markers: list[RunShard]) -> dict:
    """Counts the shards computed for their own users (UserKNN's neighbours), summed."""
    totals: dict = {}
    for marker in markers:
        for name, value in marker.details.get("counts", {}).items():
            totals[name] = totals.get(name, 0) + value
    return totals


def _list_metrics(markers: list[RunShard], metrics: dict) -> dict:
    """users_with_recommendations and item_coverage, from the shards' parts."""
    n_items = int(metrics.get("items", 0))
    covered = np.zeros(n_items, dtype=bool)
    for marker in markers:
        covered |= decode_items(marker.details["recommended_items"], n_items)
    return {
        "users_with_recommendations": sum(int(m.details["users_with_recommendations"])
                                          for m in markers),
        "item_coverage": float(covered.sum() / max(1, n_items)),
    }


def _drop_intermediate_files(run_id: int, using: str) -> None:
    """Delete what only the shards needed; the ALS item factors stay with the run.

    The snapshot goes too: it holds every user's history, which nothing
    reads once the run is served (and an erasure would have to rewrite).
    """
    run = Run.objects.using(using).filter(pk=run_id).only("artifacts").first()
    names = [name for name in (run.artifacts if run else {})
             if not name.endswith(CHECKSUM_SUFFIX)
             and (name.startswith(SHARD_FILE_PREFIX) or name in (NEIGHBOURS, FACTORS, SNAPSHOT))]
    remove_artifacts(run_id, names, using=using)


# -- failing ------------------------------------------------------------------------------------


def fail_run(run_id: int, error: BaseException | str, *, task: str = "",
             using: str = DEFAULT_DB_ALIAS) -> bool:
    """Mark a sharded run failed (once), delete its rows and files; the previous run stays served.

    Called when a shard or callback gives up (its retries are exhausted, or
    the error is one a retry cannot fix). Returns False when the run was no
    longer running (already failed, or finished).
    """
    if isinstance(error, BaseException):
        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    else:
        summary = details = str(error)
    where = f" in {task}" if task else ""
    logger.error("django_recs: sharded run %s failed%s: %s", run_id, where, summary)
    updated = Run.objects.using(using).filter(pk=run_id, status=Run.Status.RUNNING).update(
        status=Run.Status.FAILED, finished_at=timezone.now(),
        error=f"{summary}\n\nStage: compute (shard task {task or '?'})\n\n{details}"[:20_000],
    )
    if not updated:
        return False
    runs.delete_run_rows([run_id], using=using)
    run = Run.objects.using(using).get(pk=run_id)
    runs.delete_artifacts(run)
    return True
