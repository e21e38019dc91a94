"""Baselines, the evaluator, grid search and the full-ranking scorer on small data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs.algorithms import Algorithm, FitResult, ItemKNN
from django_recs.evaluation import (
    METRIC_ORDER,
    Candidate,
    Evaluator,
    Random,
    TimedInteractions,
    grid_search,
    leave_last_k_out,
    parameter_grid,
    parse_grid,
    ranking_metrics,
    run_evaluation,
    temporal_split,
    training_matrix,
)
from django_recs.evaluation.scoring import full_scorer
from django_recs.matrix import InteractionMatrix


def clustered_history(n_users=60, n_groups=3, group_size=5, seed=0) -> TimedInteractions:
    """Users buy within their group; the last purchase of each comes on day 30."""
    rng = np.random.default_rng(seed)
    rows, cols, days = [], [], []
    for user in range(n_users):
        group = user % n_groups
        items = group * group_size + rng.permutation(group_size)[:4]
        for position, item in enumerate(items):
            rows.append(user)
            cols.append(item)
            days.append(30 if position == 3 else position + 1)
    return TimedInteractions(
        rows=np.array(rows),
        cols=np.array(cols),
        weights=np.ones(len(rows)),
        timestamps=np.datetime64("2024-01-01") + np.array(days, dtype="timedelta64[D]"),
        shape=(n_users, n_groups * group_size),
    )


class Oracle(Algorithm):
    """Recommends exactly the held-out items (test only): every metric at its best."""

    name = "oracle"
    relevant: sp.csr_matrix = None

    def fit(self, matrix, *, n_recommendations=50, num_threads=0, progress=None):
        lists = np.full((matrix.n_users, n_recommendations), -1, dtype=np.int32)
        for user in range(matrix.n_users):
            items = self.relevant[user].indices[:n_recommendations]
            lists[user, : items.size] = items
        return FitResult(recommended=lists)


# --- Random baseline -----------------------------------------------------------


def test_random_never_recommends_seen_items_and_is_reproducible():
    weights = sp.random(30, 20, density=0.3, format="csr", random_state=1, dtype=np.float32)
    matrix = InteractionMatrix.from_csr(weights, seen=weights)
    first = Random(seed=3).fit(matrix, n_recommendations=8).recommended
    assert first.shape == (30, 8)
    assert (first == Random(seed=3).fit(matrix, n_recommendations=8).recommended).all()
    assert not (first == Random(seed=4).fit(matrix, n_recommendations=8).recommended).all()
    for user in range(30):
        listed = first[user][first[user] >= 0]
        assert len(set(listed)) == len(listed)
        assert not set(listed) & set(weights[user].indices)
        unseen = 20 - weights[user].nnz
        assert len(listed) == min(8, unseen)  # -1 only when too few unseen items remain


def test_random_rejects_a_bad_seed():
    with pytest.raises(ValueError, match="parameter seed"):
        Random(seed=-1)


# --- the evaluator -------------------------------------------------------------------


def test_training_matrix_marks_training_pairs_seen():
    data = clustered_history()
    split = temporal_split(data, "2024-01-20")
    matrix = training_matrix(split)
    assert (matrix.seen != split.train.pairs()).nnz == 0
    assert matrix.weights.sum() == pytest.approx(len(split.train))


def test_training_matrix_applies_time_decay_from_the_last_training_entry():
    data = TimedInteractions(
        rows=[0, 0, 1], cols=[0, 1, 1], weights=[4.0, 4.0, 1.0],
        timestamps=np.array(["2024-01-01", "2024-01-03", "2024-02-01"], dtype="datetime64[s]"),
        shape=(2, 2),
    )
    split = temporal_split(data, "2024-01-10", keep_cold_users=True)
    decayed = training_matrix(split, half_life_days=2.0).weights.toarray()
    assert decayed[0].tolist() == pytest.approx([2.0, 4.0])  # one half-life older, and now


def test_oracle_scores_perfectly_and_list_auc_is_one():
    split = leave_last_k_out(clustered_history(), 1)
    evaluator = Evaluator(split, k=3)
    Oracle.relevant = split.test
    result = evaluator.evaluate(Oracle())
    assert set(result.metrics) == set(METRIC_ORDER)
    for name in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr"):
        expected = 1 / 3 if name == "precision" else 1.0
        assert result.metrics[name] == pytest.approx(expected), name
    assert result.auc_source == "list"
    assert result.metrics["auc"] == 1.0
    assert result.users == 60


def test_itemknn_beats_random_and_metrics_agree_with_ranking_metrics():
    split = leave_last_k_out(clustered_history(), 1)
    evaluator = Evaluator(split, k=5)
    knn = evaluator.evaluate(ItemKNN(k=10), label="knn")
    random = evaluator.evaluate(Random(seed=0), label="random")
    assert knn.metrics["ndcg"] > 2 * random.metrics["ndcg"]
    assert knn.metrics["auc"] > 0.9 > random.metrics["auc"]
    assert knn.auc_source == "neighbours"
    lists = ItemKNN(k=10).fit(evaluator.train, n_recommendations=5).recommended[split.users]
    direct = ranking_metrics(lists, split.test_rows(), 5)
    assert knn.metrics["ndcg"] == pytest.approx(direct["ndcg"])
    assert knn.curves["k"] == [1, 2, 3, 4, 5]
    assert knn.curves["recall"][-1] == pytest.approx(knn.metrics["recall"])
    # Lists stay in the user's group: not diverse, and far from the whole catalog.
    assert knn.metrics["diversity"] < random.metrics["diversity"]
    assert sum(knn.popularity_profile["recommended"]) == pytest.approx(1.0)
    assert sum(knn.popularity_profile["catalog"]) == pytest.approx(1.0)


def test_diversity_uses_categories_when_the_data_has_them():
    data = clustered_history()
    categorised = TimedInteractions(
        rows=data.rows, cols=data.cols, weights=data.weights, timestamps=data.timestamps,
        shape=data.shape, item_categories=np.arange(data.n_items) // 5,
    )
    evaluator = Evaluator(leave_last_k_out(categorised, 1), k=3)
    assert evaluator.evaluate(ItemKNN(k=10)).metrics["diversity"] == 0.0  # one group per list


def test_an_empty_split_is_refused():
    split = temporal_split(clustered_history(), "2030-01-01")
    with pytest.raises(ValueError, match="no user has both"):
        Evaluator(split)


def test_full_scorer_from_factors():
    fit = FitResult(user_factors=np.array([[1.0, 0.0]]), item_factors=np.array([[2.0, 1.0], [0.0, 3.0]]))
    matrix = InteractionMatrix.from_csr(sp.csr_matrix((1, 2), dtype=np.float32))
    scorer, source = full_scorer(fit, matrix)
    assert source == "factors"
    assert scorer(np.array([0])).tolist() == [[2.0, 0.0]]


def test_run_metrics_are_json_ready():
    split = leave_last_k_out(clustered_history(), 1)
    evaluator = Evaluator(split, k=3, compute_auc=False)
    result = evaluator.evaluate(Random())
    stored = result.run_metrics([result])
    assert stored["auc"] is None  # NaN is not JSON
    assert stored["k"] == 3 and stored["split"] == "leave_last_1_out"
    assert stored["baselines"]["random"]["precision"] == stored["precision"]


# --- grid search ----------------------------------------------------------------------


def test_parse_grid_and_parameter_grid():
    grid = parse_grid(["k=5,10", "metric=cosine,jaccard", "shrink=0.5", "flag=true,none"])
    assert grid == {"k": [5, 10], "metric": ["cosine", "jaccard"], "shrink": [0.5],
                    "flag": [True, None]}
    combos = parameter_grid({"a": [1, 2], "b": ["x", "y"]})
    assert combos == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(ValueError, match="given twice"):
        parse_grid(["k=1", "k=2"])


def test_grid_search_keeps_the_best_by_ndcg_and_reports_progress():
    evaluator = Evaluator(leave_last_k_out(clustered_history(), 1), k=3)
    steps = []
    result = grid_search(
        evaluator, ItemKNN, {"metric": "cosine"}, {"k": [1, 10]}, label="knn",
        on_step=lambda done, total, evaluation: steps.append((done, total)),
    )
    assert steps == [(0, 2), (1, 2), (2, 2)]
    assert result.best.metrics["ndcg"] == max(e.metrics["ndcg"] for e in result.evaluations)
    assert result.ranked()[0] is result.best
    assert [e.label for e in result.evaluations] == ["knn[k=1]", "knn[k=10]"]


def test_grid_search_rejects_a_bad_value_before_fitting():
    evaluator = Evaluator(leave_last_k_out(clustered_history(), 1), k=3)
    with pytest.raises(ValueError, match="parameter k must be an integer >= 1"):
        grid_search(evaluator, ItemKNN, {}, {"k": [5, 0]}, label="knn")


def test_run_evaluation_puts_baselines_first():
    outcome = run_evaluation(
        clustered_history(), [Candidate("knn", ItemKNN, {"k": 10})], split="last:1", k=3,
        compute_auc=False,
    )
    assert [e.label for e in outcome.compared()] == ["Random", "Popular", "knn"]
    assert outcome.summary["users_evaluated"] == 60
    assert outcome.summary["interactions"] == 240
