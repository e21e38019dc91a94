"""Refreshing one user's recommendations from the stored ALS item factors.

An ALS run saves its item factors, with the item of each row, through
Django's storage API (``Run.artifacts["item_factors"]``, an ``.npz`` file).
:func:`refresh_user` folds one user's current history into those factors
with :func:`django_recs.kernels.als_fold_in` — a least-squares solve against
fixed item factors, the same step a full ALS iteration does for every user —
and replaces that user's rows of the active run. Minutes after a purchase
the list reflects it, without a full run.
"""

from __future__ import annotations

import time

import numpy as np
from django.db import DEFAULT_DB_ALIAS, transaction

from .. import kernels
from ..algorithms.als import confidence, factor_reasons, normalised_rows
from ..conf import recs_settings
from ..matrix import InteractionMatrix
from ..models import Recommendation, RecommendationList, Run
from ..storage.read import load_interactions
from .artifacts import ItemFactors, load_item_factors
from .writing import recommendation_chunks, store_rows

__all__ = ["refresh_user"]


def refresh_user(
    user_id: int, algorithm: str = "personal", *, using: str = DEFAULT_DB_ALIAS
) -> int:
    """Recompute one user's recommendations of ``algorithm``'s active run.

    Uses the run's stored item factors and parameters (alpha,
    regularization, solver) on the user's current history, and replaces the
    user's rows of that run in one transaction. Idempotent.

    Returns the number of recommendations stored: 0 when the algorithm has no active
    run with item factors (not a factorisation, or never run), or when the
    user has no history (their rows are deleted; serving falls back).
    """
    run = Run.objects.using(using).filter(algorithm=algorithm, is_active=True).first()
    if run is None or not run.artifacts.get("item_factors"):
        return 0
    stored = load_item_factors(run.artifacts["item_factors"])
    params = run.params
    half_life = params.get("half_life_days", recs_settings.HALF_LIFE_DAYS)
    loaded = load_interactions(
        using=using,
        with_timestamps=half_life is not None,
        exclude_seen=params.get("exclude_seen"),
        user_ids=[user_id],
    )
    columns = stored.columns_of(loaded.catalog)[loaded.items] if len(loaded) else np.zeros(0, int)
    known = columns >= 0  # items newer than the run have no factors yet
    history = InteractionMatrix.from_arrays(
        np.zeros(int(known.sum()), dtype=np.int64),
        columns[known],
        loaded.weights[known],
        loaded.seen[known],
        shape=(1, len(stored.catalog)),
        user_ids=np.array([user_id], dtype=np.int64),
        timestamps=None if loaded.timestamps is None else loaded.timestamps[known],
        half_life_days=half_life,
        now=time.time(),
    )
    rows = _fold_in_rows(run, stored, history, params)
    with transaction.atomic(using=using):
        # Lock the run: a swap meanwhile waits, then deletes these rows with the run's others.
        if not Run.objects.using(using).select_for_update().filter(pk=run.pk).exists():
            return 0
        for model in (Recommendation, RecommendationList):
            model.objects.using(using).filter(run=run, user_id=user_id).delete()
        if not rows:
            return 0
        model, chunks = rows
        written = store_rows(model, chunks, using=using)
        if model is RecommendationList:  # one row holds the list
            return int(sum(int(np.sum(columns["length"])) for columns in chunks))
        return written


def _fold_in_rows(run: Run, stored: ItemFactors, history: InteractionMatrix, params: dict):
    if history.nnz == 0:
        return []
    item_factors = stored.factors
    n = max(0, min(int(params.get("n_recommendations", 50)), item_factors.shape[0]))
    user_vectors = kernels.als_fold_in(
        confidence(history.weights, float(params.get("alpha", 10.0))),
        item_factors,
        regularization=float(params.get("regularization", 0.01)),
        solver=params.get("solver", "cg"),
        cg_steps=int(params.get("cg_steps", 3)),
        regularization_exponent=float(params.get("regularization_exponent", 0.0)),
        regularization_offset=float(params.get("regularization_offset", 0.0)),
    )
    recommended, scores = kernels.top_n(
        np.ascontiguousarray(user_vectors, dtype=np.float32), item_factors, n,
        exclude=history.seen, num_threads=1,
    )
    unit = normalised_rows(item_factors)
    reasons = factor_reasons(history.weights, recommended, unit, num_threads=1)
    model, chunks = recommendation_chunks(
        run.pk, history.user_ids, recommended, np.where(recommended >= 0, scores, 0.0),
        reasons, stored.catalog,
    )
    return model, list(chunks)
