"""The algorithms on small matrices, against brute-force numpy (no database)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from django.test import override_settings

from django_recs import kernels
from django_recs.algorithms import ALS, Algorithm, FitResult, ItemKNN, Popular
from django_recs.algorithms.ranking import sparse_top_n, strongest_history_item, user_chunks
from django_recs.matrix import InteractionMatrix, decay_weights
from django_recs.registry import AlgorithmConfigError, build_algorithm


def random_matrix(n_users=40, n_items=25, density=0.2, seed=0, seen_fraction=0.3):
    rng = np.random.default_rng(seed)
    weights = sp.random(n_users, n_items, density=density, random_state=rng, dtype=np.float32,
                        data_rvs=lambda size: rng.integers(1, 6, size).astype(np.float32)).tocsr()
    seen = weights.copy()
    seen.data = (rng.random(seen.nnz) < seen_fraction).astype(np.float32)
    seen.eliminate_zeros()
    return InteractionMatrix.from_csr(weights, seen)


def brute_force_cf(matrix, similar, n):
    scores = matrix.weights.toarray().astype(np.float64) @ similar.toarray().astype(np.float64)
    scores[matrix.seen.toarray() != 0] = 0
    return scores


# -- the matrix ------------------------------------------------------------------


def test_from_arrays_sums_duplicates_and_maps_ids():
    m = InteractionMatrix.from_arrays(
        rows=[0, 0, 1, 1], cols=[2, 2, 0, 1], weights=[1.0, 2.0, 5.0, 0.0],
        seen_mask=[False, True, False, False],
        user_ids=np.array([10, 20]), item_ids=np.array([7, 8, 9]),
    )
    assert m.weights.dtype == np.float32
    assert (m.n_users, m.n_items) == (2, 3)
    np.testing.assert_array_equal(m.weights.toarray(), [[0, 0, 3], [5, 0, 0]])
    assert m.weights.nnz == 2  # the zero weight is not stored
    np.testing.assert_array_equal(m.seen.toarray(), [[0, 0, 1], [0, 0, 0]])
    assert list(m.user_ids) == [10, 20] and list(m.item_ids) == [7, 8, 9]


def test_time_decay_halves_weight_per_half_life():
    day = 86_400.0
    now = 100 * day
    got = decay_weights(np.array([4.0, 4.0, 4.0]), np.array([now, now - 7 * day, now + day]), 7, now)
    np.testing.assert_allclose(got, [4.0, 2.0, 4.0], rtol=1e-6)
    m = InteractionMatrix.from_arrays([0, 0], [0, 0], [4.0, 4.0], timestamps=[now, now - 14 * day],
                                      half_life_days=14)
    np.testing.assert_allclose(m.weights.toarray(), [[6.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="half_life_days"):
        decay_weights(np.ones(1), np.ones(1), 0, now)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": [0], "cols": [0, 1], "weights": [1.0]}, "one length"),
        ({"rows": [0], "cols": [0], "weights": [-1.0]}, ">= 0"),
        ({"rows": [0], "cols": [0], "weights": [np.nan]}, "finite"),
        ({"rows": [3], "cols": [0], "weights": [1.0], "shape": (2, 2)}, "rows"),
    ],
)
def test_from_arrays_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InteractionMatrix.from_arrays(**kwargs)


# -- ranking helpers -------------------------------------------------------------


def test_sparse_top_n_matches_sorting_each_row():
    rng = np.random.default_rng(1)
    S = sp.random(30, 50, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    S.data = np.round(S.data * 4) / 4 + 0.25  # ties on purpose
    top, scores = sparse_top_n(S, 5)
    dense = S.toarray()
    for r in range(30):
        stored = np.flatnonzero(dense[r])
        expected = sorted(stored, key=lambda j: (-dense[r, j], j))[:5]
        assert list(top[r, : len(expected)]) == expected
        assert (top[r, len(expected):] == -1).all()
        np.testing.assert_allclose(scores[r, : len(expected)], dense[r, expected])


def test_user_chunks_cover_every_row_once():
    costs = np.array([5, 0, 3_000, 1, 1, 9, 0])
    slices = list(user_chunks(costs, budget=10))
    covered = np.concatenate([np.arange(s.start, s.stop) for s in slices])
    np.testing.assert_array_equal(covered, np.arange(len(costs)))
    assert slice(2, 3) in slices  # a row over budget gets a chunk of its own


def test_strongest_history_item_is_the_argmax_contribution():
    history = sp.csr_matrix(np.array([[1.0, 0, 3.0, 0], [0, 0, 0, 0], [2.0, 2.0, 0, 0]]))
    affinity_table = np.array([[0, 1, 0.5, 0.9], [1, 0, 0.2, 0.1], [0.5, 0.2, 0, 0.1],
                               [0.9, 0.1, 0.1, 0]])
    recommended = np.array([[1, 3, -1], [0, 1, 2], [2, 3, -1]])
    reasons = strongest_history_item(history, recommended,
                                     lambda i, j: affinity_table[i, j])
    # user 0: item 1 <- max(1*1, 3*0.2) = item 0; item 3 <- max(1*0.9, 3*0.1) = item 0
    # user 1 has no history; user 2: item 2 <- max(2*.5, 2*.2) = 0; item 3 <- 0 (tie broken first)
    np.testing.assert_array_equal(reasons, [[0, 0, -1], [-1, -1, -1], [0, 0, -1]])


# -- ItemKNN -----------------------------------------------------------------------


def test_itemknn_recommends_item_based_cf_with_seen_excluded():
    matrix = random_matrix()
    progress = []
    result = ItemKNN(k=5).fit(matrix, n_recommendations=6, num_threads=1, progress=progress.append)
    assert isinstance(result, FitResult)
    assert result.similar.shape == (25, 25) and np.diff(result.similar.indptr).max() <= 5
    expected_similar = kernels.item_similarity(matrix.weights, 5, metric="cosine")
    np.testing.assert_allclose(result.similar.toarray(), expected_similar.toarray(), rtol=1e-5)
    scores = brute_force_cf(matrix, result.similar, 6)
    assert result.recommended.shape == (40, 6) and result.recommended.dtype == np.int32
    seen = matrix.seen.toarray() != 0
    weights = matrix.weights.toarray()
    for u in range(matrix.n_users):
        recs = result.recommended[u][result.recommended[u] >= 0]
        assert not seen[u, recs].any()
        expected = sorted(np.flatnonzero(scores[u] > 1e-9), key=lambda j: (-scores[u, j], j))[:6]
        np.testing.assert_allclose(result.recommended_scores[u, : len(recs)], scores[u, recs],
                                   rtol=1e-4)
        # Same scores as the brute force (tied items may swap places).
        np.testing.assert_allclose(sorted(scores[u, recs]), sorted(scores[u, expected]), rtol=1e-4)
        for slot, j in enumerate(recs):
            contributions = weights[u] * result.similar.toarray()[:, j]
            assert contributions[result.reasons[u, slot]] == pytest.approx(contributions.max(),
                                                                          rel=1e-5)
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)
    assert result.counts["neighbour_pairs"] == result.similar.nnz


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (1, 5), (5, 1), (3, 4)])
def test_itemknn_on_degenerate_data_returns_what_it_can(shape):
    weights = sp.csr_matrix(np.ones(shape, dtype=np.float32)) if 0 not in shape else sp.csr_matrix(shape, dtype=np.float32)
    if shape == (3, 4):
        weights = sp.csr_matrix(shape, dtype=np.float32)  # every weight zero
    result = ItemKNN(k=3).fit(InteractionMatrix.from_csr(weights), n_recommendations=4)
    assert result.similar.shape == (shape[1], shape[1])
    assert result.recommended.shape[0] == shape[0]
    if shape[1] == 1 or weights.nnz == 0:
        assert result.similar.nnz == 0
        assert (result.recommended == -1).all()


# -- ALS ---------------------------------------------------------------------------


def test_als_passes_confidence_and_recommends_top_n_without_seen(monkeypatch):
    matrix = random_matrix(seed=3)
    matrix = InteractionMatrix(weights=matrix.weights, seen=matrix.seen,
                               user_ids=matrix.user_ids, item_ids=matrix.item_ids)
    # An empty user: no list for them (the serving fallback takes over).
    weights = matrix.weights.tolil()
    weights[7] = 0
    matrix = InteractionMatrix.from_csr(weights.tocsr(), matrix.seen)
    real_fit = kernels.als_fit
    received = {}

    def spy(C, **kwargs):
        received["C"], received["kwargs"] = C, kwargs
        return real_fit(C, **kwargs)

    monkeypatch.setattr(kernels, "als_fit", spy)
    progress = []
    result = ALS(factors=4, iterations=3, alpha=2.0, regularization=0.1).fit(
        matrix, n_recommendations=5, num_threads=1, progress=progress.append)
    np.testing.assert_allclose(received["C"].toarray()[matrix.weights.toarray() > 0],
                               1 + 2.0 * matrix.weights.toarray()[matrix.weights.toarray() > 0])
    assert received["kwargs"]["factors"] == 4 and received["kwargs"]["iterations"] == 3
    U, V = result.user_factors, result.item_factors
    assert U.shape == (40, 4) and V.shape == (25, 4) and U.dtype == np.float32
    seen = matrix.seen.toarray() != 0
    scores = U.astype(np.float64) @ V.T.astype(np.float64)
    for u in range(40):
        if u == 7:
            assert (result.recommended[u] == -1).all()
            continue
        recs = result.recommended[u]
        assert (recs >= 0).all() and not seen[u, recs].any()
        best = np.sort(np.where(seen[u], -np.inf, scores[u]))[::-1][:5]
        np.testing.assert_allclose(scores[u, recs], best, rtol=1e-3, atol=1e-5)
    unit = V / np.linalg.norm(V, axis=1, keepdims=True)
    w = matrix.weights.toarray()
    for u in (0, 1, 2):
        for slot, j in enumerate(result.recommended[u]):
            contributions = w[u] * (unit @ unit[j])
            if contributions.max() > 0:
                assert contributions[result.reasons[u, slot]] == pytest.approx(contributions.max(), rel=1e-4)
            else:
                assert result.reasons[u, slot] == -1
    assert progress[-1] == 1.0


def test_als_similar_items_by_factor_cosine():
    matrix = random_matrix(seed=4)
    result = ALS(factors=4, iterations=2, similar_items=3).fit(matrix, n_recommendations=2)
    V = result.item_factors / np.linalg.norm(result.item_factors, axis=1, keepdims=True)
    cos = V @ V.T
    np.fill_diagonal(cos, -np.inf)
    for i in range(matrix.n_items):
        row = result.similar[i]
        assert i not in row.indices and row.nnz == 3
        np.testing.assert_allclose(sorted(row.data, reverse=True), np.sort(cos[i])[::-1][:3],
                                   rtol=1e-4)


def test_als_on_empty_matrix():
    result = ALS(factors=3).fit(InteractionMatrix.from_csr(sp.csr_matrix((4, 2))), n_recommendations=5)
    assert result.recommended.shape == (4, 2) and (result.recommended == -1).all()
    assert result.item_factors.shape == (2, 3)


# -- Popular -------------------------------------------------------------------------


def test_popular_orders_by_total_weight_and_skips_seen():
    weights = sp.csr_matrix(np.array([[5, 1, 0, 0], [5, 0, 2, 0], [0, 1, 2, 0]], dtype=np.float32))
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]))
    result = Popular().fit(InteractionMatrix.from_csr(weights, seen), n_recommendations=2)
    np.testing.assert_array_equal(result.popular, [0, 2, 1])  # item 3 has no weight
    np.testing.assert_allclose(result.popular_scores, [10, 4, 2])
    np.testing.assert_array_equal(result.recommended, [[2, 1], [0, 2], [0, 1]])
    by_users = Popular(measure="users", n=2).fit(InteractionMatrix.from_csr(weights))
    np.testing.assert_array_equal(by_users.popular, [0, 1])  # ties: lower column first
    assert Popular.personal is False


def test_popular_pads_when_the_list_runs_out():
    weights = sp.csr_matrix(np.array([[1, 1, 0]], dtype=np.float32))
    result = Popular().fit(InteractionMatrix.from_csr(weights, weights), n_recommendations=5)
    np.testing.assert_array_equal(result.recommended, [[-1, -1]])


# -- parameters and configuration -------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (ItemKNN, {"neighbours": 5}, "unknown parameter.*neighbours"),
        (ItemKNN, {"k": 0}, "parameter k must be an integer >= 1"),
        (ItemKNN, {"metric": "euclid"}, "metric must be one of"),
        (ALS, {"alpha": -1}, "parameter alpha"),
        (ALS, {"factors": 2.5}, "parameter factors"),
        (Popular, {"measure": "clicks"}, "measure"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_them(cls, params, message):
    with pytest.raises(ValueError, match=message):
        cls(**params)


def test_parameters_read_as_attributes_and_stored():
    algorithm = ItemKNN(k=7)
    assert algorithm.k == 7 and algorithm.get_params() == {"k": 7, "metric": "cosine", "shrink": 0.0,
                                        "alpha": 0.5}
    assert isinstance(algorithm, Algorithm)


def test_build_algorithm_from_settings():
    algorithms = {"similar": {"class": "django_recs.algorithms.ItemKNN", "k": 3},
                  "broken": {"class": "django_recs.algorithms.Nope"},
                  "bad": {"class": "django_recs.algorithms.ALS", "factors": -1}}
    with override_settings(DJANGO_RECS={"ALGORITHMS": algorithms}):
        assert build_algorithm("similar").k == 3
        with pytest.raises(AlgorithmConfigError, match="Unknown algorithm 'nope'") as error:
            build_algorithm("nope")
        assert error.value.code == "E030"
        with pytest.raises(AlgorithmConfigError, match="cannot import") as error:
            build_algorithm("broken")
        assert error.value.code == "E031"
        with pytest.raises(AlgorithmConfigError, match="factors") as error:
            build_algorithm("bad")
        assert error.value.code == "E032"


def test_factor_reasons_match_the_pairwise_definition():
    from django_recs.algorithms.als import factor_reasons, normalised_rows
    from django_recs.algorithms.ranking import strongest_history_item

    rng = np.random.default_rng(5)
    history = sp.random(60, 30, density=0.15, random_state=rng, format="lil", dtype=np.float32)
    history[3] = 0  # a user without history
    history[4] = rng.random(30).astype(np.float32)  # a heavy user
    history = history.tocsr()
    unit = normalised_rows(rng.normal(size=(30, 5)).astype(np.float32))
    recommended = rng.integers(0, 30, size=(60, 4)).astype(np.int32)
    recommended[::7, 2:] = -1
    expected = strongest_history_item(
        history, recommended, lambda i, j: np.einsum("ij,ij->i", unit[i], unit[j]))
    np.testing.assert_array_equal(factor_reasons(history, recommended, unit), expected)
