"""The "rp3beta" metric of kernels.item_similarity: kernel, scipy reference and the dense random walk.

Tolerances: 1e-5 relative on the scores (the kernel scales the weights in
float64 and stores them in X's dtype; float32 inputs lose a few ulps there).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels._reference import similarity as reference

from .test_similarity import assert_same_neighbours, assert_valid_top_k, power_law_matrix


def dense_p3(X, alpha: float, beta: float) -> np.ndarray:
    """The published computation (Paudel et al. 2017), densely: P_iu^alpha P_ui^alpha / d_j^beta."""
    A = X.toarray().astype(np.float64)
    user_degree = A.sum(axis=1, keepdims=True)
    item_degree = A.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        user_to_item = np.nan_to_num(A / user_degree)        # P_ui: a user's next item
        item_to_user = np.nan_to_num((A / item_degree).T)    # P_iu: an item's next user
        W = (item_to_user ** alpha) @ (user_to_item ** alpha)
        W = np.nan_to_num(W / item_degree[None, :] ** beta)
    np.fill_diagonal(W, 0.0)
    return W


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (1.0, 0.5), (0.5, 0.3), (0.8, 1.0)])
@pytest.mark.parametrize("binary", [True, False])
def test_every_score_is_the_dense_random_walk(alpha, beta, binary):
    X = power_law_matrix(n_users=120, n_items=40, nnz=900, seed=3)
    if binary:
        X.data[:] = 1.0
    expected = dense_p3(X, alpha, beta)
    got = kernels.item_similarity(X, 40, metric="rp3beta", alpha=alpha, beta=beta).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7 * expected.max())
    ref = reference.item_similarity(X, 40, metric="rp3beta", alpha=alpha, beta=beta).toarray()
    np.testing.assert_allclose(ref, expected, rtol=1e-5, atol=1e-7 * expected.max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("integer", [True, False])
def test_kernel_matches_reference_with_shrink_ranges_and_overlap(dtype, integer):
    X = power_law_matrix(dtype=dtype, integer=integer, seed=5)
    options = {"metric": "rp3beta", "alpha": 0.7, "beta": 0.4, "shrink": 0.01}
    got = kernels.item_similarity(X, 10, num_threads=2, **options)
    assert_valid_top_k(got, X.shape[1], 10)
    expected = reference.item_similarity(X.astype(np.float64), 10, **options)
    assert_same_neighbours(got, expected, exact=False)
    part = kernels.item_similarity(X, 10, items=(30, 70), min_overlap=2, **options)
    expected = reference.item_similarity(X.astype(np.float64), 10, items=(30, 70),
                                         min_overlap=2, **options)
    assert_same_neighbours(part, expected, exact=False)


def test_beta_penalises_popular_neighbours():
    # Item 0 is bought with the best-seller 1 by everyone, with item 2 by two buyers only.
    X = sp.csr_matrix(np.array(
        [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]],
        dtype=np.float64))
    plain = kernels.item_similarity(X, 3, metric="rp3beta", alpha=1.0, beta=0.0)
    penalised = kernels.item_similarity(X, 3, metric="rp3beta", alpha=1.0, beta=1.0)
    assert plain[0].indices[0] == 1  # the best-seller is the likeliest next step
    assert penalised[0].indices[0] == 2  # ... until its popularity is divided out


def test_empty_rows_and_columns_and_one_item():
    X = sp.csr_matrix(([3.0, 1.0], ([1, 3], [2, 0])), shape=(5, 4), dtype=np.float32)
    assert kernels.item_similarity(X, 3, metric="rp3beta").nnz == 0  # no co-occurrence
    one = sp.csr_matrix(np.ones((3, 1)))
    assert kernels.item_similarity(one, 3, metric="rp3beta").shape == (1, 1)


@pytest.mark.parametrize("beta", [-0.1, np.nan, np.inf, "0.5"])
def test_bad_beta_is_refused(beta):
    with pytest.raises(ValueError, match="beta"):
        kernels.item_similarity(sp.csr_matrix(np.ones((2, 2))), 1, metric="rp3beta", beta=beta)


def test_nan_weights_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        kernels.item_similarity(sp.csr_matrix(np.array([[1.0, np.nan]])), 1, metric="rp3beta")
