"""kernels.item_similarity: the compiled kernel against the scipy reference.

Tolerances: scores equal to 1e-5 relative. With integer weights every sum is
exact in double precision, so kernel and reference agree bit for bit,
neighbour order and ties included; with real-valued weights they agree on
the neighbour sets (no near-ties at these seeds) and to 1e-5 on the scores.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import similarity
from django_recs.kernels._reference import similarity as reference

METRICS = ("cosine", "jaccard", "conditional")
RTOL = 1e-5


def power_law_matrix(
    n_users=300, n_items=120, nnz=2500, *, dtype=np.float64, integer=True, seed=0
) -> sp.csr_matrix:
    """Users and items drawn with power-law probabilities, like a shop."""
    rng = np.random.default_rng(seed)

    def popularity(n, exponent):
        weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
        rng.shuffle(weights)
        return weights / weights.sum()

    users = rng.choice(n_users, size=nnz, p=popularity(n_users, 0.6))
    items = rng.choice(n_items, size=nnz, p=popularity(n_items, 0.9))
    if integer:
        values = rng.integers(1, 6, size=nnz).astype(dtype)
    else:
        values = rng.lognormal(0.0, 1.0, size=nnz).astype(dtype)
    X = sp.coo_matrix((values, (users, items)), shape=(n_users, n_items)).tocsr()
    X.sum_duplicates()
    return X


def dense_scores(X, metric: str, shrink: float = 0.0, alpha: float = 0.5) -> np.ndarray:
    """Every pair's score from the formulas in the docstring, densely, in float64."""
    A = X.toarray().astype(np.float64)
    if metric != "cosine":
        A = (A > 0).astype(np.float64)
    common = A.T @ A
    if metric == "cosine":
        norms = np.sqrt((A * A).sum(axis=0))
        denominator = np.outer(norms, norms) + shrink
    elif metric == "jaccard":
        counts = A.sum(axis=0)
        denominator = counts[:, None] + counts[None, :] - common + shrink
    else:
        counts = A.sum(axis=0)
        denominator = np.outer(counts, counts**alpha) + shrink
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(common > 0, common / denominator, 0.0)
    np.fill_diagonal(scores, 0.0)
    return scores.astype(np.float32)


def assert_valid_top_k(S: sp.csr_matrix, n_items: int, k: int) -> None:
    """The structure a caller relies on, whatever the input."""
    assert isinstance(S, sp.csr_matrix)
    assert S.shape == (n_items, n_items)
    assert S.dtype == np.float32
    lengths = np.diff(S.indptr)
    assert (lengths <= k).all()
    for row in range(n_items):
        cols = S.indices[S.indptr[row] : S.indptr[row + 1]]
        vals = S.data[S.indptr[row] : S.indptr[row + 1]]
        assert row not in cols, "an item is never its own neighbour"
        assert len(set(cols.tolist())) == len(cols)
        assert (vals > 0).all()
        # Descending score; equal scores by ascending item index.
        for a in range(len(cols) - 1):
            assert vals[a] > vals[a + 1] or (vals[a] == vals[a + 1] and cols[a] < cols[a + 1])


def assert_same_neighbours(got: sp.csr_matrix, expected: sp.csr_matrix, *, exact: bool) -> None:
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    if exact:
        np.testing.assert_array_equal(got.indices, expected.indices)
        np.testing.assert_array_equal(got.data, expected.data)
        return
    for row in range(got.shape[0]):
        span = slice(got.indptr[row], got.indptr[row + 1])
        assert set(got.indices[span].tolist()) == set(expected.indices[span].tolist()), row
    got_sorted, expected_sorted = got.copy(), expected.copy()
    got_sorted.sort_indices()
    expected_sorted.sort_indices()
    np.testing.assert_allclose(got_sorted.data, expected_sorted.data, rtol=RTOL)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 7, 40])
def test_matches_reference_exactly_on_integer_weights(metric, dtype, k):
    X = power_law_matrix(dtype=dtype, seed=k)
    got = kernels.item_similarity(X, k, metric=metric, num_threads=2)
    expected = reference.item_similarity(X, k, metric=metric)
    assert_valid_top_k(got, X.shape[1], k)
    assert_same_neighbours(got, expected, exact=True)
    assert got.nnz > 0


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference_on_real_weights(metric, dtype):
    X = power_law_matrix(n_users=500, n_items=200, nnz=5000, dtype=dtype, integer=False, seed=3)
    for k in (5, 30):
        got = kernels.item_similarity(X, k, metric=metric, shrink=0.5, alpha=0.3)
        expected = reference.item_similarity(X, k, metric=metric, shrink=0.5, alpha=0.3)
        assert_valid_top_k(got, X.shape[1], k)
        assert_same_neighbours(got, expected, exact=False)


@pytest.mark.parametrize("metric", METRICS)
def test_reference_follows_the_documented_formulas(metric):
    X = power_law_matrix(n_users=60, n_items=25, nnz=300, integer=False, seed=7)
    dense = dense_scores(X, metric, shrink=1.5, alpha=0.25)
    S = reference.item_similarity(X, 24, metric=metric, shrink=1.5, alpha=0.25)
    np.testing.assert_allclose(S.toarray(), dense, rtol=RTOL)
    got = kernels.item_similarity(X, 24, metric=metric, shrink=1.5, alpha=0.25)
    np.testing.assert_allclose(got.toarray(), dense, rtol=RTOL)


def test_scores_by_hand():
    # Users: 0 bought items 0 and 1 (weights 1, 2); 1 bought items 0, 1, 2 (3, 4, 1);
    # 2 bought item 2 only.
    X = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0], [0.0, 0.0, 5.0]]))
    cosine = kernels.item_similarity(X, 2).toarray()
    assert cosine[0, 1] == pytest.approx((1 * 2 + 3 * 4) / (np.sqrt(10) * np.sqrt(20)))
    assert cosine[0, 2] == pytest.approx(3 / (np.sqrt(10) * np.sqrt(26)))
    jaccard = kernels.item_similarity(X, 2, metric="jaccard").toarray()
    assert jaccard[0, 1] == pytest.approx(1.0)  # the same two buyers
    assert jaccard[0, 2] == pytest.approx(1 / 3)  # one shared of three buyers
    conditional = kernels.item_similarity(X, 2, metric="conditional", alpha=0.0).toarray()
    assert conditional[0, 2] == pytest.approx(1 / 2)  # P(2 | 0): one of item 0's two buyers
    assert conditional[2, 0] == pytest.approx(1 / 2)
    damped = kernels.item_similarity(X, 2, metric="conditional", alpha=1.0).toarray()
    assert damped[0, 1] == pytest.approx(2 / (2 * 2))
    shrunk = kernels.item_similarity(X, 2, shrink=10.0).toarray()
    assert shrunk[0, 1] == pytest.approx(14 / (np.sqrt(10) * np.sqrt(20) + 10))


def test_conditional_is_asymmetric_and_damps_popular_items():
    # Item 0 is a best-seller bought by everyone; item 1 by two of the buyers.
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 0, 0]], dtype=np.float64))
    plain = kernels.item_similarity(X, 2, metric="conditional", alpha=0.0).toarray()
    assert plain[1, 0] == pytest.approx(1.0)  # every buyer of 1 bought 0
    assert plain[0, 1] == pytest.approx(0.5)  # half the buyers of 0 bought 1
    damped = kernels.item_similarity(X, 2, metric="conditional", alpha=0.5).toarray()
    assert damped[1, 0] == pytest.approx(2 / (2 * 4**0.5))


def test_empty_rows_and_columns():
    X = power_law_matrix(n_users=200, n_items=60, nnz=800).tolil()
    X[:, 5] = 0  # an item nobody bought
    X[17, :] = 0  # a user with no interactions
    X[:, 9] = 0
    X[3, 9] = 2.0  # an item whose only buyer bought nothing else
    X[3, :9] = 0
    X[3, 10:] = 0
    X = X.tocsr()
    for metric in METRICS:
        S = kernels.item_similarity(X, 10, metric=metric)
        assert_valid_top_k(S, 60, 10)
        for lonely in (5, 9):
            assert S.indptr[lonely + 1] == S.indptr[lonely]
            assert lonely not in S.indices
        assert_same_neighbours(S, reference.item_similarity(X, 10, metric=metric), exact=True)


@pytest.mark.parametrize("metric", METRICS)
def test_one_item(metric):
    X = sp.csr_matrix(np.array([[1.0], [2.0]]))
    S = kernels.item_similarity(X, 5, metric=metric)
    assert S.shape == (1, 1) and S.nnz == 0 and S.dtype == np.float32


def test_one_user_ties_go_to_the_lower_index():
    # One buyer of everything: every pair scores 1, so order is by item index.
    X = sp.csr_matrix(np.ones((1, 6)))
    for metric in ("cosine", "jaccard"):
        S = kernels.item_similarity(X, 3, metric=metric)
        assert_valid_top_k(S, 6, 3)
        np.testing.assert_array_equal(S[0].indices, [1, 2, 3])
        np.testing.assert_array_equal(S[2].indices, [0, 1, 3])
        np.testing.assert_array_equal(S[5].indices, [0, 1, 2])
        np.testing.assert_allclose(S.data, 1.0)


def test_ties_on_a_larger_matrix_match_the_reference():
    # Binary, blocky data: many equal scores at the k-th place.
    rng = np.random.default_rng(11)
    X = sp.csr_matrix((rng.random((80, 50)) < 0.1).astype(np.float32))
    X = sp.vstack([X, X, X]).tocsr()
    for metric in METRICS:
        got = kernels.item_similarity(X, 4, metric=metric)
        expected = reference.item_similarity(X, 4, metric=metric)
        assert_same_neighbours(got, expected, exact=True)


def test_duplicate_entries_are_summed():
    rows = np.array([0, 0, 1, 1, 1, 2, 2])
    cols = np.array([0, 0, 1, 0, 1, 2, 0])
    vals = np.array([1.0, 2.0, 1.0, 1.0, 3.0, 5.0, 1.0])
    duplicated = sp.coo_matrix((vals, (rows, cols)), shape=(3, 3))
    summed = sp.csr_matrix(duplicated.toarray())
    for metric in METRICS:
        got = kernels.item_similarity(duplicated, 2, metric=metric)
        expected = kernels.item_similarity(summed, 2, metric=metric)
        assert_same_neighbours(got, expected, exact=True)


def test_explicit_zeros_are_no_interaction_and_input_is_untouched():
    X = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]))
    X.data[X.indices == 2] = 0.0  # stored, but zero
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    S = kernels.item_similarity(X, 5, metric="jaccard")
    assert S[2].nnz == 0 and 2 not in S.indices
    np.testing.assert_array_equal(X.data, before[0])
    np.testing.assert_array_equal(X.indices, before[1])


@pytest.mark.parametrize("metric", METRICS)
def test_k_at_or_above_n_items_returns_every_neighbour(metric):
    X = power_law_matrix(n_users=150, n_items=40, nnz=700)
    dense = dense_scores(X, metric)
    for k in (39, 40, 1000):
        S = kernels.item_similarity(X, k, metric=metric)
        assert_valid_top_k(S, 40, k)
        np.testing.assert_array_equal(np.diff(S.indptr), (dense > 0).sum(axis=1))
        np.testing.assert_allclose(S.toarray(), dense, rtol=RTOL)


@pytest.mark.parametrize("shape", [(0, 0), (5, 0), (0, 5), (4, 6)])
def test_empty_matrix_gives_empty_result_of_the_right_shape(shape):
    S = kernels.item_similarity(sp.csr_matrix(shape, dtype=np.float32), 3)
    assert S.shape == (shape[1], shape[1])
    assert S.nnz == 0 and S.dtype == np.float32


def test_any_sparse_format_and_integer_dtype():
    X = power_law_matrix(n_users=100, n_items=30, nnz=400)
    expected = kernels.item_similarity(X, 5)
    for other in (X.tocoo(), X.tocsc(), X.tolil(), sp.csr_array(X), X.astype(np.int64)):
        assert_same_neighbours(kernels.item_similarity(other, 5), expected, exact=True)


def test_results_do_not_depend_on_num_threads():
    X = power_law_matrix(n_users=600, n_items=250, nnz=9000, dtype=np.float32, integer=False)
    for metric in METRICS:
        results = [
            kernels.item_similarity(X, 10, metric=metric, num_threads=t) for t in (1, 2, 3, 0)
        ]
        for other in results[1:]:
            assert_same_neighbours(other, results[0], exact=True)


def test_int64_indices_and_every_output_layout(monkeypatch):
    X = power_law_matrix(n_users=250, n_items=90, nnz=2000, integer=False, seed=5)
    expected = reference.item_similarity(X, 8, metric="cosine")
    wide = X.copy()
    wide.indptr = wide.indptr.astype(np.int64)
    wide.indices = wide.indices.astype(np.int64)
    assert_same_neighbours(kernels.item_similarity(wide, 8), expected, exact=False)
    # Many small transpose groups; int64 output indices; the counting pass
    # that sizes the output exactly instead of reserving k slots per row.
    monkeypatch.setattr(similarity, "_MIN_GROUP_NNZ", 1)
    assert_same_neighbours(kernels.item_similarity(X, 8), expected, exact=False)
    monkeypatch.setattr(similarity, "_INT32_MAX", 10)
    assert_same_neighbours(kernels.item_similarity(wide, 8), expected, exact=False)
    monkeypatch.setattr(similarity, "_FIXED_SLOTS_MIN", 0)
    monkeypatch.setattr(similarity, "_FIXED_SLOTS_PER_NONZERO", 0)
    assert_same_neighbours(kernels.item_similarity(X, 8), expected, exact=False)
    assert_same_neighbours(kernels.item_similarity(wide, 8), expected, exact=False)


def test_reference_fallback_gives_the_same_result(monkeypatch):
    X = power_law_matrix(n_users=200, n_items=70, nnz=1500)
    native = {metric: kernels.item_similarity(X, 6, metric=metric) for metric in METRICS}
    monkeypatch.setattr(similarity, "native_module", lambda name: None)
    for metric in METRICS:
        assert_same_neighbours(
            kernels.item_similarity(X, 6, metric=metric), native[metric], exact=True
        )


@pytest.mark.parametrize(
    ("make_input", "kwargs", "message"),
    [
        (lambda X: _with_value(X, np.nan), {}, "NaN"),
        (lambda X: _with_value(X, np.inf), {}, "infinite"),
        (lambda X: _with_value(X, -1.0), {}, "negative"),
        (lambda X: X, {"k": 0}, "k must be >= 1"),
        (lambda X: X, {"k": -3}, "k must be >= 1"),
        (lambda X: X, {"k": 2.5}, "k must be an integer"),
        (lambda X: X, {"metric": "pearson"}, "unknown metric 'pearson'"),
        (lambda X: sp.coo_array(np.ones(4)), {}, "2-D"),
        (lambda X: X.toarray(), {}, "scipy.sparse"),
        (lambda X: X, {"shrink": -1.0}, "shrink"),
        (lambda X: X, {"alpha": float("nan")}, "alpha"),
        (lambda X: X, {"num_threads": -1}, "num_threads"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_problem(make_input, kwargs, message):
    X = power_law_matrix(n_users=20, n_items=8, nnz=40)
    with pytest.raises(ValueError, match=message):
        kernels.item_similarity(make_input(X), **kwargs)


def _with_value(X: sp.csr_matrix, value: float) -> sp.csr_matrix:
    X = X.copy()
    X.data[0] = value
    return X
