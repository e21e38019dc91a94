"""The work of one shard of a sharded run (see :mod:`django_recs.sharding`).

A shard reads the run's snapshot (once per worker process), computes its
rows and writes them under the run's id together with its
:class:`~django_recs.models.RunShard` row, in one transaction. The unique
constraint on (run, phase, index) makes a shard that runs again — a message
redelivered after its worker died, or a duplicate running at the same time —
write nothing: a duplicate waits for the first transaction and then fails to
insert its marker, rolling its own rows back. While a shard works it beats
the run's heartbeat, so RUN_HEARTBEAT_TIMEOUT does not declare a run dead
whose shards are progressing on other workers.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import zlib
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from ..algorithms.base import Algorithm
from ..algorithms.itemknn import recommend_from_neighbours
from ..algorithms.userknn import user_neighbour_counts
from ..conf import recs_settings
from ..kernels import limit_blas_threads, resolve_num_threads
from ..models import Run, RunShard, ShardStart, SimilarItem
from .results import similar_item_columns
from .snapshot import (
    MatrixSnapshot,
    SnapshotError,
    add_artifacts,
    load_arrays,
    load_csr,
    load_matrix,
    run_path,
    save_csr,
    stored_artifact,
)
from .tracking import beat_until
from .writing import recommendation_chunks

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_SHARD_STARTS",
    "ShardGivenUp",
    "algorithm_of",
    "beating",
    "begin_shard",
    "compute_recommend_shard",
    "compute_similarity_shard",
    "count_start",
    "decode_items",
    "encode_items",
    "write_shard",
]

SIMILAR = RunShard.Phase.SIMILAR.value
RECOMMEND = RunShard.Phase.RECOMMEND.value

#: Run.artifacts names of the files a sharded run shares between its workers.
SNAPSHOT = "snapshot"
NEIGHBOURS = "neighbours"
FACTORS = "factors"
#: Prefix of the files of the similarity shards' neighbour rows (one per attempt).
SHARD_FILE_PREFIX = "similar_shard_"

#: Seconds between heartbeats written by a working shard.
HEARTBEAT_INTERVAL = 2.0
#: Starts of one shard (deliveries and retries) after which its run is given
#: up: above the task's retries, so only a shard whose worker keeps dying
#: (out of memory, killed) reaches it.
MAX_SHARD_STARTS = 10

#: Run.progress when the shards are done (the swap and cleanup follow).
PROGRESS_SHARDS_DONE = 0.95


# -- what a shard reads ---------------------------------------------------------------------


def running_run(run_id: int, *, using: str = DEFAULT_DB_ALIAS) -> Run | None:
    """The run if it is still running (a shard of a failed or finished run does nothing)."""
    return Run.objects.using(using).filter(pk=run_id, status=Run.Status.RUNNING).first()


def algorithm_of(run: Run) -> Algorithm:
    """The algorithm as the run recorded it (class and parameters in ``Run.params``).

    Raises
    ------
    ValueError
        The params name no class, or a class that is not an Algorithm.
    """
    params = run.params or {}
    path = params.get("class")
    if not path:
        raise ValueError(f"run {run.pk} records no algorithm class in its params")
    cls = import_string(path)
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise ValueError(f"{path} is not a django_recs Algorithm")
    return cls(**{name: value for name, value in params.items() if name in cls.defaults})


def snapshot_of(run: Run) -> MatrixSnapshot:
    """The run's interaction matrix and catalog, checksum verified."""
    return _current_file(run, SNAPSHOT, load_matrix)


@lru_cache(maxsize=2)
def _factors(path: str, sha256: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = load_arrays(path, sha256)
    return arrays["user_factors"], arrays["item_factors"]


def factors_of(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """(user_factors, item_factors) an ALS run trained, checksum verified."""
    return _current_file(run, FACTORS, _factors)


def _current_file(run: Run, name: str, load):
    """``load(path, sha256)`` of the run's file ``name``, as the run records it now.

    An erasure (forget_user()) replaces a run's snapshot and factors with
    copies without the user and deletes the old files: a shard that read
    the run before finds its file gone (or, stored under the same name,
    another), looks the run's record up again and reads the new one. A file
    the run still records and that is missing or corrupt is refused.
    """
    stored = stored_artifact(run.artifacts, name)
    try:
        return load(stored.path, stored.sha256)
    except SnapshotError:
        current = Run.objects.using(run._state.db or DEFAULT_DB_ALIAS).filter(
            pk=run.pk).values_list("artifacts", flat=True).first() or {}
        fresh = stored_artifact(current, name)
        if fresh == stored:
            raise
        run.artifacts = current
        return load(fresh.path, fresh.sha256)


def _threads() -> int:
    # This worker's own setting: shards may run on machines with other core counts.
    return resolve_num_threads(recs_settings.NUM_THREADS)


# -- heartbeat ---------------------------------------------------------------------------------


@contextmanager
def beating(run_id: int, *, using: str = DEFAULT_DB_ALIAS):
    """Write the run's heartbeat now and every HEARTBEAT_INTERVAL seconds meanwhile.

    Inside an outer transaction (tests) a thread could not see the run: only
    the first beat is written.
    """
    def beat() -> None:
        Run.objects.using(using).filter(pk=run_id, status=Run.Status.RUNNING).update(
            heartbeat_at=timezone.now()
        )

    beat()
    if connections[using].in_atomic_block:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        beat_until(stop, beat, run_id=run_id, using=using, interval=HEARTBEAT_INTERVAL)

    thread = threading.Thread(target=loop, name=f"recs-shard-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# -- writing exactly once --------------------------------------------------------------------------


def write_shard(
    run: Run,
    phase: str,
    index: int,
    bounds: tuple[int, int],
    model,
    chunks,
    *,
    seconds: dict | None = None,
    details: dict | None = None,
    worker: str = "",
    using: str = DEFAULT_DB_ALIAS,
) -> RunShard | None:
    """Write a shard's rows and its RunShard row in one transaction.

    Returns the new RunShard, or None when the shard was already written
    (by an earlier attempt, or a duplicate running at the same time: the
    marker's unique constraint makes the second writer wait for the first
    and then write nothing).
    """
    from .writing import store_rows

    started = time.perf_counter()
    with transaction.atomic(using=using):
        try:
            with transaction.atomic(using=using):
                marker = RunShard.objects.using(using).create(
                    run_id=run.pk, phase=phase, index=int(index),
                    start=int(bounds[0]), stop=int(bounds[1]),
                    seconds=dict(seconds or {}), details=dict(details or {}),
                    worker=worker[:255], finished_at=timezone.now(),
                )
        except IntegrityError:
            return None
        marker.rows = store_rows(model, chunks, using=using)
        marker.seconds["write"] = round(time.perf_counter() - started, 4)
        marker.finished_at = timezone.now()
        marker.save(using=using, update_fields=["rows", "seconds", "finished_at"])
    return marker


def shard_summary(marker: RunShard, *, again: bool = False) -> dict:
    """What a shard task returns (JSON)."""
    summary = {"run": marker.run_id, "phase": marker.phase, "index": marker.index,
               "rows": marker.rows}
    if again:
        summary["already_written"] = True
    return summary


def _skipped(run_id: int, phase: str, index: int) -> dict:
    return {"run": run_id, "phase": phase, "index": index, "skipped": "the run is not running"}


def _already_written(run_id: int, phase: str, index: int, using: str) -> RunShard | None:
    return RunShard.objects.using(using).filter(run_id=run_id, phase=phase, index=index).first()


class ShardGivenUp(RuntimeError):
    """A shard started MAX_SHARD_STARTS times without finishing: its run fails."""


def begin_shard(run_id: int, phase: str, index: int, using: str) -> tuple[Run | None, dict | None]:
    """The run a shard works for, or instead the summary it returns at once.

    A shard of a run no longer running, or one already written (a message
    delivered again), does nothing. Otherwise this start is counted first;
    past MAX_SHARD_STARTS it raises :class:`ShardGivenUp`, which its task
    does not retry and which fails the run.
    """
    run = running_run(run_id, using=using)
    if run is None:
        return None, _skipped(run_id, phase, index)
    done = _already_written(run_id, phase, index, using)
    if done is not None:
        return None, shard_summary(done, again=True)
    starts = count_start(run_id, phase, index, using=using)
    if starts > MAX_SHARD_STARTS:
        raise ShardGivenUp(
            f"{phase} shard {index} of run {run_id} started {starts - 1} times without "
            "finishing (its worker stopped or it failed every time); the run is given up"
        )
    return run, None


def count_start(run_id: int, phase: str, index: int, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Count one more start of a shard, committed at once; the starts so far."""
    starts = ShardStart.objects.using(using).filter(run_id=run_id, phase=phase, index=index)
    with transaction.atomic(using=using):
        if not starts.update(count=F("count") + 1):
            try:
                with transaction.atomic(using=using):
                    ShardStart.objects.using(using).create(
                        run_id=run_id, phase=phase, index=index, count=1
                    )
            except IntegrityError:  # a copy of the shard counted first
                starts.update(count=F("count") + 1)
        return starts.values_list("count", flat=True).get()


# -- similarity shards: neighbour rows of an item range --------------------------------------------


def compute_similarity_shard(
    run_id: int, index: int, start: int, stop: int, *,
    worker: str = "", using: str = DEFAULT_DB_ALIAS,
) -> dict:
    """The neighbours of items [start, stop): SimilarItem rows, and the CSR rows in storage.

    The rows are stored as a file too (recorded on the run and in the
    shard's marker) so the run can assemble the whole neighbour matrix that
    the personal recommendations need.
    """
    run, summary = begin_shard(run_id, SIMILAR, index, using)
    if run is None:
        return summary
    threads = _threads()
    with beating(run_id, using=using), limit_blas_threads(threads):
        started = time.perf_counter()
        snapshot = snapshot_of(run)
        loaded = time.perf_counter()
        rows = algorithm_of(run).neighbours(snapshot.matrix, items=(start, stop),
                                            num_threads=threads)
        computed = time.perf_counter()
        stored = save_csr(run_path(run_id, f"shards/similar-{index}.npz"), rows)
        # Recorded before the rows: a file is deleted with the run even if this attempt dies.
        add_artifacts(run_id, stored.artifacts(f"{SHARD_FILE_PREFIX}{index}_{stored.sha256[:12]}"),
                      using=using)
        columns = similar_item_columns(run_id, _as_item_rows(rows, start, snapshot.matrix.n_items),
                                       snapshot.catalog)
        marker = write_shard(
            run, SIMILAR, index, (start, stop), SimilarItem,
            [columns] if len(columns["run_id"]) else [],
            seconds={"load": round(loaded - started, 4), "compute": round(computed - loaded, 4)},
            details={"file": stored.path, "sha256": stored.sha256,
                     "neighbour_pairs": int(rows.nnz)},
            worker=worker, using=using,
        )
    if marker is None:
        return shard_summary(_already_written(run_id, SIMILAR, index, using), again=True)
    note_shard_done(run_id, using=using)
    return shard_summary(marker)


def _as_item_rows(rows: sp.csr_matrix, start: int, n_items: int) -> sp.csr_matrix:
    """Rows of items [start, start + len) placed in an n_items x n_items matrix (no copy of data)."""
    indptr = np.concatenate([
        np.zeros(start, dtype=np.int64),
        rows.indptr.astype(np.int64),
        np.full(n_items - start - rows.shape[0], rows.nnz, dtype=np.int64),
    ])
    return sp.csr_matrix((rows.data, rows.indices, indptr), shape=(n_items, n_items))


def load_shard_rows(marker: RunShard) -> sp.csr_matrix:
    """The neighbour rows a similarity shard stored, checksum verified."""
    return load_csr(marker.details["file"], marker.details["sha256"])


# -- recommendation shards: lists of a user range ------------------------------------------------


def compute_recommend_shard(
    run_id: int, index: int, start: int, stop: int, *,
    worker: str = "", using: str = DEFAULT_DB_ALIAS,
) -> dict:
    """The recommendations of users [start, stop): rows of RECOMMENDATION_LAYOUT's table.

    ItemKNN scores them against the assembled neighbour matrix, ALS against
    the trained factors (both read them from storage, checksums verified);
    UserKNN finds these users' neighbours and sums their votes here.
    """
    run, summary = begin_shard(run_id, RECOMMEND, index, using)
    if run is None:
        return summary
    threads = _threads()
    n = int(run.params.get("n_recommendations", recs_settings.RECOMMENDATIONS_PER_USER))
    with beating(run_id, using=using), limit_blas_threads(threads):
        started = time.perf_counter()
        snapshot = snapshot_of(run)
        users = snapshot.matrix.user_range(start, stop)
        algorithm = algorithm_of(run)
        kind = run.params.get("sharding", {}).get("kind")
        counts = {}
        if kind == "userknn":
            loaded = time.perf_counter()
            lists = algorithm.recommend_users(snapshot.matrix, n, users=(start, stop),
                                              num_threads=threads)
            recommended, scores, reasons = lists.recommended, lists.scores, lists.reasons
            counts = user_neighbour_counts(lists.neighbours)
        elif kind == "als":
            user_factors, item_factors = factors_of(run)
            loaded = time.perf_counter()
            recommended, scores, reasons = algorithm.score_users(
                users, user_factors[start:stop], item_factors, n, num_threads=threads
            )
        else:
            stored = stored_artifact(run.artifacts, NEIGHBOURS)
            neighbours = load_csr(stored.path, stored.sha256)
            loaded = time.perf_counter()
            recommended, scores, reasons = recommend_from_neighbours(
                users, neighbours, n, num_threads=threads
            )
        computed = time.perf_counter()
        listed = recommended >= 0
        model, chunks = recommendation_chunks(run_id, users.user_ids, recommended, scores,
                                              reasons, snapshot.catalog)
        marker = write_shard(
            run, RECOMMEND, index, (start, stop), model, chunks,
            seconds={"load": round(loaded - started, 4), "compute": round(computed - loaded, 4)},
            details={
                "users_with_recommendations": int(listed.any(axis=1).sum()),
                "recommended_items": encode_items(recommended[listed],
                                                  snapshot.matrix.n_items),
                **({"counts": counts} if counts else {}),
            },
            worker=worker, using=using,
        )
    if marker is None:
        return shard_summary(_already_written(run_id, RECOMMEND, index, using), again=True)
    note_shard_done(run_id, using=using)
    return shard_summary(marker)


def encode_items(items: np.ndarray, n_items: int) -> str:
    """A set of item columns as compressed, base64-encoded bits (n_items / 8 bytes at most)."""
    mask = np.zeros(int(n_items), dtype=bool)
    mask[np.asarray(items, dtype=np.int64)] = True
    return base64.b64encode(zlib.compress(np.packbits(mask).tobytes())).decode("ascii")


def decode_items(encoded: str, n_items: int) -> np.ndarray:
    """The boolean mask (n_items,) of :func:`encode_items`."""
    bits = np.frombuffer(zlib.decompress(base64.b64decode(encoded)), dtype=np.uint8)
    return np.unpackbits(bits, count=int(n_items)).astype(bool)


def note_shard_done(run_id: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Progress = shards done / shards planned (and a heartbeat)."""
    run = Run.objects.using(using).filter(pk=run_id).only("params").first()
    plan = (run.params or {}).get("sharding", {}) if run else {}
    total = max(1, int(plan.get("total", 1)))
    done = RunShard.objects.using(using).filter(run_id=run_id).count()
    start = float(plan.get("progress_from", 0.2))
    progress = start + (PROGRESS_SHARDS_DONE - start) * min(1.0, done / total)
    Run.objects.using(using).filter(pk=run_id, status=Run.Status.RUNNING).update(
        progress=round(progress, 4), heartbeat_at=timezone.now()
    )
