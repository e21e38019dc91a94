"""Reference implicit-feedback ALS: the per-row solves and the loss in numpy.

Same arithmetic as ``csrc/_als.pyx`` (Hu, Koren & Volinsky 2008; conjugate
gradient of Takacs, Pilaszy & Tikk 2011), written one row at a time for
clarity. Input is trusted: C is canonical CSR with confidences > 0, factors
are float32 C-contiguous arrays updated in place.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: A squared residual norm below this ends a row's conjugate-gradient steps.
CONVERGED = 1e-20


def regularized_gram(Y: np.ndarray, regularization: float) -> np.ndarray:
    """Y'Y + regularization * I, float32, shape (f, f)."""
    gram = Y.T.astype(np.float64) @ Y.astype(np.float64)
    gram[np.diag_indices_from(gram)] += regularization
    return gram.astype(np.float32)


def solve_row_exact(A0: np.ndarray, Y_row: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """x = (A0 + Y_u'(C_u - I)Y_u)^-1 Y_u' C_u p_u for one row, float64.

    Y_row holds the rows of Y at the row's non-zeros, ``confidence`` their values.
    """
    Y_row = Y_row.astype(np.float64)
    A = A0.astype(np.float64) + Y_row.T @ ((confidence - 1.0)[:, None] * Y_row)
    b = Y_row.T @ confidence
    return np.linalg.solve(A, b)


def solve_row_cg(
    A0: np.ndarray, Y_row: np.ndarray, confidence: np.ndarray, x: np.ndarray, cg_steps: int
) -> np.ndarray:
    """cg_steps conjugate-gradient steps on the row's system from x, float32."""
    x = x.astype(np.float32).copy()
    confidence = confidence.astype(np.float32)
    r = -A0 @ x + Y_row.T @ (confidence - (confidence - 1) * (Y_row @ x))
    p = r.copy()
    rsold = r @ r
    if rsold < CONVERGED:
        return x
    for _ in range(cg_steps):
        Ap = A0 @ p + Y_row.T @ ((confidence - 1) * (Y_row @ p))
        alpha = rsold / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rsnew = r @ r
        if rsnew < CONVERGED:
            break
        p = r + (rsnew / rsold) * p
        rsold = rsnew
    return x


def least_squares(
    C: sp.csr_matrix,
    X: np.ndarray,
    Y: np.ndarray,
    A0: np.ndarray,
    *,
    solver: str,
    cg_steps: int,
    row_regularization: np.ndarray | None = None,
) -> int:
    """One half-sweep: every row of X solved against Y, in place.

    ``row_regularization[u]`` (optional) is added to A0's diagonal for row u.
    Returns -1, or the first row whose exact system was singular (left at zero).
    """
    failed = -1
    base = A0
    for u in range(C.shape[0]):
        begin, end = C.indptr[u], C.indptr[u + 1]
        if begin == end:
            X[u] = 0.0
            continue
        if row_regularization is not None:
            A0 = base + np.float32(row_regularization[u]) * np.eye(len(base), dtype=np.float32)
        Y_row = Y[C.indices[begin:end]]
        confidence = C.data[begin:end].astype(np.float64)
        if solver == "cholesky":
            try:
                X[u] = solve_row_exact(A0, Y_row, confidence)
            except np.linalg.LinAlgError:
                X[u] = 0.0
                failed = u if failed < 0 else failed
        else:
            X[u] = solve_row_cg(A0, Y_row, confidence, X[u], cg_steps)
    return failed


def nonzero_loss(C: sp.csr_matrix, X: np.ndarray, Y: np.ndarray) -> float:
    """sum over C's non-zeros of c (1 - s)^2 - s^2, s = x_u . y_i, in float64."""
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    s = np.einsum(
        "ij,ij->i", X[rows].astype(np.float64), Y[C.indices].astype(np.float64)
    )
    c = C.data.astype(np.float64)
    return float(np.sum(c * (1.0 - s) ** 2 - s**2))
