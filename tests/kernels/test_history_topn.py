"""kernels.history_top_n against the dense product ``history @ weights`` and an argsort.

With small integer weights every score is an exact integer in float32 (any
summation order), so the kernel, the numpy reference and the oracle must
agree exactly, ties (many of them) included: descending score, then lower
column; only positive scores are selected.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import topn
from django_recs.kernels._reference import topn as reference


def integer_problem(n_users=70, n_items=45, width=None, density=0.15, seed=0):
    rng = np.random.default_rng(seed)
    width = n_items if width is None else width
    history = sp.random(n_users, n_items, density=density, format="csr", random_state=seed,
                        data_rvs=lambda size: rng.integers(1, 4, size=size)).astype(np.float32)
    weights = rng.integers(-3, 4, size=(n_items, width)).astype(np.float32)
    exclude = sp.random(n_users, width, density=0.2, format="csr", random_state=seed + 1)
    return history, weights, exclude


def oracle(history, weights, n, exclude=None):
    scores = history.toarray().astype(np.float64) @ weights.astype(np.float64)
    if exclude is not None:
        scores[exclude.toarray() != 0] = -np.inf
    indices = np.full((scores.shape[0], n), -1, dtype=np.int32)
    values = np.zeros((scores.shape[0], n), dtype=np.float32)
    for row, row_scores in enumerate(scores):
        positive = np.flatnonzero(row_scores > 0)
        order = positive[np.lexsort((positive, -row_scores[positive]))][:n]
        indices[row, : order.size] = order
        values[row, : order.size] = row_scores[order]
    return indices, values


@pytest.mark.parametrize("n", [1, 5, 30, 45, 60])
@pytest.mark.parametrize("with_exclusions", [False, True])
def test_equals_argsort_of_the_dense_product(n, with_exclusions):
    history, weights, exclude = integer_problem()
    exclude = exclude if with_exclusions else None
    indices, scores = kernels.history_top_n(history, weights, n, exclude=exclude)
    expected_indices, expected_scores = oracle(history, weights, n, exclude)
    assert indices.dtype == np.int32 and scores.dtype == np.float32
    assert indices.shape == scores.shape == (history.shape[0], n)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores)
    # The numpy reference (used when the compiled module is missing) agrees too.
    ref_indices, ref_scores = reference.history_top_n(
        history, weights, n, None if exclude is None else exclude.tocsr())
    np.testing.assert_array_equal(ref_indices, expected_indices)
    np.testing.assert_array_equal(ref_scores, expected_scores)


def test_rectangular_weights_and_empty_rows():
    history, weights, exclude = integer_problem(n_users=30, n_items=20, width=33, seed=3)
    history = sp.vstack([history, sp.csr_matrix((4, 20), dtype=np.float32)]).tocsr()
    exclude = sp.vstack([exclude, sp.csr_matrix((4, 33))]).tocsr()
    indices, scores = kernels.history_top_n(history, weights, 8, exclude=exclude)
    expected = oracle(history, weights, 8, exclude)
    np.testing.assert_array_equal(indices, expected[0])
    np.testing.assert_array_equal(scores, expected[1])
    assert (indices[-4:] == -1).all() and (scores[-4:] == 0).all()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_float_weights_match_the_float32_product_for_any_thread_count(threads):
    rng = np.random.default_rng(11)
    history = sp.random(300, 120, density=0.05, format="csr", random_state=4,
                        dtype=np.float32)
    weights = rng.standard_normal((120, 120)).astype(np.float32)
    indices, scores = kernels.history_top_n(history, weights, 10, exclude=history,
                                            num_threads=threads)
    dense = np.asarray(history @ weights, dtype=np.float32)
    found = indices >= 0
    rows = np.repeat(np.arange(300), found.sum(axis=1))
    np.testing.assert_allclose(scores[found], dense[rows, indices[found]], rtol=1e-5, atol=1e-6)
    assert not np.asarray(history[rows, indices[found]]).any()  # seen never selected
    assert (scores[found] > 0).all() and (np.diff(scores, axis=1)[found[:, 1:]] <= 0).all()
    expected, _ = oracle(history, weights, 10, history)
    assert (indices == expected).mean() > 0.99  # float32 rounding may swap near-ties


def test_without_the_compiled_module_the_reference_gives_the_same(monkeypatch):
    history, weights, exclude = integer_problem(seed=5)
    compiled = kernels.history_top_n(history, weights, 7, exclude=exclude)
    monkeypatch.setattr(topn, "native_module", lambda name: None)
    fallback = kernels.history_top_n(history, weights, 7, exclude=exclude)
    np.testing.assert_array_equal(compiled[0], fallback[0])
    np.testing.assert_array_equal(compiled[1], fallback[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"history": np.ones((3, 3))}, "history must be a scipy.sparse matrix"),
        ({"history": sp.csr_matrix(np.array([[np.nan, 1.0, 0.0]] * 3))}, "history contains NaN"),
        ({"history": sp.csr_matrix(-np.eye(3))}, "history contains negative"),
        ({"weights": np.ones(3)}, "weights must be a 2-D array"),
        ({"weights": np.ones((4, 3))}, "weights must have one row per history column"),
        ({"weights": np.array([[np.inf, 0, 0]] * 3)}, "weights contains NaN or infinite"),
        ({"weights": np.ones((3, 3), dtype=bool)}, "weights must hold real numbers"),
        ({"n": 0}, "n must be >= 1"),
        ({"exclude": sp.eye(4, format="csr")}, r"exclude must have shape \(3, 3\)"),
        ({"exclude": np.eye(3)}, "exclude must be a scipy.sparse matrix"),
    ],
)
def test_bad_input_is_refused_by_name(kwargs, message):
    arguments = {"history": sp.eye(3, format="csr"), "weights": np.ones((3, 3)), "n": 2}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        kernels.history_top_n(arguments.pop("history"), arguments.pop("weights"),
                              arguments.pop("n"), **arguments)
