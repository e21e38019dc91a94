"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008).

The weights become confidences ``C = 1 + alpha * w`` on the observed pairs
(implicit's scaling: one purchase of weight 5 with alpha 10 is trusted 51
times as much as a missing pair, whose preference is 0 with confidence 1).
:func:`django_recs.kernels.als_fit` factorises them; each user's list is
:func:`django_recs.kernels.top_n` of ``user_factors @ item_factors.T`` with
seen items excluded. The reason of a recommendation j is the history item i
maximising ``w(u, i) * cos(item_factors[i], item_factors[j])``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..matrix import InteractionMatrix
from .base import (
    Algorithm,
    FitResult,
    ProgressCallback,
    report,
    require_choice,
    require_int,
    require_number,
)

SOLVERS = ("cg", "cholesky")


def confidence(weights: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """``1 + alpha * w`` on the stored entries of ``weights`` (float32 CSR)."""
    confidences = weights.astype(np.float32, copy=True)
    confidences.data = (1.0 + alpha * confidences.data).astype(np.float32)
    return confidences


def normalised_rows(factors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return (factors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class ALS(Algorithm):
    """Alternating least squares on implicit feedback.

    Parameters
    ----------
    factors : int, default 64
    iterations : int, default 15
    regularization : float >= 0, default 0.01
    regularization_exponent : float >= 0, default 0.0
        Frequency-scaled regularisation (iALS, Rendle et al. 2022): a user's
        lambda is ``regularization * (interactions + regularization_offset *
        n_items) ** regularization_exponent``, an item's likewise with its
        users. 0 keeps one lambda for everyone; see docs/als.md for the
        measured gain of 1.
    regularization_offset : float >= 0, default 0.0
    alpha : float >= 0, default 10.0
        Confidence scaling: ``C = 1 + alpha * weight``.
    solver : {"cg", "cholesky"}, default "cg"
    cg_steps : int, default 3
    random_state : int or None, default 0
        Seed of the initial factors (fixed by default so runs are reproducible).
    similar_items : int, default 0
        When > 0, also the ``similar_items`` nearest items per item by cosine
        of their factors (an extra n_items x n_items scoring pass).
    """

    name = "als"
    defaults = {
        "factors": 64,
        "iterations": 15,
        "regularization": 0.01,
        "regularization_exponent": 0.0,
        "regularization_offset": 0.0,
        "alpha": 10.0,
        "solver": "cg",
        "cg_steps": 3,
        "random_state": 0,
        "similar_items": 0,
    }

    def check_params(self) -> None:
        require_int(self, "factors")
        require_int(self, "iterations")
        require_number(self, "regularization")
        require_number(self, "regularization_exponent")
        require_number(self, "regularization_offset")
        require_number(self, "alpha")
        require_choice(self, "solver", SOLVERS)
        require_int(self, "cg_steps")
        require_int(self, "random_state", minimum=0, allow_none=True)
        require_int(self, "similar_items", minimum=0)

    def factorise(self, matrix: InteractionMatrix, *, num_threads: int = 0, callback=None):
        """(user_factors, item_factors) of ``matrix`` with this model's parameters."""
        return kernels.als_fit(
            confidence(matrix.weights, float(self.alpha)),
            factors=self.factors,
            regularization=float(self.regularization),
            iterations=self.iterations,
            solver=self.solver,
            cg_steps=self.cg_steps,
            num_threads=num_threads,
            random_state=self.random_state,
            callback=callback,
            regularization_exponent=float(self.regularization_exponent),
            regularization_offset=float(self.regularization_offset),
        )

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        n_users, n_items = matrix.weights.shape
        n = max(0, min(int(n_recommendations), n_items))
        recommended = np.full((n_users, n), -1, dtype=np.int32)
        scores = np.zeros((n_users, n), dtype=np.float32)
        reasons = np.full((n_users, n), -1, dtype=np.int32)
        counts = {"users": int(n_users), "items": int(n_items)}
        if matrix.nnz == 0:
            return FitResult(
                recommended=recommended, recommended_scores=scores, reasons=reasons,
                user_factors=np.zeros((n_users, self.factors), dtype=np.float32),
                item_factors=np.zeros((n_items, self.factors), dtype=np.float32),
                counts=counts,
            )
        user_factors, item_factors = self.fit_factors(
            matrix, num_threads=num_threads,
            progress=None if progress is None else lambda fraction: progress(0.7 * fraction),
        )
        report(progress, 0.7)
        recommended, scores, reasons = self.score_users(
            matrix, user_factors, item_factors, n_recommendations, num_threads=num_threads
        )
        report(progress, 0.85)
        similar = self.similar_from_factors(item_factors, num_threads=num_threads)
        report(progress, 1.0)
        counts["users_with_history"] = int((np.diff(matrix.weights.indptr) > 0).sum())
        return FitResult(
            similar=similar,
            recommended=recommended,
            recommended_scores=scores,
            reasons=reasons,
            user_factors=user_factors,
            item_factors=item_factors,
            counts=counts,
        )

    def fit_factors(
        self,
        matrix: InteractionMatrix,
        *,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(user_factors, item_factors), float32, reporting the iterations done (0..1).

        The training step of :meth:`fit`, apart from scoring, so a sharded
        run trains on one worker and scores users on many.
        """
        if matrix.nnz == 0:
            return (np.zeros((matrix.n_users, self.factors), dtype=np.float32),
                    np.zeros((matrix.n_items, self.factors), dtype=np.float32))
        iterations_done = 0

        def on_iteration(*args, **kwargs):
            nonlocal iterations_done
            iterations_done += 1
            report(progress, iterations_done / self.iterations)

        return self.factorise(matrix, num_threads=num_threads, callback=on_iteration)

    def score_users(
        self,
        matrix: InteractionMatrix,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        n_recommendations: int,
        *,
        num_threads: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each user's top ``n_recommendations`` from the factors, seen items excluded.

        ``user_factors`` has one row per row of ``matrix`` (the users to
        score; a range of them in a sharded run). Returns ``(recommended,
        scores, reasons)``, each (n_users, n): int32 item columns (-1
        padding), float32 scores (0 where padded), int32 reasons. Users
        without history get no list. A user's list depends only on their own
        row, so user ranges scored apart equal the rows of the whole.
        """
        n_users, n_items = matrix.weights.shape
        if user_factors.shape[0] != n_users:
            raise ValueError(
                f"user_factors has {user_factors.shape[0]} rows for {n_users} users"
            )
        n = max(0, min(int(n_recommendations), n_items))
        recommended = np.full((n_users, n), -1, dtype=np.int32)
        scores = np.zeros((n_users, n), dtype=np.float32)
        active = np.flatnonzero(np.diff(matrix.weights.indptr) > 0)
        if n and active.size:
            top, top_scores = kernels.top_n(
                np.ascontiguousarray(user_factors[active], dtype=np.float32),
                item_factors,
                n,
                exclude=matrix.seen[active],
                num_threads=num_threads,
            )
            recommended[active] = top
            scores[active] = np.where(top >= 0, top_scores, 0.0)
        reasons = factor_reasons(matrix.weights, recommended, normalised_rows(item_factors),
                                 num_threads=num_threads)
        return recommended, scores, reasons

    def similar_from_factors(
        self, item_factors: np.ndarray, *, num_threads: int = 0
    ) -> sp.csr_matrix | None:
        """The ``similar_items`` nearest items per item by cosine of the factors (None if 0)."""
        n_items = item_factors.shape[0]
        if not self.similar_items or n_items <= 1:
            return None
        unit_items = normalised_rows(item_factors)
        k = min(self.similar_items, n_items - 1)
        neighbours, neighbour_scores = kernels.top_n(
            unit_items, unit_items, k,
            exclude=sp.identity(n_items, dtype=np.float32, format="csr"),
            num_threads=num_threads,
        )
        return neighbours_to_csr(neighbours, neighbour_scores, n_items)


def neighbours_to_csr(indices: np.ndarray, scores: np.ndarray, n_columns: int) -> sp.csr_matrix:
    """Ranked (rows x k) neighbour lists (-1 padding) as a CSR keeping their order."""
    valid = indices >= 0
    indptr = np.concatenate(([0], np.cumsum(valid.sum(axis=1))))
    return sp.csr_matrix(
        (scores[valid].astype(np.float32), indices[valid].astype(np.int32), indptr),
        shape=(indices.shape[0], n_columns),
    )


def factor_reasons(
    history: sp.csr_matrix, recommended: np.ndarray, unit_items: np.ndarray,
    *, num_threads: int = 0,
) -> np.ndarray:
    """The history item i maximising ``w(u, i) * cos(i, j)`` for each recommendation j.

    Parameters
    ----------
    history : csr_matrix, shape (n_users, n_items) — the users' weights
    recommended : ndarray, shape (n_users, n), int, -1 padding
    unit_items : ndarray, shape (n_items, f) — item factors scaled to unit length

    Returns
    -------
    ndarray, shape (n_users, n), int32: the item column, or -1 (padding, or no
    history item with a positive contribution). Ties: the first in the history.

    See :func:`django_recs.kernels.factor_reasons` (a compiled kernel over
    users on OpenMP threads, one sgemm per user).
    """
    return kernels.factor_reasons(history, recommended, unit_items, num_threads=num_threads)
