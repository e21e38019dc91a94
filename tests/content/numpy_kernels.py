"""Numpy stand-ins for kernels not yet compiled into this tree, for the pipeline's tests.

The autouse fixture installs a stand-in only where ``django_recs.kernels``
lacks the function, so the real kernels are used as soon as they exist.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels


def _cosine_neighbours(X, k=50, *, metric="cosine", shrink=0.0, alpha=0.5, num_threads=0):
    X = sp.csr_matrix(X, dtype=np.float64)
    gram = (X.T @ X).toarray()
    norms = np.sqrt(np.diag(gram))
    sim = gram / np.maximum(np.outer(norms, norms), 1e-30)
    np.fill_diagonal(sim, 0)
    rows, cols, vals = [], [], []
    for i in range(sim.shape[0]):
        order = [j for j in np.argsort(-sim[i], kind="stable") if sim[i, j] > 0][:k]
        rows += [i] * len(order)
        cols += order
        vals += list(sim[i, order])
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=sim.shape[0]))))
    return sp.csr_matrix((np.array(vals, np.float32), np.array(cols, np.int32), indptr),
                         shape=sim.shape)


def _dense_als(C, *, factors=64, regularization=0.01, iterations=15, random_state=None,
               callback=None, **kwargs):
    C = sp.csr_matrix(C).toarray()
    P = (C > 0).astype(np.float64)
    Cw = np.where(C > 0, C, 1.0)
    rng = np.random.default_rng(random_state)
    U = rng.normal(scale=0.1, size=(C.shape[0], factors))
    V = rng.normal(scale=0.1, size=(C.shape[1], factors))
    eye = regularization * np.eye(factors)
    for iteration in range(iterations):
        for A, B, Cm, Pm in ((U, V, Cw, P), (V, U, Cw.T, P.T)):
            for r in range(A.shape[0]):
                A[r] = np.linalg.solve(B.T @ (Cm[r][:, None] * B) + eye, B.T @ (Cm[r] * Pm[r]))
        if callback:
            callback(iteration)
    return U.astype(np.float32), V.astype(np.float32)


def _dense_top_n(user_factors, item_factors, n=10, *, users=None, exclude=None, num_threads=0):
    scores = user_factors @ item_factors.T
    if exclude is not None:
        scores[sp.csr_matrix(exclude).toarray() != 0] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    top = np.take_along_axis(scores, order, axis=1)
    finite = np.isfinite(top)
    return (np.where(finite, order, -1).astype(np.int32),
            np.where(finite, top, 0).astype(np.float32))


def _dense_fold_in(C_rows, item_factors, *, regularization=0.01, solver="cg", cg_steps=3,
                   **kwargs):
    C = sp.csr_matrix(C_rows).toarray()
    V = item_factors.astype(np.float64)
    eye = regularization * np.eye(V.shape[1])
    out = np.empty((C.shape[0], V.shape[1]))
    for r in range(C.shape[0]):
        c = np.where(C[r] > 0, C[r], 1.0)
        out[r] = np.linalg.solve(V.T @ (c[:, None] * V) + eye, V.T @ (c * (C[r] > 0)))
    return out.astype(np.float32)


STAND_INS = {"item_similarity": _cosine_neighbours, "als_fit": _dense_als,
             "top_n": _dense_top_n, "als_fold_in": _dense_fold_in}


@pytest.fixture(autouse=True)
def kernels_or_numpy(monkeypatch):
    for name, stand_in in STAND_INS.items():
        if not hasattr(kernels, name):
            monkeypatch.setattr(kernels, name, stand_in, raising=False)
