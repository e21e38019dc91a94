"""Tuned runs: the TUNE entry of an ALGORITHMS setting, searched on the shop's own history.

A run asked to tune (``recompute(..., tune=True)``, ``recs_recompute
--tune``, the task's ``tune=True``) loads the interactions with their times,
calls :func:`django_recs.evaluation.tune` (the most recent part of the
history is the validation split), builds the algorithm with the winner and
fits it on all the data. The chosen parameters and their validation
metrics are stored in ``Run.params["tune"]``; every later run of that
algorithm re-uses them (and records them again, with ``reused_from``)
until the next tune. See docs/tuning.md.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.db import DEFAULT_DB_ALIAS

from ..algorithms.base import Algorithm
from ..evaluation.interactions import TimedInteractions
from ..evaluation.tune import tune
from ..matrix import index_keys
from ..models import Run
from ..registry import algorithm_params, tune_settings
from ..storage.read import LoadedInteractions

logger = logging.getLogger("django_recs.pipeline")

#: Key of a pending run's params asking its worker to tune first.
TUNE_REQUESTED = "tune_requested"

__all__ = ["TUNE_REQUESTED", "last_tune", "request_tune", "reuse_last_tune", "tune_run"]


def request_tune(run: Run, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Ask the worker of a pending run to tune before fitting."""
    run.params = {**(run.params or {}), TUNE_REQUESTED: True}
    Run.objects.using(using).filter(pk=run.pk).update(params=run.params)


def last_tune(algorithm: str, *, using: str = DEFAULT_DB_ALIAS) -> tuple[int, dict] | None:
    """``(run id, tune record)`` of the latest succeeded run of ``algorithm`` that has one."""
    runs = (Run.objects.using(using)
            .filter(algorithm=algorithm, status=Run.Status.SUCCEEDED)
            .order_by("-finished_at", "-pk").values_list("pk", "params")[:50])
    for pk, params in runs:
        record = (params or {}).get("tune")
        if isinstance(record, dict) and isinstance(record.get("params"), dict):
            return pk, record
    return None


def reuse_last_tune(name: str, algorithm: Algorithm, *,
                    using: str = DEFAULT_DB_ALIAS) -> tuple[Algorithm, dict | None]:
    """The algorithm with the last tune's parameters applied, and the record to store.

    Only parameters still in the TUNE space are taken; when the setting
    changed so that they no longer build (or the entry has no TUNE), the
    configured algorithm is returned unchanged with no record.
    """
    settings = tune_settings(name)
    found = last_tune(name, using=using) if settings else None
    if found is None:
        return algorithm, None
    run_id, record = found
    space, _ = settings
    chosen = {key: value for key, value in record["params"].items() if key in space}
    try:
        tuned = type(algorithm)(**{**algorithm_params(name), **chosen})
    except (TypeError, ValueError) as error:
        logger.warning("django_recs: the parameters tuned by run %s of %r no longer build (%s); "
                       "using the configured ones", run_id, name, error)
        return algorithm, None
    origin = record.get("reused_from", run_id)
    return tuned, {**record, "params": chosen, "reused_from": origin}


def timed_interactions(loaded: LoadedInteractions) -> TimedInteractions:
    """A run's loaded (screened) rows, with their times, as the evaluation's arrays."""
    user_ids, rows = index_keys(loaded.users.astype(np.int64))
    return TimedInteractions(
        rows=rows, cols=loaded.items, weights=loaded.weights,
        timestamps=np.round(loaded.timestamps).astype(np.int64),
        shape=(len(user_ids), len(loaded.catalog)), seen=loaded.seen,
    )


def tune_run(name: str, algorithm: Algorithm, loaded: LoadedInteractions, *,
             half_life_days: float | None, num_threads: int,
             progress=None) -> tuple[Algorithm, dict[str, Any]]:
    """Search ALGORITHMS[name]["TUNE"] on ``loaded``; the winner and the record to store.

    ``loaded`` must carry timestamps. A search that cannot run (too little
    history for a validation split, say) leaves the configured algorithm
    and records the reason as ``{"error": ...}``.

    Raises ValueError when the entry has no TUNE.
    """
    settings = tune_settings(name)
    if settings is None:
        raise ValueError(f"DJANGO_RECS['ALGORITHMS'][{name!r}] has no TUNE to search")
    space, options = settings
    total = None

    def on_trial(index, trial):
        if progress is not None and total:
            progress((index + 1) / total)

    try:
        data = timed_interactions(loaded)
        result = tune(data, type(algorithm), space, params=algorithm_params(name),
                      half_life_days=half_life_days, num_threads=num_threads,
                      on_trial=on_trial, **options)
    except ValueError as error:
        logger.warning("django_recs: tuning %r failed (%s); fitting the configured parameters",
                       name, error)
        return algorithm, {"error": str(error)}
    return type(algorithm)(**result.params), result.summary()
