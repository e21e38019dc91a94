"""kernels.ease_weights and gram_matrix against the textbook dense formula (numpy inverse)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs.kernels._reference.ease import ease_weights as reference_weights
from django_recs.kernels.ease import ease_weights, gram_matrix, symmetrise_from_upper


def random_X(n_users=200, n_items=60, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    return sp.random(n_users, n_items, density=density, random_state=rng, dtype=np.float32,
                     data_rvs=lambda size: rng.integers(1, 6, size).astype(np.float32)).tocsr()


@pytest.mark.parametrize(("dtype", "atol"), [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("l2", [0.5, 10.0, 500.0])
def test_weights_match_the_dense_textbook_formula(dtype, atol, l2):
    X = random_X()
    dense = X.toarray().astype(np.float64)
    np.testing.assert_allclose(gram_matrix(X, dtype=np.float64), dense.T @ dense)
    B = ease_weights(gram_matrix(X, dtype=dtype), l2)
    assert B.dtype == dtype and B.shape == (60, 60)
    expected = reference_weights(dense.T @ dense, l2)
    np.testing.assert_allclose(B, expected, atol=atol * max(1.0, np.abs(expected).max()))
    np.testing.assert_array_equal(np.diag(B), 0.0)


def test_weights_solve_the_constrained_ridge_regression():
    # B minimises ||X - X B||^2 + l2 ||B||^2 with diag(B) = 0: the gradient
    # (G + l2 I) B - G is zero off the diagonal.
    X = random_X(seed=3).toarray().astype(np.float64)
    G = X.T @ X
    B = ease_weights(G.copy(order="F"), 7.0)
    gradient = (G + 7.0 * np.eye(len(G))) @ B - G
    np.fill_diagonal(gradient, 0.0)
    np.testing.assert_allclose(gradient, 0.0, atol=1e-8 * np.abs(G).max())


def test_gram_of_a_wide_matrix_is_built_strip_by_strip():
    X = random_X(n_users=50, n_items=2100, density=0.01, seed=4)
    dense = X.toarray().astype(np.float64)
    np.testing.assert_allclose(gram_matrix(X, dtype=np.float64), dense.T @ dense)


def test_symmetrise_copies_the_upper_triangle():
    A = np.arange(2500 * 3, dtype=np.float64)[: 50 * 50].reshape(50, 50)
    upper = np.triu(A)
    symmetrise_from_upper(A)
    np.testing.assert_array_equal(A, upper + np.triu(upper, 1).T)


def test_edge_cases_empty_and_one_item():
    assert ease_weights(np.zeros((0, 0)), 1.0).shape == (0, 0)
    np.testing.assert_array_equal(ease_weights(np.array([[4.0]]), 1.0), [[0.0]])
    X = sp.csr_matrix((5, 3), dtype=np.float32)  # nobody bought anything: B = 0
    np.testing.assert_array_equal(ease_weights(gram_matrix(X), 1.0), np.zeros((3, 3)))


@pytest.mark.parametrize("l2", [0, -1.0, np.nan, np.inf, "1", True, None])
def test_bad_l2_is_refused(l2):
    with pytest.raises(ValueError, match="l2 must be a finite number > 0"):
        ease_weights(np.eye(3), l2)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="square"):
        ease_weights(np.ones((2, 3)), 1.0)
    bad = np.eye(3)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        ease_weights(bad, 1.0)
    with pytest.raises(ValueError, match="not positive definite"):
        ease_weights(-10 * np.eye(3), 1.0)
    with pytest.raises(ValueError):
        gram_matrix(sp.csr_matrix(np.array([[1.0, np.nan]])))
    with pytest.raises(ValueError):
        gram_matrix(sp.csr_matrix(np.array([[1.0, -2.0]])))


def test_arrays_of_2_gib_or_more_are_factorised_on_one_blas_thread(monkeypatch):
    from django_recs.kernels import ease

    limits = []
    real = ease.limit_blas_threads

    def spy(threads):
        limits.append(threads)
        return real(threads)

    monkeypatch.setattr(ease, "limit_blas_threads", spy)
    G = gram_matrix(random_X(), dtype=np.float64)
    expected = ease_weights(G.copy(order="F"), 3.0, num_threads=2)
    monkeypatch.setattr(ease, "SINGLE_THREAD_BYTES", G.nbytes)  # this one counts as large
    np.testing.assert_allclose(ease_weights(G.copy(order="F"), 3.0, num_threads=2), expected,
                               rtol=1e-10, atol=1e-14)
    assert limits == [2, 1]
