r"""Item-item similarity with the top k neighbours of every item.

The compiled kernel (``csrc/_similarity.pyx``) never builds the dense
n_items x n_items matrix nor the full sparse product X.T @ X: each item's
row of the product is accumulated, scored and cut to its k best entries on
its own, in parallel. See docs/similarity.md.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ._native import native_module
from ._reference import similarity as reference
from ._threads import resolve_num_threads
from ._validation import as_csr, check_non_negative_float, check_positive_int

__all__ = ["METRICS", "item_similarity", "user_similarity"]

#: The similarity metrics item_similarity and user_similarity understand.
METRICS = ("cosine", "jaccard", "conditional", "asymmetric", "rp3beta")

#: The metrics that ignore the weights (only who bought what counts).
BINARISED = ("jaccard", "conditional")

_INT32_MAX = np.iinfo(np.int32).max

#: X is transposed in groups of about this fraction of its non-zeros, so the
#: transposed copy costs 1/8 of the input rather than a second input.
_TRANSPOSE_GROUPS = 8
_MIN_GROUP_NNZ = 1 << 12

#: Rows get k fixed slots, compacted at the end, while n_items * k stays
#: within this many multiples of nnz(X) (plus a constant); beyond it (k near
#: n_items on a large catalogue) a counting pass sizes the output exactly.
_FIXED_SLOTS_PER_NONZERO = 4
_FIXED_SLOTS_MIN = 1 << 22


def item_similarity(
    X,
    k: int = 50,
    *,
    metric: str = "cosine",
    shrink: float = 0.0,
    alpha: float = 0.5,
    num_threads: int = 0,
    items: tuple[int, int] | None = None,
    min_overlap: int = 1,
    beta: float = 0.0,
) -> sp.csr_matrix:
    r"""The k most similar items of every item (or of a range of items), from users' interactions.

    With :math:`x_{ui}` the weight of item i for user u, :math:`U_i` the
    users with :math:`x_{ui} > 0` and :math:`s` = ``shrink``:

    - ``"cosine"``:
      :math:`\mathrm{sim}(i, j) = \frac{\sum_u x_{ui} x_{uj}}{\lVert x_i\rVert \lVert x_j\rVert + s}`
    - ``"jaccard"`` (weights binarised):
      :math:`\mathrm{sim}(i, j) = \frac{|U_i \cap U_j|}{|U_i \cup U_j| + s}`
    - ``"conditional"`` (weights binarised; Deshpande and Karypis 2004,
      item-based top-N, eq. 2): :math:`\mathrm{sim}(i, j) =
      \frac{|U_i \cap U_j|}{|U_i| \cdot |U_j|^{\alpha} + s}`, i.e. P(j | i)
      with popular items j damped by :math:`|U_j|^{\alpha}` (``alpha`` = 0 is
      the plain conditional probability). Asymmetric: row i holds the items
      j most likely to be bought by buyers of i.
    - ``"asymmetric"`` (the asymmetric cosine of Aiolli 2013, with weights):
      :math:`\mathrm{sim}(i, j) = \frac{\sum_u x_{ui} x_{uj}}{\lVert x_i\rVert^{2\alpha}
      \lVert x_j\rVert^{2(1 - \alpha)} + s}`, ``alpha`` in [0, 1]: 0.5 is the
      cosine, 1 the share of i's (squared) weight that j shares. On 0/1
      weights it is Aiolli's :math:`|U_i \cap U_j| / (|U_i|^{\alpha} |U_j|^{1-\alpha})`.
    - ``"rp3beta"`` (RP3beta of Paudel et al. 2017, with weights): the
      probability of the random walk item i -> user u -> item j, each step's
      probability raised to ``alpha``, with popular items j penalised by
      their degree to the power ``beta``. With :math:`d_i = \sum_u x_{ui}`
      and :math:`d_u = \sum_j x_{uj}`:
      :math:`\mathrm{sim}(i, j) = \frac{\sum_u (x_{ui}/d_i)^{\alpha}
      (x_{uj}/d_u)^{\alpha} \, d_i^{\alpha}}{d_i^{\alpha} d_j^{\beta} + s}`, which is
      :math:`\sum_u (x_{ui}/d_i)^{\alpha} (x_{uj}/d_u)^{\alpha} / d_j^{\beta}` when
      ``shrink`` is 0. Computed exactly by the same kernel: the weights
      become :math:`x_{uj}^{\alpha} d_u^{-\alpha/2}` (their products are the
      walk's numerators) and the denominator is :math:`d_i^{\alpha} d_j^{\beta}`.
      Asymmetric; on 0/1 weights it is the published RP3beta.

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n_users, n_items)
        Interaction weights >= 0, any sparse format and numeric dtype
        (float32 and float64 are used as they are); duplicates are summed,
        explicit zeros are no interaction.
    k : int >= 1, default 50
        Neighbours kept per item; k >= n_items keeps every neighbour.
    metric : {"cosine", "jaccard", "conditional", "asymmetric"}, default "cosine"
    shrink : float >= 0, default 0
        Added to every denominator: pulls the scores of pairs with little
        support (few common users) towards 0.
    alpha : float >= 0, default 0.5
        Popularity damping of ``"conditional"``; the row's share of the
        denominator of ``"asymmetric"`` (then at most 1); the exponent of
        the walk's steps in ``"rp3beta"``; ignored by the others.
    num_threads : int >= 0, default 0
        Threads to use; 0 means every core available to the process. The
        result does not depend on it.
    items : (start, stop), optional
        Only the rows of the items ``start <= i < stop`` (0 <= start <=
        stop <= n_items); every item is still a candidate neighbour. Each
        row is computed on its own, so the result equals rows start:stop of
        the full result — what lets several workers split one computation.
    min_overlap : int >= 1, default 1
        Pairs of items with fewer common users than this are no neighbours
        (whatever their score): a floor on the support of a similarity.
    beta : float >= 0, default 0
        The popularity penalty of ``"rp3beta"`` (ignored by the others).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_items, n_items), float32
        (with ``items``: shape (stop - start, n_items), row r for item start + r)
        Row i holds at most k items j != i with a positive score, ordered by
        descending score, ties broken by the lower item index (so the row's
        ``indices`` are *not* sorted ascending). Items that share no user
        with any other item have empty rows. Indices are int32 when they
        fit, int64 otherwise.

    Raises
    ------
    ValueError
        X is not a 2-D sparse matrix or holds NaN, infinite or negative
        weights; k < 1; an unknown metric; a negative or non-finite shrink
        alpha or beta, or an alpha above 1 with ``"asymmetric"``; a min_overlap
        that is not an integer >= 1; a negative num_threads; ``items`` not a
        (start, stop) pair of integers within [0, n_items] with start <= stop.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    k = check_positive_int(k, "k")
    shrink = check_non_negative_float(shrink, "shrink")
    alpha = check_non_negative_float(alpha, "alpha")
    beta = check_non_negative_float(beta, "beta")
    if metric == "asymmetric" and alpha > 1:
        raise ValueError(f"alpha of the asymmetric cosine must be in [0, 1], got {alpha}")
    min_overlap = check_positive_int(min_overlap, "min_overlap")
    threads = resolve_num_threads(num_threads)
    X = as_csr(X)
    if (X.data == 0).any():
        X = X.copy()  # never modify the caller's matrix
        X.eliminate_zeros()

    n_items = X.shape[1]
    start, stop = check_item_range(items, n_items)
    k = min(k, max(n_items - 1, 0))
    if k == 0 or X.nnz == 0 or start == stop:
        return sp.csr_matrix((stop - start, n_items), dtype=np.float32)

    native = native_module("_similarity")
    if native is None:
        return reference.item_similarity(X, k, metric=metric, shrink=shrink, alpha=alpha,
                                         items=(start, stop), min_overlap=min_overlap,
                                         beta=beta)
    if metric == "rp3beta":
        X, row_factor, column_factor = rp3beta_scaling(X, alpha, beta)
        return _native_similarity(native, X, k, "rp3beta", shrink, alpha, threads, start, stop,
                                  min_overlap, factors=(row_factor, column_factor))
    return _native_similarity(native, X, k, metric, shrink, alpha, threads, start, stop,
                              min_overlap)


def rp3beta_scaling(X: sp.csr_matrix, alpha: float, beta: float):
    """``(Z, row_factor, column_factor)`` that turn the kernel's weighted sum into RP3beta.

    ``Z[u, j] = x_uj ** alpha * d_u ** (-alpha / 2)`` (X's dtype), so that
    ``sum_u Z[u, i] Z[u, j] = sum_u x_ui^alpha (x_uj / d_u)^alpha``;
    ``row_factor = d_i ** alpha`` and ``column_factor = d_j ** beta``
    (float64), with d the row and column sums of X (canonical, no zeros).
    """
    user_degree = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    item_degree = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
    scale = np.repeat(np.power(user_degree, -alpha / 2.0, where=user_degree > 0,
                               out=np.zeros_like(user_degree)), np.diff(X.indptr))
    data = np.power(X.data.astype(np.float64), alpha) * scale
    Z = sp.csr_matrix((data.astype(X.dtype), X.indices, X.indptr), shape=X.shape)
    return Z, np.power(item_degree, alpha), np.power(item_degree, beta)


def user_similarity(
    X,
    k: int = 50,
    *,
    metric: str = "cosine",
    shrink: float = 0.0,
    alpha: float = 0.5,
    min_overlap: int = 1,
    num_threads: int = 0,
    users: tuple[int, int] | None = None,
) -> sp.csr_matrix:
    r"""The k most similar users of every user (or of a range of users), from their items.

    The same kernel as :func:`item_similarity`, run over users: X is
    transposed once (items x users), so items become the "users" whose
    co-occurrences are counted and ``users`` is its item range. The dense
    users x users matrix is never formed. Metrics and parameters as in
    :func:`item_similarity`, with users and items swapped: ``"cosine"`` of
    two users' weight rows, ``"jaccard"`` of their item sets,
    ``"asymmetric"`` cosine :math:`\sum_i x_{ui} x_{vi} / (\lVert x_u\rVert^{2\alpha}
    \lVert x_v\rVert^{2(1-\alpha)} + s)` (row u is the user whose neighbours they are).

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n_users, n_items), weights >= 0
    k : int >= 1, default 50
        Neighbours kept per user.
    metric, shrink, alpha, min_overlap, num_threads
        As in :func:`item_similarity` (``min_overlap``: common items).
    users : (start, stop), optional
        Only the rows of the users ``start <= u < stop`` (every user stays a
        candidate neighbour): exactly those rows of the full result.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_users, n_users) or (stop - start, n_users), float32
        Row u holds at most k users v != u with a positive score, best
        first, ties to the lower user index.

    Raises
    ------
    ValueError
        As :func:`item_similarity`, with ``users`` in place of ``items``.
    """
    if not sp.issparse(X):
        raise ValueError(f"X must be a scipy.sparse matrix, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim}-D")
    check_item_range(users, X.shape[0], name="users")
    # X.T as CSR is X's CSC layout: one copy of the input.
    return item_similarity(
        sp.csr_matrix(X).T.tocsr(), k, metric=metric, shrink=shrink, alpha=alpha,
        min_overlap=min_overlap, num_threads=num_threads, items=users,
    )


def check_item_range(items, n_items: int, *, name: str = "items") -> tuple[int, int]:
    """``items`` as a validated (start, stop) pair; None means every item.

    ``name`` is what error messages call the range and its bound
    (``"users"``: a range of users, bounded by n_users).
    """
    if items is None:
        return 0, n_items
    try:
        start, stop = items
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (start, stop) pair, got {items!r}") from None
    if not all(isinstance(value, int | np.integer) and not isinstance(value, bool)
               for value in (start, stop)):
        raise ValueError(f"{name} must hold two integers, got {items!r}")
    start, stop = int(start), int(stop)
    if not 0 <= start <= stop <= n_items:
        raise ValueError(
            f"{name} ({start}, {stop}) must satisfy 0 <= start <= stop <= n_{name} ({n_items})"
        )
    return start, stop


def _native_similarity(
    native, X: sp.csr_matrix, k: int, metric: str, shrink: float, alpha: float, threads: int,
    start: int, stop: int, min_overlap: int, factors=None,
) -> sp.csr_matrix:
    n_items = X.shape[1]
    n_rows = stop - start
    indptr, indices = X.indptr, X.indices
    if indptr.dtype != indices.dtype:
        index_dtype = np.promote_types(indptr.dtype, indices.dtype)
        indptr, indices = indptr.astype(index_dtype), indices.astype(index_dtype)

    counts, squared_norms = native.column_statistics(indices, X.data, n_items)
    if factors is not None:
        row_factor, column_factor = factors
    elif metric == "cosine":
        row_factor = column_factor = np.sqrt(squared_norms)
    elif metric == "asymmetric":
        row_factor = np.power(squared_norms, alpha)
        column_factor = np.power(squared_norms, 1.0 - alpha)
    else:
        row_factor = counts.astype(np.float64)
        column_factor = row_factor if metric == "jaccard" else np.power(row_factor, alpha)
    del squared_norms

    group_nnz = max(math.ceil(X.nnz / _TRANSPOSE_GROUPS), _MIN_GROUP_NNZ)
    row_length = np.zeros(n_items, dtype=np.int64)

    def run(row_start, out_indices, out_data, count_only):
        native.top_k_similarity(
            indptr,
            indices,
            X.data,
            counts,
            row_factor,
            column_factor,
            metric == "jaccard",
            metric in BINARISED,
            shrink,
            k,
            count_only,
            row_start,
            out_indices,
            out_data,
            row_length,
            group_nnz,
            threads,
            start,
            stop,
            min_overlap,
        )

    # row_start and row_length are indexed by item; only [start, stop) is used.
    slots = n_rows * k
    if slots <= _FIXED_SLOTS_PER_NONZERO * X.nnz + _FIXED_SLOTS_MIN:
        # k slots per row, filled in parallel, then rows moved to the front
        # and the arrays shrunk in place: one pass over the data.
        out_dtype = np.int32 if max(slots, n_items) <= _INT32_MAX else np.int64
        row_start = np.zeros(n_items, dtype=np.int64)
        row_start[start:stop] = np.arange(n_rows, dtype=np.int64) * k
        out_indices = np.empty(slots, dtype=out_dtype)
        out_data = np.empty(slots, dtype=np.float32)
        run(row_start, out_indices, out_data, False)
        out_indptr = _indptr(row_length[start:stop])
        native.compact_rows(row_start[start:stop], row_length[start:stop], out_indptr,
                            out_indices, out_data)
        del row_start
        nnz = int(out_indptr[-1])
        out_indices.resize(nnz, refcheck=False)
        out_data.resize(nnz, refcheck=False)
    else:
        # Too many slots to reserve: count each row's length first.
        empty_indices = np.empty(0, dtype=np.int32)
        empty_data = np.empty(0, dtype=np.float32)
        run(np.zeros(n_items, dtype=np.int64), empty_indices, empty_data, True)
        out_indptr = _indptr(row_length[start:stop])
        nnz = int(out_indptr[-1])
        out_dtype = np.int32 if max(nnz, n_items) <= _INT32_MAX else np.int64
        out_indices = np.empty(nnz, dtype=out_dtype)
        out_data = np.empty(nnz, dtype=np.float32)
        row_start = np.zeros(n_items, dtype=np.int64)
        row_start[start:stop] = out_indptr[:-1]
        run(row_start, out_indices, out_data, False)

    if out_indices.dtype == np.int32:
        out_indptr = out_indptr.astype(np.int32)
    return sp.csr_matrix((out_data, out_indices, out_indptr), shape=(n_rows, n_items))


def _indptr(row_length: np.ndarray) -> np.ndarray:
    indptr = np.zeros(row_length.size + 1, dtype=np.int64)
    np.cumsum(row_length, out=indptr[1:])
    return indptr
