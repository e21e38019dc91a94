"""kernels.neighbour_top_n (ItemKNN's recommendation step) against a dense oracle,
the numpy/scipy reference and the scipy path it replaced.

With small integer weights and similarities every score is an exact integer
in float32 (any summation order), so the kernel, the reference and the dense
oracle must agree exactly, ties (many of them) included: descending score,
then lower column; every non-zero score is a candidate (negative ones too);
the reason is the first history item with the largest positive contribution.
With float data the kernel sums in scipy's order, so it equals the
reference and the previous scipy path bit for bit as well.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from django_recs import kernels
from django_recs.algorithms.ranking import (
    csr_values_at,
    drop_entries,
    sparse_top_n,
    strongest_history_item,
)
from django_recs.kernels import neighbours
from django_recs.kernels._reference import neighbours as reference


def integer_problem(n_users=60, n_items=40, width=None, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    width = n_items if width is None else width
    history = sp.random(n_users, n_items, density=density, format="csr", random_state=seed,
                        data_rvs=lambda size: rng.integers(1, 4, size=size)).astype(np.float32)
    similar = sp.random(n_items, width, density=0.2, format="csr", random_state=seed + 1,
                        data_rvs=lambda size: rng.integers(-2, 4, size=size)).astype(np.float32)
    similar.eliminate_zeros()
    exclude = sp.random(n_users, width, density=0.2, format="csr", random_state=seed + 2)
    return history, similar, exclude


def oracle(history, similar, n, exclude=None):
    """Dense float64 scores, one user at a time: the definition, written plainly."""
    H, S = history.toarray().astype(np.float64), similar.toarray().astype(np.float64)
    excluded = np.zeros((H.shape[0], S.shape[1]), dtype=bool)
    if exclude is not None:
        excluded = exclude.toarray() != 0
    m = H.shape[0]
    indices = np.full((m, n), -1, dtype=np.int32)
    values = np.zeros((m, n), dtype=np.float32)
    reasons = np.full((m, n), -1, dtype=np.int32)
    for u in range(m):
        scores = H[u] @ S
        candidates = np.flatnonzero((scores != 0) & ~excluded[u])
        order = candidates[np.lexsort((candidates, -scores[candidates]))][:n]
        indices[u, : order.size] = order
        values[u, : order.size] = scores[order]
        history_items = np.flatnonzero(H[u])  # the row's order: ascending column
        for rank, j in enumerate(order):
            contributions = H[u, history_items] * S[history_items, j]
            if contributions.size and contributions.max() > 0:
                reasons[u, rank] = history_items[np.argmax(contributions)]  # first maximum
    return indices, values, reasons


def previous_scipy_path(history, similar, n, exclude):
    """What ItemKNN ran before the kernel, its ties put in column order."""
    scores = drop_entries(history @ similar, exclude)
    scores.sort_indices()
    top, top_scores = sparse_top_n(scores, n)
    similar = similar.copy()
    similar.sort_indices()
    reasons = strongest_history_item(history, top,
                                     lambda i, j: csr_values_at(similar, i, j))
    return top, top_scores, reasons


def assert_same(found, expected):
    for name, a, b in zip(("indices", "scores", "reasons"), found, expected, strict=True):
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("n", [0, 1, 5, 30, 40, 100])
@pytest.mark.parametrize("with_exclusions", [False, True])
def test_equals_the_dense_oracle_and_the_reference(n, with_exclusions):
    history, similar, exclude = integer_problem()
    exclude = exclude if with_exclusions else None
    found = kernels.neighbour_top_n(history, similar, n, exclude=exclude)
    assert found[0].dtype == found[2].dtype == np.int32 and found[1].dtype == np.float32
    assert all(array.shape == (history.shape[0], n) for array in found)
    expected = oracle(history, similar, n, exclude)
    assert_same(found, expected)
    pattern = None if exclude is None else exclude.tocsr()
    assert_same(reference.neighbour_top_n(history, similar, n, pattern), expected)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_float_data_equals_the_reference_and_the_previous_path_bit_for_bit(threads):
    rng = np.random.default_rng(7)
    history = sp.random(500, 150, density=0.04, format="csr", random_state=8, dtype=np.float32)
    similar = sp.random(150, 150, density=0.1, format="csr", random_state=9, dtype=np.float32)
    similar.data -= 0.1  # negative neighbours: negative scores and contributions
    exclude = history.copy()
    exclude.data = (rng.random(exclude.nnz) < 0.5).astype(np.float32)  # explicit zeros: not seen
    found = kernels.neighbour_top_n(history, similar, 20, exclude=exclude, num_threads=threads)
    pattern = exclude.copy()
    pattern.eliminate_zeros()
    assert_same(found, reference.neighbour_top_n(history, similar, 20, pattern))
    assert_same(found, previous_scipy_path(history, similar, 20, exclude))
    both_listed = found[0][:, 1:] >= 0
    assert (found[1][:, 1:] <= found[1][:, :-1])[both_listed].all()  # best first
    assert (found[1][found[0] >= 0] < 0).any()  # negative scores are candidates too


def test_ties_go_to_the_lower_column_and_reasons_to_the_first_history_item():
    history = sp.csr_matrix(np.array([[2, 0, 1, 0, 0, 0, 0],
                                      [0, 0, 0, 0, 0, 0, 0]], dtype=np.float32))
    similar = sp.csr_matrix(np.array([
        [0, 0, 0, 0.5, 0, 1, 1],  # item 0 (weight 2): 1 to 3, 2 to 5 and 6
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 2, 0, 0],    # item 2 (weight 1): 1 to 3, 2 to 4
        [0] * 7, [0] * 7, [0] * 7, [0] * 7,
    ], dtype=np.float32))
    indices, scores, reasons = kernels.neighbour_top_n(history, similar, 5)
    # Items 3 (2 * 0.5 + 1 * 1), 4, 5 and 6 all score 2: lower column first.
    np.testing.assert_array_equal(indices, [[3, 4, 5, 6, -1], [-1] * 5])
    np.testing.assert_array_equal(scores, [[2, 2, 2, 2, 0], [0] * 5])
    # Item 3: both history items contribute 1 -> the first in the row (0).
    np.testing.assert_array_equal(reasons, [[0, 2, 0, 0, -1], [-1] * 5])


def test_empty_histories_users_who_saw_everything_and_no_positive_contribution():
    history = sp.csr_matrix(np.array([[1, 1, 0, 0],
                                      [0, 0, 0, 0],
                                      [1, 0, 0, 0],
                                      [0, 1, 0, 0]], dtype=np.float32))
    similar = sp.csr_matrix(np.array([[0, 1, 2, 3],
                                      [0, 0, -1, 0],
                                      [0, 0, 0, 0],
                                      [0, 0, 0, 0]], dtype=np.float32))
    seen = sp.csr_matrix(np.array([[0, 0, 0, 0],
                                   [1, 1, 1, 1],
                                   [1, 1, 1, 1],  # has scores, but saw everything
                                   [0, 0, 0, 0]], dtype=np.float32))
    indices, scores, reasons = kernels.neighbour_top_n(history, similar, 3, exclude=seen)
    np.testing.assert_array_equal(indices, [[3, 1, 2], [-1] * 3, [-1] * 3, [2, -1, -1]])
    np.testing.assert_array_equal(scores, [[3, 1, 1], [0] * 3, [0] * 3, [-1, 0, 0]])
    # User 3's only candidate has a negative score and no positive contribution.
    np.testing.assert_array_equal(reasons, [[0, 0, 0], [-1] * 3, [-1] * 3, [-1] * 3])
    assert_same((indices, scores, reasons), oracle(history, similar, 3, seen))


def test_rectangular_neighbours_empty_inputs_and_no_users():
    history, similar, exclude = integer_problem(n_users=20, n_items=15, width=23, seed=3)
    assert_same(kernels.neighbour_top_n(history, similar, 6, exclude=exclude),
                oracle(history, similar, 6, exclude))
    empty = kernels.neighbour_top_n(history, sp.csr_matrix((15, 23), dtype=np.float32), 6)
    assert (empty[0] == -1).all() and (empty[1] == 0).all() and (empty[2] == -1).all()
    none = kernels.neighbour_top_n(sp.csr_matrix((0, 15)), similar, 6)
    assert all(array.shape == (0, 6) for array in none)


@settings(max_examples=60, deadline=None)
@given(
    n_users=st.integers(0, 12),
    n_items=st.integers(1, 15),
    n=st.integers(0, 18),
    seed=st.integers(0, 2**16),
    threads=st.integers(1, 3),
)
def test_any_small_integer_problem_equals_the_oracle(n_users, n_items, n, seed, threads):
    rng = np.random.default_rng(seed)
    history = sp.csr_matrix(rng.integers(0, 3, size=(n_users, n_items)).astype(np.float32)
                            * (rng.random((n_users, n_items)) < 0.3))
    similar = sp.csr_matrix(rng.integers(-1, 3, size=(n_items, n_items)).astype(np.float32)
                            * (rng.random((n_items, n_items)) < 0.4))
    exclude = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    found = kernels.neighbour_top_n(history, similar, n, exclude=exclude, num_threads=threads)
    assert_same(found, oracle(history, similar, n, exclude))


def test_without_the_compiled_module_the_reference_gives_the_same(monkeypatch):
    history, similar, exclude = integer_problem(seed=5)
    compiled = kernels.neighbour_top_n(history, similar, 7, exclude=exclude)
    monkeypatch.setattr(neighbours, "native_module", lambda name: None)
    assert_same(kernels.neighbour_top_n(history, similar, 7, exclude=exclude), compiled)


def test_float64_and_int_inputs_are_computed_in_float32():
    history, similar, exclude = integer_problem(seed=6)
    found = kernels.neighbour_top_n(history.astype(np.int64), similar.astype(np.float64), 5,
                                    exclude=exclude.astype(bool))
    assert_same(found, kernels.neighbour_top_n(history, similar, 5, exclude=exclude))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"history": np.ones((3, 3))}, "history must be a scipy.sparse matrix"),
        ({"history": sp.csr_matrix(np.array([[np.nan, 1.0, 0.0]] * 3))}, "history contains NaN"),
        ({"history": sp.csr_matrix(-np.eye(3))}, "history contains negative"),
        ({"neighbours": np.eye(3)}, "neighbours must be a scipy.sparse matrix"),
        ({"neighbours": sp.eye(4, format="csr")},
         r"neighbours must have one row per history column \(3\), got 4"),
        ({"neighbours": sp.csr_matrix(np.array([[np.inf, 0, 0]] * 3))},
         "neighbours contains infinite"),
        ({"neighbours": sp.csr_matrix(np.eye(3, dtype=complex))},
         "neighbours must hold real numbers"),
        ({"n": -1}, "n must be >= 0"),
        ({"n": 2.5}, "n must be an integer"),
        ({"exclude": sp.eye(4, format="csr")},
         r"exclude must have shape \(3, 3\) \(history rows x neighbours columns\)"),
        ({"exclude": np.eye(3)}, "exclude must be a scipy.sparse matrix"),
        ({"num_threads": -1}, "num_threads must be >= 0"),
    ],
)
def test_bad_input_is_refused_by_name(kwargs, message):
    arguments = {"history": sp.eye(3, format="csr"), "neighbours": sp.eye(3, format="csr"),
                 "n": 2}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        kernels.neighbour_top_n(arguments.pop("history"), arguments.pop("neighbours"),
                                arguments.pop("n"), **arguments)
