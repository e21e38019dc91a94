"""The RP3beta algorithm: neighbours from the random-walk kernel, lists as ItemKNN's."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import override_settings

from django_recs import kernels
from django_recs.algorithms import ItemKNN, RP3beta
from django_recs.pipeline import sharding
from django_recs.registry import build_algorithm

from ..kernels.test_rp3beta import dense_p3
from .test_algorithms import brute_force_cf, random_matrix


def test_neighbours_are_the_top_k_of_the_dense_walk_and_lists_the_item_based_sum():
    matrix = random_matrix(n_users=60, n_items=30, seed=4)
    result = RP3beta(alpha=0.8, beta=0.4, k=6).fit(matrix, n_recommendations=5, num_threads=1)
    walk = dense_p3(matrix.weights, 0.8, 0.4)
    for i in range(30):
        row = result.similar.indices[result.similar.indptr[i]:result.similar.indptr[i + 1]]
        expected = [j for j in sorted(range(30), key=lambda j: (-walk[i, j], j))
                    if walk[i, j] > 0][:6]
        assert list(row) == expected
        np.testing.assert_allclose(result.similar[i, row].toarray().ravel(), walk[i, row],
                                   rtol=1e-5)
    scores = brute_force_cf(matrix, result.similar, 5)
    for u in range(matrix.n_users):
        got = result.recommended[u][result.recommended[u] >= 0]
        np.testing.assert_allclose(result.recommended_scores[u, :len(got)], scores[u, got],
                                   rtol=1e-4)
        assert not (matrix.seen.toarray()[u, got] != 0).any()
    assert result.counts["neighbour_pairs"] == result.similar.nnz


def test_beta_zero_alpha_one_ranks_neighbours_like_p3():
    matrix = random_matrix(seed=9)
    plain = RP3beta(alpha=1.0, beta=0.0, k=5).neighbours(matrix)
    walk = dense_p3(matrix.weights, 1.0, 0.0)
    np.testing.assert_allclose(plain.toarray()[plain.toarray() > 0],
                               walk[plain.toarray() > 0], rtol=1e-5)


def test_item_ranges_give_the_rows_of_the_whole_and_it_shards_like_itemknn():
    matrix = random_matrix(seed=6)
    algorithm = RP3beta(k=4)
    whole = algorithm.neighbours(matrix)
    part = algorithm.neighbours(matrix, items=(5, 17))
    np.testing.assert_array_equal(part.toarray(), whole[5:17].toarray())
    assert isinstance(algorithm, ItemKNN) and sharding.shard_kind(algorithm) == "itemknn"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"beta": -0.5}, "beta must be a number >= 0"),
        ({"alpha": float("nan")}, "alpha must be a number >= 0"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"metric": "cosine"}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        RP3beta(**params)


@override_settings(DJANGO_RECS={"ALGORITHMS": {
    "similar": {"class": "django_recs.algorithms.RP3beta", "alpha": 0.9, "beta": 0.3}}})
def test_built_from_settings_like_the_other_algorithms():
    algorithm = build_algorithm("similar")
    assert isinstance(algorithm, RP3beta)
    assert algorithm.get_params() == {"alpha": 0.9, "beta": 0.3, "k": 100, "shrink": 0.0}


def test_empty_matrix():
    matrix = random_matrix(n_users=3, n_items=4, density=0.0)
    result = RP3beta().fit(matrix, n_recommendations=2)
    assert result.similar.nnz == 0 and (result.recommended == -1).all()
    assert kernels.item_similarity(matrix.weights, 2, metric="rp3beta").nnz == 0
