"""Item-based CF recommendations from item neighbours: the n best items of
``history @ neighbours`` per user, seen items excluded, each with its reason.

The compiled kernel (``csrc/_neighbours.pyx``) scores one user at a time in
per-thread arrays of one entry per item, touching only the neighbours of the
user's history: the users x items score matrix is never built.
"""

from __future__ import annotations

import numpy as np

from ._native import native_module
from ._reference import neighbours as reference
from ._threads import resolve_num_threads
from ._validation import as_csr, exclusion_pattern, pattern_arrays

__all__ = ["neighbour_top_n"]


def _count(value, name: str) -> int:
    """``value`` as an int >= 0, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def neighbour_top_n(
    history,
    neighbours,
    n: int = 10,
    *,
    exclude=None,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The n best items of each row of ``history @ neighbours``, and their reasons.

    The recommendation step of ItemKNN (and of every algorithm that stores
    item neighbours): ``score(u, j) = sum over i of history[u, i] *
    neighbours[i, j]``, computed in float32 in the order of u's history (the
    same bits as scipy's ``history @ neighbours``). Only items with a stored,
    non-zero score are candidates (negative scores included), and never the
    items of ``exclude``.

    Parameters
    ----------
    history : scipy.sparse matrix, shape (m, n_items), weights >= 0
    neighbours : scipy.sparse matrix, shape (n_items, width), finite
        Row i holds the neighbours of item i (computed in float32).
    n : int >= 0, default 10
    exclude : scipy.sparse matrix, shape (m, width), optional
        Row u's non-zeros are items row u must never get (e.g. seen).
    num_threads : int >= 0, default 0 (all available cores)

    Returns
    -------
    indices : ndarray, shape (m, n), int32
        Best first, ties by lower column; padded with -1.
    scores : ndarray, shape (m, n), float32
        The matching scores; 0 where indices is -1.
    reasons : ndarray, shape (m, n), int32
        For each recommended j, the history item i with the largest
        ``history[u, i] * neighbours[i, j]`` (ties: the first in the row's
        order, which is the lower column); -1 for padding and where no
        contribution is positive.

    Raises
    ------
    ValueError
        history or neighbours not sparse or not finite, history with
        negative weights, neighbours without one row per history column;
        n not an integer >= 0; exclude of the wrong shape.
    """
    H = as_csr(history, "history")
    S = as_csr(neighbours, "neighbours", allow_negative=True)
    if S.shape[0] != H.shape[1]:
        raise ValueError(
            f"neighbours must have one row per history column ({H.shape[1]}), "
            f"got {S.shape[0]}"
        )
    n = _count(n, "n")
    threads = resolve_num_threads(num_threads)
    m, width = H.shape[0], S.shape[1]
    pattern = None if exclude is None else exclusion_pattern(
        exclude, (m, width), axes="history rows x neighbours columns")
    H = H.astype(np.float32, copy=False)
    S = S.astype(np.float32, copy=False)
    native = native_module("_neighbours")
    if native is None:
        return reference.neighbour_top_n(H, S, n, pattern)
    indices = np.empty((m, n), dtype=np.int32)
    scores = np.empty((m, n), dtype=np.float32)
    reasons = np.empty((m, n), dtype=np.int32)
    if width == 0:  # nothing to recommend; otherwise the kernel writes every entry
        indices.fill(-1)
        scores.fill(0)
        reasons.fill(-1)
    exclude_indptr, exclude_indices = pattern_arrays(pattern, m)
    native.neighbour_top_n(
        H.indptr.astype(np.int64, copy=False), H.indices.astype(np.int32, copy=False), H.data,
        S.indptr.astype(np.int64, copy=False), S.indices.astype(np.int32, copy=False), S.data,
        width, n, exclude_indptr, exclude_indices, indices, scores, reasons, threads,
    )
    return indices, scores, reasons
