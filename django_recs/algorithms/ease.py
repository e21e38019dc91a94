r"""EASE: the closed-form item-item model of Steck (2019), "Embarrassingly Shallow Autoencoders".

On the ``max_items`` most interacted items, the weights B solve the ridge
regression of every item's column on the others (no self-weight)::

    P = (X^T X + l2 I)^-1,    B = I - P diag(1 / diag P)

(:func:`django_recs.kernels.ease_weights`, LAPACK Cholesky in place). A
user's scores are ``x_u B``; the list is its top n with EXCLUDE_SEEN items
removed, computed block by block of users; the reason of a recommendation
j is the history item i with the largest ``w(u, i) * B[i, j]``, as for
ItemKNN. The similar items of item i are the k largest positive weights of
column i of B (the items that predict i best; measured better than row i
on Online Retail, docs/ease.md). Items beyond
``max_items`` get the cosine neighbours of ItemKNN instead and are not
recommended personally. See docs/ease.md.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..kernels import resolve_num_threads
from ..kernels.ease import ease_weights, gram_matrix
from ..matrix import InteractionMatrix
from .base import Algorithm, FitResult, ProgressCallback, report, require_int, require_number
from .itemknn import neighbour_counts
from .ranking import sparse_top_n, strongest_history_item

#: Dense score entries (users x kept items) computed at a time.
BLOCK_ENTRIES = 1 << 24
#: Users given their reasons at a time (after the compiled ranking of all).
REASON_USERS = 8192
#: Share of the progress of the personal lists reported once they are ranked.
RANKING_SHARE = 0.5
#: Items whose similar items are ranked at a time.
SIMILAR_BLOCK = 1024


class EASE(Algorithm):
    """Closed-form item-item weights (ridge regression with a zero diagonal).

    Parameters
    ----------
    l2 : float > 0, default 200.0
        The ridge penalty lambda: larger values shrink the weights of rarely
        co-bought pairs more.
    max_items : int >= 1, default 20000
        Items kept in the dense model, the most interacted first: memory is
        ``4 * max_items**2`` bytes (1.6 GB at 20,000) and time grows as its
        cube (see docs/ease.md).
    k : int >= 1, default 50
        Similar items stored per item.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the dense solve; float32 halves the memory and is
        within 1e-5 of float64 on the weights (docs/ease.md).
    """

    name = "ease"
    defaults = {"l2": 200.0, "max_items": 20000, "k": 50, "dtype": "float32"}

    def check_params(self) -> None:
        require_number(self, "l2", strict=True)
        require_int(self, "max_items")
        require_int(self, "k")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(
                f"EASE: parameter dtype must be 'float32' or 'float64', got {self.dtype!r}"
            )

    def kept_items(self, matrix: InteractionMatrix) -> np.ndarray:
        """Columns of the dense model: the ``max_items`` with the most users, by column order."""
        users_per_item = np.bincount(matrix.weights.indices, minlength=matrix.n_items)
        interacted = np.flatnonzero(users_per_item)
        if len(interacted) <= self.max_items:
            return interacted.astype(np.int64)
        order = np.argsort(-users_per_item[interacted], kind="stable")[: self.max_items]
        return np.sort(interacted[order]).astype(np.int64)

    def weights(self, matrix: InteractionMatrix, *, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(kept, B)``: the kept item columns and their dense weights (len(kept) squared)."""
        weights = matrix.weights
        if weights.nnz and not np.isfinite(weights.data).all():
            raise ValueError("EASE: the interaction weights hold NaN or infinity")
        kept = self.kept_items(matrix)
        gram = gram_matrix(weights[:, kept], dtype=np.dtype(self.dtype))
        return kept, ease_weights(gram, float(self.l2), num_threads=num_threads)

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        """Every user's list from ``x_u B`` and every item's k similar items.

        Returns a FitResult with ``similar`` (n_items x n_items, float32, at
        most k per row), ``recommended``, ``recommended_scores`` and
        ``reasons`` of shape (n_users, min(n_recommendations, kept items)),
        and counts (items, users, items in the dense model, items without
        neighbours, neighbour pairs).

        Raises ValueError on NaN or infinite weights.
        """
        kept, B = self.weights(matrix, num_threads=num_threads)
        report(progress, 0.5)
        similar = self.similar_items(matrix, kept, B, num_threads=num_threads)
        report(progress, 0.6)
        recommended, scores, reasons = recommend_dense(
            matrix, kept, B, n_recommendations, num_threads=num_threads,
            progress=None if progress is None else lambda f: progress(0.6 + 0.4 * f),
        )
        report(progress, 1.0)
        return FitResult(
            similar=similar,
            recommended=recommended,
            recommended_scores=scores,
            reasons=reasons,
            counts={"items": int(matrix.n_items), "users": int(matrix.n_users),
                    "items_in_model": int(len(kept)), **neighbour_counts(similar)},
        )

    def similar_items(self, matrix: InteractionMatrix, kept: np.ndarray, B: np.ndarray,
                      *, num_threads: int = 0) -> sp.csr_matrix:
        """Float32 CSR (n_items x n_items), best first per row: for each kept
        item i, the k items j with the largest positive weight ``B[j, i]``
        (column i: the items that predict i best), and ItemKNN cosine
        neighbours for the items not kept."""
        n_items, m = matrix.n_items, len(kept)
        k = min(int(self.k), m - 1)
        parts = []
        # Column i of B, a block of columns at a time (one contiguous copy of
        # SIMILAR_BLOCK x m, never an index array of the whole matrix), each
        # row's top k by the compiled selection (an identity "history" picks
        # the rows as they are; float64 weights by dense_top_n).
        for start in range(0, m if k > 0 else 0, SIMILAR_BLOCK):
            stop = min(m, start + SIMILAR_BLOCK)
            columns = np.ascontiguousarray(B[:, start:stop].T)
            if columns.dtype == np.float32:
                identity = sp.identity(stop - start, dtype=np.float32, format="csr")
                top, values = kernels.history_top_n(identity, columns, k,
                                                    num_threads=num_threads)
            else:
                top, values = dense_top_n(columns, k)
            found = top >= 0
            parts.append((np.repeat(kept[start:stop], found.sum(axis=1)), kept[top[found]],
                          values[found]))
        others = np.setdiff1d(np.arange(n_items), kept)
        if len(others) and matrix.weights.nnz:
            parts.append(tail_neighbours(matrix, others, int(self.k), num_threads))
        if not parts:
            return sp.csr_matrix((n_items, n_items), dtype=np.float32)
        row_of, cols, values = (np.concatenate(column) for column in zip(*parts))
        order = np.argsort(row_of, kind="stable")  # rows ascending, each row's order kept
        return rows_in_order(row_of[order], cols[order], values[order], n_items)


def rows_in_order(row_of: np.ndarray, cols: np.ndarray, values: np.ndarray,
                  n_items: int) -> sp.csr_matrix:
    """A square float32 CSR from entries sorted by row, keeping their order within each row."""
    indptr = np.concatenate(([0], np.cumsum(np.bincount(row_of, minlength=n_items))))
    return sp.csr_matrix((values.astype(np.float32), cols.astype(np.int32), indptr),
                         shape=(n_items, n_items))


def tail_neighbours(matrix: InteractionMatrix, items: np.ndarray, k: int,
                    num_threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ItemKNN cosine neighbours of ``items`` over every item: ``(rows, columns, values)``.

    The columns are permuted so ``items`` form one contiguous range of the
    similarity kernel, then mapped back.
    """
    n_items = matrix.n_items
    order = np.concatenate((np.setdiff1d(np.arange(n_items), items), items))
    permuted = matrix.weights[:, order].tocsr()
    part = kernels.item_similarity(permuted, k, metric="cosine", num_threads=num_threads,
                                   items=(n_items - len(items), n_items)).tocsr()
    return np.repeat(items, np.diff(part.indptr)), order[part.indices], part.data


def recommend_dense(
    matrix: InteractionMatrix,
    kept: np.ndarray,
    B: np.ndarray,
    n: int,
    *,
    num_threads: int = 0,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``n`` of ``x_u B`` over the kept items for every user, seen excluded.

    Only positive scores are recommended. Returns ``(recommended, scores,
    reasons)`` of shape (n_users, n): int32 item columns (-1 padding),
    float32 scores, int32 reason columns (-1 unknown).

    float32 weights are ranked by the compiled
    :func:`~django_recs.kernels.history_top_n` (each user's row of scores
    in a buffer per thread, never a block of dense scores) in one call,
    then the reasons ``REASON_USERS`` users at a time; float64 weights by
    :func:`recommend_dense_numpy`.
    """
    if B.dtype != np.float32:
        return recommend_dense_numpy(matrix, kept, B, n, num_threads=num_threads,
                                     progress=progress)
    n_users, m = matrix.n_users, len(kept)
    n = max(0, min(int(n), m))
    recommended = np.full((n_users, n), -1, dtype=np.int32)
    scores = np.zeros((n_users, n), dtype=np.float32)
    reasons = np.full((n_users, n), -1, dtype=np.int32)
    if n == 0 or matrix.weights.nnz == 0 or m == 0:
        return recommended, scores, reasons
    history = matrix.weights[:, kept].astype(np.float32).tocsr()
    seen = matrix.seen[:, kept].tocsr()
    active = np.flatnonzero(np.diff(history.indptr) > 0)

    def affinity(items, targets):
        return B[items, targets]

    history, seen = history[active], seen[active]
    top, values = kernels.history_top_n(history, B, n, exclude=seen, num_threads=num_threads)
    recommended[active] = np.where(top >= 0, kept[np.maximum(top, 0)], -1)
    scores[active] = values
    if progress is not None:
        progress(RANKING_SHARE)
    for start in range(0, len(active), REASON_USERS):
        stop = min(len(active), start + REASON_USERS)
        why = strongest_history_item(history[start:stop], top[start:stop], affinity)
        reasons[active[start:stop]] = np.where(why >= 0, kept[np.maximum(why, 0)], -1)
        if progress is not None:
            progress(RANKING_SHARE + (1 - RANKING_SHARE) * stop / len(active))
    return recommended, scores, reasons


def recommend_dense_numpy(
    matrix: InteractionMatrix,
    kept: np.ndarray,
    B: np.ndarray,
    n: int,
    *,
    num_threads: int = 0,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``n`` of ``x_u B`` over the kept items for every user, seen excluded.

    Only positive scores are recommended. Returns ``(recommended, scores,
    reasons)`` of shape (n_users, n): int32 item columns (-1 padding),
    float32 scores, int32 reason columns (-1 unknown).

    The numpy path (float64 weights, and the reference of the compiled
    one): dense blocks of about ``BLOCK_ENTRIES`` scores from scipy's sparse
    times dense product, each block's top n by :func:`dense_top_n`.
    """
    n_users, m = matrix.n_users, len(kept)
    n = max(0, min(int(n), m))
    recommended = np.full((n_users, n), -1, dtype=np.int32)
    scores = np.zeros((n_users, n), dtype=np.float32)
    reasons = np.full((n_users, n), -1, dtype=np.int32)
    if n == 0 or matrix.weights.nnz == 0 or m == 0:
        return recommended, scores, reasons
    history = matrix.weights[:, kept].astype(B.dtype).tocsr()
    seen = matrix.seen[:, kept].tocsr()
    # Only users with a kept item in their history have scores to rank.
    active = np.flatnonzero(np.diff(history.indptr) > 0)
    block = max(1, BLOCK_ENTRIES // m)

    def affinity(items, targets):
        return B[items, targets]

    def recommend_block(start: int) -> int:
        users = active[start:start + block]
        rows = history[users]
        dense = np.asarray(rows @ B, dtype=np.float32)
        mask = seen[users]
        if mask.nnz:
            user = np.repeat(np.arange(len(users)), np.diff(mask.indptr))
            dense[user, mask.indices] = -np.inf
        top, values = dense_top_n(dense, n)
        del dense
        valid = top >= 0
        local = top
        recommended[users] = np.where(valid, kept[np.maximum(top, 0)], -1)
        scores[users] = values
        why = strongest_history_item(rows, local, affinity)
        reasons[users] = np.where(why >= 0, kept[np.maximum(why, 0)], -1)
        return len(users)

    starts = range(0, len(active), block)
    done = n_users - len(active)
    with ThreadPoolExecutor(max_workers=max(1, resolve_num_threads(num_threads))) as pool:
        for count in pool.map(recommend_block, starts):
            done += count
            if progress is not None:
                progress(done / n_users)
    return recommended, scores, reasons


def dense_top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` largest positive entries of each row of a dense array, best first,
    ties by lower column.

    ``np.partition`` finds each row's n-th largest value (no index array of
    the whole block, unlike ``argpartition``), the positive entries at or
    above it are ranked with :func:`~.ranking.sparse_top_n`. Returns int32
    columns (-1 padding) and float32 values (0 padding), shape (rows, n).
    """
    m = scores.shape[1]
    keep = scores > 0
    if n < m:
        threshold = np.partition(scores, m - n, axis=1)[:, m - n]
        keep &= scores >= threshold[:, None]
    rows, cols = np.nonzero(keep)
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=scores.shape[0]))))
    candidates = sp.csr_matrix((scores[rows, cols], cols.astype(np.int32), indptr),
                               shape=scores.shape)
    return sparse_top_n(candidates, n)
