"""Reference user-based voting: dense scores per block of users, then a sort.

Sums are taken in the order of each user's neighbours, as the compiled
kernel takes them (a product of two float32 values is exact in float64, so
both add the same numbers in the same order): the results are equal, ties
included. Slow (a Python loop per user for the reasons), but plain.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

USERS_PER_BLOCK = 256


def neighbour_vote(
    X: sp.csr_matrix,
    neighbours: sp.csr_matrix,
    n: int,
    seen: sp.csr_matrix | None,
    user_start: int,
    *,
    with_reasons: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n best items of users user_start + r (r < neighbours.shape[0]).

    Same contract as :func:`django_recs.kernels.neighbour_vote` (which
    validates): ``X`` canonical CSR (n_users, n_items), ``neighbours`` CSR
    (m, n_users) with similarities >= 0 in the order they are summed,
    ``seen`` a CSR pattern of X's shape or None.
    """
    m, n_items = neighbours.shape[0], X.shape[1]
    items = np.full((m, n), -1, dtype=np.int32)
    scores = np.zeros((m, n), dtype=np.float32)
    reasons = np.full((m, n), -1, dtype=np.int32)
    lengths = np.diff(neighbours.indptr)
    for first in range(0, m, USERS_PER_BLOCK):
        rows = np.arange(first, min(first + USERS_PER_BLOCK, m))
        votes = np.zeros((rows.size, n_items), dtype=np.float64)
        for position in range(int(lengths[rows].max(initial=0))):
            has = lengths[rows] > position
            entries = neighbours.indptr[rows[has]] + position
            similarity = neighbours.data[entries].astype(np.float64)
            their_items = X[neighbours.indices[entries]].toarray().astype(np.float64)
            votes[has] += similarity[:, None] * their_items
        if seen is not None:
            block_seen = seen[user_start + rows].toarray() != 0
            votes[block_seen] = 0.0
        votes = votes.astype(np.float32)
        for offset, row in enumerate(rows):
            candidates = np.flatnonzero(votes[offset] > 0)
            order = np.lexsort((candidates, -votes[offset, candidates]))[:n]
            chosen = candidates[order]
            items[row, : chosen.size] = chosen
            scores[row, : chosen.size] = votes[offset, chosen]
            if with_reasons and chosen.size:
                reasons[row, : chosen.size] = _reasons(X, neighbours, row, user_start + row, chosen)
    return items, scores, reasons


def _reasons(X: sp.csr_matrix, neighbours: sp.csr_matrix, row: int, user: int,
             recommended: np.ndarray) -> np.ndarray:
    """Per recommended item j, the history item i != j with the largest sum of the
    similarities of the neighbours having both (lowest i on a tie), else -1."""
    history = X.indices[X.indptr[user] : X.indptr[user + 1]]
    found = np.full(recommended.size, -1, dtype=np.int32)
    if history.size == 0:
        return found
    span = slice(neighbours.indptr[row], neighbours.indptr[row + 1])
    sums = np.zeros((recommended.size, history.size), dtype=np.float64)
    for v, similarity in zip(neighbours.indices[span], neighbours.data[span]):
        has = X[v].toarray().ravel() != 0
        sums += float(similarity) * np.outer(has[recommended], has[history])
    sums[recommended[:, None] == history[None, :]] = 0.0  # an item is not its own reason
    best = sums.argmax(axis=1)  # the first maximum: the lowest item
    positive = sums[np.arange(recommended.size), best] > 0
    found[positive] = history[best[positive]]
    return found
