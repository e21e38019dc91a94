"""Content-based similar items: items alike in their text and attributes.

The item features declared in ITEM_FEATURES form a features x items sparse
matrix (TF-IDF of text fields, weighted one-hot of categorical fields; see
:mod:`django_recs.algorithms.features`). :func:`django_recs.kernels.item_similarity`
runs on it with the features in the place of users, so two items are as
similar as the cosine of their feature vectors. A product added this
morning, with no interactions at all, has neighbours at once.

Personal lists are the item-based sum over the user's history, as for
:class:`~django_recs.algorithms.ItemKNN`. Items without any feature get no
neighbours; their number is ``counts["items_without_features"]``.

The features are not in the interaction matrix: the pipeline (or the
evaluation) hands them over with :meth:`ContentKNN.use_item_features`
before ``fit``, which therefore stays free of the ORM.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..matrix import InteractionMatrix
from .base import Algorithm, FitResult, ProgressCallback, report, require_int, require_number
from .content_index import ContentIndex
from .features import ItemFeatures
from .itemknn import fit_from_neighbours


class UsesItemFeatures:
    """Mixin of algorithms that need item features beside the interactions.

    ``uses_item_features`` tells the pipeline to call
    :func:`django_recs.content.loading.prepare_item_features` (which adds
    the items without interactions to the run and calls
    :meth:`use_item_features`) before ``fit``.
    """

    uses_item_features: ClassVar[bool] = True
    item_features: ItemFeatures | None = None

    def use_item_features(self, features: ItemFeatures):
        """Set the features ``fit`` uses (columns = the matrix's columns); returns self."""
        if not isinstance(features, ItemFeatures):
            raise ValueError(
                f"{type(self).__name__}: item features must be an ItemFeatures, "
                f"got {type(features).__name__}"
            )
        self.item_features = features
        return self

    def features_for(self, matrix: InteractionMatrix) -> ItemFeatures:
        """The item features, checked against ``matrix`` (ValueError when missing or misaligned)."""
        features = self.item_features
        if features is None:
            raise ValueError(
                f"{type(self).__name__} needs item features: declare ITEM_FEATURES in "
                "DJANGO_RECS, or call use_item_features() before fit()"
            )
        if features.n_items != matrix.n_items:
            raise ValueError(
                f"{type(self).__name__}: the item features have {features.n_items} item columns, "
                f"the interaction matrix {matrix.n_items}"
            )
        return features


def content_similarity(
    features: ItemFeatures, k: int, *, shrink: float = 0.0, num_threads: int = 0
) -> sp.csr_matrix:
    """The k nearest items of every item by cosine of their features (CSR n_items x n_items)."""
    n_items = features.n_items
    if features.matrix.nnz == 0 or n_items < 2:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return kernels.item_similarity(
        features.matrix, k, metric="cosine", shrink=float(shrink), num_threads=num_threads
    ).tocsr()


class ContentKNN(UsesItemFeatures, Algorithm):
    """k nearest items by their declared features (text and attributes).

    Parameters
    ----------
    k : int, default 50
        Neighbours kept per item.
    shrink : float >= 0, default 0.0
        Added to the cosine's denominator: pulls down the scores of items
        with few features.
    """

    name = "contentknn"
    defaults = {"k": 50, "shrink": 0.0}

    def check_params(self) -> None:
        require_int(self, "k")
        require_number(self, "shrink")

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        features = self.features_for(matrix)
        similar = content_similarity(features, self.k, shrink=self.shrink, num_threads=num_threads)
        report(progress, 0.5)
        return fit_from_neighbours(
            matrix, similar, n_recommendations, num_threads=num_threads, progress=progress,
            done=0.5,
            content_index=ContentIndex(features, k=int(self.k), shrink=float(self.shrink)),
            counts={
                "features": int(features.n_features),
                "items_without_features": int((~features.items_with_features).sum()),
            },
        )
