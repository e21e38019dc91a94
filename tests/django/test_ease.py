"""The EASE algorithm on small matrices, against the dense textbook computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from django.test import override_settings

from django_recs import kernels
from django_recs.algorithms import EASE, FitResult
from django_recs.kernels._reference.ease import ease_weights as reference_weights
from django_recs.matrix import InteractionMatrix
from django_recs.registry import build_algorithm

from .test_algorithms import random_matrix


def dense_ease(matrix, l2, columns=None):
    weights = matrix.weights.toarray().astype(np.float64)
    columns = np.arange(matrix.n_items) if columns is None else columns
    X = weights[:, columns]
    return X, reference_weights(X.T @ X, l2)


def test_lists_scores_and_reasons_match_the_dense_formula():
    matrix = random_matrix(n_users=60, n_items=30, seed=2)
    progress = []
    result = EASE(l2=5.0, k=4, dtype="float64").fit(matrix, n_recommendations=7, num_threads=1,
                                                    progress=progress.append)
    assert isinstance(result, FitResult)
    X, B = dense_ease(matrix, 5.0)
    scores = X @ B
    seen = matrix.seen.toarray() != 0
    assert result.recommended.shape == (60, 7) and result.recommended.dtype == np.int32
    for u in range(matrix.n_users):
        allowed = np.flatnonzero(~seen[u] & (scores[u] > 0))
        expected = sorted(allowed, key=lambda j: (-scores[u, j], j))[:7]
        got = result.recommended[u][result.recommended[u] >= 0]
        assert list(got) == list(expected)
        np.testing.assert_allclose(result.recommended_scores[u, : len(got)], scores[u, got],
                                   rtol=1e-5)
        for slot, j in enumerate(got):
            contributions = X[u] * B[:, j]
            assert result.reasons[u, slot] == int(np.argmax(contributions))
    # Similar items: the k largest positive weights of each item's column, best first.
    similar = result.similar
    assert similar.shape == (30, 30) and similar.dtype == np.float32
    for i in range(30):
        row = similar.indices[similar.indptr[i]:similar.indptr[i + 1]]
        values = similar.data[similar.indptr[i]:similar.indptr[i + 1]]
        positive = [j for j in np.argsort(-B[:, i], kind="stable") if B[j, i] > 0][:4]
        assert list(row) == positive
        np.testing.assert_allclose(values, B[positive, i], rtol=1e-5)
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert result.counts["items_in_model"] == 30


def test_float32_lists_agree_with_float64():
    matrix = random_matrix(n_users=200, n_items=80, density=0.1, seed=5)
    single = EASE(l2=20.0).fit(matrix, n_recommendations=10)
    double = EASE(l2=20.0, dtype="float64").fit(matrix, n_recommendations=10)
    np.testing.assert_allclose(single.recommended_scores, double.recommended_scores,
                               rtol=1e-4, atol=1e-6)
    agreement = (single.recommended == double.recommended).mean()
    assert agreement > 0.99


def test_items_beyond_max_items_get_cosine_neighbours_and_no_personal_slot():
    matrix = random_matrix(n_users=80, n_items=20, density=0.2, seed=7)
    users_per_item = np.bincount(matrix.weights.indices, minlength=20)
    ease = EASE(l2=3.0, max_items=12, k=5, dtype="float64")
    kept = ease.kept_items(matrix)
    assert len(kept) == 12
    assert users_per_item[kept].min() >= np.delete(users_per_item, kept).max()
    result = ease.fit(matrix, n_recommendations=5)
    X, B = dense_ease(matrix, 3.0, kept)
    others = np.setdiff1d(np.arange(20), kept)
    cosine = kernels.item_similarity(matrix.weights, 5, metric="cosine").tocsr()
    for i in others:
        got = result.similar[i]
        np.testing.assert_array_equal(got.indices, cosine[i].indices)
        np.testing.assert_allclose(got.data, cosine[i].data, rtol=1e-6)
    for position, i in enumerate(kept):
        got = result.similar.indices[result.similar.indptr[i]:result.similar.indptr[i + 1]]
        assert set(got) <= set(kept)
        assert list(got) == [kept[j] for j in np.argsort(-B[:, position], kind="stable")
                             if B[j, position] > 0][:5]
    assert not np.isin(result.recommended[result.recommended >= 0], others).any()
    assert result.counts["items_in_model"] == 12


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (1, 5), (5, 1), (3, 4)])
def test_degenerate_data_returns_what_it_can(shape):
    weights = sp.csr_matrix(np.ones(shape, dtype=np.float32)) if 0 not in shape \
        else sp.csr_matrix(shape, dtype=np.float32)
    if shape == (3, 4):
        weights = sp.csr_matrix(shape, dtype=np.float32)
    result = EASE(k=3).fit(InteractionMatrix.from_csr(weights), n_recommendations=4)
    assert result.similar.shape == (shape[1], shape[1])
    assert result.recommended.shape[0] == shape[0]
    if shape[1] == 1 or weights.nnz == 0:
        assert result.similar.nnz == 0
        assert (result.recommended == -1).all()


def test_similar_items_are_ranked_block_by_block(monkeypatch):
    from django_recs.algorithms import ease

    matrix = random_matrix(n_users=50, n_items=20, seed=8)
    single = EASE(l2=2.0, k=4).fit(matrix, n_recommendations=3)
    monkeypatch.setattr(ease, "SIMILAR_BLOCK", 3)
    monkeypatch.setattr(ease, "BLOCK_ENTRIES", 40)  # two users per block of scores
    monkeypatch.setattr(ease, "REASON_USERS", 3)
    blocked = EASE(l2=2.0, k=4).fit(matrix, n_recommendations=3)
    np.testing.assert_array_equal(blocked.similar.indptr, single.similar.indptr)
    np.testing.assert_array_equal(blocked.similar.indices, single.similar.indices)
    np.testing.assert_array_equal(blocked.recommended, single.recommended)
    np.testing.assert_array_equal(blocked.reasons, single.reasons)
    for dtype in ("float32", "float64"):
        kept, B = EASE(l2=2.0, dtype=dtype).weights(matrix)
        blocked_numpy = ease.recommend_dense_numpy(matrix, kept, B, 3)
        monkeypatch.setattr(ease, "BLOCK_ENTRIES", 1 << 24)
        whole_numpy = ease.recommend_dense_numpy(matrix, kept, B, 3)
        monkeypatch.setattr(ease, "BLOCK_ENTRIES", 40)
        for got, expected in zip(blocked_numpy, whole_numpy):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_ranking_equals_the_numpy_path(threads):
    """float32 lists come from kernels.history_top_n; the dense numpy blocks agree."""
    from django_recs.algorithms import ease

    matrix = random_matrix(n_users=400, n_items=90, density=0.08, seed=12)
    model = EASE(l2=4.0)
    kept, B = model.weights(matrix)
    assert B.dtype == np.float32
    progress = []
    compiled = ease.recommend_dense(matrix, kept, B, 12, num_threads=threads,
                                    progress=progress.append)
    numpy_path = ease.recommend_dense_numpy(matrix, kept, B, 12, num_threads=threads)
    recommended, scores, reasons = compiled
    assert (recommended >= 0).sum() > 1000  # lists are not empty
    # float32 sums in another order may swap two items of (almost) equal score.
    assert (recommended == numpy_path[0]).mean() > 0.99
    same = recommended == numpy_path[0]
    np.testing.assert_allclose(scores, numpy_path[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(reasons[same], numpy_path[2][same])
    seen = matrix.seen.toarray() != 0
    user, slot = np.nonzero(recommended >= 0)
    assert not seen[user, recommended[user, slot]].any()
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_a_user_without_history_gets_no_list():
    weights = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0]], dtype=np.float32))
    result = EASE(l2=0.1).fit(InteractionMatrix.from_csr(weights, weights), n_recommendations=2)
    assert (result.recommended[2] == -1).all()
    assert result.recommended[0, 0] == 2  # the one item co-bought with what user 0 has


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"l2": 0}, "l2 must be a number > 0"),
        ({"l2": -5.0}, "l2 must be a number > 0"),
        ({"l2": float("nan")}, "l2 must be a number > 0"),
        ({"max_items": 0}, "max_items must be an integer >= 1"),
        ({"k": 2.5}, "k must be an integer >= 1"),
        ({"dtype": "float16"}, "dtype must be"),
        ({"lambda": 3}, "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        EASE(**params)


def test_nan_weights_are_refused():
    weights = sp.csr_matrix(np.array([[1.0, 2.0]], dtype=np.float32))
    matrix = InteractionMatrix.from_csr(weights)
    matrix.weights.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        EASE().fit(matrix)


@override_settings(DJANGO_RECS={"ALGORITHMS": {
    "personal": {"class": "django_recs.algorithms.EASE", "l2": 100.0}}})
def test_built_from_settings_like_the_other_algorithms():
    algorithm = build_algorithm("personal")
    assert isinstance(algorithm, EASE) and algorithm.l2 == 100.0 and algorithm.max_items == 20000


def test_float32_similar_items_are_the_top_weights_of_each_column():
    """The compiled selection of the float32 path equals dense_top_n on B's columns."""
    from django_recs.algorithms import ease

    matrix = random_matrix(n_users=300, n_items=70, density=0.1, seed=13)
    model = EASE(l2=3.0, k=6)
    kept, B = model.weights(matrix)
    similar = model.similar_items(matrix, kept, B, num_threads=2)
    top, values = ease.dense_top_n(np.ascontiguousarray(B.T), 6)
    assert (top >= 0).sum() > 300
    for i in range(len(kept)):
        row = slice(similar.indptr[kept[i]], similar.indptr[kept[i] + 1])
        expected = top[i][top[i] >= 0]
        np.testing.assert_array_equal(similar.indices[row], kept[expected])
        np.testing.assert_array_equal(similar.data[row], values[i][: len(expected)])
