"""Erasure in the pipeline: a forgotten user leaves nothing in a run's rows or files.

``forget_user()`` (capture) deletes a user's interactions and
recommendations and leaves a tombstone, :class:`~django_recs.models.ForgottenUser`.
A run that is in flight meanwhile has read the user's history already; so

- the load stage skips rows of forgotten users (and of users that no longer
  exist): :func:`absent_users`;
- the swap deletes, in its own transaction, the run's recommendations of
  every forgotten user before the run is served: :func:`purge_forgotten_users`;
- the files a sharded run keeps in the storage while it is in flight (the
  snapshot of the matrix, the ALS user factors) are rewritten without the
  user when they are forgotten (:func:`erase_from_run_files`, connected to
  ``capture.user_forgotten`` by :mod:`django_recs.dispatch`) and once more
  right after each such file is recorded (:func:`scrub_run_files`); files
  of finished runs are deleted.

Lock order, so that an erasure and a swap never wait for each other in a
circle: forget_user() writes its tombstone (a row lock on that table) before
it locks runs; the swap takes the tombstone table's lock before any run's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q

from ..models import ForgottenUser, Recommendation, RecommendationList, Run
from ..storage.locks import hold_writes
from .artifacts import delete_artifact_files
from .shards import FACTORS, SNAPSHOT
from .snapshot import (
    CHECKSUM_SUFFIX,
    load_arrays,
    locked_run,
    run_path,
    save_arrays,
    stored_artifact,
)

__all__ = [
    "ERASED_USER",
    "absent_users",
    "erase_from_run_files",
    "purge_forgotten_users",
    "scrub_run_files",
]

logger = logging.getLogger("django_recs.pipeline")

#: The user id a rewritten snapshot gives the row of an erased user (its history emptied).
ERASED_USER = -1

#: Files of a run that hold something per user.
PERSONAL_FILES = (SNAPSHOT, FACTORS)


# -- the load and the swap -------------------------------------------------------------------


def absent_users(users: np.ndarray, *, using: str = DEFAULT_DB_ALIAS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Masks over ``users`` (one user id per loaded row): forgotten, and no longer existing.

    Two kinds of query: the erasure list, and the existing users among the
    distinct ids (see :func:`existing_user_ids`).
    """
    users = np.asarray(users, dtype=np.int64)
    none = np.zeros(len(users), dtype=bool)
    if not len(users):
        return none, none.copy()
    distinct = np.unique(users)
    forgotten_ids = np.fromiter(
        ForgottenUser.objects.using(using).values_list("user_id", flat=True), dtype=np.int64)
    forgotten = np.isin(users, forgotten_ids)
    deleted = ~np.isin(users, existing_user_ids(distinct, using=using)) & ~forgotten
    return forgotten, deleted


#: Ids read per query when the existing users are found by a scan of their range.
ID_WINDOW = 1_000_000


def existing_user_ids(distinct: np.ndarray, *, using: str = DEFAULT_DB_ALIAS) -> np.ndarray:
    """The ids of ``distinct`` (sorted, unique) that are users of the database, sorted.

    Ids that fill at least half of their range (a shop's customers mostly
    interact) are read with one scan of that range of the primary key; sparse
    ids with ``IN`` lists in batches the database accepts (a 10,000-id list
    costs the database more to parse and plan than the scan of a range).
    """
    manager = get_user_model()._base_manager.using(using)
    if not len(distinct):
        return np.zeros(0, dtype=np.int64)
    low, high = int(distinct[0]), int(distinct[-1])
    if 2 * len(distinct) >= high - low + 1:
        found = []
        for start in range(low, high + 1, ID_WINDOW):  # a bounded fetch at a time
            sql, params = manager.filter(pk__gte=start, pk__lt=start + ID_WINDOW).order_by(
            ).values_list("pk").query.sql_with_params()
            with connections[using].cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
            found.append(np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)))
        return np.intersect1d(distinct, np.concatenate(found), assume_unique=True)
    batch = min(10_000, connections[using].features.max_query_params or 10_000)
    existing = []
    for start in range(0, len(distinct), batch):
        chunk = distinct[start:start + batch].tolist()
        existing.extend(manager.filter(pk__in=chunk).order_by().values_list("pk", flat=True))
    return np.sort(np.asarray(existing, dtype=np.int64))


def purge_forgotten_users(run: Run, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete ``run``'s recommendations of every forgotten user; rows deleted.

    Called first in the swap's transaction: on PostgreSQL the erasure list is
    locked against new entries until the swap commits, so an erasure either
    committed before (and its user's rows are deleted here) or waits and
    deletes them itself, the run being served by then.
    """
    hold_writes(ForgottenUser, using=using)
    user_ids = list(ForgottenUser.objects.using(using).values_list("user_id", flat=True))
    deleted = 0
    for start in range(0, len(user_ids), 1000):
        for model in (Recommendation, RecommendationList):
            count, _ = model.objects.using(using).filter(
                run_id=run.pk, user_id__in=user_ids[start:start + 1000]).delete()
            deleted += count
    return deleted


# -- files in the storage ---------------------------------------------------------------------


def erase_from_run_files(sender=None, *, user_id, using: str = DEFAULT_DB_ALIAS,
                         **kwargs) -> None:
    """Remove a forgotten user from every file of every run (``user_forgotten`` receiver).

    Runs in flight get their snapshot and user factors rewritten without the
    user; finished runs no longer need those files, which are deleted. A run
    in flight is locked until the erasure commits, so a file it records
    meanwhile is scrubbed right after (:func:`scrub_run_files`).
    """
    in_flight = Q(status__in=[Run.Status.PENDING, Run.Status.RUNNING])
    with_files = Q()
    for name in PERSONAL_FILES:
        with_files |= Q(artifacts__has_key=name)
    run_ids = list(Run.objects.using(using).filter(in_flight | with_files)
                   .order_by("pk").values_list("pk", flat=True))
    for run_id in run_ids:
        scrub_run_files(run_id, user_ids=[user_id], using=using)


def scrub_run_files(run_id: int, *, user_ids: Iterable | None = None,
                    using: str = DEFAULT_DB_ALIAS) -> bool:
    """Remove users (default: every forgotten user) from the files of run ``run_id``.

    A run in flight gets new files (the snapshot with those users' rows
    emptied and their ids replaced by ERASED_USER, the user factors of
    erased rows zeroed), recorded in place of the old ones, which are
    deleted once the transaction commits; shards that were reading the old
    ones look the run's files up again. A finished run's files are deleted.
    Returns True when a file changed.
    """
    with transaction.atomic(using=using):
        run = locked_run(run_id, using)
        if run is None:
            return False
        artifacts = dict(run.artifacts or {})
        if not any(name in artifacts for name in PERSONAL_FILES):
            return False
        if run.status not in (Run.Status.PENDING, Run.Status.RUNNING):
            return _drop_files(run_id, artifacts, using)
        wanted = (ForgottenUser.objects.using(using).values_list("user_id", flat=True)
                  if user_ids is None else user_ids)
        replaced = _rewritten(run_id, artifacts, np.fromiter(wanted, dtype=np.int64))
        if not replaced:
            return False
        for name, (_, new) in replaced.items():
            artifacts.update(new.artifacts(name))
        Run.objects.using(using).filter(pk=run_id).update(artifacts=artifacts)
        old = {name: path for name, (path, _) in replaced.items()}
        transaction.on_commit(lambda: delete_artifact_files(old), using=using)
    logger.info("django_recs: run %s's files rewritten without forgotten users", run_id)
    return True


def _rewritten(run_id: int, artifacts: dict, user_ids: np.ndarray) -> dict:
    """{name: (old path, new StoredFile)} of the personal files that held the users."""
    replaced = {}
    erased = None
    if SNAPSHOT in artifacts:
        stored = stored_artifact(artifacts, SNAPSHOT)
        arrays = load_arrays(stored.path, stored.sha256)
        rows = np.isin(arrays["user_ids"], user_ids)
        if rows.any():
            arrays = _snapshot_without(arrays, rows)
            replaced[SNAPSHOT] = (stored.path,
                                  save_arrays(run_path(run_id, "snapshot.npz"), arrays))
        erased = arrays["user_ids"] == ERASED_USER
    if FACTORS in artifacts and erased is not None and erased.any():
        stored = stored_artifact(artifacts, FACTORS)
        arrays = load_arrays(stored.path, stored.sha256)
        user_factors = arrays["user_factors"]
        if user_factors[erased].any():
            user_factors = user_factors.copy()
            user_factors[erased] = 0
            replaced[FACTORS] = (stored.path, save_arrays(
                run_path(run_id, "factors.npz"), {**arrays, "user_factors": user_factors}))
    return replaced


def _snapshot_without(arrays: dict, rows: np.ndarray) -> dict:
    """The snapshot's arrays with ``rows`` emptied (weights and seen) and their user ids erased.

    The rows stay, so the shards' user ranges still cover the same rows; an
    empty row gets no list.
    """
    arrays = dict(arrays)
    for prefix in ("weights", "seen"):
        indptr = arrays[f"{prefix}_indptr"]
        lengths = np.diff(indptr)
        keep = np.repeat(~rows, lengths)
        arrays[f"{prefix}_data"] = arrays[f"{prefix}_data"][keep]
        arrays[f"{prefix}_indices"] = arrays[f"{prefix}_indices"][keep]
        lengths = np.where(rows, 0, lengths)
        arrays[f"{prefix}_indptr"] = np.concatenate(([0], np.cumsum(lengths))).astype(indptr.dtype)
    user_ids = arrays["user_ids"].copy()
    user_ids[rows] = ERASED_USER
    arrays["user_ids"] = user_ids
    return arrays


def _drop_files(run_id: int, artifacts: dict, using: str) -> bool:
    """Delete a finished run's personal files and their entries (nothing needs them)."""
    dropped = {name: path for name, path in artifacts.items()
               if name.removesuffix(CHECKSUM_SUFFIX) in PERSONAL_FILES}
    kept = {name: path for name, path in artifacts.items() if name not in dropped}
    Run.objects.using(using).filter(pk=run_id).update(artifacts=kept)
    transaction.on_commit(lambda: delete_artifact_files(dropped), using=using)
    return True
