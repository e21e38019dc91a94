r"""RP3beta: item neighbours from a three-step random walk with a popularity penalty.

Paudel, Christoffel, Newell and Bernstein (2017), "Updatable, accurate,
diverse, and scalable recommendations for interactive applications": the
probability that a walk item i -> a buyer u of i -> an item j of u ends at
j, each step's probability raised to ``alpha``, divided by j's degree to
the power ``beta`` (so best-sellers stop being everyone's neighbour)::

    sim(i, j) = sum_u (x_ui / d_i)^alpha (x_uj / d_u)^alpha / d_j^beta

with d the summed weights of an item or a user. The k best per item come
from :func:`django_recs.kernels.item_similarity` (metric ``"rp3beta"``:
the same compiled kernel as ItemKNN, weights pre-scaled and scores
post-scaled exactly); personal lists are the item-based sum of ItemKNN
over the user's history, with its reasons. See docs/similarity.md.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..kernels.similarity import check_item_range
from ..matrix import InteractionMatrix
from .base import require_int, require_number
from .itemknn import ItemKNN


class RP3beta(ItemKNN):
    """Random-walk item neighbours with a popularity penalty, and item-based CF from them.

    Parameters
    ----------
    alpha : float >= 0, default 1.0
        Exponent of each step's probability (1 = the plain walk; below 1
        flattens the weights of heavy buyers and heavy items).
    beta : float >= 0, default 0.5
        Popularity penalty: a neighbour's score is divided by its degree to
        this power (0 = the plain P3 walk).
    k : int >= 1, default 100
        Neighbours kept per item.
    shrink : float >= 0, default 0.0
        Added to the denominator ``d_i^alpha d_j^beta``.

    ``fit`` is ItemKNN's (so sharded runs split it the same way): a
    FitResult with ``similar`` (n_items x n_items, float32, k per row, best
    first), ``recommended``, ``recommended_scores`` and ``reasons``.
    """

    name = "rp3beta"
    defaults = {"alpha": 1.0, "beta": 0.5, "k": 100, "shrink": 0.0}

    def check_params(self) -> None:
        require_int(self, "k")
        require_number(self, "alpha")
        require_number(self, "beta")
        require_number(self, "shrink")

    def neighbours(
        self,
        matrix: InteractionMatrix,
        *,
        items: tuple[int, int] | None = None,
        num_threads: int = 0,
    ) -> sp.csr_matrix:
        """The k random-walk neighbours of every item, or of the items ``start <= i < stop``."""
        if matrix.nnz == 0:
            start, stop = check_item_range(items, matrix.n_items)
            return sp.csr_matrix((stop - start, matrix.n_items), dtype=np.float32)
        return kernels.item_similarity(
            matrix.weights, self.k, metric="rp3beta", alpha=float(self.alpha),
            beta=float(self.beta), shrink=float(self.shrink), num_threads=num_threads,
            items=items,
        ).tocsr()
