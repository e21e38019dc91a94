r"""Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008).

The model: every user u has a factor vector :math:`x_u`, every item i a
vector :math:`y_i`; a confidence matrix C holds :math:`c_{ui} > 0` where u
interacted with i (preference :math:`p_{ui} = 1`), and every other pair has
confidence 1 and preference 0. The loss

.. math::

    L = \sum_{u, i} c_{ui} (p_{ui} - x_u^\top y_i)^2
        + \lambda (\lVert X\rVert_F^2 + \lVert Y\rVert_F^2)

is minimised by alternating exact (``"cholesky"``) or conjugate-gradient
(``"cg"``) solves of every user against fixed items and back. This is the
model of implicit's ``AlternatingLeastSquares`` given the same matrix
(implicit's ``alpha`` corresponds to passing ``alpha * C``). See docs/als.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ._native import native_module
from ._reference import als as reference
from ._threads import limit_blas_threads, resolve_num_threads
from ._validation import (
    as_csr,
    as_factor_matrix,
    check_non_negative_float,
    check_positive_int,
)

__all__ = ["SOLVERS", "als_fit", "als_fold_in", "als_loss"]

#: The per-row solvers: exact Cholesky, or a few warm-started CG steps.
SOLVERS = ("cg", "cholesky")

#: Initial factors are uniform in [0, INITIAL_SCALE) (as implicit does).
INITIAL_SCALE = 0.01

#: Bytes of gathered factor rows each thread keeps: the CG solver packs a
#: block's rows of Y here once and reuses them for every step, so they should
#: stay in the per-core L2 cache.
_GATHER_BYTES = 1 << 20
#: At most this many rows per CG block (one sgemm per step for the block).
_CG_BLOCK_ROWS = 64

#: Rows of the factor matrices converted to float64 at once for the Gram
#: matrices of the loss.
_GRAM_CHUNK_ROWS = 8192


@dataclass
class _Rows:
    """One side's CSR confidences in the dtypes the kernels take."""

    matrix: sp.csr_matrix
    indptr: np.ndarray = field(init=False)
    indices: np.ndarray = field(init=False)
    data: np.ndarray = field(init=False)
    _blocks: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.indptr = self.matrix.indptr.astype(np.int64, copy=False)
        self.indices = self.matrix.indices.astype(np.int32, copy=False)
        self.data = self.matrix.data  # float32, from _confidences

    def blocks(self, native, buffer_rows: int) -> np.ndarray:
        """CG row blocks for a gather buffer of ``buffer_rows`` rows (cached)."""
        if buffer_rows not in self._blocks:
            self._blocks[buffer_rows] = native.plan_blocks(
                self.indptr, _CG_BLOCK_ROWS, buffer_rows
            )
        return self._blocks[buffer_rows]


def _confidences(C, name: str = "C") -> sp.csr_matrix:
    """C as canonical float32 CSR without stored zeros (a zero is no interaction)."""
    C = as_csr(C, name)
    if C.dtype != np.float32:
        with np.errstate(over="ignore"):
            C = C.astype(np.float32)
        if not np.isfinite(C.data).all():
            raise ValueError(f"{name} contains confidences too large for float32")
    if C.nnz and (C.data == 0).any():
        C = C.copy()
        C.eliminate_zeros()
    return C


def _check_solver(solver) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    return solver


def _buffer_rows(factors: int) -> int:
    return max(64, _GATHER_BYTES // (4 * factors))


def _regularized_gram(Y: np.ndarray, regularization: float) -> np.ndarray:
    """Y'Y + regularization * I in float32 (one BLAS call on float32 Y)."""
    gram = Y.T @ Y
    gram[np.diag_indices_from(gram)] += np.float32(regularization)
    return np.ascontiguousarray(gram)


def row_regularization(
    C: sp.csr_matrix, regularization: float, exponent: float, offset: float
) -> np.ndarray | None:
    """Each row's lambda, ``regularization * (nnz of the row + offset * n_columns) ** exponent``.

    float32, shape (n_rows,); None when ``exponent`` is 0 (every row has
    ``regularization``: the solves keep it in their shared Gram matrix).
    """
    if exponent == 0:
        return None
    counts = np.diff(C.indptr).astype(np.float64) + offset * C.shape[1]
    with np.errstate(divide="ignore"):
        scale = np.where(counts > 0, np.power(counts, exponent, where=counts > 0,
                                              out=np.ones_like(counts)), 0.0)
    return (regularization * scale).astype(np.float32)


def _solve_rows(
    rows: _Rows,
    X: np.ndarray,
    Y: np.ndarray,
    regularization: float,
    solver: str,
    cg_steps: int,
    num_threads: int,
    per_row: np.ndarray | None = None,
) -> None:
    """One half-sweep: every row of X solved against fixed Y, in place.

    ``per_row`` (float32, one lambda per row) replaces ``regularization``.
    """
    A0 = _regularized_gram(Y, regularization if per_row is None else 0.0)
    native = native_module("_als")
    factors = X.shape[1]
    if native is None:
        failed = reference.least_squares(
            rows.matrix, X, Y, A0, solver=solver, cg_steps=cg_steps,
            row_regularization=per_row,
        )
    elif solver == "cg":
        buffer_rows = _buffer_rows(factors)
        native.least_squares_cg(
            rows.indptr, rows.indices, rows.data, X, Y, A0,
            rows.blocks(native, buffer_rows), cg_steps, buffer_rows, num_threads, per_row,
        )
        failed = -1
    else:
        failed = native.least_squares_cholesky(
            rows.indptr, rows.indices, rows.data, X, Y, native.padded_gram(A0), num_threads,
            per_row,
        )
    if failed >= 0:
        raise ValueError(
            f"the exact solve of row {failed} is singular; use regularization > 0 "
            f"(got {regularization})"
        )


def _initial_factors(random_state, n_users: int, n_items: int, factors: int):
    try:
        rng = np.random.default_rng(random_state)
    except TypeError:
        raise ValueError(
            "random_state must be None, an int, or a numpy Generator/SeedSequence, "
            f"got {random_state!r}"
        ) from None
    X = rng.random((n_users, factors), dtype=np.float32) * np.float32(INITIAL_SCALE)
    Y = rng.random((n_items, factors), dtype=np.float32) * np.float32(INITIAL_SCALE)
    return X, Y


def als_fit(
    C,
    *,
    factors: int = 64,
    regularization: float = 0.01,
    iterations: int = 15,
    solver: str = "cg",
    cg_steps: int = 3,
    num_threads: int = 0,
    random_state=None,
    callback: Callable[[int, float, float | None], object] | None = None,
    compute_loss: bool = False,
    regularization_exponent: float = 0.0,
    regularization_offset: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Factorise a confidence matrix by implicit-feedback ALS.

    Parameters
    ----------
    C : scipy.sparse matrix, shape (n_users, n_items)
        Confidences c_ui > 0 where user u interacted with item i (preference
        1 there); every other pair has confidence 1 and preference 0. Stored
        zeros count as no interaction; duplicates are summed. Scale raw
        counts before calling (e.g. ``1 + alpha * counts``, see docs/als.md).
    factors : int >= 1, default 64
    regularization : float >= 0, default 0.01
        lambda in the loss, applied as ``lambda * I`` in every solve (not
        scaled by the number of interactions unless ``regularization_exponent``
        is set).
    regularization_exponent : float >= 0, default 0
        Frequency-scaled regularisation (Rendle, Krichene, Zhang and Koren
        2022, "Revisiting the Performance of iALS"): user u's vector is
        penalised by :math:`\lambda (|I_u| + \nu n_{items})^{e}` and item i's by
        :math:`\lambda (|U_i| + \nu n_{users})^{e}`, with :math:`|I_u|` and
        :math:`|U_i|` the non-zeros of u's row and i's column, e this
        exponent and :math:`\nu` ``regularization_offset``. 0 is the plain
        :math:`\lambda`; 1 scales it with the number of interactions (as
        ALS-WR does).
    regularization_offset : float >= 0, default 0
        :math:`\nu`: the weight of an unobserved pair relative to an
        observed one in Rendle et al.'s count (their :math:`\alpha_0`).
    iterations : int >= 1, default 15
        Sweeps; each solves all users, then all items.
    solver : {"cg", "cholesky"}, default "cg"
        ``"cholesky"`` solves each row exactly; ``"cg"`` takes ``cg_steps``
        conjugate-gradient steps from the previous sweep's vector (much
        faster, and as good after a few sweeps).
    cg_steps : int >= 1, default 3
    num_threads : int >= 0, default 0 (all available cores)
    random_state : None, int or numpy Generator
        Seeds the initial factors, uniform in [0, 0.01) (users first, then
        items, as implicit does). With ``num_threads=1`` and a fixed seed the
        result is deterministic (rows are solved independently, so it is in
        practice the same for any thread count).
    callback : callable, optional
        ``callback(iteration, seconds, loss)`` after each sweep; ``seconds``
        is that sweep's time and ``loss`` is :func:`als_loss` when
        ``compute_loss`` is true, else None.
    compute_loss : bool, default False

    Returns
    -------
    user_factors : ndarray, shape (n_users, factors), float32
    item_factors : ndarray, shape (n_items, factors), float32

    Raises
    ------
    ValueError
        C is not a 2-D sparse matrix or holds NaN, infinite or negative
        values; factors, iterations or cg_steps < 1; an unknown solver; a
        negative regularization, regularization_exponent or
        regularization_offset; or (only with regularization 0) a singular
        exact solve.
    """
    C = _confidences(C)
    exponent = check_non_negative_float(regularization_exponent, "regularization_exponent")
    offset = check_non_negative_float(regularization_offset, "regularization_offset")
    factors = check_positive_int(factors, "factors")
    iterations = check_positive_int(iterations, "iterations")
    cg_steps = check_positive_int(cg_steps, "cg_steps")
    regularization = check_non_negative_float(regularization, "regularization")
    solver = _check_solver(solver)
    threads = resolve_num_threads(num_threads)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, got {callback!r}")

    n_users, n_items = C.shape
    X, Y = _initial_factors(random_state, n_users, n_items, factors)
    users = _Rows(C)
    items = _Rows(C.T.tocsr())
    user_reg = row_regularization(users.matrix, regularization, exponent, offset)
    item_reg = row_regularization(items.matrix, regularization, exponent, offset)
    with limit_blas_threads(1):
        for iteration in range(iterations):
            start = time.perf_counter()
            _solve_rows(users, X, Y, regularization, solver, cg_steps, threads, user_reg)
            _solve_rows(items, Y, X, regularization, solver, cg_steps, threads, item_reg)
            seconds = time.perf_counter() - start
            if callback is not None:
                loss = _loss(users, X, Y, regularization, threads, exponent,
                             offset) if compute_loss else None
                callback(iteration, seconds, loss)
    return X, Y


def als_fold_in(
    C_rows,
    item_factors,
    *,
    regularization: float = 0.01,
    solver: str = "cg",
    cg_steps: int = 3,
    user_factors=None,
    num_threads: int = 0,
    regularization_exponent: float = 0.0,
    regularization_offset: float = 0.0,
) -> np.ndarray:
    """User vectors for new or changed users against fixed item factors.

    Solves each row of ``C_rows`` as one user half-sweep of :func:`als_fit`
    would, so recommendations can be refreshed without a full run.

    Parameters
    ----------
    C_rows : scipy.sparse matrix, shape (m, n_items)
        The users' confidences, as for :func:`als_fit`.
    item_factors : array, shape (n_items, f)
    regularization : float >= 0, default 0.01 (use the fit's value)
    solver : {"cg", "cholesky"}, default "cg"
        ``"cholesky"`` gives the exact solution (for an existing user, the
        vector a final user half-sweep would give). ``"cg"`` takes
        ``cg_steps`` steps starting from ``user_factors`` — pass the users'
        current vectors to warm-start, as a fit does — or from zero.
    cg_steps : int >= 1, default 3
    user_factors : array, shape (m, f), optional
        Warm start for ``"cg"`` (ignored by ``"cholesky"``).
    num_threads : int >= 0, default 0
    regularization_exponent, regularization_offset : float >= 0, default 0
        As for :func:`als_fit` (use the fit's values): each row's lambda
        grows with its number of interactions.

    Returns
    -------
    ndarray, shape (m, f), float32

    Raises
    ------
    ValueError
        Bad confidences (as for :func:`als_fit`), C_rows' columns not matching
        item_factors' rows, user_factors not (m, f), an unknown solver, a
        negative regularization_exponent or regularization_offset.
    """
    C = _confidences(C_rows, "C_rows")
    exponent = check_non_negative_float(regularization_exponent, "regularization_exponent")
    offset = check_non_negative_float(regularization_offset, "regularization_offset")
    Y = as_factor_matrix(item_factors, "item_factors")
    if C.shape[1] != Y.shape[0]:
        raise ValueError(
            f"C_rows has {C.shape[1]} columns but item_factors has {Y.shape[0]} rows; "
            "they must match"
        )
    regularization = check_non_negative_float(regularization, "regularization")
    solver = _check_solver(solver)
    cg_steps = check_positive_int(cg_steps, "cg_steps")
    threads = resolve_num_threads(num_threads)
    shape = (C.shape[0], Y.shape[1])
    if user_factors is None or solver == "cholesky":
        X = np.zeros(shape, dtype=np.float32)
    else:
        X = as_factor_matrix(user_factors, "user_factors").copy()
        if X.shape != shape:
            raise ValueError(f"user_factors must have shape {shape}, got {X.shape}")
    with limit_blas_threads(1):
        _solve_rows(_Rows(C), X, Y, regularization, solver, cg_steps, threads,
                    row_regularization(C, regularization, exponent, offset))
    return X


def _gram64(X: np.ndarray) -> np.ndarray:
    """X'X in float64, converting X in chunks (memory stays bounded)."""
    gram = np.zeros((X.shape[1], X.shape[1]), dtype=np.float64)
    for start in range(0, X.shape[0], _GRAM_CHUNK_ROWS):
        chunk = X[start : start + _GRAM_CHUNK_ROWS].astype(np.float64)
        gram += chunk.T @ chunk
    return gram


def _loss(rows: _Rows, X: np.ndarray, Y: np.ndarray, regularization: float, threads: int,
          exponent: float = 0.0, offset: float = 0.0):
    XtX, YtY = _gram64(X), _gram64(Y)
    # Every pair at confidence 1, preference 0: sum (x_u . y_i)^2 = <X'X, Y'Y>.
    total = float(np.sum(XtX * YtY))
    native = native_module("_als")
    if native is None:
        total += reference.nonzero_loss(rows.matrix, X, Y)
    else:
        total += native.nonzero_loss(rows.indptr, rows.indices, rows.data, X, Y, threads)
    if exponent == 0:
        return total + regularization * float(np.trace(XtX) + np.trace(YtY))
    user_reg = row_regularization(rows.matrix, regularization, exponent, offset)
    item_reg = row_regularization(rows.matrix.T.tocsr(), regularization, exponent, offset)
    return total + _weighted_norms(X, user_reg) + _weighted_norms(Y, item_reg)


def _weighted_norms(factors: np.ndarray, weights: np.ndarray) -> float:
    """sum over rows of weights[r] * |factors[r]|^2, in float64 (chunked)."""
    total = 0.0
    for start in range(0, factors.shape[0], _GRAM_CHUNK_ROWS):
        chunk = factors[start : start + _GRAM_CHUNK_ROWS].astype(np.float64)
        total += float(weights[start : start + _GRAM_CHUNK_ROWS].astype(np.float64)
                       @ np.einsum("ij,ij->i", chunk, chunk))
    return total


def als_loss(
    C, user_factors, item_factors, regularization: float, *, num_threads: int = 0,
    regularization_exponent: float = 0.0, regularization_offset: float = 0.0,
) -> float:
    r"""The implicit-feedback loss of factors on a confidence matrix.

    :math:`\sum_{u,i} c_{ui} (p_{ui} - x_u^\top y_i)^2 + \lambda(\lVert X\rVert^2 +
    \lVert Y\rVert^2)` over *all* user-item pairs, computed without the dense
    matrix: :math:`\mathrm{tr}(X^\top X\, Y^\top Y)` covers every pair at
    confidence 1 and preference 0, then each non-zero adds
    :math:`c (1 - s)^2 - s^2`. Not normalised (implicit's logged loss
    divides this by :math:`\sum c + n_{users} n_{items} - nnz`).
    With ``regularization_exponent`` the penalty is the frequency-scaled one
    :func:`als_fit` minimises, :math:`\sum_u \lambda_u \lVert x_u\rVert^2 +
    \sum_i \lambda_i \lVert y_i\rVert^2`.

    Parameters
    ----------
    C : scipy.sparse matrix, shape (n_users, n_items), confidences as for als_fit
    user_factors : array, shape (n_users, f)
    item_factors : array, shape (n_items, f)
    regularization : float >= 0
    num_threads : int >= 0, default 0
    regularization_exponent, regularization_offset : float >= 0, default 0
        As for :func:`als_fit`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad confidences or factors, or shapes that do not match.
    """
    C = _confidences(C)
    X = as_factor_matrix(user_factors, "user_factors")
    Y = as_factor_matrix(item_factors, "item_factors")
    if X.shape[0] != C.shape[0] or Y.shape[0] != C.shape[1] or X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"shapes do not match: C {C.shape}, user_factors {X.shape}, item_factors {Y.shape}"
        )
    regularization = check_non_negative_float(regularization, "regularization")
    exponent = check_non_negative_float(regularization_exponent, "regularization_exponent")
    offset = check_non_negative_float(regularization_offset, "regularization_offset")
    threads = resolve_num_threads(num_threads)
    with limit_blas_threads(1):
        return _loss(_Rows(C), X, Y, regularization, threads, exponent, offset)
