"""Popular items: the cold-start fallback and the baseline to beat.

An item's popularity is the sum of its (time-decayed, HALF_LIFE_DAYS)
weights over all users (``measure="weight"``), or the number of distinct
users with a positive weight for it (``measure="users"``). Decay is applied
when the matrix is built, so recent activity dominates when it is set.
Everyone gets the same list, minus the items they have seen.
"""

from __future__ import annotations

import numpy as np

from ..matrix import InteractionMatrix
from .base import Algorithm, FitResult, ProgressCallback, report, require_choice, require_int
from .ranking import user_chunks

MEASURES = ("weight", "users")


class Popular(Algorithm):
    """Items by descending popularity.

    Parameters
    ----------
    n : int or None, default None
        Items kept in the popular list; None keeps every item with a positive score.
    measure : {"weight", "users"}, default "weight"
    """

    name = "popular"
    defaults = {"n": None, "measure": "weight"}
    personal = False

    def check_params(self) -> None:
        require_int(self, "n", allow_none=True)
        require_choice(self, "measure", MEASURES)

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        weights = matrix.weights
        if self.measure == "weight":
            totals = np.asarray(weights.sum(axis=0), dtype=np.float64).reshape(-1)
        else:
            totals = np.bincount(weights.indices[weights.data > 0], minlength=matrix.n_items)
        totals = totals.astype(np.float32)
        order = np.argsort(-totals, kind="stable")  # ties: lower column first
        popular = order[totals[order] > 0]
        if self.n is not None:
            popular = popular[: self.n]
        popular = popular.astype(np.int32)
        report(progress, 0.5)
        recommended = popular_minus_seen(popular, matrix, n_recommendations)
        scores = np.where(recommended >= 0, totals[np.maximum(recommended, 0)], 0).astype(
            np.float32
        )
        report(progress, 1.0)
        return FitResult(
            recommended=recommended,
            recommended_scores=scores,
            popular=popular,
            popular_scores=totals[popular],
            counts={"items": int(matrix.n_items), "popular_items": int(popular.size)},
        )


def popular_minus_seen(popular: np.ndarray, matrix: InteractionMatrix, n: int) -> np.ndarray:
    """Each user's first ``n`` items of ``popular`` not seen by them.

    Returns int32 (n_users, n), -1 padding when the list runs out.
    """
    n_users = matrix.n_users
    n = max(0, min(int(n), len(popular)))
    result = np.full((n_users, n), -1, dtype=np.int32)
    if n == 0 or n_users == 0:
        return result
    seen = matrix.seen.tocsr()
    rank_of_item = np.full(matrix.n_items, -1, dtype=np.int64)
    rank_of_item[popular] = np.arange(len(popular))
    seen_lengths = np.diff(seen.indptr)
    for rows in user_chunks(np.minimum(seen_lengths + n, len(popular))):
        block = seen[rows]
        # Enough candidates that n remain after removing the chunk's seen items.
        width = min(len(popular), n + int(np.diff(block.indptr).max(initial=0)))
        blocked = np.zeros((rows.stop - rows.start, width), dtype=bool)
        entry_rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        ranks = rank_of_item[block.indices]
        inside = (ranks >= 0) & (ranks < width)
        blocked[entry_rows[inside], ranks[inside]] = True
        # A stable sort of the flags puts each row's unblocked ranks first, in order.
        first = np.argsort(blocked, axis=1, kind="stable")[:, :n]
        items = popular[first]
        items[np.take_along_axis(blocked, first, axis=1)] = -1
        result[rows] = items
    return result
