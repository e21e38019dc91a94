"""kernels.user_similarity, the asymmetric cosine and min_overlap of the similarity kernel.

user_similarity is the item kernel run over users (X transposed), so it is
checked against the numpy reference on X.T and against the formulas
computed densely from the users' rows. Tolerances as in test_similarity.py:
with integer weights kernel and reference agree bit for bit (order and ties
included); with real weights to 1e-5 relative on the scores.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import similarity
from django_recs.kernels._reference import similarity as reference
from tests.kernels.test_similarity import (
    RTOL,
    assert_same_neighbours,
    assert_valid_top_k,
    power_law_matrix,
)

USER_METRICS = ("cosine", "jaccard", "asymmetric")


def dense_user_scores(X, metric: str, shrink: float = 0.0, alpha: float = 0.5,
                      min_overlap: int = 1) -> np.ndarray:
    """Every pair of users' score from the documented formulas, densely, in float64."""
    A = X.toarray().astype(np.float64)
    B = (A > 0).astype(np.float64)
    if metric == "jaccard":
        A = B
    common = A @ A.T
    if metric == "cosine":
        norms = np.sqrt((A * A).sum(axis=1))
        denominator = np.outer(norms, norms) + shrink
    elif metric == "asymmetric":
        squared = (A * A).sum(axis=1)
        denominator = np.outer(squared**alpha, squared ** (1 - alpha)) + shrink
    else:
        counts = B.sum(axis=1)
        denominator = counts[:, None] + counts[None, :] - common + shrink
    overlap = B @ B.T
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where((common > 0) & (overlap >= min_overlap), common / denominator, 0.0)
    np.fill_diagonal(scores, 0.0)
    return scores.astype(np.float32)


@pytest.mark.parametrize("metric", USER_METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("min_overlap", [1, 2])
def test_user_similarity_is_the_reference_on_x_transposed(metric, dtype, min_overlap):
    X = power_law_matrix(n_users=150, n_items=200, nnz=2500, dtype=dtype, seed=2)
    got = kernels.user_similarity(X, 9, metric=metric, alpha=0.3, min_overlap=min_overlap,
                                  num_threads=2)
    expected = reference.item_similarity(X.T.tocsr(), 9, metric=metric, alpha=0.3,
                                         min_overlap=min_overlap)
    assert_valid_top_k(got, 150, 9)
    assert_same_neighbours(got, expected, exact=True)
    assert got.nnz > 0


@pytest.mark.parametrize("metric", USER_METRICS)
@pytest.mark.parametrize("min_overlap", [1, 2, 3])
def test_user_similarity_follows_the_formulas(metric, min_overlap):
    X = power_law_matrix(n_users=40, n_items=30, nnz=400, integer=False, seed=4)
    dense = dense_user_scores(X, metric, shrink=0.7, alpha=0.2, min_overlap=min_overlap)
    got = kernels.user_similarity(X, 39, metric=metric, shrink=0.7, alpha=0.2,
                                  min_overlap=min_overlap)
    np.testing.assert_allclose(got.toarray(), dense, rtol=RTOL)
    ref = reference.item_similarity(X.T.tocsr(), 39, metric=metric, shrink=0.7, alpha=0.2,
                                    min_overlap=min_overlap)
    np.testing.assert_allclose(ref.toarray(), dense, rtol=RTOL)
    if min_overlap > 1:
        assert (dense > 0).sum() < (dense_user_scores(X, metric, 0.7, 0.2) > 0).sum()


def test_asymmetric_cosine_by_hand():
    # u0 has items {0, 1}, u1 has {0, 1, 2, 3}, u2 has {3}; all weights 1.
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]], dtype=np.float64))
    S = kernels.user_similarity(X, 2, metric="asymmetric", alpha=0.8).toarray()
    # Aiolli: |I_u & I_v| / (|I_u|^alpha |I_v|^(1 - alpha))
    assert S[0, 1] == pytest.approx(2 / (2**0.8 * 4**0.2))
    assert S[1, 0] == pytest.approx(2 / (4**0.8 * 2**0.2))
    assert S[1, 2] == pytest.approx(1 / (4**0.8 * 1**0.2))
    half = kernels.user_similarity(X, 2, metric="asymmetric", alpha=0.5).toarray()
    np.testing.assert_allclose(half, kernels.user_similarity(X, 2).toarray(), rtol=1e-6)
    full = kernels.user_similarity(X, 2, metric="asymmetric", alpha=1.0).toarray()
    assert full[0, 1] == pytest.approx(1.0)  # u1 has every item of u0


def test_min_overlap_by_hand():
    # u0 and u1 share two items with small weights, u0 and u2 one item with a big weight.
    X = sp.csr_matrix(np.array([[1, 1, 5, 0], [1, 1, 0, 0], [0, 0, 5, 1]], dtype=np.float64))
    for metric in USER_METRICS:
        plain = kernels.user_similarity(X, 2, metric=metric).toarray()
        assert plain[0, 2] > 0 and plain[0, 1] > 0
        floor = kernels.user_similarity(X, 2, metric=metric, min_overlap=2).toarray()
        assert floor[0, 2] == 0 and floor[2, 0] == 0  # one common item only
        assert floor[0, 1] == pytest.approx(plain[0, 1])
        none = kernels.user_similarity(X, 2, metric=metric, min_overlap=3)
        assert none.nnz == 0


@pytest.mark.parametrize("metric", ("cosine", "jaccard", "conditional", "asymmetric"))
def test_item_similarity_min_overlap_matches_the_reference(metric):
    X = power_law_matrix(n_users=300, n_items=120, nnz=2500, seed=8)
    for min_overlap in (2, 4):
        got = kernels.item_similarity(X, 10, metric=metric, min_overlap=min_overlap)
        expected = reference.item_similarity(X, 10, metric=metric, min_overlap=min_overlap)
        assert_same_neighbours(got, expected, exact=True)
        # Every kept pair has that many common users.
        B = (X.toarray() > 0).astype(np.int64)
        overlap = B.T @ B
        rows = np.repeat(np.arange(120), np.diff(got.indptr))
        assert (overlap[rows, got.indices] >= min_overlap).all()


def test_user_ranges_equal_the_rows_of_the_whole():
    X = power_law_matrix(n_users=120, n_items=80, nnz=1500, integer=False, seed=9)
    for metric in USER_METRICS:
        full = kernels.user_similarity(X, 7, metric=metric, alpha=0.3, min_overlap=2)
        for start, stop in [(0, 120), (0, 0), (5, 6), (10, 77), (119, 120), (120, 120)]:
            got = kernels.user_similarity(X, 7, metric=metric, alpha=0.3, min_overlap=2,
                                          users=(start, stop))
            expected = full[start:stop]
            assert got.shape == (stop - start, 120)
            np.testing.assert_array_equal(got.indptr, expected.indptr)
            np.testing.assert_array_equal(got.indices, expected.indices)
            np.testing.assert_array_equal(got.data, expected.data)


def test_results_do_not_depend_on_threads_or_transpose_groups(monkeypatch):
    X = power_law_matrix(n_users=400, n_items=150, nnz=6000, dtype=np.float32, integer=False)
    expected = kernels.user_similarity(X, 10, metric="asymmetric", alpha=0.4, min_overlap=2,
                                       num_threads=1)
    for threads in (2, 3):
        got = kernels.user_similarity(X, 10, metric="asymmetric", alpha=0.4, min_overlap=2,
                                      num_threads=threads)
        assert_same_neighbours(got, expected, exact=True)
    monkeypatch.setattr(similarity, "_MIN_GROUP_NNZ", 1)  # many small transpose groups
    got = kernels.user_similarity(X, 10, metric="asymmetric", alpha=0.4, min_overlap=2)
    assert_same_neighbours(got, expected, exact=True)
    # The counting pass that sizes the output exactly counts the overlap too.
    monkeypatch.setattr(similarity, "_FIXED_SLOTS_MIN", 0)
    monkeypatch.setattr(similarity, "_FIXED_SLOTS_PER_NONZERO", 0)
    got = kernels.user_similarity(X, 10, metric="asymmetric", alpha=0.4, min_overlap=2)
    assert_same_neighbours(got, expected, exact=True)


def test_reference_fallback_gives_the_same_result(monkeypatch):
    X = power_law_matrix(n_users=100, n_items=60, nnz=900, seed=12)
    native = {m: kernels.user_similarity(X, 6, metric=m, min_overlap=2) for m in USER_METRICS}
    monkeypatch.setattr(similarity, "native_module", lambda name: None)
    for metric in USER_METRICS:
        got = kernels.user_similarity(X, 6, metric=metric, min_overlap=2)
        assert_same_neighbours(got, native[metric], exact=True)


def test_edge_cases():
    # One user: nobody to be similar to.
    one = kernels.user_similarity(sp.csr_matrix(np.ones((1, 4))), 3)
    assert one.shape == (1, 1) and one.nnz == 0
    # Users without items get empty rows and are nobody's neighbour.
    X = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=np.float32))
    S = kernels.user_similarity(X, 5)
    assert_valid_top_k(S, 4, 5)
    assert S[1].nnz == 0 and S[3].nnz == 0 and not np.isin([1, 3], S.indices).any()
    # No users, no items, no interactions.
    for shape in [(0, 0), (0, 5), (5, 0), (3, 4)]:
        empty = kernels.user_similarity(sp.csr_matrix(shape, dtype=np.float32), 3)
        assert empty.shape == (shape[0], shape[0]) and empty.nnz == 0
    # Duplicate entries are summed.
    duplicated = sp.coo_matrix((np.array([1.0, 2.0, 3.0, 1.0]),
                                (np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]))), shape=(2, 2))
    summed = sp.csr_matrix(duplicated.toarray())
    assert_same_neighbours(kernels.user_similarity(duplicated, 1),
                           kernels.user_similarity(summed, 1), exact=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "asymmetric", "alpha": 1.5}, r"alpha of the asymmetric cosine must be in \[0, 1\]"),
        ({"metric": "pearson"}, "unknown metric 'pearson'"),
        ({"min_overlap": 0}, "min_overlap must be >= 1"),
        ({"min_overlap": 1.5}, "min_overlap must be an integer"),
        ({"users": (3, 2)}, r"users \(3, 2\) must satisfy 0 <= start <= stop <= n_users \(10\)"),
        ({"users": (0, 11)}, "n_users"),
        ({"users": "all"}, "users must be a \\(start, stop\\) pair"),
        ({"k": 0}, "k must be >= 1"),
        ({"shrink": -1.0}, "shrink"),
    ],
)
def test_bad_arguments_are_refused_clearly(kwargs, message):
    X = power_law_matrix(n_users=10, n_items=8, nnz=30)
    with pytest.raises(ValueError, match=message):
        kernels.user_similarity(X, **{"k": 3, **kwargs})


def test_bad_matrices_are_refused_clearly():
    with pytest.raises(ValueError, match="X must be a scipy.sparse matrix"):
        kernels.user_similarity(np.ones((3, 3)), 2)
    bad = sp.csr_matrix(np.array([[1.0, -1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="negative"):
        kernels.user_similarity(bad, 2)
    with pytest.raises(ValueError, match="min_overlap"):
        kernels.item_similarity(bad.multiply(bad), 2, min_overlap=-2)
