"""Beyond accuracy: how much of the catalog the lists use, and how varied they are.

A recommender can score well by showing every customer the same best-sellers;
these numbers show that at a glance. All take the same ``recommended`` array
as :func:`~django_recs.evaluation.ranking_metrics` (int, best first, -1 pads).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def exposure(recommended: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """How often each item appears in the top-``k`` lists.

    Returns
    -------
    ndarray of int64, shape (n_items,)

    Raises
    ------
    ValueError
        On a bad ``k``, a non 2-D ``recommended`` or an index outside -1 .. n_items - 1.
    """
    top = _top(recommended, k, n_items)
    valid = top[top >= 0]
    return np.bincount(valid, minlength=n_items).astype(np.int64)


def catalog_coverage(recommended: np.ndarray, n_items: int, k: int) -> float:
    r"""Share of the catalog recommended to at least one user.

    :math:`\mathrm{coverage} = |\bigcup_u L_u| / n_{items}` where
    :math:`L_u` is user u's top-k list (padding ignored).
    """
    if n_items <= 0:
        raise ValueError(f"n_items: expected a positive integer, got {n_items!r}")
    return float(np.count_nonzero(exposure(recommended, n_items, k)) / n_items)


def gini_index(counts: np.ndarray) -> float:
    r"""Gini coefficient of non-negative counts (0 = all equal, towards 1 = all on one).

    With the counts sorted ascending, :math:`c_1 \le \dots \le c_n`:
    :math:`G = \frac{\sum_{i=1}^{n} (2i - n - 1)\, c_i}{n \sum_i c_i}`.
    All-zero counts give 0.
    """
    values = np.sort(np.asarray(counts, dtype=np.float64).ravel())
    if values.size and values[0] < 0:
        raise ValueError("counts: must be >= 0")
    n, total = values.size, values.sum()
    if n == 0 or total == 0:
        return 0.0
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    return float((weights @ values) / (n * total))


def exposure_gini(recommended: np.ndarray, n_items: int, k: int) -> float:
    """Gini index of how often each catalog item is recommended (items never shown count as 0)."""
    return gini_index(exposure(recommended, n_items, k))


def item_popularity(train: sp.spmatrix) -> np.ndarray:
    """Share of users who interacted with each item in training, float64 (n_items,)."""
    matrix = sp.csr_matrix(train, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    users_per_item = np.bincount(matrix.indices, minlength=matrix.shape[1])
    return users_per_item.astype(np.float64) / max(matrix.shape[0], 1)


def novelty(recommended: np.ndarray, train: sp.spmatrix, k: int) -> float:
    r"""Mean self-information of the recommended items, in bits.

    :math:`\mathrm{novelty} = \frac{1}{|L|}\sum_{(u, i) \in L} -\log_2 p_i`
    over every recommended (user, item) entry of the top-k lists, where
    :math:`p_i` is the share of training users who interacted with item i.
    An item no training user had gets :math:`p_i = 1 / n_{users}` (as if one
    had), so it is the most novel but finite. Higher = less obvious items.
    NaN for empty lists.
    """
    n_users, n_items = train.shape
    top = _top(recommended, k, n_items)
    valid = top[top >= 0]
    if valid.size == 0:
        return float("nan")
    popularity = np.maximum(item_popularity(train), 1.0 / max(n_users, 1))
    return float(-np.log2(popularity[valid]).mean())


def intra_list_diversity(
    recommended: np.ndarray,
    k: int,
    *,
    similarity: sp.spmatrix | None = None,
    features: np.ndarray | None = None,
    categories: np.ndarray | None = None,
) -> float:
    r"""Mean pairwise dissimilarity within each top-k list, averaged over lists.

    For a list :math:`L` (padding ignored, at least two items):
    :math:`\mathrm{ILD}(L) = \frac{2}{|L|(|L| - 1)}\sum_{a < b} (1 - s(a, b))`,
    averaged over the users whose list has two or more items (NaN if none).
    Exactly one way to measure :math:`s` is given:

    similarity : sparse matrix, shape (n_items, n_items)
        Item similarities, e.g. an ItemKNN neighbour matrix (missing pairs
        are 0). Not necessarily symmetric: :math:`s(a, b)` is the mean of
        the (a, b) and (b, a) entries.
    features : ndarray, shape (n_items, n_features)
        Item vectors (e.g. ALS item factors); :math:`s` is their cosine
        similarity (a zero vector is dissimilar to everything).
    categories : ndarray of int, shape (n_items,)
        Category code per item, -1 unknown: :math:`s(a, b) = 1` when both are
        in the same known category, else 0; pairs with an unknown category
        are left out.

    Raises
    ------
    ValueError
        If not exactly one of similarity / features / categories is given,
        or its size does not cover the recommended item indexes.
    """
    given = [x is not None for x in (similarity, features, categories)]
    if sum(given) != 1:
        raise ValueError("intra_list_diversity: give exactly one of similarity, features, categories")
    if similarity is not None:
        n_items = similarity.shape[0]
        if similarity.shape[0] != similarity.shape[1]:
            raise ValueError(f"similarity: expected a square matrix, got {similarity.shape}")
    elif features is not None:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"features: expected a 2-D array, got {features.ndim}-D")
        n_items = features.shape[0]
    else:
        categories = np.asarray(categories)
        if categories.ndim != 1 or not np.issubdtype(categories.dtype, np.integer):
            raise ValueError("categories: expected a 1-D integer array")
        n_items = categories.shape[0]
    top = _top(recommended, k, n_items)
    first, second = np.triu_indices(top.shape[1], k=1)
    a, b = top[:, first], top[:, second]  # (n_users, n_pairs)
    valid = (a >= 0) & (b >= 0)
    a_safe, b_safe = np.where(valid, a, 0), np.where(valid, b, 0)

    if similarity is not None:
        sim_matrix = sp.csr_matrix(similarity, dtype=np.float64)
        forward = np.asarray(sim_matrix[a_safe.ravel(), b_safe.ravel()]).reshape(a.shape)
        backward = np.asarray(sim_matrix[b_safe.ravel(), a_safe.ravel()]).reshape(a.shape)
        dissimilarity = 1.0 - (forward + backward) / 2.0
    elif features is not None:
        norms = np.linalg.norm(features, axis=1)
        unit = np.divide(features, norms[:, None], out=np.zeros_like(features), where=norms[:, None] > 0)
        dissimilarity = 1.0 - np.einsum("upf,upf->up", unit[a_safe], unit[b_safe])
    else:
        cat_a, cat_b = categories[a_safe], categories[b_safe]
        valid &= (cat_a >= 0) & (cat_b >= 0)
        dissimilarity = (cat_a != cat_b).astype(np.float64)

    n_pairs = valid.sum(axis=1)
    judged = n_pairs > 0
    if not judged.any():
        return float("nan")
    per_list = np.where(valid, dissimilarity, 0.0).sum(axis=1)[judged] / n_pairs[judged]
    return float(per_list.mean())


def _top(recommended: np.ndarray, k: int, n_items: int) -> np.ndarray:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ValueError(f"recommended: expected a 2-D array, got {recommended.ndim}-D")
    top = recommended[:, : int(k)].astype(np.int64)
    if top.size and (top.min() < -1 or top.max() >= n_items):
        raise ValueError(f"recommended: item index outside -1 .. {n_items - 1}")
    return top
