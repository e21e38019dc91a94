"""Scores of every item for a user, from what a fitted algorithm returned.

AUC judges the full ranking of the catalog, not only the top of it, so it
needs a score for every item. A :class:`~django_recs.algorithms.FitResult`
holds what is needed to rebuild them: latent factors (ALS:
``user_factors @ item_factors.T``), an item neighbour matrix (ItemKNN:
``history @ similar``, the same item-based sum its lists come from), a user
neighbour matrix (UserKNN: ``neighbours @ weights``, its neighbours' votes)
or popularity scores (Popular). For any other algorithm the stored list is the
ranking: its items in order, every other item tied below them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..algorithms.base import FitResult
from ..matrix import InteractionMatrix

Scorer = Callable[[np.ndarray], np.ndarray]


def full_scorer(fit: FitResult, train: InteractionMatrix) -> tuple[Scorer, str]:
    """A function ``scores(rows) -> float64 (len(rows), n_items)`` and how it scores.

    Returns
    -------
    (scorer, source)
        ``source`` is ``"factors"``, ``"user_neighbours"``, ``"neighbours"``,
        ``"popularity"`` or ``"list"``, telling which of the fit's arrays the
        scores come from.
    """
    n_items = train.n_items
    if fit.user_factors is not None and fit.item_factors is not None:
        user_factors = np.asarray(fit.user_factors, dtype=np.float64)
        item_factors = np.asarray(fit.item_factors, dtype=np.float64)
        return (lambda rows: user_factors[rows] @ item_factors.T), "factors"
    if fit.user_neighbours is not None:
        votes = train.weights.astype(np.float64)
        neighbours = fit.user_neighbours.tocsr().astype(np.float64)
        return (lambda rows: (neighbours[rows] @ votes).toarray()), "user_neighbours"
    if fit.similar is not None:
        weights, similar = train.weights.astype(np.float64), fit.similar.astype(np.float64)
        return (lambda rows: (weights[rows] @ similar).toarray()), "neighbours"
    if fit.popular is not None and fit.popular_scores is not None:
        popularity = np.zeros(n_items, dtype=np.float64)
        popularity[np.asarray(fit.popular)] = np.asarray(fit.popular_scores, dtype=np.float64)
        return (lambda rows: np.broadcast_to(popularity, (len(rows), n_items)).copy()), "popularity"
    if fit.recommended is None:
        raise ValueError("the fit returned neither recommendations nor anything to score items with")
    recommended = np.asarray(fit.recommended)

    def from_list(rows: np.ndarray) -> np.ndarray:
        block = np.zeros((len(rows), n_items), dtype=np.float64)
        lists = recommended[rows]
        length = lists.shape[1]
        user, rank = np.nonzero(lists >= 0)
        block[user, lists[user, rank]] = length - rank  # best first, all positive
        return block

    return from_list, "list"
