r"""Hybrid similar items: collaborative and content scores, blended by support.

Collaborative similarity (:class:`~django_recs.algorithms.ItemKNN`'s
neighbours, or the cosine of :class:`~django_recs.algorithms.ALS` item
factors) knows what customers actually buy together but has nothing to say
about an item few people have bought; content similarity
(:class:`~django_recs.algorithms.ContentKNN`) works from the first day but
ignores taste. The blend trusts the collaborative score as far as the
items have interactions:

.. math::

    \mathrm{sim}(i, j) = w_{ij} \, \mathrm{cf}(i, j) + (1 - w_{ij}) \, \mathrm{content}(i, j),
    \qquad w_{ij} = \frac{n}{n + \mathrm{shrink}}, \quad n = \min(n_i, n_j)

with :math:`n_i` the number of users who interacted with item i. With
``shrink=20`` a pair whose less-bought item was bought by 20 users is half
collaborative, half content; by 180 users, 90 % collaborative; a pair with
a new item is pure content. Taking the support of the *pair* (the default,
``support="pair"``) lets a best-seller's list take in a new item that
resembles it; with ``support="item"``, :math:`n = n_i` (the item whose list
it is), and a best-seller's list stays collaborative, so new items only
appear in the lists of other new or rare items.

Both inputs are each item's top k lists; a pair missing from one of them
counts 0 there. The blended scores are cut to the ``k`` best per item.
Personal lists are the item-based sum over the user's history, as for ItemKNN.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..matrix import InteractionMatrix
from .als import ALS, neighbours_to_csr, normalised_rows
from .base import (
    Algorithm,
    FitResult,
    ProgressCallback,
    report,
    require_choice,
    require_int,
    require_number,
)
from .content import ContentKNN, UsesItemFeatures, content_similarity
from .content_index import ContentIndex
from .itemknn import ItemKNN, fit_from_neighbours
from .ranking import sparse_top_n

COLLABORATIVE = {"itemknn": ItemKNN, "als": ALS}
SUPPORTS = ("pair", "item")


def collaborative_weight(interactions: np.ndarray, shrink: float) -> np.ndarray:
    """``n / (n + shrink)`` for each interaction count n (0 where n is 0), float64."""
    n = np.asarray(interactions, dtype=np.float64)
    denominator = n + float(shrink)
    return np.divide(n, denominator, out=np.zeros_like(n), where=denominator > 0)


def blend_similarities(
    collaborative: sp.csr_matrix,
    content: sp.csr_matrix,
    interactions: np.ndarray,
    *,
    shrink: float,
    k: int,
    support: str = "pair",
) -> sp.csr_matrix:
    """The k best of ``w * collaborative + (1 - w) * content`` per item.

    Parameters
    ----------
    collaborative, content : csr_matrix, shape (n_items, n_items)
        Neighbour scores; a missing entry is 0.
    interactions : ndarray, shape (n_items,)
        Users who interacted with each item (``n`` of the weight).
    shrink : float >= 0
    k : int >= 1
    support : {"pair", "item"}
        ``n`` is the row item's count, or the smaller count of the pair.

    Returns
    -------
    csr_matrix, shape (n_items, n_items), float32
        Each row's entries best first (ties: lower column), at most k,
        only positive scores.
    """
    if support not in SUPPORTS:
        raise ValueError(f"support must be one of {', '.join(SUPPORTS)}, got {support!r}")
    n_items = collaborative.shape[0]
    counts = np.asarray(interactions, dtype=np.float64)
    parts_rows, parts_cols, parts_values = [], [], []
    for matrix, share_of in ((collaborative, lambda w: w), (content, lambda w: 1.0 - w)):
        coo = sp.coo_matrix(matrix)
        n = counts[coo.row]
        if support == "pair":
            n = np.minimum(n, counts[coo.col])
        weight = share_of(collaborative_weight(n, shrink))
        parts_rows.append(coo.row)
        parts_cols.append(coo.col)
        parts_values.append(weight * coo.data.astype(np.float64))
    blended = sp.csr_matrix(
        (np.concatenate(parts_values), (np.concatenate(parts_rows), np.concatenate(parts_cols))),
        shape=(n_items, n_items), dtype=np.float64,
    )
    blended.sum_duplicates()
    blended.data[blended.data < 0] = 0.0
    blended.eliminate_zeros()
    neighbours, scores = sparse_top_n(blended.astype(np.float32), min(int(k), max(n_items - 1, 0)))
    return neighbours_to_csr(neighbours, scores, n_items)


class Hybrid(UsesItemFeatures, Algorithm):
    """Similar items blending collaborative and content similarity.

    Parameters
    ----------
    k : int, default 50
        Neighbours kept per item (and asked of each input unless their own
        parameters say otherwise).
    shrink : float >= 0, default 20.0
        The weight of the collaborative score is ``n / (n + shrink)``.
    collaborative : {"itemknn", "als"}, default "itemknn"
        ItemKNN neighbours, or the cosine of ALS item factors.
    collaborative_params : dict, default {}
        Parameters of that ItemKNN or ALS (e.g. ``{"metric": "conditional"}``).
    content_params : dict, default {}
        Parameters of the ContentKNN part (``k``, ``shrink``).
    support : {"pair", "item"}, default "pair"
        ``n`` is the smaller interaction count of the pair, or the count of
        the item whose list it is.
    """

    name = "hybrid"
    defaults = {
        "k": 50,
        "shrink": 20.0,
        "collaborative": "itemknn",
        "collaborative_params": {},
        "content_params": {},
        "support": "pair",
    }

    def check_params(self) -> None:
        require_int(self, "k")
        require_number(self, "shrink")
        require_choice(self, "collaborative", tuple(COLLABORATIVE))
        require_choice(self, "support", SUPPORTS)
        for name in ("collaborative_params", "content_params"):
            if not isinstance(self.params[name], dict):
                raise ValueError(
                    f"Hybrid: parameter {name} must be a dict, got {self.params[name]!r}"
                )
        try:
            self.collaborative_algorithm()
            self.content_algorithm()
        except ValueError as error:
            raise ValueError(f"Hybrid: {error}") from error

    def collaborative_algorithm(self) -> ItemKNN | ALS:
        """The configured ItemKNN or ALS (ItemKNN's ``k`` defaults to the Hybrid's)."""
        cls = COLLABORATIVE[self.collaborative]
        params = dict(self.collaborative_params)
        if cls is ItemKNN:
            params.setdefault("k", self.k)
        return cls(**params)

    def content_algorithm(self) -> ContentKNN:
        """The ContentKNN part (its ``k`` defaults to the Hybrid's)."""
        return ContentKNN(**{"k": self.k, **self.content_params})

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        features = self.features_for(matrix)
        n_items = matrix.n_items
        interactions = np.bincount(matrix.weights.indices[matrix.weights.data > 0],
                                   minlength=n_items)
        collaborative = self._collaborative_similarity(matrix, interactions, num_threads)
        report(progress, 0.4)
        content = self.content_algorithm()
        content_neighbours = content_similarity(
            features, content.k, shrink=content.shrink, num_threads=num_threads
        )
        report(progress, 0.6)
        similar = blend_similarities(
            collaborative, content_neighbours, interactions,
            shrink=float(self.shrink), k=int(self.k), support=self.support,
        )
        report(progress, 0.7)
        return fit_from_neighbours(
            matrix, similar, n_recommendations, num_threads=num_threads, progress=progress,
            done=0.7,
            content_index=ContentIndex(
                features, k=int(self.k), shrink=float(content.shrink), blended=True
            ),
            counts={
                "features": int(features.n_features),
                "items_without_features": int((~features.items_with_features).sum()),
                "items_without_interactions": int((interactions == 0).sum()),
                "collaborative_pairs": int(collaborative.nnz),
                "content_pairs": int(content_neighbours.nnz),
            },
        )

    def _collaborative_similarity(
        self, matrix: InteractionMatrix, interactions: np.ndarray, num_threads: int
    ) -> sp.csr_matrix:
        n_items = matrix.n_items
        empty = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        if matrix.nnz == 0 or n_items < 2:
            return empty
        algorithm = self.collaborative_algorithm()
        if isinstance(algorithm, ItemKNN):
            return kernels.item_similarity(
                matrix.weights, algorithm.k, metric=algorithm.metric,
                shrink=float(algorithm.shrink), alpha=float(algorithm.alpha),
                num_threads=num_threads,
            ).tocsr()
        _, item_factors = algorithm.factorise(matrix, num_threads=num_threads)
        unit = normalised_rows(item_factors)
        # Items nobody interacted with keep their random start: not a signal.
        unit[interactions == 0] = 0.0
        k = min(int(self.k), n_items - 1)
        neighbours, scores = kernels.top_n(
            unit, unit, k,
            exclude=sp.identity(n_items, dtype=np.float32, format="csr"),
            num_threads=num_threads,
        )
        valid = (neighbours >= 0) & (scores > 0)
        return neighbours_to_csr(np.where(valid, neighbours, -1), scores, n_items)
