"""Reference item-based CF top-n: scipy's ``history @ neighbours`` per block of
users, excluded entries dropped, an argsort per block, and the reasons from a
lookup of every (history item, recommendation) pair. Vectorised per block:
the fallback must stay usable on a real catalogue."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Upper bound on the product entries (history x neighbours) of one block of users.
BLOCK_ENTRIES = 1_000_000


def neighbour_top_n(
    history: sp.csr_matrix,
    neighbours: sp.csr_matrix,
    n: int,
    exclude: sp.csr_matrix | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n best stored non-zero entries of each row of ``history @ neighbours``
    (float32) that ``exclude`` does not hold, best first, ties by lower column,
    with the history item of the largest contribution as reason (first in the
    row on ties, -1 when none is positive). Padding: -1, score 0, reason -1."""
    m = history.shape[0]
    indices = np.full((m, n), -1, dtype=np.int32)
    scores = np.zeros((m, n), dtype=np.float32)
    reasons = np.full((m, n), -1, dtype=np.int32)
    if n == 0:
        return indices, scores, reasons
    neighbours = neighbours.copy()
    neighbours.sort_indices()  # makes each (i, j) lookup a binary search
    for rows in _blocks(history, neighbours):
        block = history[rows]
        product = (block @ neighbours).tocsr()  # float32; scipy drops sums of exactly 0
        if exclude is not None:
            product = product - product.multiply(exclude[rows].astype(bool))
            product.eliminate_zeros()
        product.sort_indices()  # ties: lower column first
        top, top_scores = _top_n(product, n)
        indices[rows], scores[rows] = top, top_scores
        reasons[rows] = _strongest_history_item(block, top, neighbours)
    return indices, scores, reasons


def _blocks(history: sp.csr_matrix, neighbours: sp.csr_matrix):
    """Slices of consecutive users whose product entries stay near BLOCK_ENTRIES."""
    per_item = np.diff(neighbours.indptr)
    expanded = np.concatenate(([0], np.cumsum(per_item[history.indices], dtype=np.int64)))
    cumulative = expanded[history.indptr[1:]] + np.arange(1, history.shape[0] + 1)
    start = 0
    while start < history.shape[0]:
        base = cumulative[start - 1] if start else 0
        stop = max(int(np.searchsorted(cumulative, base + BLOCK_ENTRIES, side="right")), start + 1)
        yield slice(start, stop)
        start = stop


def _top_n(product: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n largest stored entries per row: descending value, then storage order."""
    n_rows = product.shape[0]
    indices = np.full((n_rows, n), -1, dtype=np.int32)
    values = np.zeros((n_rows, n), dtype=np.float32)
    lengths = np.diff(product.indptr)
    row_of = np.repeat(np.arange(n_rows), lengths)
    # One int64 key: the row in the high bits, then the float32 bits made
    # order-preserving and inverted (descending); a stable sort keeps ties in order.
    bits = np.ascontiguousarray(product.data, dtype=np.float32).view(np.uint32).astype(np.int64)
    ascending = np.where(bits >> 31, bits ^ 0xFFFFFFFF, bits | 0x80000000)
    order = np.argsort((row_of.astype(np.int64) << 32) | (0xFFFFFFFF - ascending), kind="stable")
    position = np.arange(product.nnz) - np.repeat(product.indptr[:-1], lengths)
    keep = position < n
    indices[row_of[keep], position[keep]] = product.indices[order[keep]]
    values[row_of[keep], position[keep]] = product.data[order[keep]]
    return indices, values


def _strongest_history_item(
    history: sp.csr_matrix, recommended: np.ndarray, neighbours: sp.csr_matrix
) -> np.ndarray:
    """Per recommendation j of user u, the first history item i with the largest
    ``history[u, i] * neighbours[i, j]`` (in float64), -1 unless it is > 0."""
    reasons = np.full(recommended.shape, -1, dtype=np.int32)
    history_lengths = np.diff(history.indptr)
    slot_user, slot_rank = np.nonzero((recommended >= 0) & (history_lengths[:, None] > 0))
    if slot_user.size == 0:
        return reasons
    # One triple (user, history position, recommendation) per pair to look up.
    repeats = history_lengths[slot_user]
    group_starts = np.concatenate(([0], np.cumsum(repeats)[:-1]))
    total = int(repeats.sum())
    position = history.indptr[np.repeat(slot_user, repeats)] + (
        np.arange(total) - np.repeat(group_starts, repeats)
    )
    items = history.indices[position]
    targets = np.repeat(recommended[slot_user, slot_rank], repeats)
    similarity = np.asarray(neighbours[items, targets], dtype=np.float64).reshape(-1)
    contribution = history.data[position].astype(np.float64) * similarity
    best = np.maximum.reduceat(contribution, group_starts)
    reaching = np.where(contribution == np.repeat(best, repeats), np.arange(total), total)
    first = np.minimum.reduceat(reaching, group_starts)
    found = best > 0
    reasons[slot_user[found], slot_rank[found]] = items[first[found]]
    return reasons
