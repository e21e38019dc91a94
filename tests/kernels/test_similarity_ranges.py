"""kernels.item_similarity(items=(start, stop)): the rows of a range of items.

A range must give exactly the rows start:stop of the full result — indices,
order and scores — for every metric, in both output layouts of the compiled
kernel, with any transposition grouping and thread count, and in the numpy
reference; that is what lets several workers split one computation.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import similarity
from django_recs.kernels._reference import similarity as reference
from tests.kernels.test_similarity import METRICS, assert_valid_top_k, power_law_matrix

N_ITEMS = 120


def ranges(n_items: int):
    return [(0, n_items), (0, 0), (0, 1), (10, 37), (37, 38), (n_items - 5, n_items),
            (n_items, n_items)]


def assert_rows_equal(got: sp.csr_matrix, full: sp.csr_matrix, start: int, stop: int) -> None:
    expected = full[start:stop]
    assert isinstance(got, sp.csr_matrix)
    assert got.shape == (stop - start, full.shape[1])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)  # same order, ties included
    np.testing.assert_array_equal(got.data, expected.data)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("integer", [True, False])
def test_a_range_equals_the_rows_of_the_full_result(metric, integer):
    X = power_law_matrix(n_items=N_ITEMS, integer=integer, seed=5)
    full = kernels.item_similarity(X, 7, metric=metric, shrink=0.5, alpha=0.3)
    assert full.nnz > 0
    for start, stop in ranges(N_ITEMS):
        got = kernels.item_similarity(X, 7, metric=metric, shrink=0.5, alpha=0.3,
                                      items=(start, stop))
        assert_rows_equal(got, full, start, stop)


@pytest.mark.parametrize("metric", METRICS)
def test_the_reference_range_equals_the_rows_of_the_full_reference(metric):
    X = power_law_matrix(n_items=N_ITEMS, seed=6)
    full = reference.item_similarity(X, 9, metric=metric)
    for start, stop in ranges(N_ITEMS):
        got = reference.item_similarity(X, 9, metric=metric, items=(start, stop))
        assert_rows_equal(got, full, start, stop)


@pytest.mark.parametrize("metric", METRICS)
def test_kernel_range_matches_the_reference_range(metric):
    X = power_law_matrix(n_items=N_ITEMS, seed=8)
    got = kernels.item_similarity(X, 12, metric=metric, items=(20, 90))
    expected = reference.item_similarity(X, 12, metric=metric, items=(20, 90))
    assert_rows_equal(got, expected, 0, 70)


def test_ranges_stacked_give_the_full_result():
    X = power_law_matrix(n_items=N_ITEMS, seed=9)
    full = kernels.item_similarity(X, 10)
    bounds = [0, 13, 14, 60, 119, N_ITEMS]
    parts = [kernels.item_similarity(X, 10, items=(a, b)) for a, b in zip(bounds, bounds[1:])]
    stacked = sp.vstack(parts, format="csr")
    assert_rows_equal(stacked, full, 0, N_ITEMS)


@pytest.mark.parametrize("metric", METRICS)
def test_range_in_the_counting_layout(monkeypatch, metric):
    # No room for k fixed slots per row: the kernel counts each row first.
    X = power_law_matrix(n_items=N_ITEMS, seed=10)
    full = kernels.item_similarity(X, 30, metric=metric)
    monkeypatch.setattr(similarity, "_FIXED_SLOTS_PER_NONZERO", 0)
    monkeypatch.setattr(similarity, "_FIXED_SLOTS_MIN", 0)
    for start, stop in ranges(N_ITEMS):
        got = kernels.item_similarity(X, 30, metric=metric, items=(start, stop))
        assert_rows_equal(got, full, start, stop)


def test_range_with_small_transposition_groups_and_threads(monkeypatch):
    # Group boundaries fall inside the range: rows must not depend on them.
    X = power_law_matrix(n_items=N_ITEMS, seed=12)
    full = kernels.item_similarity(X, 6, num_threads=1)
    monkeypatch.setattr(similarity, "_MIN_GROUP_NNZ", 1)
    monkeypatch.setattr(similarity, "_TRANSPOSE_GROUPS", 50)
    for threads in (1, 2):
        got = kernels.item_similarity(X, 6, num_threads=threads, items=(7, 101))
        assert_rows_equal(got, full, 7, 101)
        assert_valid_top_k(sp.vstack([sp.csr_matrix((7, N_ITEMS), dtype=np.float32), got,
                                      sp.csr_matrix((19, N_ITEMS), dtype=np.float32)],
                                     format="csr"), N_ITEMS, 6)


def test_range_without_the_compiled_module_uses_the_reference(monkeypatch):
    X = power_law_matrix(n_items=N_ITEMS, seed=13)
    full = kernels.item_similarity(X, 8, metric="jaccard")
    monkeypatch.setattr(similarity, "native_module", lambda name: None)
    got = kernels.item_similarity(X, 8, metric="jaccard", items=(30, 75))
    assert_rows_equal(got, full, 30, 75)


def test_range_of_an_empty_matrix_is_empty_rows():
    X = sp.csr_matrix((10, 6), dtype=np.float32)
    S = kernels.item_similarity(X, 3, items=(2, 5))
    assert S.shape == (3, 6) and S.nnz == 0 and S.dtype == np.float32


@pytest.mark.parametrize("items", [(5, 3), (-1, 2), (0, N_ITEMS + 1), "ab", (1.0, 2),
                                   (True, 2), (1, 2, 3), 4, (None, 3)])
def test_bad_ranges_are_refused(items):
    X = power_law_matrix(n_items=N_ITEMS, seed=1)
    with pytest.raises(ValueError, match="items"):
        kernels.item_similarity(X, 5, items=items)


def test_numpy_integer_bounds_are_accepted():
    X = power_law_matrix(n_items=N_ITEMS, seed=2)
    full = kernels.item_similarity(X, 5)
    got = kernels.item_similarity(X, 5, items=(np.int64(3), np.int32(9)))
    assert_rows_equal(got, full, 3, 9)
