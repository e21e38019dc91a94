"""Coverage, Gini of exposure, novelty and intra-list diversity on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs.evaluation import (
    catalog_coverage,
    exposure,
    exposure_gini,
    gini_index,
    intra_list_diversity,
    novelty,
)

RECOMMENDED = np.array([[0, 1], [1, 2], [-1, -1]])


def test_exposure_and_coverage():
    assert exposure(RECOMMENDED, 5, 2).tolist() == [1, 2, 1, 0, 0]
    assert catalog_coverage(RECOMMENDED, 5, 2) == pytest.approx(3 / 5)
    assert catalog_coverage(RECOMMENDED, 5, 1) == pytest.approx(2 / 5)  # items 0 and 1


def test_gini_hand_computed():
    # Sorted [0, 0, 0, 4], weights (2i - n - 1) = -3, -1, 1, 3 -> 12 / (4 * 4).
    assert gini_index([4, 0, 0, 0]) == pytest.approx(0.75)
    assert gini_index([3, 3, 3]) == 0.0
    assert gini_index([0, 0]) == 0.0
    # Exposure [1, 2, 1, 0, 0] sorted [0, 0, 1, 1, 2], weights -4, -2, 0, 2, 4 -> 10 / 20.
    assert exposure_gini(RECOMMENDED, 5, 2) == pytest.approx(0.5)


def test_gini_rejects_negative_counts():
    with pytest.raises(ValueError, match="counts: must be >= 0"):
        gini_index([1, -1])


def test_novelty_hand_computed():
    # Item 0: all 4 users (p = 1, 0 bits); item 1: one user (2 bits);
    # item 2: nobody, counted as one user (2 bits).
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [2, 0, 0], [1, 0, 0]], dtype=np.float32))
    assert novelty(np.array([[0, 1], [2, -1]]), train, 2) == pytest.approx(4 / 3)
    assert np.isnan(novelty(np.array([[-1]]), train, 1))


def test_diversity_by_category():
    categories = np.array([0, 0, 1, -1])
    recommended = np.array([[0, 1, 2], [0, 3, -1], [2, 0, -1]])
    # List 0: pairs same, different, different -> 2/3. List 1: only an unknown
    # category pair, not judged. List 2: different -> 1.
    assert intra_list_diversity(recommended, 3, categories=categories) == pytest.approx(5 / 6)


def test_diversity_by_similarity_matrix_symmetrises():
    similarity = sp.csr_matrix(([0.8, 0.4], ([0, 1], [1, 0])), shape=(3, 3))
    # s(0, 1) = (0.8 + 0.4) / 2 = 0.6; other pairs 0.
    result = intra_list_diversity(np.array([[0, 1, 2]]), 3, similarity=similarity)
    assert result == pytest.approx((0.4 + 1 + 1) / 3)


def test_diversity_by_feature_cosine():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    half = 1 - np.sqrt(0.5)
    result = intra_list_diversity(np.array([[0, 1, 2]]), 3, features=features)
    assert result == pytest.approx((1 + half + half) / 3)


def test_diversity_needs_exactly_one_measure():
    with pytest.raises(ValueError, match="exactly one of"):
        intra_list_diversity(RECOMMENDED, 2)
    with pytest.raises(ValueError, match="exactly one of"):
        intra_list_diversity(RECOMMENDED, 2, categories=np.zeros(3, int), features=np.eye(3))


def test_identical_lists_are_not_diverse():
    features = np.eye(4)
    assert intra_list_diversity(np.array([[0, 1], [2, 3]]), 2, features=features) == 1.0
    assert intra_list_diversity(np.array([[0, 1]]), 2, categories=np.array([5, 5])) == 0.0


def test_bad_indexes_raise():
    with pytest.raises(ValueError, match="item index outside -1 .. 2"):
        catalog_coverage(np.array([[0, 3]]), 3, 2)
    with pytest.raises(ValueError, match="k: expected a positive integer"):
        exposure(RECOMMENDED, 5, 0)
