"""Input checks shared by the kernel wrappers.

The wrappers validate and convert; the compiled kernels trust what they get.
Every problem is a ValueError whose message names it.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

FLOAT_DTYPES = (np.float32, np.float64)


def as_csr(X, name: str = "X", *, allow_negative: bool = False) -> sp.csr_matrix:
    """X as a canonical CSR matrix (sorted indices, duplicates summed).

    Keeps float32/float64, converts other numeric dtypes to float64. Raises
    ValueError when X is not a 2-D sparse matrix or holds NaN, infinite or
    (unless allowed) negative values.
    """
    if not sp.issparse(X):
        raise ValueError(f"{name} must be a scipy.sparse matrix, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {X.ndim}-D")
    X = sp.csr_matrix(X)  # copies only when X is not CSR already
    if X.dtype not in FLOAT_DTYPES:
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"{name} must hold real numbers, got dtype {X.dtype}")
        X = X.astype(np.float64)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()  # also sorts indices
    data = X.data
    if not np.isfinite(data).all():
        kind = "NaN" if np.isnan(data).any() else "infinite"
        raise ValueError(f"{name} contains {kind} values")
    if not allow_negative and (data < 0).any():
        raise ValueError(f"{name} contains negative values; weights must be >= 0")
    return X


def check_positive_int(value, name: str) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_non_negative_float(value, name: str) -> float:
    """``value`` as a finite float >= 0, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def as_factor_matrix(value, name: str) -> np.ndarray:
    """``value`` as a C-contiguous float32 (rows x factors) array, factors >= 1.

    Raises ValueError when it is not 2-D, not real, has no factor column, or
    holds NaN or infinite values (also after the cast to float32).
    """
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x factors), got {array.ndim}-D")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.shape[1] < 1:
        raise ValueError(f"{name} must have at least one factor column (factors >= 1)")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def exclusion_pattern(exclude, shape: tuple[int, int], *, axes: str,
                      name: str = "exclude") -> sp.csr_matrix:
    """A sparse matrix's non-zero pattern as canonical CSR of ``shape``.

    ``axes`` names its rows x columns and ``name`` the argument, in the
    errors.
    """
    if not sp.issparse(exclude):
        raise ValueError(f"{name} must be a scipy.sparse matrix, got {type(exclude).__name__}")
    if exclude.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({axes}), got {exclude.shape}")
    pattern = sp.csr_matrix(exclude)  # no copy when it is CSR already
    if not pattern.has_canonical_format or (pattern.data == 0).any():
        pattern = pattern.copy()
        pattern.eliminate_zeros()
        pattern.sum_duplicates()  # also sorts the indices
    return pattern


def pattern_arrays(pattern: sp.csr_matrix | None, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A pattern's ``(indptr int64, indices int32)`` as the kernels take them; empty rows for None."""
    if pattern is None:
        return np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    return (pattern.indptr.astype(np.int64, copy=False),
            pattern.indices.astype(np.int32, copy=False))
