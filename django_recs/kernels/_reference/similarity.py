"""Reference item-item similarity: the full product X.T @ X, then top k per row.

Straightforward and memory-hungry (the product of a shop's matrix can be a
hundred times the input); the compiled kernel is tested against it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Rows of the product scored at a time, to bound the temporaries.
ROWS_PER_BLOCK = 2048


def column_factors(X: sp.csr_matrix, metric: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The per-item terms of each metric's denominator, in float64.

    cosine: (|x_i|, |x_j|); jaccard: (|U_i|, |U_j|); conditional:
    (|U_i|, |U_j| ** alpha); asymmetric: (|x_i| ** 2 alpha, |x_j| ** 2 (1 - alpha)).
    ``X`` has no explicit zeros.
    """
    if metric in ("cosine", "asymmetric"):
        squared = np.asarray(X.multiply(X).sum(axis=0), dtype=np.float64).ravel()
        if metric == "asymmetric":
            return np.power(squared, alpha), np.power(squared, 1.0 - alpha)
        norms = np.sqrt(squared)
        return norms, norms
    counts = np.diff(X.tocsc().indptr).astype(np.float64)
    if metric == "jaccard":
        return counts, counts
    return counts, np.power(counts, alpha)


def _top_k(cols: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (col, score) by descending score, equal scores by ascending col."""
    if scores.size > k:
        kth = np.partition(scores, scores.size - k)[scores.size - k]  # the k-th largest
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)
        tied = tied[np.argsort(cols[tied], kind="stable")][: k - above.size]
        chosen = np.concatenate([above, tied])
        cols, scores = cols[chosen], scores[chosen]
    order = np.lexsort((cols, -scores))
    return cols[order], scores[order]


def item_similarity(
    X: sp.csr_matrix,
    k: int,
    *,
    metric: str = "cosine",
    shrink: float = 0.0,
    alpha: float = 0.5,
    items: tuple[int, int] | None = None,
    min_overlap: int = 1,
    beta: float = 0.0,
) -> sp.csr_matrix:
    """Top-k item-item similarity, computed from the whole sparse product.

    Same contract as :func:`django_recs.kernels.item_similarity` (which
    validates): X is a canonical CSR matrix with finite weights >= 0;
    ``items=(start, stop)`` gives only the rows of those items (the product
    is then formed for their columns only); pairs with fewer than
    ``min_overlap`` common users are dropped (a second, binarised product
    counts them).
    """
    n_items = X.shape[1]
    first, last = (0, n_items) if items is None else (int(items[0]), int(items[1]))
    X = X.astype(np.float64)  # a copy: the zeros and binarising below stay local
    X.eliminate_zeros()
    if metric in ("jaccard", "conditional"):
        X.data[:] = 1.0
    if metric == "rp3beta":
        # The walk item -> user -> item, each step's probability to the power
        # alpha: row i of (X / d_i)^alpha.T @ (X / d_u)^alpha, times d_i^alpha
        # (the denominator d_i^alpha d_j^beta + shrink divides it back out).
        item_degree = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
        to_users = X.multiply(1.0 / np.maximum(item_degree, 1e-300)[None, :]).tocsr()
        to_items = X.multiply(1.0 / np.maximum(np.asarray(X.sum(axis=1)), 1e-300)).tocsr()
        to_users.data **= alpha
        to_items.data **= alpha
        row_factor, col_factor = np.power(item_degree, alpha), np.power(item_degree, beta)
        product = sp.diags(row_factor[first:last]) @ (
            to_users[:, first:last].T.tocsr() @ to_items)
        product = product.tocsr()
    else:
        row_factor, col_factor = column_factors(X, metric, alpha)
        product = (X[:, first:last].T.tocsr() @ X).tocsr()  # row r: item first + r
    if min_overlap > 1:
        binary = X.copy()
        binary.data[:] = 1.0
        overlap = (binary[:, first:last].T.tocsr() @ binary).tocsr()
        product = product.multiply(overlap >= min_overlap).tocsr()

    indptr = np.zeros(last - first + 1, dtype=np.int64)
    indices_parts, data_parts = [], []
    for start in range(first, last, ROWS_PER_BLOCK):
        stop = min(start + ROWS_PER_BLOCK, last)
        block = product[start - first:stop - first]
        rows = np.repeat(np.arange(start, stop), np.diff(block.indptr))
        cols = block.indices.astype(np.int64)
        common = block.data
        if metric == "jaccard":
            denominator = row_factor[rows] + col_factor[cols] - common + shrink
        else:
            denominator = row_factor[rows] * col_factor[cols] + shrink
        scores = (common / denominator).astype(np.float32)
        for row in range(start, stop):
            span = slice(block.indptr[row - start], block.indptr[row - start + 1])
            keep = (cols[span] != row) & (scores[span] > 0)
            row_cols, row_scores = _top_k(cols[span][keep], scores[span][keep], k)
            indices_parts.append(row_cols)
            data_parts.append(row_scores)
            indptr[row - first + 1] = row_cols.size
    np.cumsum(indptr, out=indptr)
    indices = np.concatenate(indices_parts) if indices_parts else np.empty(0, np.int64)
    data = np.concatenate(data_parts) if data_parts else np.empty(0, np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(last - first, n_items))
