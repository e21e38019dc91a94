"""Reference top-n: full scores per block of users, excluded items removed, sorted."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

USERS_PER_BLOCK = 256


def top_n(
    U: np.ndarray,
    V: np.ndarray,
    n: int,
    exclude: sp.csr_matrix | None,
    exclude_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The n best items per row of U, best first, ties by lower item index.

    ``exclude_rows[k]`` is the row of ``exclude`` whose items user k must not
    get (-1: none). Rows with fewer than n eligible items are padded with
    index -1 and score -inf.
    """
    m, n_items = U.shape[0], V.shape[0]
    items = np.full((m, n), -1, dtype=np.int32)
    scores = np.full((m, n), -np.inf, dtype=np.float32)
    for first in range(0, m, USERS_PER_BLOCK):
        block = U[first : first + USERS_PER_BLOCK] @ V.T
        for offset, row_scores in enumerate(block):
            user = first + offset
            eligible = np.ones(n_items, dtype=bool)
            if exclude is not None and exclude_rows[user] >= 0:
                row = exclude_rows[user]
                eligible[exclude.indices[exclude.indptr[row] : exclude.indptr[row + 1]]] = False
            candidates = np.flatnonzero(eligible)
            # lexsort: last key is primary -> descending score, then ascending index.
            order = np.lexsort((candidates, -row_scores[candidates]))[:n]
            items[user, : order.size] = candidates[order]
            scores[user, : order.size] = row_scores[candidates[order]]
    return items, scores


def history_top_n(
    history: sp.csr_matrix,
    W: np.ndarray,
    n: int,
    exclude: sp.csr_matrix | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The n largest positive entries of each row of ``history @ W``, best first,
    ties by lower column; ``exclude``'s entries are never selected. Padding:
    column -1, score 0."""
    m = history.shape[0]
    items = np.full((m, n), -1, dtype=np.int32)
    scores = np.zeros((m, n), dtype=np.float32)
    for first in range(0, m, USERS_PER_BLOCK):
        block = np.asarray(history[first : first + USERS_PER_BLOCK] @ W, dtype=np.float32)
        if exclude is not None:
            block[exclude[first : first + USERS_PER_BLOCK].toarray() != 0] = -np.inf
        for offset, row_scores in enumerate(block):
            candidates = np.flatnonzero(row_scores > 0)
            order = candidates[np.lexsort((candidates, -row_scores[candidates]))][:n]
            items[first + offset, : order.size] = order
            scores[first + offset, : order.size] = row_scores[order]
    return items, scores
