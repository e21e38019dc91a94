"""Frequency-scaled regularisation of kernels.als_fit (iALS, Rendle et al. 2022).

Each user's lambda is ``regularization * (|I_u| + offset * n_items) ** exponent``
and each item's ``regularization * (|U_i| + offset * n_users) ** exponent``;
checked against dense numpy solves, the dense loss, and the reference fallback.
"""

from __future__ import annotations

import numpy as np
import pytest

from django_recs import kernels
from django_recs.kernels import als

from .test_als import ATOL, RTOL, confidence_matrix, dense_loss, initial_factors

SCALES = [(1.0, 0.0), (0.5, 0.0), (1.0, 0.05), (2.0, 0.01)]


def per_row_lambda(C, regularization, exponent, offset):
    counts = np.diff(C.tocsr().indptr) + offset * C.shape[1]
    return regularization * np.where(counts > 0, counts, 0.0) ** exponent


def exact_solve(C, Y, lambdas):
    dense = C.toarray().astype(np.float64)
    Y = Y.astype(np.float64)
    confidence = np.where(dense > 0, dense, 1.0)
    preference = (dense > 0).astype(np.float64)
    out = np.zeros((C.shape[0], Y.shape[1]))
    for u in range(C.shape[0]):
        if not preference[u].any():
            continue
        A = Y.T @ (confidence[u][:, None] * Y) + lambdas[u] * np.eye(Y.shape[1])
        out[u] = np.linalg.solve(A, Y.T @ (confidence[u] * preference[u]))
    return out


def fit(C, **kwargs):
    options = {"factors": 6, "regularization": 0.1, "random_state": 7, "num_threads": 1}
    options.update(kwargs)
    return kernels.als_fit(C, **options)


@pytest.mark.parametrize(("exponent", "offset"), SCALES)
def test_one_exact_sweep_equals_the_numpy_solve_with_each_row_s_lambda(exponent, offset):
    C = confidence_matrix(seed=2)
    X, Y = fit(C, iterations=1, solver="cholesky", regularization_exponent=exponent,
               regularization_offset=offset)
    _, Y0 = initial_factors(7, *C.shape, 6)
    np.testing.assert_allclose(X, exact_solve(C, Y0, per_row_lambda(C, 0.1, exponent, offset)),
                               rtol=RTOL, atol=ATOL)
    items = C.T.tocsr()
    np.testing.assert_allclose(Y, exact_solve(items, X, per_row_lambda(items, 0.1, exponent,
                                                                       offset)),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("exponent", "offset"), SCALES)
def test_cg_converges_to_the_exact_solution(exponent, offset):
    C = confidence_matrix(seed=4)
    options = {"regularization_exponent": exponent, "regularization_offset": offset}
    exact = fit(C, iterations=2, solver="cholesky", **options)
    converged = fit(C, iterations=2, solver="cg", cg_steps=30, **options)
    for ours, expected in zip(converged, exact):
        np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-4)


def test_exponent_zero_is_today_s_model_and_scaling_changes_it():
    C = confidence_matrix(seed=6)
    plain = fit(C, iterations=3)
    zero = fit(C, iterations=3, regularization_exponent=0.0, regularization_offset=0.3)
    np.testing.assert_array_equal(plain[0], zero[0])
    scaled = fit(C, iterations=3, regularization_exponent=1.0)
    assert not np.allclose(plain[0], scaled[0], atol=1e-4)
    # Heavier rows get a larger lambda, so their vectors shrink relative to the plain fit.
    assert np.linalg.norm(scaled[0]) < np.linalg.norm(plain[0])


@pytest.mark.parametrize("solver", ("cg", "cholesky"))
def test_loss_is_the_scaled_objective_and_never_rises(solver):
    C = confidence_matrix(n_users=80, n_items=50, seed=3)
    options = {"regularization_exponent": 1.0, "regularization_offset": 0.02}
    losses = []
    X, Y = fit(C, iterations=6, solver=solver, compute_loss=True,
               callback=lambda i, s, loss: losses.append(loss), **options)
    assert np.all(np.diff(losses) <= 1e-6 * np.abs(losses[:-1]))
    user_lambda = per_row_lambda(C, 0.1, 1.0, 0.02)
    item_lambda = per_row_lambda(C.T.tocsr(), 0.1, 1.0, 0.02)
    expected = dense_loss(C, X, Y, 0.0) + float(
        user_lambda @ (X.astype(np.float64) ** 2).sum(axis=1)
        + item_lambda @ (Y.astype(np.float64) ** 2).sum(axis=1))
    got = kernels.als_loss(C, X, Y, 0.1, **options)
    assert got == pytest.approx(expected, rel=1e-5)
    assert losses[-1] == pytest.approx(got, rel=1e-5)
    assert got != pytest.approx(kernels.als_loss(C, X, Y, 0.1), rel=1e-3)


def test_exact_fold_in_reproduces_a_user_s_vector():
    C = confidence_matrix(seed=8)
    options = {"regularization_exponent": 1.0, "regularization_offset": 0.01}
    X, Y = fit(C, iterations=3, solver="cholesky", **options)
    # One more user half-sweep against the final Y is what the fold-in solves.
    expected = exact_solve(C, Y, per_row_lambda(C, 0.1, 1.0, 0.01))
    folded = kernels.als_fold_in(C[:10], Y, regularization=0.1, solver="cholesky", **options)
    np.testing.assert_allclose(folded, expected[:10], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("solver", ("cg", "cholesky"))
def test_reference_fallback_gives_the_same_factors(monkeypatch, solver):
    C = confidence_matrix(seed=9)
    options = {"regularization_exponent": 1.0, "regularization_offset": 0.05, "solver": solver,
               "cg_steps": 30}
    native = fit(C, iterations=2, **options)
    monkeypatch.setattr(als, "native_module", lambda name: None)
    fallback = fit(C, iterations=2, **options)
    for ours, expected in zip(native, fallback):
        np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["regularization_exponent", "regularization_offset"])
@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf])
def test_bad_scaling_is_refused_by_name(name, value):
    C = confidence_matrix()
    with pytest.raises(ValueError, match=name):
        fit(C, iterations=1, **{name: value})
    with pytest.raises(ValueError, match=name):
        kernels.als_fold_in(C, np.zeros((C.shape[1], 6), np.float32), **{name: value})
    with pytest.raises(ValueError, match=name):
        kernels.als_loss(C, np.zeros((C.shape[0], 2), np.float32),
                         np.zeros((C.shape[1], 2), np.float32), 0.1, **{name: value})


def test_the_als_algorithm_passes_the_scaling_to_the_kernel():
    from django_recs.algorithms import ALS
    from django_recs.algorithms.als import confidence
    from django_recs.matrix import InteractionMatrix

    weights = confidence_matrix(seed=11)
    matrix = InteractionMatrix.from_csr(weights)
    algorithm = ALS(factors=6, iterations=2, regularization=0.2, regularization_exponent=1.0,
                    regularization_offset=0.01)
    X, Y = algorithm.factorise(matrix, num_threads=1)
    expected = kernels.als_fit(confidence(matrix.weights, 10.0), factors=6, iterations=2,
                               regularization=0.2, regularization_exponent=1.0,
                               regularization_offset=0.01, random_state=0, num_threads=1)
    np.testing.assert_array_equal(X, expected[0])
    assert ALS().regularization_exponent == 0.0  # the plain model stays the default
    with pytest.raises(ValueError, match="regularization_exponent must be a number >= 0"):
        ALS(regularization_exponent=-1)
