"""Ranking metrics and AUC on hand-computed examples, and nDCG/AUC against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from django_recs.evaluation import (
    auc_score,
    metrics_at_each_k,
    ranking_metrics,
    ranking_metrics_per_user,
)

LOG3 = np.log2(3.0)


def relevance(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    data = sp.lil_matrix((len(rows), n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        for item in items:
            data[user, item] = 1.0
    return data.tocsr()


@pytest.fixture
def example():
    recommended = np.array([[0, 1, 2], [3, 5, -1], [0, 1, 2], [2, 0, 5]])
    relevant = relevance([[1, 4], [3], [], [0, 5, 1, 3]], n_items=6)
    return recommended, relevant


def test_ranking_metrics_hand_computed(example):
    recommended, relevant = example
    # User 0: hits [0, 1, 0], |R| = 2.  User 1: hits [1, 0, 0], |R| = 1.
    # User 2: no relevant item, not judged.  User 3: hits [0, 1, 1], |R| = 4.
    ndcg = [
        (1 / LOG3) / (1 + 1 / LOG3),
        1.0,
        (1 / LOG3 + 1 / 2) / (1 + 1 / LOG3 + 1 / 2),
    ]
    average_precision = [(1 / 2) / 2, 1.0, (1 / 2 + 2 / 3) / 3]
    expected = {
        "precision": (1 / 3 + 1 / 3 + 2 / 3) / 3,
        "recall": (1 / 2 + 1 + 2 / 4) / 3,
        "ndcg": np.mean(ndcg),
        "map": np.mean(average_precision),
        "hit_rate": 1.0,
        "mrr": (1 / 2 + 1 + 1 / 2) / 3,
    }
    result = ranking_metrics(recommended, relevant, k=3)
    assert set(result) == set(expected)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-12), name


def test_per_user_values_and_users(example):
    recommended, relevant = example
    per_user = ranking_metrics_per_user(recommended, relevant, k=3)
    assert per_user["users"].tolist() == [0, 1, 3]
    assert_allclose(per_user["mrr"], [0.5, 1.0, 0.5])
    assert_allclose(per_user["recall"], [0.5, 1.0, 0.5])


def test_k_shorter_than_the_lists(example):
    recommended, relevant = example
    result = ranking_metrics(recommended, relevant, k=1)
    # Only user 1 hits at rank 1.
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["hit_rate"] == pytest.approx(1 / 3)
    assert result["ndcg"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 3)
    assert result["map"] == pytest.approx(1 / 3)  # AP@1 divides by min(1, |R|) = 1


def test_a_miss_everywhere_scores_zero():
    result = ranking_metrics(np.array([[2, 3]]), relevance([[0, 1]], 4), k=2)
    assert all(value == 0.0 for value in result.values())


def test_no_judged_user_gives_nan():
    result = ranking_metrics(np.array([[0, 1]]), relevance([[]], 3), k=2)
    assert all(np.isnan(value) for value in result.values())


def test_relevance_values_are_binary(example):
    recommended, relevant = example
    weighted = relevant.copy()
    weighted.data *= 7.0
    assert ranking_metrics(recommended, weighted, 3) == ranking_metrics(recommended, relevant, 3)


def test_ndcg_matches_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    n_users, n_items, k = 200, 40, 10
    scores = rng.random((n_users, n_items))
    truth = (rng.random((n_users, n_items)) < 0.08).astype(np.float64)
    recommended = np.argsort(-scores, axis=1)[:, :k]
    judged = truth.sum(axis=1) > 0
    ours = ranking_metrics(recommended, sp.csr_matrix(truth), k)["ndcg"]
    theirs = sklearn_metrics.ndcg_score(truth[judged], scores[judged], k=k)
    assert ours == pytest.approx(theirs, rel=1e-10)
    per_user = ranking_metrics_per_user(recommended, sp.csr_matrix(truth), k)["ndcg"]
    for row, value in zip(np.flatnonzero(judged)[:20], per_user[:20]):
        assert value == pytest.approx(
            sklearn_metrics.ndcg_score(truth[[row]], scores[[row]], k=k), rel=1e-10
        )


def test_metrics_at_each_k_match_ranking_metrics(example):
    recommended, relevant = example
    curves = metrics_at_each_k(recommended, relevant, 3)
    assert curves["k"].tolist() == [1, 2, 3]
    for j in (1, 2, 3):
        single = ranking_metrics(recommended, relevant, j)
        for name in ("precision", "recall", "ndcg"):
            assert curves[name][j - 1] == pytest.approx(single[name], rel=1e-12)


@pytest.mark.parametrize(
    ("recommended", "k", "message"),
    [
        (np.array([[0, 1]]), 0, "k: expected a positive integer"),
        (np.array([[0, 1]]), 3, "fewer than k=3"),
        (np.array([0, 1]), 1, "2-D"),
        (np.array([[0, 9]]), 2, "item index outside -1 .. 3"),
        (np.array([[-2, 1]]), 2, "item index outside"),
        (np.array([[1, 1]]), 2, "row 0 repeats an item"),
        (np.array([[0.0, 1.0]]), 2, "integer item indexes"),
        (np.array([[0, 1], [1, 2]]), 2, "2 rows but relevant has 1 users"),
    ],
)
def test_bad_input_raises_naming_the_problem(recommended, k, message):
    with pytest.raises(ValueError, match=message):
        ranking_metrics(recommended, relevance([[0]], 4), k)


def test_relevant_must_be_sparse():
    with pytest.raises(ValueError, match="relevant: expected a scipy.sparse matrix"):
        ranking_metrics(np.array([[0]]), np.ones((1, 2)), 1)


def test_repeated_padding_is_allowed():
    result = ranking_metrics(np.array([[0, -1, -1]]), relevance([[0]], 2), 3)
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["ndcg"] == 1.0


# --- AUC ---------------------------------------------------------------------


def test_auc_hand_computed():
    scores = np.array([[0.9, 0.1, 0.5, 0.3], [1.0, 1.0, 0.0, 0.0]])
    relevant = relevance([[0, 3], [0]], 4)
    # User 0: pairs (0>1, 0>2, 3>1, 3<2) -> 3/4. User 1: 0 ties 1, beats 2 and 3 -> 2.5/3.
    assert auc_score(scores, relevant) == pytest.approx((3 / 4 + 2.5 / 3) / 2)


def test_auc_excluded_items_are_no_candidates():
    scores = np.array([[0.9, 0.1, 0.5, 0.3]])
    relevant = relevance([[0, 3]], 4)
    exclude = relevance([[2]], 4)
    assert auc_score(scores, relevant, exclude=exclude) == 1.0
    # An excluded relevant item is no positive either.
    assert auc_score(scores, relevant, exclude=relevance([[3]], 4)) == 1.0


def test_auc_callable_scores_in_batches_match_dense():
    rng = np.random.default_rng(3)
    scores = rng.random((30, 12))
    relevant = sp.csr_matrix((rng.random((30, 12)) < 0.2).astype(np.float32))
    exclude = sp.csr_matrix((rng.random((30, 12)) < 0.2).astype(np.float32))
    dense = auc_score(scores, relevant, exclude=exclude)
    batched = auc_score(lambda rows: scores[rows], relevant, exclude=exclude, batch_size=4)
    assert batched == pytest.approx(dense, rel=1e-12)


def test_auc_matches_scikit_learn_per_user():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(11)
    scores = np.round(rng.random((25, 15)), 1)  # rounded: ties happen
    truth = rng.random((25, 15)) < 0.3
    usable = truth.any(axis=1) & ~truth.all(axis=1)
    expected = np.mean(
        [sklearn_metrics.roc_auc_score(truth[u], scores[u]) for u in np.flatnonzero(usable)]
    )
    assert auc_score(scores, sp.csr_matrix(truth.astype(np.float32))) == pytest.approx(expected)


def test_auc_rejects_bad_scores():
    relevant = relevance([[0]], 2)
    with pytest.raises(ValueError, match="scores: shape"):
        auc_score(np.zeros((1, 3)), relevant)
    with pytest.raises(ValueError, match="scores: must be finite"):
        auc_score(np.array([[np.nan, 0.0]]), relevant)
