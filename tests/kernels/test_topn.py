"""kernels.top_n against a numpy argsort of the full score matrix.

With small integer factors every score is an exact integer in float32 (any
summation order), so the kernel and the oracle must agree exactly, ties
(many of them) included: descending score, then lower item index.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import topn
from django_recs.kernels._reference import topn as reference

DTYPES = (np.float32, np.float64)


@pytest.fixture(autouse=True, params=["by norm", "in index order"])
def item_order(request, monkeypatch):
    """Every test twice: items scored by decreasing norm with users stopping
    early (what top_n does from _REORDER_MIN_USERS users on), and in index
    order without early stops (fewer users)."""
    monkeypatch.setattr(topn, "_REORDER_MIN_USERS", 1 if request.param == "by norm" else 10**9)
    return request.param


def integer_factors(n_users=57, n_items=41, factors=5, *, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    U = rng.integers(-3, 4, size=(n_users, factors)).astype(dtype)
    V = rng.integers(-3, 4, size=(n_items, factors)).astype(dtype)
    return U, V


def random_exclusions(n_users, n_items, density=0.2, seed=1) -> sp.csr_matrix:
    return sp.random(n_users, n_items, density=density, format="csr", random_state=seed,
                     dtype=np.float32)


def argsort_top_n(U, V, n, users=None, exclude=None):
    """The n best per user from the dense score matrix; -1 / -inf padding."""
    users = np.arange(U.shape[0]) if users is None else np.asarray(users)
    scores = U[users].astype(np.float64) @ V.astype(np.float64).T
    if exclude is not None:
        scores[exclude[users].toarray() != 0] = -np.inf
    indices = np.full((len(users), n), -1, dtype=np.int32)
    values = np.full((len(users), n), -np.inf, dtype=np.float32)
    for row, row_scores in enumerate(scores):
        eligible = np.flatnonzero(np.isfinite(row_scores))
        order = eligible[np.lexsort((eligible, -row_scores[eligible]))][:n]
        indices[row, : order.size] = order
        values[row, : order.size] = row_scores[order]
    return indices, values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 5, 36, 41, 50])
def test_equals_argsort_of_the_full_scores_with_exclusions(dtype, n):
    U, V = integer_factors(dtype=dtype)
    exclude = random_exclusions(*U.shape[:1], V.shape[0])
    indices, scores = kernels.top_n(U, V, n, exclude=exclude)
    expected_indices, expected_scores = argsort_top_n(U, V, n, exclude=exclude)
    assert indices.dtype == np.int32 and scores.dtype == np.float32
    assert indices.shape == scores.shape == (U.shape[0], n)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores)


@pytest.mark.parametrize("dtype", DTYPES)
def test_users_subset_in_any_order_with_repeats(dtype):
    U, V = integer_factors(dtype=dtype, seed=2)
    exclude = random_exclusions(U.shape[0], V.shape[0], seed=3)
    users = np.array([40, 2, 2, 56, 0, 13], dtype=np.int16)
    indices, scores = kernels.top_n(U, V, 7, users=users, exclude=exclude)
    expected_indices, expected_scores = argsort_top_n(U, V, 7, users=users, exclude=exclude)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores)
    assert kernels.top_n(U, V, 3, users=[])[0].shape == (0, 3)


def test_without_exclusions_and_with_real_valued_factors():
    rng = np.random.default_rng(4)
    U = rng.standard_normal((90, 12)).astype(np.float32)
    V = rng.standard_normal((300, 12)).astype(np.float32)
    indices, scores = kernels.top_n(U, V, 10)
    expected_indices, expected_scores = argsort_top_n(U, V, 10)
    np.testing.assert_array_equal(indices, expected_indices)  # no near-ties at this seed
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)


def test_ties_go_to_the_lower_item_index():
    U = np.ones((2, 3), dtype=np.float32)
    V = np.zeros((6, 3), dtype=np.float32)
    V[4] = 1.0
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]]))
    indices, scores = kernels.top_n(U, V, 4, exclude=exclude)
    np.testing.assert_array_equal(indices, [[4, 0, 2, 3], [0, 1, 2, 3]])
    np.testing.assert_array_equal(scores, [[3, 0, 0, 0], [0, 0, 0, 0]])


def test_users_with_fewer_eligible_items_than_n_are_padded():
    U, V = integer_factors(n_users=3, n_items=4)
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]]))
    indices, scores = kernels.top_n(U, V, 6, exclude=exclude)
    assert (indices[0] == -1).all() and np.isneginf(scores[0]).all()
    assert set(indices[1, :2]) == {1, 3} and (indices[1, 2:] == -1).all()
    assert np.isfinite(scores[1, :2]).all() and np.isneginf(scores[1, 2:]).all()
    assert sorted(indices[2, :4]) == [0, 1, 2, 3] and (indices[2, 4:] == -1).all()


def test_many_blocks_and_tiles_give_the_same_result(monkeypatch):
    U, V = integer_factors(n_users=130, n_items=300, seed=5)
    exclude = random_exclusions(130, 300, density=0.05, seed=6)
    expected = kernels.top_n(U, V, 9, exclude=exclude)
    monkeypatch.setattr(topn, "_BLOCK_USERS", 3)
    monkeypatch.setattr(topn, "_TILE_ITEMS", 7)
    for threads in (1, 2):
        result = kernels.top_n(U, V, 9, exclude=exclude, num_threads=threads)
        np.testing.assert_array_equal(result[0], expected[0])
        np.testing.assert_array_equal(result[1], expected[1])
    np.testing.assert_array_equal(expected[0], argsort_top_n(U, V, 9, exclude=exclude)[0])


@pytest.mark.parametrize("n", [1, 20, 300])
@pytest.mark.parametrize("shape", [None, (3, 7), (5, 100)])
def test_many_ties_at_the_threshold_across_candidate_cuts(monkeypatch, n, shape):
    # Scores in {0, 1, 2} over 3,000 items: the candidate buffer is cut back to
    # the n best many times, each time with ties at the cut, which only the
    # item index decides.
    rng = np.random.default_rng(11)
    U = rng.integers(0, 2, size=(40, 2)).astype(np.float32)
    V = rng.integers(0, 2, size=(3000, 2)).astype(np.float32)
    exclude = random_exclusions(40, 3000, density=0.3, seed=12)
    if shape is not None:
        monkeypatch.setattr(topn, "_BLOCK_USERS", shape[0])
        monkeypatch.setattr(topn, "_TILE_ITEMS", shape[1])
    indices, scores = kernels.top_n(U, V, n, exclude=exclude, num_threads=2)
    expected_indices, expected_scores = argsort_top_n(U, V, n, exclude=exclude)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores)


@pytest.mark.parametrize("shape", [None, (3, 7), (16, 40)])
def test_users_stop_early_only_when_no_later_item_can_enter(monkeypatch, shape):
    # Items are scored by decreasing norm and a user stops once its n-th best
    # beats |x| times the largest norm left. Integer factors scaled by 1..9
    # give norms over a wide range and exact scores with many ties, some of
    # them at the norm bound itself (items parallel to a user).
    rng = np.random.default_rng(13)
    U = rng.integers(-2, 3, size=(60, 3)).astype(np.float32)
    V = rng.integers(-2, 3, size=(2000, 3)).astype(np.float32)
    V *= rng.integers(1, 10, size=(2000, 1)).astype(np.float32)
    V[rng.choice(2000, 200, replace=False)] = U[0] * 9  # the largest norm, score = bound
    exclude = random_exclusions(60, 2000, density=0.1, seed=14)
    if shape is not None:
        monkeypatch.setattr(topn, "_BLOCK_USERS", shape[0])
        monkeypatch.setattr(topn, "_TILE_ITEMS", shape[1])
    for n in (1, 10, 150):
        indices, scores = kernels.top_n(U, V, n, exclude=exclude, num_threads=2)
        expected_indices, expected_scores = argsort_top_n(U, V, n, exclude=exclude)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(scores, expected_scores)


def test_rising_scores_refill_the_candidates_in_every_run():
    # Items sorted by increasing score: every score beats the threshold, the
    # worst case for the candidate buffer (a cut every few runs).
    V = np.arange(5000, dtype=np.float32)[:, None]
    U = np.ones((3, 1), dtype=np.float32)
    indices, scores = kernels.top_n(U, V, 37)
    np.testing.assert_array_equal(indices, np.tile(np.arange(4999, 4962, -1), (3, 1)))
    np.testing.assert_array_equal(scores, indices.astype(np.float32))


def test_reference_fallback_gives_the_same_result(monkeypatch):
    U, V = integer_factors(seed=7)
    exclude = random_exclusions(U.shape[0], V.shape[0], seed=8)
    native = kernels.top_n(U, V, 12, users=[5, 1, 9], exclude=exclude)
    monkeypatch.setattr(topn, "native_module", lambda name: None)
    fallback = kernels.top_n(U, V, 12, users=[5, 1, 9], exclude=exclude)
    np.testing.assert_array_equal(fallback[0], native[0])
    np.testing.assert_array_equal(fallback[1], native[1])
    direct = reference.top_n(U, V, 12, None, np.full(U.shape[0], -1))
    np.testing.assert_array_equal(direct[0], argsort_top_n(U, V, 12)[0])


def test_exclude_pattern_any_format_dtype_and_explicit_zeros():
    U, V = integer_factors(n_users=4, n_items=6, seed=9)
    rows, cols = np.array([0, 1, 1, 3]), np.array([2, 0, 5, 1])
    as_bool = sp.coo_matrix((np.ones(4, dtype=bool), (rows, cols)), shape=(4, 6))
    with_zero = sp.csr_matrix((np.array([1.0, 1.0, 1.0, 1.0, 0.0]),
                               (np.append(rows, 2), np.append(cols, 3))), shape=(4, 6))
    expected = argsort_top_n(U, V, 6, exclude=as_bool.tocsr())
    np.testing.assert_array_equal(kernels.top_n(U, V, 6, exclude=as_bool)[0], expected[0])
    np.testing.assert_array_equal(kernels.top_n(U, V, 6, exclude=with_zero)[0], expected[0])
    assert 3 in kernels.top_n(U, V, 6, exclude=with_zero)[0][2]  # a stored 0 excludes nothing


def test_no_items():
    indices, scores = kernels.top_n(np.ones((2, 3)), np.ones((0, 3)), 2)
    assert (indices == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be >= 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"item_factors": np.ones((41, 4))}, "must match"),
        ({"user_factors": np.ones(57)}, "2-D"),
        ({"user_factors": np.full((57, 5), np.nan)}, "user_factors contains NaN"),
        ({"item_factors": np.full((41, 5), np.inf)}, "item_factors contains NaN or infinite"),
        ({"user_factors": np.ones((57, 0)), "item_factors": np.ones((41, 0))}, "factor column"),
        ({"users": [0, 57]}, "users must be indexes"),
        ({"users": [-1]}, "users must be indexes"),
        ({"users": [0.5]}, "integer"),
        ({"users": [[0]]}, "1-D"),
        ({"exclude": sp.csr_matrix((57, 40))}, "exclude must have shape"),
        ({"exclude": np.zeros((57, 41))}, "scipy.sparse"),
        ({"num_threads": -2}, "num_threads"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_problem(kwargs, message):
    U, V = integer_factors()
    arguments = {"user_factors": U, "item_factors": V, "n": 3}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        kernels.top_n(**arguments)
