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
        iterations_done = 0

        def on_iteration(*args, **kwargs):
            nonlocal iterations_done
            iterations_done += 1
            report(progress, 0.7 * iterations_done / self.iterations)

        user_factors, item_factors = self.factorise(
            matrix, num_threads=num_threads, callback=on_iteration
        )
        report(progress, 0.7)
        active = np.flatnonzero(np.diff(matrix.weights.indptr) > 0)
        if n and active.size:
            top, top_scores = kernels.top_n(
                np.ascontiguousarray(user_factors[active]),
                item_factors,
                n,
                exclude=matrix.seen[active],
                num_threads=num_threads,
            )
            recommended[active] = top
            scores[active] = np.where(top >= 0, top_scores, 0.0)
        report(progress, 0.85)
        unit_items = normalised_rows(item_factors)
        reasons = factor_reasons(matrix.weights, recommended, unit_items)
        similar = None
        if self.similar_items and n_items > 1:
            k = min(self.similar_items, n_items - 1)
            neighbours, neighbour_scores = kernels.top_n(
                unit_items, unit_items, k,
                exclude=sp.identity(n_items, dtype=np.float32, format="csr"),
                num_threads=num_threads,
            )
            similar = neighbours_to_csr(neighbours, neighbour_scores, n_items)
        report(progress, 1.0)
        counts["users_with_history"] = int(active.size)
        return FitResult(
            similar=similar,
            recommended=recommended,
            recommended_scores=scores,
            reasons=reasons,
            user_factors=user_factors,
            item_factors=item_factors,
            counts=counts,
        )


def neighbours_to_csr(indices: np.ndarray, scores: np.ndarray, n_columns: int) -> sp.csr_matrix:
    """Ranked (rows x k) neighbour lists (-1 padding) as a CSR keeping their order."""
    valid = indices >= 0
    indptr = np.concatenate(([0], np.cumsum(valid.sum(axis=1))))
    return sp.csr_matrix(
        (scores[valid].astype(np.float32), indices[valid].astype(np.int32), indptr),
        shape=(indices.shape[0], n_columns),
    )


def factor_reasons(
    history: sp.csr_matrix, recommended: np.ndarray, unit_items: np.ndarray
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

    Users are grouped by history length (within a factor of two) and each group
    is one batched matrix product ``(users, history, f) @ (users, f, n)``, so
    every history and recommended vector is gathered once per user, not once
    per pair.
    """
    n_users, n = recommended.shape
    reasons = np.full((n_users, n), -1, dtype=np.int32)
    lengths = np.diff(history.indptr)
    candidates = np.flatnonzero((lengths > 0) & (recommended >= 0).any(axis=1))
    if candidates.size == 0 or n == 0:
        return reasons
    factors = unit_items.shape[1]
    bucket = np.ceil(np.log2(lengths[candidates])).astype(np.int64)
    for b in np.unique(bucket):
        users = candidates[bucket == b]
        width = int(lengths[users].max())
        per_chunk = max(1, (1 << 22) // max(1, width * max(n, factors)))
        for start in range(0, len(users), per_chunk):
            chunk = users[start:start + per_chunk]
            offsets = np.arange(width)
            inside = offsets[None, :] < lengths[chunk][:, None]
            position = np.where(inside, history.indptr[chunk][:, None] + offsets[None, :], 0)
            items = history.indices[position]
            weights = np.where(inside, history.data[position], 0.0).astype(np.float32)
            targets = recommended[chunk]
            affinity = np.matmul(unit_items[items],
                                 unit_items[np.maximum(targets, 0)].transpose(0, 2, 1))
            contribution = weights[:, :, None] * affinity
            contribution[~inside] = -np.inf
            best = np.argmax(contribution, axis=1)
            best_value = np.take_along_axis(contribution, best[:, None, :], axis=1)[:, 0, :]
            chosen = np.take_along_axis(items, best, axis=1)
            reasons[chunk] = np.where((targets >= 0) & (best_value > 0), chosen, -1)
    return reasons
