"""UserKNN on small matrices, against a dense numpy reference (no database).

The reference computes every user pair's similarity from the documented
formula, keeps the k best per user (ties to the lower user), votes densely
(``neighbours @ weights``) and finds each reason by brute force. With integer
weights every sum is exact in float64, so neighbours, lists and scores are
compared exactly; with real weights the scores to 1e-6 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from django.test import override_settings

from django_recs.algorithms import FitResult, UserKNN
from django_recs.algorithms import userknn as userknn_module
from django_recs.evaluation.scoring import full_scorer
from django_recs.matrix import InteractionMatrix
from django_recs.registry import AlgorithmConfigError, build_algorithm
from tests.kernels.test_user_similarity import dense_user_scores


def shop_matrix(n_users=60, n_items=30, density=0.15, seed=0, integer=True):
    rng = np.random.default_rng(seed)
    values = (lambda size: rng.integers(1, 4, size).astype(np.float32)) if integer else (
        lambda size: rng.lognormal(0, 1, size).astype(np.float32))
    weights = sp.random(n_users, n_items, density=density, random_state=rng, dtype=np.float32,
                        data_rvs=values).tocsr()
    seen = weights.copy()
    seen.data = (rng.random(seen.nnz) < 0.5).astype(np.float32)
    seen.eliminate_zeros()
    return InteractionMatrix.from_csr(weights, seen)


def dense_reference(matrix: InteractionMatrix, k: int, n: int, **params):
    """(neighbours as a dense top-k matrix, recommended lists, scores, reasons), densely."""
    scores = dense_user_scores(matrix.weights, params.get("metric", "cosine"),
                               params.get("shrink", 0.0), params.get("alpha", 0.5),
                               params.get("min_overlap", 1))
    n_users, n_items = matrix.weights.shape
    top = np.zeros_like(scores)
    for u in range(n_users):
        candidates = np.flatnonzero(scores[u] > 0)
        best = candidates[np.lexsort((candidates, -scores[u, candidates]))][:k]
        top[u, best] = scores[u, best]
    A = matrix.weights.toarray().astype(np.float64)
    votes = (top.astype(np.float64) @ A).astype(np.float32)
    votes[matrix.seen.toarray() != 0] = 0
    has = A > 0
    recommended = np.full((n_users, n), -1)
    voted = np.zeros((n_users, n), dtype=np.float32)
    reasons = np.full((n_users, n), -1)
    for u in range(n_users):
        candidates = np.flatnonzero(votes[u] > 0)
        listed = candidates[np.lexsort((candidates, -votes[u, candidates]))][:n]
        recommended[u, : listed.size] = listed
        voted[u, : listed.size] = votes[u, listed]
        for slot, j in enumerate(listed):
            # The history item most shared with the neighbours who have j.
            mass = (top[u][:, None].astype(np.float64) * (has[:, [j]] & has)).sum(axis=0)
            mass[~has[u]] = 0
            mass[j] = 0
            if mass.max() > 0:
                reasons[u, slot] = int(np.argmax(mass))
    return top, recommended, voted, reasons


@pytest.mark.parametrize(
    "params",
    [{}, {"metric": "jaccard"}, {"metric": "asymmetric", "alpha": 0.3},
     {"shrink": 2.0, "min_overlap": 2}],
)
def test_userknn_is_the_dense_reference(params):
    matrix = shop_matrix()
    progress = []
    result = UserKNN(k=6, **params).fit(matrix, n_recommendations=5, num_threads=2,
                                        progress=progress.append)
    top, recommended, scores, reasons = dense_reference(matrix, 6, 5, **params)
    assert isinstance(result, FitResult) and result.similar is None
    neighbours = result.user_neighbours
    assert neighbours.shape == (60, 60) and neighbours.dtype == np.float32
    np.testing.assert_array_equal(neighbours.toarray(), top)
    for u in range(60):  # best first, ties to the lower user
        row = neighbours[u]
        np.testing.assert_array_equal(row.indices, sorted(row.indices, key=lambda v: (-top[u, v], v)))
    assert result.recommended.dtype == np.int32 and result.recommended.shape == (60, 5)
    np.testing.assert_array_equal(result.recommended, recommended)
    np.testing.assert_array_equal(result.recommended_scores, scores)
    np.testing.assert_array_equal(result.reasons, reasons)
    assert (result.reasons >= 0).sum() > 20
    assert result.counts == {
        "items": 30, "users": 60, "user_neighbour_pairs": int((top > 0).sum()),
        "users_without_neighbours": int(((top > 0).sum(axis=1) == 0).sum()),
    }
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_userknn_real_weights_within_tolerance():
    matrix = shop_matrix(n_users=80, n_items=40, seed=3, integer=False)
    result = UserKNN(k=8).fit(matrix, n_recommendations=6)
    top, recommended, scores, _ = dense_reference(matrix, 8, 6)
    np.testing.assert_allclose(result.user_neighbours.toarray(), top, rtol=1e-6)
    listed = result.recommended >= 0
    np.testing.assert_array_equal(listed, recommended >= 0)
    votes = top.astype(np.float64) @ matrix.weights.toarray().astype(np.float64)
    rows = np.nonzero(listed)[0]
    np.testing.assert_allclose(result.recommended_scores[listed],
                               votes[rows, result.recommended[listed]], rtol=1e-6)
    np.testing.assert_allclose(result.recommended_scores, scores, rtol=1e-6)


def test_blocks_and_user_ranges_give_the_rows_of_the_whole(monkeypatch):
    matrix = shop_matrix(n_users=90, seed=5)
    whole = UserKNN(k=5, metric="jaccard").fit(matrix, n_recommendations=4)
    # Many small blocks: the same result, progress in steps.
    monkeypatch.setattr(userknn_module, "BLOCK_COST", 50)
    progress = []
    blocked = UserKNN(k=5, metric="jaccard").fit(matrix, n_recommendations=4,
                                                 progress=progress.append)
    assert len(set(progress)) > 5
    for name in ("recommended", "recommended_scores", "reasons"):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name))
    assert (blocked.user_neighbours != whole.user_neighbours).nnz == 0
    # User ranges (a sharded run's shards) stack into the whole.
    algorithm = UserKNN(k=5, metric="jaccard")
    parts = [algorithm.recommend_users(matrix, 4, users=r) for r in [(0, 31), (31, 32), (32, 90)]]
    np.testing.assert_array_equal(np.vstack([p.recommended for p in parts]), whole.recommended)
    np.testing.assert_array_equal(np.vstack([p.reasons for p in parts]), whole.reasons)
    np.testing.assert_array_equal(np.vstack([p.scores for p in parts]), whole.recommended_scores)
    stacked = sp.vstack([p.neighbours for p in parts]).tocsr()
    np.testing.assert_array_equal(stacked.indices, whole.user_neighbours.indices)
    np.testing.assert_array_equal(algorithm.neighbours(matrix, users=(31, 32)).toarray(),
                                  whole.user_neighbours[31:32].toarray())


def test_user_blocks_cover_every_user_once_within_budget():
    costs = np.array([5.0, 0, 300, 1, 1, 9, 0, 2])
    blocks = list(userknn_module.user_blocks(costs, budget=12, max_users=3))
    assert blocks[0] == (0, 2) and (2, 3) in blocks  # a user over budget: a block of its own
    covered = np.concatenate([np.arange(a, b) for a, b in blocks])
    np.testing.assert_array_equal(covered, np.arange(8))
    assert all(b - a <= 3 for a, b in blocks)


def test_neighbour_costs_are_the_buyer_counts_of_each_history():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=np.float32))
    # Item buyers: 3, 2, 1.
    np.testing.assert_array_equal(userknn_module.neighbour_costs(X), [3 + 2, 3, 3 + 2 + 1])


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (1, 5), (5, 1), (3, 4)])
def test_degenerate_data_gives_empty_lists(shape):
    weights = sp.csr_matrix(np.ones(shape, dtype=np.float32))
    if shape == (3, 4):
        weights = sp.csr_matrix(shape, dtype=np.float32)  # every weight zero
    result = UserKNN(k=3).fit(InteractionMatrix.from_csr(weights), n_recommendations=4)
    assert result.recommended.shape == (shape[0], min(4, shape[1]))
    assert result.user_neighbours.shape == (shape[0], shape[0])
    if shape[0] < 2 or weights.nnz == 0:
        assert (result.recommended == -1).all() and result.user_neighbours.nnz == 0


def test_a_user_without_history_or_neighbours_gets_no_list():
    weights = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]],
                                     dtype=np.float32))
    result = UserKNN(k=2).fit(InteractionMatrix.from_csr(weights, weights), n_recommendations=3)
    assert (result.recommended[1] == -1).all()  # no history
    assert (result.recommended[3] == -1).all()  # nobody shares item 3
    np.testing.assert_array_equal(result.recommended[0], [2, -1, -1])  # from user 2
    np.testing.assert_array_equal(result.reasons[0], [0, -1, -1])  # item 0 is what they share
    assert result.counts["users_without_neighbours"] == 2


def test_evaluation_scores_every_item_from_the_neighbours():
    matrix = shop_matrix(seed=7)
    result = UserKNN(k=5).fit(matrix, n_recommendations=5)
    scorer, source = full_scorer(result, matrix)
    assert source == "user_neighbours"
    scores = scorer(np.array([0, 3, 7]))
    expected = result.user_neighbours[[0, 3, 7]].toarray().astype(np.float64) @ \
        matrix.weights.toarray().astype(np.float64)
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    for row, u in enumerate((0, 3, 7)):
        listed = result.recommended[u][result.recommended[u] >= 0]
        np.testing.assert_allclose(scores[row, listed], result.recommended_scores[u, : listed.size],
                                   rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"neighbours": 5}, "unknown parameter.*neighbours"),
        ({"k": 0}, "parameter k must be an integer >= 1"),
        ({"k": 2.5}, "parameter k must be an integer >= 1"),
        ({"metric": "conditional"}, "parameter metric must be one of 'cosine', 'jaccard', 'asymmetric'"),
        ({"shrink": -1}, "parameter shrink must be a number >= 0"),
        ({"shrink": float("nan")}, "parameter shrink"),
        ({"min_overlap": 0}, "parameter min_overlap must be an integer >= 1"),
        ({"min_overlap": True}, "parameter min_overlap"),
        ({"alpha": 1.5}, r"parameter alpha must be a number in \[0, 1\]"),
        ({"alpha": -0.1}, "parameter alpha"),
        ({"alpha": "half"}, "parameter alpha"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_them(params, message):
    with pytest.raises(ValueError, match=message):
        UserKNN(**params)


def test_user_ranges_are_checked():
    matrix = shop_matrix(n_users=10)
    with pytest.raises(ValueError, match=r"users \(4, 11\) must satisfy"):
        UserKNN().recommend_users(matrix, 3, users=(4, 11))


def test_built_from_settings_with_its_parameters_recorded():
    algorithms = {"customers": {"class": "django_recs.algorithms.UserKNN", "k": 20,
                                "metric": "asymmetric", "alpha": 0.4},
                  "bad": {"class": "django_recs.algorithms.UserKNN", "min_overlap": 0}}
    with override_settings(DJANGO_RECS={"ALGORITHMS": algorithms}):
        algorithm = build_algorithm("customers")
        assert isinstance(algorithm, UserKNN) and algorithm.personal
        assert algorithm.get_params() == {"k": 20, "metric": "asymmetric", "shrink": 0.0,
                                          "min_overlap": 1, "alpha": 0.4}
        with pytest.raises(AlgorithmConfigError, match="min_overlap") as error:
            build_algorithm("bad")
        assert error.value.code == "E032"
