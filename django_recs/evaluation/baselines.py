"""Baselines every algorithm must beat: random lists and the best-sellers.

:class:`Random` is an :class:`~django_recs.algorithms.Algorithm` like the
others (so it runs through the same evaluation): each user gets a uniformly
random ordering of the items they have not seen. The popularity baseline is
the pipeline's own :class:`~django_recs.algorithms.Popular` ranking items by
the number of distinct users who had them (``measure="users"``: a customer
who bought 500 of one item counts once), the list a shop shows when it knows
nothing about a visitor.
"""

from __future__ import annotations

import numpy as np

from ..algorithms.base import Algorithm, FitResult, ProgressCallback, report, require_int
from ..algorithms.popular import Popular
from ..matrix import InteractionMatrix

#: Random scores drawn at once (users x items), to bound memory.
_BLOCK_ENTRIES = 2**22


class Random(Algorithm):
    """Uniformly random recommendations, seen items excluded.

    Parameters
    ----------
    seed : int or None, default 0
        Seed of the random orderings (fixed by default: reproducible).
    """

    name = "random"
    defaults = {"seed": 0}

    def check_params(self) -> None:
        require_int(self, "seed", minimum=0, allow_none=True)

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        n_users, n_items = matrix.n_users, matrix.n_items
        n = max(0, min(int(n_recommendations), n_items))
        recommended = np.full((n_users, n), -1, dtype=np.int32)
        scores = np.zeros((n_users, n), dtype=np.float32)
        if n == 0 or n_users == 0:
            return FitResult(recommended=recommended, recommended_scores=scores)
        rng = np.random.default_rng(self.seed)
        seen = matrix.seen.tocsr()
        step = max(1, _BLOCK_ENTRIES // n_items)
        for start in range(0, n_users, step):
            rows = slice(start, min(start + step, n_users))
            block = rng.random((rows.stop - rows.start, n_items), dtype=np.float32)
            seen_block = seen[rows]
            # Seen items score -1: below every random draw in [0, 1).
            entry_rows = np.repeat(np.arange(block.shape[0]), np.diff(seen_block.indptr))
            block[entry_rows, seen_block.indices] = -1.0
            top = np.argpartition(-block, n - 1, axis=1)[:, :n]
            top_scores = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            unseen = top_scores >= 0
            recommended[rows] = np.where(unseen, top, -1)
            scores[rows] = np.where(unseen, top_scores, 0.0)
            report(progress, rows.stop / n_users)
        return FitResult(
            recommended=recommended,
            recommended_scores=scores,
            counts={"users": int(n_users), "items": int(n_items)},
        )


def baseline_algorithms(seed: int | None = 0) -> dict[str, Algorithm]:
    """The baselines shown beside every evaluation: ``{"Random": ..., "Popular": ...}``."""
    return {"Random": Random(seed=seed), "Popular": Popular(measure="users")}
