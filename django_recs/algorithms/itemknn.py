"""Item-based collaborative filtering on the neighbours of each item.

Neighbours come from :func:`django_recs.kernels.item_similarity` (the k most
similar items per item). A user's scores are the item-based CF sum over the
items of their history::

    score(u, j) = sum over i in history(u) of  w(u, i) * sim(i, j)

with items the user has "seen" (EXCLUDE_SEEN) removed; the reason of a
recommendation is the history item i with the largest ``w(u, i) * sim(i, j)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..kernels.similarity import check_item_range
from ..matrix import InteractionMatrix
from .base import (
    Algorithm,
    FitResult,
    ProgressCallback,
    report,
    require_choice,
    require_int,
    require_number,
)
from .ranking import user_chunks

METRICS = ("cosine", "jaccard", "conditional")

#: The recommendation step reports progress about this many times, on chunks
#: of at least PROGRESS_MIN_ENTRIES (history x neighbours) entries: each call
#: of the kernel validates the whole neighbour matrix again and ends with
#: threads waiting for the slowest, so calls are few and large.
PROGRESS_STEPS = 5
PROGRESS_MIN_ENTRIES = 20_000_000


class ItemKNN(Algorithm):
    """k nearest neighbour items, and item-based CF recommendations from them.

    Parameters
    ----------
    k : int, default 50
        Neighbours kept per item.
    metric : {"cosine", "jaccard", "conditional"}, default "cosine"
    shrink : float >= 0, default 0.0
        Shrinks similarities of items with little co-occurrence towards 0.
    alpha : float >= 0, default 0.5
        Popularity damping of the "conditional" metric (ignored by the others).
    """

    name = "itemknn"
    defaults = {"k": 50, "metric": "cosine", "shrink": 0.0, "alpha": 0.5}

    def check_params(self) -> None:
        require_int(self, "k")
        require_choice(self, "metric", METRICS)
        require_number(self, "shrink")
        require_number(self, "alpha")

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        similar = self.neighbours(matrix, num_threads=num_threads)
        report(progress, 0.5)
        return fit_from_neighbours(
            matrix, similar, n_recommendations, num_threads=num_threads, progress=progress,
            done=0.5,
        )

    def neighbours(
        self,
        matrix: InteractionMatrix,
        *,
        items: tuple[int, int] | None = None,
        num_threads: int = 0,
    ) -> sp.csr_matrix:
        """The k neighbours of every item, or of the items ``start <= i < stop``.

        Returns a float32 CSR of shape (n_items, n_items), or (stop - start,
        n_items) with ``items``: exactly those rows of the full result, so
        item ranges computed apart (sharded runs) stack into it.
        """
        n_items = matrix.n_items
        if matrix.nnz == 0:
            start, stop = check_item_range(items, n_items)
            return sp.csr_matrix((stop - start, n_items), dtype=np.float32)
        return kernels.item_similarity(
            matrix.weights,
            self.k,
            metric=self.metric,
            shrink=float(self.shrink),
            alpha=float(self.alpha),
            num_threads=num_threads,
            items=items,
        ).tocsr()


def neighbour_counts(similar: sp.csr_matrix) -> dict[str, int]:
    """The run counts of a neighbour matrix: items without neighbours, pairs."""
    lengths = np.diff(similar.indptr)
    return {
        "items_without_neighbours": int((lengths == 0).sum()),
        "neighbour_pairs": int(similar.nnz),
    }


def fit_from_neighbours(
    matrix: InteractionMatrix,
    similar: sp.csr_matrix,
    n_recommendations: int,
    *,
    num_threads: int,
    progress: ProgressCallback | None,
    done: float,
    counts: dict | None = None,
    **result,
) -> FitResult:
    """What an item-based algorithm stores: ``similar``, and the recommendations from it.

    ``done`` is the progress already reported (the rest goes to the
    recommendations); ``counts`` are added to the items, users and
    neighbour counts, ``result`` to the FitResult.
    """
    recommended, scores, reasons = recommend_from_neighbours(
        matrix, similar, n_recommendations, num_threads=num_threads,
        progress=None if progress is None else lambda f: progress(done + (1 - done) * f),
    )
    report(progress, 1.0)
    return FitResult(
        similar=similar,
        recommended=recommended,
        recommended_scores=scores,
        reasons=reasons,
        counts={"items": int(matrix.n_items), "users": int(matrix.n_users),
                **neighbour_counts(similar), **(counts or {})},
        **result,
    )


def recommend_from_neighbours(
    matrix: InteractionMatrix,
    similar: sp.csr_matrix,
    n: int,
    *,
    num_threads: int = 0,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item-based CF: the top ``n`` of ``weights @ similar`` per user, seen excluded.

    Returns ``(recommended, scores, reasons)``, each of shape (n_users, n):
    int32 columns (-1 padding), float32 scores, int32 reason columns (-1 unknown).
    :func:`django_recs.kernels.neighbour_top_n` computes them; it is called
    on a few chunks of users so that ``progress`` moves.
    """
    weights = matrix.weights
    n_users = weights.shape[0]
    n = max(0, min(int(n), matrix.n_items))
    if n == 0 or weights.nnz == 0 or similar.nnz == 0:
        return (np.full((n_users, n), -1, dtype=np.int32),
                np.zeros((n_users, n), dtype=np.float32),
                np.full((n_users, n), -1, dtype=np.int32))
    # Every row is written by one of the chunks below.
    recommended = np.empty((n_users, n), dtype=np.int32)
    scores = np.empty((n_users, n), dtype=np.float32)
    reasons = np.empty((n_users, n), dtype=np.int32)
    # Work per user: its history entries times their neighbours.
    neighbours_per_item = np.diff(similar.indptr)
    expanded = np.concatenate(([0], np.cumsum(neighbours_per_item[weights.indices])))
    cost = expanded[weights.indptr[1:]] - expanded[weights.indptr[:-1]]
    budget = max(PROGRESS_MIN_ENTRIES, int(expanded[-1]) // PROGRESS_STEPS)
    if not similar.has_canonical_format:
        # Neighbour rows come best first; the kernel would sort them on every call.
        similar = similar.copy()
        similar.sum_duplicates()
    done = 0
    for rows in user_chunks(cost, budget=budget):
        recommended[rows], scores[rows], reasons[rows] = kernels.neighbour_top_n(
            weights[rows], similar, n, exclude=matrix.seen[rows], num_threads=num_threads
        )
        done += rows.stop - rows.start
        if progress is not None:
            progress(done / n_users)
    return recommended, scores, reasons
