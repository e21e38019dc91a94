r"""One item's content neighbours against a stored feature matrix. No ORM here.

A content run keeps its :class:`ContentIndex` (the item features it was
fitted on and how it scored them). A new or edited item's vector is built
against that vocabulary and scored against every stored column with the
same cosine :func:`django_recs.kernels.item_similarity` uses:

.. math::

    \mathrm{sim}(x, y) = \frac{x \cdot y}{\lVert x \rVert \lVert y \rVert + s}

so the item gets the neighbours a full run would give it (up to the
vocabulary and idf, which stay those of the run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .features import ItemFeatures

__all__ = ["ContentIndex", "nearest_items"]


@dataclass(frozen=True)
class ContentIndex:
    """What a content run stores so one item can be scored later.

    Attributes
    ----------
    features : ItemFeatures
        The features x items matrix the run was fitted on.
    k : int
        Neighbours kept per item.
    shrink : float
        The cosine's shrink term.
    blended : bool
        The run blends content with collaborative scores (Hybrid): only items
        without interactions, whose blend is pure content, may be rescored
        from content alone.
    """

    features: ItemFeatures
    k: int
    shrink: float = 0.0
    blended: bool = False


def nearest_items(
    index: ContentIndex, vector: sp.csr_matrix, *, exclude: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``index.k`` stored items most similar to ``vector``.

    Parameters
    ----------
    index : ContentIndex
    vector : csr_matrix, shape (1, n_features)
        From :meth:`ItemFeatures.vector_of`.
    exclude : int, optional
        A column never returned (the item itself, when the run knew it).

    Returns
    -------
    columns : ndarray of int64, best first (only positive scores)
    scores : ndarray of float32
        Ties are broken by the lower column, as the kernel does.
    """
    features = index.features
    norm = float(np.sqrt(vector.multiply(vector).sum()))
    if norm == 0.0 or features.n_items == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    dots = np.asarray((vector @ features.matrix.astype(np.float64)).todense()).reshape(-1)
    denominator = norm * features.column_norms + index.shrink
    scores = np.divide(dots, denominator, out=np.zeros_like(dots),
                       where=features.column_norms > 0)
    if exclude is not None and 0 <= exclude < len(scores):
        scores[exclude] = 0.0
    candidates = np.flatnonzero(scores > 0)
    order = np.lexsort((candidates, -scores[candidates]))[: index.k]
    best = candidates[order]
    return best.astype(np.int64), scores[best].astype(np.float32)
