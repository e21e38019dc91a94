"""kernels.neighbour_vote: the compiled kernel against the numpy reference and the formulas.

Tolerances: kernel and reference sum the same float64 products (a product
of two float32 values is exact in float64) in the same order, so they agree
bit for bit — items, order, ties, scores and reasons — for float32 and
float64 weights. Against the dense brute force (a plain matrix product,
summed in another order) scores agree to 1e-6 relative and the lists as
sets of (item, score) up to ties at the n-th place.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import vote
from django_recs.kernels._reference import vote as reference
from tests.kernels.test_similarity import power_law_matrix


def seen_part(X: sp.csr_matrix, seed: int = 0, fraction: float = 0.4) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    seen = X.copy()
    seen.data = (rng.random(seen.nnz) < fraction).astype(seen.dtype)
    seen.eliminate_zeros()
    return seen


def brute_force(X, S, seen, start: int = 0):
    """Dense scores (m x n_items) of the formula, seen items zeroed, and the dense reason sums."""
    A = X.toarray().astype(np.float64)
    W = S.toarray().astype(np.float64)
    scores = W @ A
    if seen is not None:
        scores[seen.toarray()[start : start + S.shape[0]] != 0] = 0.0
    return scores


def brute_force_reason(X, S, row: int, user: int, item: int) -> int:
    """The history item i != item maximising the similarity mass of neighbours having both."""
    A = X.toarray() != 0
    W = S.toarray()[row]
    history = np.flatnonzero(A[user])
    best, found = 0.0, -1
    for i in history:
        if i == item:
            continue
        mass = W[A[:, i] & A[:, item]].astype(np.float64).sum()
        if mass > best * (1 + 1e-9):
            best, found = mass, i
    return found


def assert_equal_results(got, expected) -> None:
    for name, a, b in zip(("recommended", "scores", "reasons"), got, expected):
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("n", [1, 8, 200])
def test_matches_the_reference_exactly(dtype, integer, n):
    X = power_law_matrix(n_users=300, n_items=120, nnz=2500, dtype=dtype, integer=integer,
                         seed=n)
    S = kernels.user_similarity(X, 10)
    seen = seen_part(X)
    got = kernels.neighbour_vote(X, S, n, seen=seen, num_threads=2)
    expected = reference.neighbour_vote(X, S, n, seen, 0)
    assert_equal_results(got, expected)
    recommended, scores, reasons = got
    assert recommended.dtype == np.int32 and scores.dtype == np.float32
    assert reasons.dtype == np.int32 and recommended.shape == (300, n)
    assert (recommended >= 0).sum() > 0 and (reasons >= 0).sum() > 0


def test_follows_the_formula_and_the_reason_definition():
    X = power_law_matrix(n_users=80, n_items=40, nnz=700, integer=False, seed=3)
    S = kernels.user_similarity(X, 6, metric="jaccard")
    seen = seen_part(X, seed=1)
    recommended, scores, reasons = kernels.neighbour_vote(X, S, 5, seen=seen)
    dense = brute_force(X, S, seen)
    seen_dense = seen.toarray() != 0
    for u in range(80):
        listed = recommended[u][recommended[u] >= 0]
        positive = np.flatnonzero(dense[u] > 0)
        assert len(listed) == min(5, positive.size)
        assert not seen_dense[u, listed].any()
        np.testing.assert_allclose(scores[u, : len(listed)], dense[u, listed], rtol=1e-6)
        assert (np.diff(scores[u, : len(listed)]) <= 0).all()  # best first
        if len(listed):
            # Nothing left out scores above the last one listed.
            outside = np.setdiff1d(positive, listed)
            assert (dense[u, outside] <= scores[u, len(listed) - 1] * (1 + 1e-6)).all()
        assert (recommended[u, len(listed):] == -1).all()
        assert (scores[u, len(listed):] == 0).all() and (reasons[u, len(listed):] == -1).all()
        for slot, j in enumerate(listed):
            assert reasons[u, slot] == brute_force_reason(X, S, u, u, j)
    assert (reasons >= 0).sum() > 50


def test_ties_go_to_the_lower_item_and_reasons_to_the_lower_history_item():
    # User 0's one neighbour (user 1) has items 2, 3, 4 with equal weights:
    # equal scores, listed by item index. User 0 has items 0 and 1, both
    # shared with user 1: equal reason sums, the lower item wins.
    X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 1, 2, 2, 2]], dtype=np.float32))
    S = sp.csr_matrix(np.array([[0, 0.5], [0.5, 0]], dtype=np.float32))
    recommended, scores, reasons = kernels.neighbour_vote(X, S, 4)
    np.testing.assert_array_equal(recommended[0], [2, 3, 4, 0])
    np.testing.assert_allclose(scores[0], [1.0, 1.0, 1.0, 0.5])
    np.testing.assert_array_equal(reasons[0], [0, 0, 0, 1])  # item 0 is not its own reason
    # User 1 gets user 0's items 0 and 1, which it has itself (not seen): their
    # only possible reasons are the other history items.
    np.testing.assert_array_equal(recommended[1], [0, 1, -1, -1])
    np.testing.assert_array_equal(reasons[1], [1, 0, -1, -1])


def test_seen_items_are_never_recommended_and_unseen_history_may_be():
    X = power_law_matrix(n_users=120, n_items=50, nnz=1200, seed=5)
    S = kernels.user_similarity(X, 8)
    everything = kernels.neighbour_vote(X, S, 50, seen=X)[0]
    nothing = kernels.neighbour_vote(X, S, 50)[0]
    A = X.toarray() != 0
    for u in range(120):
        assert not A[u, everything[u][everything[u] >= 0]].any()
    assert any(A[u, nothing[u][nothing[u] >= 0]].any() for u in range(120))


def test_user_ranges_equal_the_rows_of_the_whole():
    X = power_law_matrix(n_users=150, n_items=60, nnz=1500, integer=False, seed=6)
    S = kernels.user_similarity(X, 7)
    seen = seen_part(X)
    whole = kernels.neighbour_vote(X, S, 6, seen=seen)
    for start, stop in [(0, 150), (0, 0), (3, 4), (20, 97), (149, 150), (150, 150)]:
        rows = kernels.user_similarity(X, 7, users=(start, stop))
        got = kernels.neighbour_vote(X, rows, 6, seen=seen, users=(start, stop))
        assert_equal_results(got, tuple(part[start:stop] for part in whole))
        assert_equal_results(reference.neighbour_vote(X, rows, 6, seen, start), got)


def test_results_do_not_depend_on_threads_and_long_histories_explained_in_slices(monkeypatch):
    X = power_law_matrix(n_users=200, n_items=300, nnz=9000, dtype=np.float32, integer=False,
                         seed=7)
    S = kernels.user_similarity(X, 12)
    seen = seen_part(X)
    expected = kernels.neighbour_vote(X, S, 30, seen=seen, num_threads=1)
    for threads in (2, 3, 0):
        assert_equal_results(kernels.neighbour_vote(X, S, 30, seen=seen, num_threads=threads),
                             expected)
    # A reason buffer smaller than n x history: recommendations explained in slices.
    assert np.diff(X.indptr).max() * 30 > 64
    monkeypatch.setattr(vote, "_REASON_CAPACITY", 64)
    assert_equal_results(kernels.neighbour_vote(X, S, 30, seen=seen), expected)


def test_without_reasons_the_lists_are_the_same():
    X = power_law_matrix(n_users=100, n_items=40, nnz=900, seed=8)
    S = kernels.user_similarity(X, 5)
    with_reasons = kernels.neighbour_vote(X, S, 7)
    recommended, scores, reasons = kernels.neighbour_vote(X, S, 7, reasons=False)
    np.testing.assert_array_equal(recommended, with_reasons[0])
    np.testing.assert_array_equal(scores, with_reasons[1])
    assert (reasons == -1).all()


def test_neighbour_order_duplicates_and_explicit_zeros():
    X = power_law_matrix(n_users=60, n_items=30, nnz=500, seed=9)
    S = kernels.user_similarity(X, 5)
    expected = kernels.neighbour_vote(X, S, 6)
    # Rows in another order: the same sums, added in another order (equal to
    # float64 rounding, so the same lists here).
    shuffled = S.copy()
    shuffled.sort_indices()
    got = kernels.neighbour_vote(X, shuffled, 6)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
    # A neighbour given twice with half the similarity votes as once with all of it.
    halves = sp.csr_matrix((np.repeat(S.data / 2, 2), np.repeat(S.indices, 2), S.indptr * 2),
                           shape=S.shape)
    assert not halves.has_canonical_format
    got = kernels.neighbour_vote(X, halves, 6)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
    # Explicit zeros in X are no interaction; X is not modified.
    zeros = X.copy()
    zeros.data[::4] = 0.0
    before = zeros.data.copy()
    cleaned = zeros.copy()
    cleaned.eliminate_zeros()
    assert_equal_results(kernels.neighbour_vote(zeros, S, 6), kernels.neighbour_vote(cleaned, S, 6))
    np.testing.assert_array_equal(zeros.data, before)


def test_edge_cases():
    X = sp.csr_matrix(np.array([[1, 0, 2], [0, 0, 0], [3, 1, 0]], dtype=np.float32))
    S = kernels.user_similarity(X, 2)
    recommended, scores, reasons = kernels.neighbour_vote(X, S, 5)
    assert recommended.shape == (3, 5)
    assert (recommended[1] == -1).all()  # no history, no neighbours
    # n above the number of items: padded.
    assert (recommended[0] >= 0).sum() <= 3
    # One user: no neighbour, nothing to vote.
    one = kernels.neighbour_vote(sp.csr_matrix(np.ones((1, 3))), sp.csr_matrix((1, 1)), 2)
    assert (one[0] == -1).all() and (one[1] == 0).all()
    # No users, no items, no interactions.
    for shape in [(0, 0), (0, 4), (3, 0), (3, 4)]:
        empty = sp.csr_matrix(shape, dtype=np.float32)
        got = kernels.neighbour_vote(empty, sp.csr_matrix((shape[0], shape[0])), 3)
        assert got[0].shape == (shape[0], 3) and (got[0] == -1).all()
    # A neighbour without history votes for nothing.
    lonely = kernels.neighbour_vote(X, sp.csr_matrix(np.array([[0, 1.0, 0]])), 3, users=(0, 1))
    assert (lonely[0] == -1).all()


def test_reference_fallback_gives_the_same_result(monkeypatch):
    X = power_law_matrix(n_users=90, n_items=40, nnz=800, integer=False, seed=10)
    S = kernels.user_similarity(X, 6)
    seen = seen_part(X)
    native = kernels.neighbour_vote(X, S, 5, seen=seen)
    monkeypatch.setattr(vote, "native_module", lambda name: None)
    assert_equal_results(kernels.neighbour_vote(X, S, 5, seen=seen), native)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda X, S: kernels.neighbour_vote(X, S, 0), "n must be >= 1"),
        (lambda X, S: kernels.neighbour_vote(X, S, 2.5), "n must be an integer"),
        (lambda X, S: kernels.neighbour_vote(X.toarray(), S, 2), "X must be a scipy.sparse"),
        (lambda X, S: kernels.neighbour_vote(X, S.toarray(), 2), "neighbours must be a scipy"),
        (lambda X, S: kernels.neighbour_vote(X, S[:3], 2),
         r"neighbours must have shape \(6, 6\)"),
        (lambda X, S: kernels.neighbour_vote(X, S[:, :3], 2), "neighbours must have shape"),
        (lambda X, S: kernels.neighbour_vote(X, S, 2, users=(1, 4)),
         r"neighbours must have shape \(3, 6\)"),
        (lambda X, S: kernels.neighbour_vote(X, -S, 2), "negative similarities"),
        (lambda X, S: kernels.neighbour_vote(
            X, sp.csr_matrix((S.data, S.indices + 6, S.indptr), shape=S.shape), 2),
         r"user indexes outside \[0, 6\)"),
        (lambda X, S: kernels.neighbour_vote(X, S * np.nan, 2), "NaN or infinite"),
        (lambda X, S: kernels.neighbour_vote(-X, S, 2), "negative"),
        (lambda X, S: kernels.neighbour_vote(X, S, 2, seen=X[:2]), "seen must have shape"),
        (lambda X, S: kernels.neighbour_vote(X, S, 2, seen=X.toarray()), "seen must be a scipy"),
        (lambda X, S: kernels.neighbour_vote(X, S, 2, users=(4, 2)), "users"),
        (lambda X, S: kernels.neighbour_vote(X, S, 2, num_threads=-1), "num_threads"),
    ],
)
def test_bad_input_is_refused_clearly(call, message):
    X = power_law_matrix(n_users=6, n_items=5, nnz=20)
    S = kernels.user_similarity(X, 2)
    assert S.nnz > 0
    with pytest.raises(ValueError, match=message):
        call(X, S)


def test_writes_into_the_arrays_given_and_refuses_unfit_ones(monkeypatch):
    X = power_law_matrix(n_users=50, n_items=30, nnz=400, seed=11)
    S = kernels.user_similarity(X, 4, users=(10, 30))
    expected = kernels.neighbour_vote(X, S, 5, users=(10, 30))
    for fallback in (False, True):
        if fallback:
            monkeypatch.setattr(vote, "native_module", lambda name: None)
        whole = (np.full((50, 5), 7, np.int32), np.full((50, 5), 7, np.float32),
                 np.full((50, 5), 7, np.int32))
        out = tuple(array[10:30] for array in whole)
        got = kernels.neighbour_vote(X, S, 5, users=(10, 30), out=out)
        assert all(a is b for a, b in zip(got, out))
        assert_equal_results(got, expected)
        assert all((array[:10] == 7).all() and (array[30:] == 7).all() for array in whole)
    good = tuple(np.empty((20, 5), dtype) for dtype in (np.int32, np.float32, np.int32))
    for bad, message in [
        (good[:2], "out must be three arrays"),
        ((good[0].astype(np.int64), good[1], good[2]), "out's recommended must be"),
        ((good[0], np.empty((20, 4), np.float32), good[2]), "out's scores must be"),
        ((good[0], good[1], np.empty((5, 20), np.int32).T), "out's reasons must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            kernels.neighbour_vote(X, S, 5, users=(10, 30), out=bad)
