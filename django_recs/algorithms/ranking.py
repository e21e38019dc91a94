"""Vectorised ranking helpers of the algorithms: top-n per sparse row,
dropping seen items, and the history item behind each recommendation.

All work on whole arrays (no Python loop per user or per entry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp

#: Upper bound on the entries a chunk of users may expand to at once.
CHUNK_ENTRIES = 2_000_000


def user_chunks(row_costs: np.ndarray, budget: int = CHUNK_ENTRIES) -> Iterator[slice]:
    """Consecutive row slices whose summed cost stays near ``budget``.

    A single row costlier than the budget gets a slice of its own.
    """
    n = len(row_costs)
    if n == 0:
        return
    cumulative = np.cumsum(np.maximum(np.asarray(row_costs, dtype=np.int64), 1))
    start = 0
    while start < n:
        base = cumulative[start - 1] if start else 0
        stop = int(np.searchsorted(cumulative, base + budget, side="right"))
        stop = max(stop, start + 1)
        yield slice(start, stop)
        start = stop


def drop_entries(scores: sp.csr_matrix, mask: sp.csr_matrix) -> sp.csr_matrix:
    """``scores`` without the entries where ``mask`` is non-zero (same shape)."""
    if mask.nnz == 0 or scores.nnz == 0:
        return scores
    hits = scores.multiply(mask.astype(bool)).tocsr()
    result = (scores - hits).tocsr()
    result.eliminate_zeros()
    return result


def sparse_top_n(scores: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` largest entries of each row of a CSR matrix.

    Ties keep storage order (the lower column first in a canonical matrix).
    Only stored entries are candidates.

    Returns
    -------
    indices : ndarray, shape (n_rows, n), int32, -1 padding
    values : ndarray, shape (n_rows, n), float32, 0 padding
    """
    n_rows = scores.shape[0]
    indices = np.full((n_rows, n), -1, dtype=np.int32)
    values = np.zeros((n_rows, n), dtype=np.float32)
    if scores.nnz == 0 or n == 0:
        return indices, values
    scores = scores.tocsr()  # no duplicate entries assumed: products and sums have none
    lengths = np.diff(scores.indptr)
    row_of = np.repeat(np.arange(n_rows), lengths)
    order = np.argsort(row_then_descending_key(row_of, scores.data), kind="stable")
    position = np.arange(scores.nnz) - np.repeat(scores.indptr[:-1], lengths)
    keep = position < n
    kept = order[keep]
    indices[row_of[keep], position[keep]] = scores.indices[kept]
    values[row_of[keep], position[keep]] = scores.data[kept]
    return indices, values


def row_then_descending_key(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One int64 per entry that sorts by row, then by descending value.

    The row goes in the high 32 bits; the low 32 bits are the float32 value's
    bits made order-preserving (sign bit flipped for positives, all bits for
    negatives) and inverted. One integer argsort is many times faster than
    ``np.lexsort`` on two keys.
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.int64)
    ascending = np.where(bits >> 31, bits ^ 0xFFFFFFFF, bits | 0x80000000)
    return (np.asarray(rows, dtype=np.int64) << 32) | (0xFFFFFFFF - ascending)


def strongest_history_item(
    history: sp.csr_matrix,
    recommended: np.ndarray,
    affinity: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """For each recommendation, the history item that contributed most.

    The contribution of history item i to recommended item j of user u is
    ``history[u, i] * affinity(i, j)``.

    Parameters
    ----------
    history : csr_matrix, shape (m, n_items)
        The users' weights.
    recommended : ndarray, shape (m, n), int, -1 padding
    affinity : callable(i, j) -> ndarray of float, both int arrays of one length

    Returns
    -------
    ndarray, shape (m, n), int32: the item column, or -1 where the
    recommendation is padding or no history item contributes positively.
    """
    reasons = np.full(recommended.shape, -1, dtype=np.int32)
    history_lengths = np.diff(history.indptr)
    slot_user, slot_rank = np.nonzero((recommended >= 0) & (history_lengths[:, None] > 0))
    if slot_user.size == 0:
        return reasons
    repeats = history_lengths[slot_user]
    group_starts = np.concatenate(([0], np.cumsum(repeats)[:-1]))
    total = int(repeats.sum())
    triple_user = np.repeat(slot_user, repeats)
    offset = np.arange(total) - np.repeat(group_starts, repeats)
    position = history.indptr[triple_user] + offset
    items = history.indices[position]
    targets = np.repeat(recommended[slot_user, slot_rank], repeats)
    contribution = history.data[position].astype(np.float64) * np.asarray(
        affinity(items, targets), dtype=np.float64
    ).reshape(-1)
    best = np.maximum.reduceat(contribution, group_starts)
    # The first position in each group reaching the group's maximum.
    is_best = contribution == np.repeat(best, repeats)
    candidate = np.where(is_best, np.arange(total), total)
    first = np.minimum.reduceat(candidate, group_starts)
    found = best > 0
    reasons[slot_user[found], slot_rank[found]] = items[first[found]]
    return reasons


def csr_values_at(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[t], cols[t]]`` for every t, 0 where nothing is stored (1-D float array)."""
    if rows.size == 0:
        return np.zeros(0, dtype=matrix.dtype)
    return np.asarray(matrix[rows, cols]).reshape(-1)
