"""The two places the evaluation meets the database: reading interactions, storing a Run.

Everything else in :mod:`django_recs.evaluation` is ORM-free; this module is
imported by the ``recs_evaluate`` command only, never by the package itself.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from ..matrix import index_keys
from ..models import Run
from ..storage.read import load_interactions
from .evaluator import AlgorithmEvaluation
from .interactions import TimedInteractions

#: Run.triggered_by of the runs the evaluation stores.
TRIGGERED_BY = "recs_evaluate"


def load_timed_interactions(*, using: str = DEFAULT_DB_ALIAS) -> TimedInteractions:
    """The interaction table as a recompute run reads it, with every entry's time.

    Same rows as a run (signed-in users, items of ITEM_MODELS that still
    exist, EXCLUDE_SEEN events flagged seen); rows are users by ascending
    primary key (``user_ids``), columns the catalog's items (``item_ids`` =
    ``"<content type id>:<key>"``). Entries with a negative or non-finite
    weight are left out, as a run ignores them.
    """
    loaded = load_interactions(using=using, with_timestamps=True)
    usable = np.isfinite(loaded.weights) & (loaded.weights >= 0)
    user_ids, rows = index_keys(loaded.users[usable].astype(np.int64))
    catalog = loaded.catalog
    item_ids = np.asarray(
        [f"{ct}:{key}" for ct, key in zip(catalog.content_type_ids, catalog.keys)], dtype=object
    )
    return TimedInteractions(
        rows=rows,
        cols=loaded.items[usable],
        weights=loaded.weights[usable],
        timestamps=np.round(loaded.timestamps[usable]).astype(np.int64),
        shape=(len(user_ids), len(catalog)),
        seen=loaded.seen[usable],
        user_ids=user_ids.astype(np.int64),
        item_ids=item_ids,
    )


def store_evaluation(
    name: str,
    evaluation: AlgorithmEvaluation,
    *,
    algorithm_class: str,
    baselines: list[AlgorithmEvaluation] | None = None,
    extra_metrics: dict | None = None,
    rows_read: int = 0,
    using: str = DEFAULT_DB_ALIAS,
) -> Run:
    """Save an evaluation as a finished Run of ``name`` (never the active, served one).

    ``Run.metrics`` holds :meth:`AlgorithmEvaluation.run_metrics` (with the
    baselines' numbers under ``"baselines"``) plus ``extra_metrics``;
    ``Run.params`` the class path and parameters evaluated, and the split and k.
    """
    now = timezone.now()
    fit_seconds = evaluation.metrics.get("fit_seconds") or 0.0
    metrics = evaluation.run_metrics(baselines)
    metrics.update(extra_metrics or {})
    return Run.objects.using(using).create(
        algorithm=name,
        status=Run.Status.SUCCEEDED,
        is_active=False,
        stage="evaluate",
        progress=1.0,
        created_at=now,
        started_at=now - timedelta(seconds=float(fit_seconds)),
        finished_at=now,
        timings={"fit": float(fit_seconds)},
        rows_read=int(rows_read),
        params={
            "class": algorithm_class,
            **evaluation.params,
            "evaluation": {"split": evaluation.split, "k": evaluation.k},
        },
        metrics=metrics,
        triggered_by=TRIGGERED_BY,
    )
