"""Why a factor model recommends an item: the history item most like it.

The reason of recommendation j for user u is the history item i maximising
``w(u, i) * cos(i, j)`` over u's history (cosine of the item factors). The
compiled kernel (``csrc/_reasons.pyx``) gathers a user's recommended and
history vectors into per-thread buffers, multiplies them with one sgemm
per 256 history items, and runs users on OpenMP threads.
"""

from __future__ import annotations

import numpy as np

from ._native import native_module
from ._reference import reasons as reference
from ._threads import limit_blas_threads, resolve_num_threads
from ._validation import as_csr, as_factor_matrix

__all__ = ["factor_reasons"]


def _recommended_items(recommended, n_users: int, n_items: int) -> np.ndarray:
    """``recommended`` as a C-contiguous int32 (n_users x n) array of items or -1."""
    array = np.asarray(recommended)
    if array.ndim != 2:
        raise ValueError(f"recommended must be a 2-D array (users x n), got {array.ndim}-D")
    if array.size and (array.dtype == bool or not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"recommended must hold integer item indexes, got dtype {array.dtype}")
    if array.shape[0] != n_users:
        raise ValueError(
            f"recommended must have one row per history row ({n_users}), got {array.shape[0]}"
        )
    if array.size and (array.min() < -1 or array.max() >= n_items):
        raise ValueError(
            f"recommended must hold item indexes in [0, {n_items}) or -1 for padding, "
            f"got values in [{array.min()}, {array.max()}]"
        )
    return np.ascontiguousarray(array, dtype=np.int32)


def factor_reasons(history, recommended, unit_items, *, num_threads: int = 0) -> np.ndarray:
    """The history item behind each recommendation.

    Parameters
    ----------
    history : scipy.sparse matrix, shape (n_users, n_items), weights >= 0
    recommended : int array, shape (n_users, n): item indexes, -1 for padding
    unit_items : array, shape (n_items, f): item factors scaled to unit length
        (any finite rows work; the score is their dot product)
    num_threads : int >= 0, default 0 (all available cores)

    Returns
    -------
    ndarray, shape (n_users, n), int32: for recommendation j of user u the
    history item i maximising ``w(u, i) * (unit_items[i] . unit_items[j])``
    (computed in float32); the first such item in u's history (column order)
    on ties; -1 where j is padding or no history item contributes a positive
    value (including users without history).

    Raises
    ------
    ValueError
        history not sparse or with NaN, infinite or negative weights;
        recommended not 2-D integers, with another number of rows, or with
        indexes outside [-1, n_items); unit_items not 2-D, not finite, or
        with another number of rows than history has columns.
    """
    H = as_csr(history, "history")
    unit = as_factor_matrix(unit_items, "unit_items")
    if unit.shape[0] != H.shape[1]:
        raise ValueError(
            f"unit_items must have one row per history column ({H.shape[1]}), "
            f"got {unit.shape[0]}"
        )
    targets = _recommended_items(recommended, H.shape[0], H.shape[1])
    threads = resolve_num_threads(num_threads)
    H = H.astype(np.float32, copy=False)
    native = native_module("_reasons")
    if native is None:
        return reference.factor_reasons(H, targets, unit)
    out = np.empty(targets.shape, dtype=np.int32)
    with limit_blas_threads(1):
        native.factor_reasons(
            H.indptr.astype(np.int64, copy=False), H.indices.astype(np.int32, copy=False),
            H.data, targets, unit, out, threads,
        )
    return out
