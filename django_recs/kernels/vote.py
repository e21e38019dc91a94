r"""User-based CF: the n best items of each user from the votes of its nearest users.

With :math:`N(u)` the neighbours of user u (from :func:`user_similarity`)
and :math:`s_{uv}` their similarities, the score of item j is

.. math:: \mathrm{score}(u, j) = \sum_{v \in N(u)} s_{uv}\, x_{vj}

The compiled kernel (``csrc/_vote.pyx``) accumulates each user's votes in a
dense per-thread buffer of n_items doubles, in parallel over users, and
never holds a users x items score matrix. See docs/userknn.md.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._native import native_module
from ._reference import vote as reference
from ._threads import resolve_num_threads
from ._validation import as_csr, check_positive_int, exclusion_pattern, pattern_arrays
from .similarity import check_item_range

__all__ = ["neighbour_vote"]

#: Doubles per thread for the reasons' sums (recommendations x history
#: items of one user): 2 MiB. A longer history gets a buffer of its length
#: and its recommendations are explained in slices.
_REASON_CAPACITY = 1 << 18

_INT32_MAX = np.iinfo(np.int32).max


def neighbour_vote(
    X,
    neighbours,
    n: int = 10,
    *,
    seen=None,
    users: tuple[int, int] | None = None,
    reasons: bool = True,
    num_threads: int = 0,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The n best items of each user, voted by its neighbours; seen items excluded.

    :math:`\mathrm{score}(u, j) = \sum_{v \in N(u)} s_{uv} x_{vj}`, summed in
    double precision in the order of the neighbour row and rounded to
    float32 once. The reason of a recommendation j is the item i != j of u's
    history (its row of X) with the largest :math:`\sum s_{uv}` over the
    neighbours v that have both i and j: "customers who bought i also
    bought j" (ties to the lower item index).

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n_users, n_items)
        Interaction weights >= 0 (float32 and float64 used as they are;
        duplicates summed, explicit zeros are no interaction).
    neighbours : scipy.sparse matrix, shape (m, n_users)
        Row r: the neighbours of user ``start + r`` and their similarities
        (>= 0; cast to float32), in the order of the row (best first, as
        :func:`user_similarity` returns them).
    n : int >= 1, default 10
        Items per user.
    seen : scipy.sparse matrix, shape (n_users, n_items), optional
        Row u's non-zeros are never recommended to user u.
    users : (start, stop), optional
        The users of the neighbour rows (``stop - start == m``); default
        ``(0, n_users)``.
    reasons : bool, default True
        Compute the reasons (else they are all -1).
    num_threads : int >= 0, default 0 (all available cores)
        The result does not depend on it.
    out : (recommended, scores, reasons), optional
        Arrays to write the result into (and return): C-contiguous, shape
        (m, n), dtypes int32, float32, int32 — e.g. row slices of a caller's
        arrays for all users, so a block's lists are never copied.

    Returns
    -------
    recommended : ndarray, shape (m, n), int32
        Item columns, best first; ties by lower item index; -1 padding
        where fewer than n items have a positive score.
    scores : ndarray, shape (m, n), float32
        0 where padded.
    reasons : ndarray, shape (m, n), int32
        The history item behind each recommendation, -1 when none (padding,
        no history, or only the item itself).

    Raises
    ------
    ValueError
        X or neighbours not a 2-D sparse matrix, or holding NaN, infinite or
        negative values; neighbours with other than n_users columns or
        other than stop - start rows, or with user indexes out of range;
        seen of another shape than X; n < 1; ``users`` not a (start, stop)
        pair within [0, n_users]; a negative num_threads; ``out`` arrays of
        another shape or dtype, or not C-contiguous.
    """
    n = check_positive_int(n, "n")
    threads = resolve_num_threads(num_threads)
    X = as_csr(X)
    neighbours = _neighbour_rows(neighbours)
    n_users, n_items = X.shape
    start, stop = check_item_range(users, n_users, name="users")
    if neighbours.shape != (stop - start, n_users):
        raise ValueError(
            f"neighbours must have shape ({stop - start}, {n_users}) (one row per user of "
            f"the range, one column per user of X), got {neighbours.shape}"
        )
    if neighbours.nnz and (neighbours.indices.min() < 0 or neighbours.indices.max() >= n_users):
        raise ValueError(f"neighbours holds user indexes outside [0, {n_users})")
    if max(n_users, n_items) > _INT32_MAX:
        raise ValueError(f"X has {n_users} x {n_items} users x items; at most 2**31 - 1 each")
    pattern = None if seen is None else exclusion_pattern(
        seen, X.shape, axes="rows and columns of X", name="seen")
    if (X.data == 0).any():
        X = X.copy()  # never modify the caller's matrix
        X.eliminate_zeros()

    m = stop - start
    recommended, scores, reason_items = _output(out, (m, n))
    native = native_module("_vote")
    if native is None:
        result = reference.neighbour_vote(X, neighbours, n, pattern, start, with_reasons=reasons)
        for target, values in zip((recommended, scores, reason_items), result):
            target[...] = values
        return recommended, scores, reason_items
    if m == 0 or X.nnz == 0 or neighbours.nnz == 0:
        return recommended, scores, reason_items
    history = np.diff(X.indptr[start : stop + 1])
    max_history = int(history.max(initial=0))
    capacity = max(max_history, min(_REASON_CAPACITY, n * max_history))
    seen_indptr, seen_indices = pattern_arrays(pattern, n_users)
    native.neighbour_vote(
        X.indptr.astype(np.int64, copy=False), X.indices.astype(np.int32, copy=False), X.data,
        neighbours.indptr.astype(np.int64, copy=False),
        neighbours.indices.astype(np.int32, copy=False), neighbours.data,
        seen_indptr, seen_indices, start, n_items,
        recommended, scores, reason_items, bool(reasons), capacity, max_history, threads,
    )
    return recommended, scores, reason_items


def _output(out, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The result arrays, -1 / 0 / -1 filled: ``out``'s once checked, or new ones."""
    dtypes = (np.int32, np.float32, np.int32)
    if out is None:
        arrays = tuple(np.empty(shape, dtype=dtype) for dtype in dtypes)
    else:
        try:
            arrays = tuple(out)
        except TypeError:
            arrays = ()
        if len(arrays) != 3:
            raise ValueError("out must be three arrays: (recommended, scores, reasons)")
        for name, array, dtype in zip(("recommended", "scores", "reasons"), arrays, dtypes):
            if (not isinstance(array, np.ndarray) or array.shape != shape
                    or array.dtype != dtype or not array.flags.c_contiguous
                    or not array.flags.writeable):
                raise ValueError(
                    f"out's {name} must be a writeable C-contiguous {np.dtype(dtype).name} "
                    f"array of shape {shape}"
                )
    arrays[0].fill(-1)
    arrays[1].fill(0)
    arrays[2].fill(-1)
    return arrays


def _neighbour_rows(neighbours) -> sp.csr_matrix:
    """``neighbours`` as a float32 CSR matrix, its rows' order kept (not canonicalised).

    The order is the order of summation; a duplicate entry votes twice,
    which is what summing it would give.
    """
    if not sp.issparse(neighbours):
        raise ValueError(
            f"neighbours must be a scipy.sparse matrix, got {type(neighbours).__name__}"
        )
    if neighbours.ndim != 2:
        raise ValueError(f"neighbours must be 2-D, got {neighbours.ndim}-D")
    rows = sp.csr_matrix(neighbours)  # no copy when it is CSR already
    if not np.issubdtype(rows.dtype, np.number) or np.iscomplexobj(rows.data):
        raise ValueError(f"neighbours must hold real numbers, got dtype {rows.dtype}")
    if not np.isfinite(rows.data).all():
        raise ValueError("neighbours contains NaN or infinite values")
    if (rows.data < 0).any():
        raise ValueError("neighbours contains negative similarities; they must be >= 0")
    return rows.astype(np.float32, copy=False)


