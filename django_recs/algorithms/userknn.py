r"""User-based collaborative filtering: recommendations from the customers with the most similar taste.

The k nearest users of each user come from the similarity kernel run over
users (:func:`django_recs.kernels.user_similarity`: item ranges become user
ranges, no users x users matrix is formed); a user's list is the weighted
vote of those neighbours (:func:`django_recs.kernels.neighbour_vote`)::

    score(u, j) = sum over v in N(u) of  sim(u, v) * w(v, j)

with items the user has "seen" (EXCLUDE_SEEN) removed. The reason of a
recommendation j is the item of u's history most shared with the neighbours
who have j ("customers who bought X also bought this"). Both steps run per
block of users, on every thread, so only one block's neighbours are being
computed at a time. See docs/userknn.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..kernels.similarity import check_item_range
from ..matrix import InteractionMatrix
from .base import (
    Algorithm,
    FitResult,
    ProgressCallback,
    report,
    require_choice,
    require_int,
    require_number,
)

METRICS = ("cosine", "jaccard", "asymmetric")

#: Neighbour accumulations (see :func:`neighbour_costs`) per block of users:
#: about a second of one core, so progress is reported often and the
#: threads rejoin rarely.
BLOCK_COST = 1 << 27
#: ...and at most this many users per block: a block's neighbour rows
#: (8 k bytes a user) are held twice while they are gathered.
BLOCK_USERS = 1 << 13


class UserLists(NamedTuple):
    """The lists of a range of users and the neighbours they came from.

    recommended, scores, reasons : ndarray, shape (m, n)
        int32 item columns (-1 padding), float32 scores, int32 reason columns
        (-1 unknown), one row per user of the range.
    neighbours : csr_matrix, shape (m, n_users), float32
        Each user's neighbours, best first.
    """

    recommended: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray
    neighbours: sp.csr_matrix


class UserKNN(Algorithm):
    """k nearest neighbour users, and each user's list from their votes.

    Parameters
    ----------
    k : int >= 1, default 50
        Neighbours per user.
    metric : {"cosine", "jaccard", "asymmetric"}, default "cosine"
        Similarity of two users' histories: cosine of their weights,
        Jaccard of their item sets, or the asymmetric cosine of Aiolli
        (2013) (see ``alpha``).
    shrink : float >= 0, default 0.0
        Added to every similarity's denominator: pulls pairs with little in
        common towards 0.
    min_overlap : int >= 1, default 1
        Users sharing fewer items than this are never neighbours.
    alpha : float in [0, 1], default 0.5
        The asymmetric cosine's exponent:
        ``sum_i w(u,i) w(v,i) / (|w_u|^(2 alpha) |w_v|^(2 (1 - alpha)))``.
        0.5 is the cosine; towards 1 a neighbour's own history length
        counts less (heavy buyers become neighbours of many). Ignored by
        the other metrics.

    The fit stores per-user lists only (no similar items: "customers also
    bought" stays with ItemKNN); ``FitResult.user_neighbours`` keeps the
    neighbours for the evaluation's full scores.
    """

    name = "userknn"
    defaults = {"k": 50, "metric": "cosine", "shrink": 0.0, "min_overlap": 1, "alpha": 0.5}

    def check_params(self) -> None:
        require_int(self, "k")
        require_choice(self, "metric", METRICS)
        require_number(self, "shrink")
        require_int(self, "min_overlap")
        require_number(self, "alpha")
        if self.alpha > 1:
            raise ValueError(
                f"UserKNN: parameter alpha must be a number in [0, 1], got {self.alpha!r}"
            )

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        """Every user's list, its scores and reasons, and the user neighbours they came from.

        Returns a FitResult with ``recommended``, ``recommended_scores`` and
        ``reasons`` of shape (n_users, min(n_recommendations, n_items)),
        ``user_neighbours`` (n_users x n_users, float32, k per row) and
        the counts of items, users, user neighbour pairs and users without
        neighbours; ``similar`` is None.
        """
        lists = self.recommend_users(matrix, n_recommendations, num_threads=num_threads,
                                     progress=progress)
        report(progress, 1.0)
        return FitResult(
            recommended=lists.recommended,
            recommended_scores=lists.scores,
            reasons=lists.reasons,
            user_neighbours=lists.neighbours,
            counts={"items": int(matrix.n_items), "users": int(matrix.n_users),
                    **user_neighbour_counts(lists.neighbours)},
        )

    def neighbours(
        self,
        matrix: InteractionMatrix,
        *,
        users: tuple[int, int] | None = None,
        num_threads: int = 0,
    ) -> sp.csr_matrix:
        """The k neighbours of every user, or of the users ``start <= u < stop``.

        Returns a float32 CSR of shape (n_users, n_users), or (stop - start,
        n_users) with ``users``: exactly those rows of the full result.
        """
        return self._similarity(transposed(matrix.weights), users, num_threads)

    def recommend_users(
        self,
        matrix: InteractionMatrix,
        n: int,
        *,
        users: tuple[int, int] | None = None,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> UserLists:
        """The lists of every user, or of the users ``start <= u < stop`` (a shard).

        Neighbours and votes are computed block by block of users (each
        block on every thread); a range gives exactly those rows of the
        whole, so user ranges computed apart stack into it.

        Returns
        -------
        UserLists
            Arrays of shape (m, min(n, n_items)) and the (m, n_users)
            neighbour rows, m = stop - start.
        """
        start, stop = check_item_range(users, matrix.n_users, name="users")
        m, n = stop - start, max(0, min(int(n), matrix.n_items))
        recommended = np.full((m, n), -1, dtype=np.int32)
        scores = np.zeros((m, n), dtype=np.float32)
        reasons = np.full((m, n), -1, dtype=np.int32)
        weights = matrix.weights
        if m == 0 or n == 0 or weights.nnz == 0:
            return UserLists(recommended, scores, reasons,
                             sp.csr_matrix((m, matrix.n_users), dtype=np.float32))
        items_by_user = transposed(weights)  # once, for every block
        costs = neighbour_costs(weights)[start:stop]
        total = float(costs.sum()) or 1.0
        rows = NeighbourRows(m, min(int(self.k), matrix.n_users))
        done = 0.0
        for first, last in user_blocks(costs):
            block = (start + first, start + last)
            similar = self._similarity(items_by_user, block, num_threads)
            kernels.neighbour_vote(
                weights, similar, n, seen=matrix.seen, users=block, num_threads=num_threads,
                out=(recommended[first:last], scores[first:last], reasons[first:last]),
            )
            rows.append(similar)
            del similar
            done += float(costs[first:last].sum())
            report(progress, done / total)
        return UserLists(recommended, scores, reasons, rows.matrix(matrix.n_users))

    def _similarity(self, items_by_user: sp.csr_matrix, users, num_threads: int) -> sp.csr_matrix:
        # The item kernel on the items x users matrix: its "items" are users.
        n_users = items_by_user.shape[1]
        start, stop = check_item_range(users, n_users, name="users")
        if items_by_user.nnz == 0:
            return sp.csr_matrix((stop - start, n_users), dtype=np.float32)
        return kernels.item_similarity(
            items_by_user, self.k, metric=self.metric, shrink=float(self.shrink),
            alpha=float(self.alpha), min_overlap=int(self.min_overlap),
            num_threads=num_threads, items=(start, stop),
        ).tocsr()


def transposed(weights: sp.csr_matrix) -> sp.csr_matrix:
    """The items x users CSR matrix of a users x items one (its CSC layout)."""
    return weights.T.tocsr()


def neighbour_costs(weights: sp.csr_matrix) -> np.ndarray:
    """Neighbour work per user: the summed buyer counts of its items.

    Finding user u's neighbours adds one term per (item of u, other buyer of
    that item), so a buyer of best-sellers costs far more than a buyer of
    the tail. Returns float64, shape (n_users,).
    """
    buyers = np.bincount(weights.indices, minlength=weights.shape[1]).astype(np.float64)
    per_entry = np.concatenate(([0.0], np.cumsum(buyers[weights.indices])))
    return per_entry[weights.indptr[1:]] - per_entry[weights.indptr[:-1]]


def user_blocks(costs: np.ndarray, budget: float | None = None,
                max_users: int | None = None) -> Iterator[tuple[int, int]]:
    """Consecutive (first, last) user blocks of about ``budget`` cost and at most ``max_users``.

    The defaults are BLOCK_COST and BLOCK_USERS. A user costlier than the
    budget gets a block of its own.
    """
    budget = BLOCK_COST if budget is None else budget
    max_users = BLOCK_USERS if max_users is None else max_users
    cumulative = np.cumsum(np.asarray(costs, dtype=np.float64) + 1.0)  # every user costs a bit
    first = 0
    while first < len(cumulative):
        base = cumulative[first - 1] if first else 0.0
        last = int(np.searchsorted(cumulative, base + budget, side="right"))
        last = min(max(last, first + 1), first + max_users)
        yield first, last
        first = last


def user_neighbour_counts(neighbours: sp.csr_matrix) -> dict[str, int]:
    """The run counts of user neighbour rows: users without neighbours, pairs."""
    lengths = np.diff(neighbours.indptr)
    return {
        "users_without_neighbours": int((lengths == 0).sum()),
        "user_neighbour_pairs": int(neighbours.nnz),
    }


class NeighbourRows:
    """The neighbour rows of consecutive blocks, gathered in arrays sized once.

    ``k`` slots per user are reserved up front (each row has at most k
    entries) and shrunk in place at the end, so the blocks are never stacked
    into a second copy.
    """

    def __init__(self, n_rows: int, k: int):
        slots = n_rows * k
        index_dtype = np.int32 if slots <= np.iinfo(np.int32).max else np.int64
        self.indptr = np.zeros(n_rows + 1, dtype=index_dtype)
        self.indices = np.empty(slots, dtype=np.int32)
        self.data = np.empty(slots, dtype=np.float32)
        self.rows = 0

    def append(self, block: sp.csr_matrix) -> None:
        offset = int(self.indptr[self.rows])
        self.indices[offset:offset + block.nnz] = block.indices
        self.data[offset:offset + block.nnz] = block.data
        self.indptr[self.rows + 1:self.rows + 1 + block.shape[0]] = offset + block.indptr[1:]
        self.rows += block.shape[0]

    def matrix(self, n_columns: int) -> sp.csr_matrix:
        nnz = int(self.indptr[self.rows])
        self.indices.resize(nnz, refcheck=False)
        self.data.resize(nnz, refcheck=False)
        return sp.csr_matrix((self.data, self.indices, self.indptr[:self.rows + 1]),
                             shape=(self.rows, n_columns))
