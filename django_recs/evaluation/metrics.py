"""Accuracy of top-k recommendation lists against held-out items.

Everything here is vectorised over users: one (n_users x k) boolean "hit"
matrix is built with a single sorted search, and every metric is a few
array operations on it, so 100,000 users take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def ranking_metrics(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> dict[str, float]:
    r"""Precision, recall, nDCG, MAP, hit rate and MRR of the top ``k`` recommendations.

    Parameters
    ----------
    recommended : ndarray of int, shape (n_users, >= k)
        Item columns recommended to each user, best first; ``-1`` pads a
        shorter list. An item may appear at most once in a row's first k.
    relevant : sparse matrix, shape (n_users, n_items)
        Non-zero where an item is relevant (held out) for the user; the
        values are ignored (binary relevance).
    k : int
        Length of the list that is judged.

    Returns
    -------
    dict
        ``{"precision", "recall", "ndcg", "map", "hit_rate", "mrr"}`` as
        floats: means over the users with at least one relevant item (NaN
        when there is no such user). For a user with relevant set
        :math:`R`, hits :math:`h_i \in \{0, 1\}` at ranks
        :math:`i = 1..k` (padding is never a hit):

        - precision@k :math:`= \frac{1}{k}\sum_{i=1}^{k} h_i`
          (padding counts as a miss: the list was asked to have k items)
        - recall@k :math:`= \frac{1}{|R|}\sum_{i=1}^{k} h_i`
        - nDCG@k :math:`= \mathrm{DCG}/\mathrm{IDCG}` with
          :math:`\mathrm{DCG} = \sum_{i=1}^{k} h_i / \log_2(i + 1)` and
          :math:`\mathrm{IDCG} = \sum_{i=1}^{\min(k, |R|)} 1 / \log_2(i + 1)`
        - MAP@k: mean of
          :math:`\mathrm{AP@k} = \frac{1}{\min(k, |R|)}\sum_{i=1}^{k} h_i\,P@i`,
          :math:`P@i = \frac{1}{i}\sum_{j \le i} h_j`
        - hit_rate@k :math:`= 1` if any :math:`h_i = 1`, else 0
        - MRR@k :math:`= 1 / i^*` for the first hit's rank :math:`i^*`, 0 without a hit

    Raises
    ------
    ValueError
        If ``k`` is not a positive integer, ``recommended`` is not a 2-D
        integer array with at least k columns and one row per row of
        ``relevant``, holds an index outside ``-1 .. n_items - 1``, or
        repeats an item within a row's first k.
    """
    per_user = ranking_metrics_per_user(recommended, relevant, k)
    return {name: _mean(per_user[name]) for name in RANKING_METRICS}


def ranking_metrics_per_user(
    recommended: np.ndarray, relevant: sp.spmatrix, k: int
) -> dict[str, np.ndarray]:
    """The metrics of :func:`ranking_metrics` for each user with a relevant item.

    Returns
    -------
    dict
        The six metric names -> float64 arrays of shape (n_judged,), plus
        ``"users"``: the rows (int64) they belong to, ascending.
    """
    hits, n_relevant = hit_matrix(recommended, relevant, k)
    judged = n_relevant > 0
    hits, n_relevant = hits[judged], n_relevant[judged]
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    ideal = np.cumsum(discount)
    n_hits = hits.sum(axis=1, dtype=np.float64)
    any_hit = n_hits > 0
    cumulative_hits = np.cumsum(hits, axis=1, dtype=np.float64)
    precision_at_rank = cumulative_hits / np.arange(1, k + 1, dtype=np.float64)
    first_hit_rank = np.argmax(hits, axis=1) + 1
    capped = np.minimum(n_relevant, k)
    return {
        "users": np.flatnonzero(judged).astype(np.int64),
        "precision": n_hits / k,
        "recall": n_hits / n_relevant,
        "ndcg": (hits @ discount) / ideal[capped - 1],
        "map": (hits * precision_at_rank).sum(axis=1) / capped,
        "hit_rate": any_hit.astype(np.float64),
        "mrr": np.where(any_hit, 1.0 / first_hit_rank, 0.0),
    }


def metrics_at_each_k(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> dict[str, np.ndarray]:
    """Precision, recall and nDCG at every cut-off 1..k (for plots).

    Returns
    -------
    dict
        ``{"k": int array 1..k, "precision", "recall", "ndcg": float64 arrays
        of shape (k,)}``; entry ``j - 1`` equals ``ranking_metrics(..., j)``.
    """
    hits, n_relevant = hit_matrix(recommended, relevant, k)
    judged = n_relevant > 0
    hits, n_relevant = hits[judged].astype(np.float64), n_relevant[judged]
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(discount)
    cumulative_hits = np.cumsum(hits, axis=1)
    dcg = np.cumsum(hits * discount, axis=1)
    # IDCG at cut-off j is over min(j, |R|) items.
    ideal_at = ideal[np.minimum(n_relevant[:, None], ranks[None, :].astype(np.int64)) - 1]
    if not judged.any():
        nan = np.full(k, np.nan)
        return {"k": ranks.astype(np.int64), "precision": nan, "recall": nan, "ndcg": nan}
    return {
        "k": ranks.astype(np.int64),
        "precision": (cumulative_hits / ranks).mean(axis=0),
        "recall": (cumulative_hits / n_relevant[:, None]).mean(axis=0),
        "ndcg": (dcg / ideal_at).mean(axis=0),
    }


def hit_matrix(recommended: np.ndarray, relevant: sp.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Which of the first ``k`` recommendations are relevant, and how many items are.

    Returns
    -------
    hits : ndarray of bool, shape (n_users, k)
    n_relevant : ndarray of int64, shape (n_users,)

    Raises
    ------
    ValueError
        As :func:`ranking_metrics`.
    """
    relevant = _binary_csr(relevant, "relevant")
    top = _checked_recommendations(recommended, k, relevant.shape)
    n_users, n_items = relevant.shape
    n_relevant = np.diff(relevant.indptr).astype(np.int64)
    # One sorted key per relevant (user, item) pair; look every recommendation up at once.
    relevant_keys = np.repeat(np.arange(n_users, dtype=np.int64), n_relevant) * n_items
    relevant_keys += relevant.indices
    recommended_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + top
    if relevant_keys.size == 0:
        return np.zeros(top.shape, dtype=bool), n_relevant
    position = np.searchsorted(relevant_keys, recommended_keys)
    np.minimum(position, relevant_keys.size - 1, out=position)
    hits = (relevant_keys[position] == recommended_keys) & (top >= 0)
    return hits, n_relevant


def auc_score(
    scores: np.ndarray | Callable[[np.ndarray], np.ndarray],
    relevant: sp.spmatrix,
    *,
    exclude: sp.spmatrix | None = None,
    batch_size: int = 2048,
) -> float:
    r"""Mean per-user ROC AUC of the full ranking of the catalog.

    For a user with relevant items :math:`P` and the other candidate items
    :math:`N` (every item neither relevant nor excluded),
    :math:`\mathrm{AUC} = \frac{1}{|P||N|}\sum_{p \in P}\sum_{n \in N}
    [s_p > s_n] + \tfrac{1}{2}[s_p = s_n]`: the probability that a random
    relevant item is ranked above a random irrelevant one (0.5 = random
    order, 1 = every relevant item first). Averaged over the users with at
    least one relevant and one irrelevant candidate (NaN when none).

    Parameters
    ----------
    scores : ndarray of float, shape (n_users, n_items), or callable
        The score of every item for every user (higher = ranked first), or a
        function ``scores(rows) -> ndarray (len(rows), n_items)`` called on
        batches of user rows, so the whole dense matrix never has to exist.
    relevant : sparse matrix, shape (n_users, n_items)
        Non-zero where an item is relevant (held out).
    exclude : sparse matrix, shape (n_users, n_items), optional
        Non-zero where an item is no candidate for the user (e.g. the
        training items): neither positive nor negative.
    batch_size : int
        Users scored at once when ``scores`` is a callable.

    Raises
    ------
    ValueError
        On mismatched shapes or non-finite scores.
    """
    relevant = _binary_csr(relevant, "relevant")
    n_users, n_items = relevant.shape
    if exclude is not None:
        exclude = _binary_csr(exclude, "exclude")
        if exclude.shape != relevant.shape:
            raise ValueError(f"exclude: shape {exclude.shape} differs from relevant {relevant.shape}")
        relevant = _binary_csr(relevant - relevant.multiply(exclude), "relevant")
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if callable(scores):
        score_rows = scores
    else:
        dense = np.asarray(scores)
        if dense.shape != relevant.shape:
            raise ValueError(f"scores: shape {dense.shape} differs from relevant {relevant.shape}")

        def score_rows(rows: np.ndarray) -> np.ndarray:
            return dense[rows]

    totals, counted = 0.0, 0
    for start in range(0, users.size, max(int(batch_size), 1)):
        rows = users[start : start + batch_size]
        block = np.asarray(score_rows(rows), dtype=np.float64)
        if block.shape != (rows.size, n_items):
            raise ValueError(
                f"scores: expected a ({rows.size}, {n_items}) block, got {block.shape}"
            )
        if not np.all(np.isfinite(block)):
            raise ValueError("scores: must be finite")
        positive = relevant[rows].toarray() > 0
        excluded = (
            exclude[rows].toarray() > 0 if exclude is not None else np.zeros_like(positive)
        )
        # Excluded items go below everything; their (tied) ranks are then subtracted.
        block[excluded] = -np.inf
        ranks = rankdata(block, axis=1)
        n_excluded = excluded.sum(axis=1)
        n_positive = positive.sum(axis=1)
        n_negative = n_items - n_excluded - n_positive
        rank_sum = np.where(positive, ranks, 0.0).sum(axis=1) - n_positive * n_excluded
        usable = n_negative > 0
        auc = (rank_sum[usable] - n_positive[usable] * (n_positive[usable] + 1) / 2) / (
            n_positive[usable] * n_negative[usable]
        )
        totals += float(auc.sum())
        counted += int(usable.sum())
    return totals / counted if counted else float("nan")


# --- validation -------------------------------------------------------------


def _binary_csr(matrix, name: str) -> sp.csr_matrix:
    if not sp.issparse(matrix):
        raise ValueError(f"{name}: expected a scipy.sparse matrix, got {type(matrix).__name__}")
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sum_duplicates()
    matrix.data = (matrix.data != 0).astype(np.float32)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def _checked_recommendations(recommended, k, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    k = int(k)
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ValueError(f"recommended: expected a 2-D array, got {recommended.ndim}-D")
    if recommended.size and not np.issubdtype(recommended.dtype, np.integer):
        raise ValueError(f"recommended: expected integer item indexes, got {recommended.dtype}")
    if recommended.shape[0] != shape[0]:
        raise ValueError(
            f"recommended: {recommended.shape[0]} rows but relevant has {shape[0]} users"
        )
    if recommended.shape[1] < k:
        raise ValueError(f"recommended: {recommended.shape[1]} columns, fewer than k={k}")
    top = recommended[:, :k].astype(np.int64)
    if top.size and (top.min() < -1 or top.max() >= shape[1]):
        raise ValueError(f"recommended: item index outside -1 .. {shape[1] - 1}")
    ordered = np.sort(top, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        row = int(np.flatnonzero(((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any(axis=1))[0])
        raise ValueError(f"recommended: row {row} repeats an item within its first {k}")
    return top


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")
