"""Row norms of a sparse matrix: the smallest compiled kernel."""

from __future__ import annotations

import numpy as np

from ._native import native_module
from ._reference import norms as reference
from ._threads import resolve_num_threads
from ._validation import as_csr

__all__ = ["row_norms"]


def row_norms(X, *, num_threads: int = 0) -> np.ndarray:
    """Euclidean norm of each row of a sparse matrix.

    Parameters
    ----------
    X : scipy.sparse matrix, shape (n_rows, n_cols), float32 or float64
    num_threads : int, default 0 (all available cores)

    Returns
    -------
    ndarray, shape (n_rows,), X's float dtype.

    Raises
    ------
    ValueError
        X is not a 2-D sparse matrix, or holds NaN or infinite values.
    """
    X = as_csr(X, allow_negative=True)
    threads = resolve_num_threads(num_threads)
    native = native_module("_build")
    if native is None:
        return reference.row_norms(X)
    out = np.empty(X.shape[0], dtype=X.dtype)
    native.csr_row_norms(X.indptr, X.data, out, threads)
    return out
