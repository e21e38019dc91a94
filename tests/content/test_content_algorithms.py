"""ContentKNN and Hybrid on arrays (no database): neighbours against a brute-force
cosine, items without features, the hybrid blend formula, parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.algorithms import ContentKNN, Hybrid, ItemKNN
from django_recs.algorithms.hybrid import blend_similarities, collaborative_weight
from django_recs.content import ContentIndex, FeatureBlock, build_item_features, nearest_items
from django_recs.matrix import InteractionMatrix
from tests.content import numpy_kernels

kernels_or_numpy = numpy_kernels.kernels_or_numpy  # autouse fixture

TITLES = [
    "red heart candle holder",
    "white heart candle holder",
    "red retrospot lunch bag",
    "pink retrospot lunch bag",
    "",  # item 4: no text and no category
    "zinc heart garden sign",
    "red retrospot cake tin",
    "vintage garden sign",
]
CATEGORIES = ["home", "home", "bags", "bags", "", "garden", "kitchen", "garden"]
N_ITEMS = len(TITLES)


def catalogue_features(n_items=N_ITEMS):
    return build_item_features([
        FeatureBlock("shop.Item", "text", "title", 2.0, np.arange(len(TITLES)), TITLES),
        FeatureBlock("shop.Item", "categorical", "category", 1.0, np.arange(len(TITLES)),
                     CATEGORIES),
    ], n_items)


def interactions(n_items=N_ITEMS, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((30, n_items)) < 0.35) * rng.integers(1, 4, size=(30, n_items))
    dense[:, 4] = 0  # item 4 nobody bought
    dense[:, 7] = 0  # item 7 is new
    dense[0, 7] = 1  # ... bought once
    return InteractionMatrix.from_csr(sp.csr_matrix(dense.astype(np.float32)))


def brute_force_neighbours(X, k, shrink=0.0):
    """Top-k cosine of the columns of X (dense), ties to the lower column; dict row -> list."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=0)
    sims = (X.T @ X) / (np.outer(norms, norms) + shrink + 1e-300)
    np.fill_diagonal(sims, 0)
    result = {}
    for i in range(X.shape[1]):
        order = [j for j in np.argsort(-sims[i], kind="stable") if sims[i, j] > 1e-12][:k]
        result[i] = [(j, sims[i, j]) for j in order]
    return result


def rows_of(matrix):
    matrix = sp.csr_matrix(matrix)
    return {
        i: list(zip(matrix.indices[matrix.indptr[i]:matrix.indptr[i + 1]].tolist(),
                    matrix.data[matrix.indptr[i]:matrix.indptr[i + 1]].tolist()))
        for i in range(matrix.shape[0])
    }


def assert_same_neighbours(actual, expected):
    for item, neighbours in expected.items():
        got = actual.get(item, [])
        assert [j for j, _ in got] == [j for j, _ in neighbours], item
        np.testing.assert_allclose([s for _, s in got], [s for _, s in neighbours], rtol=1e-5)


# -- ContentKNN -----------------------------------------------------------------------


@pytest.mark.parametrize("k, shrink", [(3, 0.0), (10, 0.0), (2, 0.5)])
def test_content_knn_neighbours_are_the_cosine_of_feature_columns(k, shrink):
    features = catalogue_features()
    matrix = interactions()
    result = ContentKNN(k=k, shrink=shrink).use_item_features(features).fit(
        matrix, n_recommendations=3)
    expected = brute_force_neighbours(features.matrix.toarray(), k, shrink)
    assert_same_neighbours(rows_of(result.similar), expected)
    # Same title words and category: the white holder is the red one's best match.
    assert rows_of(result.similar)[0][0][0] == 1


def test_items_without_features_get_no_neighbours_and_are_counted():
    features = catalogue_features(n_items=len(TITLES) + 2)  # two items with no values at all
    matrix = InteractionMatrix.from_csr(sp.csr_matrix((5, len(TITLES) + 2), dtype=np.float32))
    result = ContentKNN(k=5).use_item_features(features).fit(matrix)
    neighbours = np.diff(result.similar.indptr)
    assert neighbours[4] == neighbours[8] == neighbours[9] == 0
    assert result.counts["items_without_features"] == 3
    assert result.counts["items_without_neighbours"] == 3
    assert 4 not in set(result.similar.indices.tolist())  # never anybody's neighbour
    assert result.content_index.k == 5 and not result.content_index.blended


def test_content_knn_personal_lists_come_from_the_history():
    features = catalogue_features()
    weights = sp.csr_matrix(([1.0], ([0], [2])), shape=(1, len(TITLES)), dtype=np.float32)
    matrix = InteractionMatrix.from_csr(weights, seen=weights)
    result = ContentKNN(k=5).use_item_features(features).fit(matrix, n_recommendations=2)
    # The red lunch bag's buyer gets the pink lunch bag first, explained by the red one.
    assert result.recommended[0, 0] == 3 and result.reasons[0, 0] == 2
    assert 2 not in result.recommended[0]


def test_content_knn_needs_aligned_features():
    with pytest.raises(ValueError, match="needs item features"):
        ContentKNN().fit(interactions())
    with pytest.raises(ValueError, match="9 item columns"):
        ContentKNN().use_item_features(catalogue_features(9)).fit(interactions())
    with pytest.raises(ValueError, match="ItemFeatures"):
        ContentKNN().use_item_features(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="parameter k"):
        ContentKNN(k=0)


def test_one_item_scored_against_the_index_matches_the_kernel():
    features = catalogue_features()
    similar = kernels.item_similarity(features.matrix, 4, metric="cosine", shrink=0.1)
    index = ContentIndex(features, k=4, shrink=0.1)
    for item in range(len(TITLES)):
        vector = sp.csr_matrix(features.matrix[:, item].T, dtype=np.float64)
        columns, scores = nearest_items(index, vector, exclude=item)
        expected = rows_of(similar)[item]
        assert columns.tolist() == [j for j, _ in expected]
        np.testing.assert_allclose(scores, [s for _, s in expected], rtol=1e-5)


# -- the hybrid blend ---------------------------------------------------------------------


def test_collaborative_weight_is_n_over_n_plus_shrink():
    np.testing.assert_allclose(collaborative_weight([0, 1, 10, 90], 10.0), [0, 1 / 11, 0.5, 0.9])
    np.testing.assert_allclose(collaborative_weight([0, 3], 0.0), [0, 1])


@pytest.mark.parametrize("support", ["item", "pair"])
@pytest.mark.parametrize("shrink", [0.0, 2.0, 25.0])
def test_blend_follows_the_documented_formula(support, shrink):
    rng = np.random.default_rng(3)
    n_items = 12

    def random_neighbours(density):
        dense = np.where(rng.random((n_items, n_items)) < density, rng.random((n_items, n_items)), 0)
        np.fill_diagonal(dense, 0)
        return sp.csr_matrix(dense.astype(np.float32))

    collaborative, content = random_neighbours(0.3), random_neighbours(0.4)
    counts = rng.integers(0, 30, size=n_items)
    counts[:3] = 0
    blended = blend_similarities(collaborative, content, counts, shrink=shrink, k=4,
                                 support=support)
    n = counts[:, None] * np.ones(n_items)
    if support == "pair":
        n = np.minimum(n, counts[None, :])
    w = np.where(n > 0, n / np.maximum(n + shrink, 1e-300), 0.0)
    expected = w * collaborative.toarray() + (1 - w) * content.toarray()
    reference = {}
    for i in range(n_items):
        order = [j for j in np.argsort(-expected[i], kind="stable") if expected[i, j] > 0][:4]
        reference[i] = [(j, expected[i, j]) for j in order]
    assert_same_neighbours(rows_of(blended), reference)
    # Items nobody interacted with are pure content.
    for i in range(3):
        assert all(abs(s - content[i, j]) < 1e-6 for j, s in rows_of(blended)[i])


def test_hybrid_with_itemknn_blends_the_two_neighbour_lists():
    features = catalogue_features()
    matrix = interactions()
    hybrid = Hybrid(k=4, shrink=5.0).use_item_features(features)
    result = hybrid.fit(matrix, n_recommendations=3)
    collaborative = ItemKNN(k=4).fit(matrix).similar
    content = ContentKNN(k=4).use_item_features(features).fit(matrix).similar
    counts = np.diff(matrix.weights.tocsc().indptr)
    expected = blend_similarities(collaborative, content, counts, shrink=5.0, k=4)
    assert_same_neighbours(rows_of(result.similar), rows_of(expected))
    assert result.counts["items_without_interactions"] == 1  # item 4
    assert result.counts["items_without_features"] == 1  # item 4
    assert result.counts["items_without_neighbours"] == 1
    assert result.content_index.blended
    # Item 7, bought once, leans on content: its garden sign twin comes first.
    assert rows_of(result.similar)[7][0][0] == 5
    assert result.recommended.shape == (matrix.n_users, 3)


def test_hybrid_with_als_factors():
    features = catalogue_features()
    matrix = interactions()
    hybrid = Hybrid(k=3, shrink=1.0, collaborative="als",
                    collaborative_params={"factors": 3, "iterations": 4, "regularization": 0.1})
    result = hybrid.use_item_features(features).fit(matrix, n_recommendations=2)
    similar = rows_of(result.similar)
    assert all(len(similar[i]) <= 3 for i in similar)
    # Item 4 has neither interactions nor features: nothing, not even random factors.
    assert similar[4] == [] and 4 not in set(result.similar.indices.tolist())
    # A huge shrink is pure content (collaborative scores shrunk to ~1e-12 only tie-break).
    pure = Hybrid(k=3, shrink=1e12, collaborative="als",
                  collaborative_params={"factors": 3, "iterations": 2})
    blended = rows_of(pure.use_item_features(features).fit(matrix).similar)
    content = rows_of(ContentKNN(k=3).use_item_features(features).fit(matrix).similar)
    assert_same_neighbours({i: blended[i][: len(content[i])] for i in blended}, content)


@pytest.mark.parametrize(
    "params, words",
    [
        ({"collaborative": "svd"}, "collaborative must be one of"),
        ({"collaborative_params": {"metric": "euclid"}}, "metric"),
        ({"collaborative": "als", "collaborative_params": {"factorz": 3}}, "factorz"),
        ({"content_params": {"shrink": -1}}, "shrink"),
        ({"content_params": ["k"]}, "content_params must be a dict"),
        ({"shrink": -0.5}, "shrink"),
        ({"support": "both"}, "support"),
        ({"alpha": 1}, "unknown parameter"),
    ],
)
def test_hybrid_parameter_errors_name_the_parameter(params, words):
    with pytest.raises(ValueError, match=words):
        Hybrid(**params)
