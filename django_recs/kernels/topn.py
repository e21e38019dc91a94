"""The n best items per user from factor matrices (``user_factors @ item_factors.T``)
or from a sparse history times dense item weights (``history @ weights``).

The compiled kernel (``csrc/_topn.pyx``) never holds the users x items
score matrix: it scores a block of users against a tile of items at a time
with one sgemm, drops excluded items and keeps, per user, the candidates
above its current n-th best score (most scores fail that one comparison).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._native import native_module
from ._reference import topn as reference
from ._threads import limit_blas_threads, resolve_num_threads
from ._validation import (
    as_csr,
    as_factor_matrix,
    check_positive_int,
    exclusion_pattern,
    pattern_arrays,
)

__all__ = ["history_top_n", "top_n"]

#: Users scored together and items per tile: a 512 x 256 float32 tile is
#: 512 KiB, so it is selected from while still in L2 cache, and each sgemm
#: call is big enough that packing its operands costs little (measured at
#: f=64 on a 1 MiB-L2 machine: 512 x 256 beat 256 x 1024 by ~8% of the
#: time, 64 x 1024 was ~15% slower).
_BLOCK_USERS = 512
_TILE_ITEMS = 256
#: Bytes of candidate (score, item) pairs per thread at most: each user of a
#: block holds 2n + 16 of them, so a large n means fewer users per block.
_CANDIDATE_BYTES = 1 << 20
#: From this many users on, items are scored by decreasing norm so users can
#: stop early (see _items_by_norm); below it the sort is not worth its cost.
_REORDER_MIN_USERS = 64


def _block_users(n: int) -> int:
    """Users per block so that their candidate buffers stay within _CANDIDATE_BYTES."""
    return max(1, min(_BLOCK_USERS, _CANDIDATE_BYTES // (8 * (2 * n + 16))))


def _user_rows(users, n_users: int) -> np.ndarray:
    """``users`` as an int64 index array into the user_factors rows."""
    rows = np.asarray(users)
    if rows.ndim != 1:
        raise ValueError(f"users must be a 1-D array of user indexes, got {rows.ndim}-D")
    if rows.size == 0:
        return rows.astype(np.int64)
    if rows.dtype == bool or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"users must hold integer indexes, got dtype {rows.dtype}")
    rows = rows.astype(np.int64)
    if rows.min() < 0 or rows.max() >= n_users:
        raise ValueError(
            f"users must be indexes in [0, {n_users}) (rows of user_factors), "
            f"got values in [{rows.min()}, {rows.max()}]"
        )
    return rows


def top_n(
    user_factors,
    item_factors,
    n: int = 10,
    *,
    users=None,
    exclude=None,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The n highest-scoring items for each user, score = x_u . y_i.

    Parameters
    ----------
    user_factors : array, shape (n_users, f)
    item_factors : array, shape (n_items, f)
    n : int >= 1, default 10
    users : int array, shape (m,), optional
        Rank only these rows of ``user_factors`` (in this order); default all.
    exclude : scipy.sparse matrix, shape (n_users, n_items), optional
        Row u's non-zeros are items user u must never get (e.g. already
        bought). Indexed by user, also when ``users`` selects a subset.
    num_threads : int >= 0, default 0 (all available cores)

    Returns
    -------
    indices : ndarray, shape (m, n), int32
        Best first; ties by lower item index. A user with fewer than n
        eligible items gets the rest padded with -1.
    scores : ndarray, shape (m, n), float32
        The matching scores; -inf where indices is -1.

    Raises
    ------
    ValueError
        Factors not 2-D, not finite, or with different numbers of factors;
        n < 1; users out of range; exclude of the wrong shape.
    """
    U = as_factor_matrix(user_factors, "user_factors")
    V = as_factor_matrix(item_factors, "item_factors")
    if U.shape[1] != V.shape[1]:
        raise ValueError(
            f"user_factors has {U.shape[1]} factors but item_factors has {V.shape[1]}; "
            "they must match"
        )
    n = check_positive_int(n, "n")
    threads = resolve_num_threads(num_threads)
    n_users, n_items = U.shape[0], V.shape[0]
    if users is None:
        rows = np.arange(n_users, dtype=np.int64)
        query = U
    else:
        rows = _user_rows(users, n_users)
        query = np.ascontiguousarray(U[rows])
    if exclude is None:
        pattern = None
        exclude_rows = np.full(rows.size, -1, dtype=np.int64)
    else:
        pattern = exclusion_pattern(exclude, (n_users, n_items),
                                    axes="user_factors rows x item_factors rows")
        exclude_rows = rows

    native = native_module("_topn")
    if native is None:
        return reference.top_n(query, V, n, pattern, exclude_rows)
    if rows.size >= _REORDER_MIN_USERS:
        order, tile_bounds = _items_by_norm(V, _TILE_ITEMS)
    else:  # a few users: sorting the catalogue would cost more than it saves
        order = np.arange(n_items)
        tile_bounds = np.full(-(-n_items // _TILE_ITEMS), np.inf)
    if pattern is None:
        exclude_indptr = np.zeros(1, dtype=np.int64)
        exclude_indices = np.zeros(0, dtype=np.int32)
    elif rows.size >= _REORDER_MIN_USERS:
        exclude_indptr, exclude_indices = _positions_in_order(pattern, order)
    else:
        exclude_indptr = pattern.indptr.astype(np.int64, copy=False)
        exclude_indices = pattern.indices.astype(np.int32, copy=False)
    indices = np.empty((rows.size, n), dtype=np.int32)
    scores = np.empty((rows.size, n), dtype=np.float32)
    with limit_blas_threads(1):
        native.top_n(
            query, np.ascontiguousarray(V[order]), order.astype(np.int32), n,
            _row_norms(query), tile_bounds,
            exclude_indptr, exclude_indices, exclude_rows, indices, scores,
            _block_users(n), _TILE_ITEMS, threads,
        )
    return indices, scores


def _row_norms(factors: np.ndarray, rows_at_once: int = 8192) -> np.ndarray:
    """The rows' Euclidean norms in float64, a slice at a time (no float64 copy of it all)."""
    norms = np.empty(factors.shape[0], dtype=np.float64)
    for start in range(0, factors.shape[0], rows_at_once):
        block = factors[start:start + rows_at_once].astype(np.float64)
        norms[start:start + rows_at_once] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return norms


def _items_by_norm(V: np.ndarray, tile_items: int) -> tuple[np.ndarray, np.ndarray]:
    """The items by decreasing norm, and per tile of that order an upper bound of
    ``|x . y| / |x|`` for its items y as the kernel computes the dot product.

    x . y <= |x| |y| (Cauchy-Schwarz); a float32 dot product of f terms is
    within f * 2**-24 / (1 - f * 2**-24) of it relative to |x| |y| (any
    summation order), which the margin covers twice over. Once a user's n-th
    best score beats |x| times a tile's bound, no item from that tile on can
    enter its list and the kernel stops scoring that user.
    """
    norms = _row_norms(V)
    order = np.argsort(-norms, kind="stable")
    margin = 1.0 + 2.0 * (V.shape[1] + 2) * 2.0**-24
    return order, norms[order[::tile_items]] * margin


def _positions_in_order(pattern: sp.csr_matrix, order: np.ndarray):
    """The exclusion pattern with items renumbered by their position in ``order``
    (indices sorted again per row): (int64 indptr, int32 indices)."""
    position = np.empty(order.size, dtype=np.int32)
    position[order] = np.arange(order.size, dtype=np.int32)
    renumbered = sp.csr_matrix(
        (np.ones(pattern.nnz, dtype=np.int8), position[pattern.indices], pattern.indptr),
        shape=pattern.shape,
    )
    renumbered.sort_indices()
    return (renumbered.indptr.astype(np.int64, copy=False),
            renumbered.indices.astype(np.int32, copy=False))


#: Rows of the weights checked for NaN / infinity at a time (no whole-size mask).
_CHECK_ROWS = 1024


def _dense_weights(weights, n_rows: int) -> np.ndarray:
    """``weights`` as a C-contiguous float32 (n_rows x width) array of finite numbers."""
    array = np.asarray(weights)
    if array.ndim != 2:
        raise ValueError(f"weights must be a 2-D array, got {array.ndim}-D")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"weights must hold real numbers, got dtype {array.dtype}")
    if array.shape[0] != n_rows:
        raise ValueError(
            f"weights must have one row per history column ({n_rows}), got {array.shape[0]}"
        )
    array = np.ascontiguousarray(array, dtype=np.float32)
    for start in range(0, n_rows, _CHECK_ROWS):
        if not np.isfinite(array[start:start + _CHECK_ROWS]).all():
            raise ValueError("weights contains NaN or infinite values")
    return array


def history_top_n(
    history,
    weights,
    n: int = 10,
    *,
    exclude=None,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The n largest positive entries of each row of ``history @ weights``.

    The item-item scoring of EASE: row u of ``history`` holds user u's
    weights over the model's items, ``weights[i, j]`` what item i says about
    item j. The compiled kernel accumulates each row of scores in a buffer
    per thread (one ``saxpy`` per history entry, the order of scipy's sparse
    times dense product, in float32), drops the excluded items and keeps a
    bounded heap of the n best: the users x items product is never stored.

    Parameters
    ----------
    history : scipy.sparse matrix, shape (m, n_items), weights >= 0
    weights : array, shape (n_items, width), finite (computed in float32)
    n : int >= 1, default 10
    exclude : scipy.sparse matrix, shape (m, width), optional
        Row u's non-zeros are columns row u must never get.
    num_threads : int >= 0, default 0 (all available cores)

    Returns
    -------
    indices : ndarray, shape (m, n), int32
        Best first, ties by lower column; only positive scores are
        selected, the rest of a row is padded with -1.
    scores : ndarray, shape (m, n), float32
        The matching scores; 0 where indices is -1.

    Raises
    ------
    ValueError
        history not sparse or with NaN, infinite or negative weights;
        weights not 2-D, not finite or with another number of rows than
        history has columns; n < 1; exclude of the wrong shape.
    """
    H = as_csr(history, "history")
    W = _dense_weights(weights, H.shape[1])
    n = check_positive_int(n, "n")
    threads = resolve_num_threads(num_threads)
    m, width = H.shape[0], W.shape[1]
    pattern = None if exclude is None else exclusion_pattern(
        exclude, (m, width), axes="history rows x weights columns")
    native = native_module("_topn")
    if native is None:
        return reference.history_top_n(H.astype(np.float32), W, n, pattern)
    indices = np.full((m, n), -1, dtype=np.int32)
    scores = np.zeros((m, n), dtype=np.float32)
    exclude_indptr, exclude_indices = pattern_arrays(pattern, m)
    with limit_blas_threads(1):
        native.history_top_n(
            H.indptr.astype(np.int64, copy=False), H.indices.astype(np.int32, copy=False),
            H.data.astype(np.float32, copy=False), W, n, exclude_indptr, exclude_indices,
            indices, scores, threads,
        )
    return indices, scores
