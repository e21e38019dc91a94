"""Reference row norms of a CSR matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def row_norms(X: sp.csr_matrix) -> np.ndarray:
    """Euclidean norm of each row, in X's dtype."""
    squared = np.asarray(X.multiply(X).sum(axis=1)).ravel()
    return np.sqrt(squared).astype(X.dtype, copy=False)
