"""kernels.factor_reasons against a pair-by-pair loop and the numpy reference.

Item vectors with entries in {-1, -0.5, 0, 0.5, 1} and integer weights make
every dot product and contribution exact in float32 (any summation order),
so the kernel, the reference and the oracle must agree exactly, ties (many:
duplicated vectors, repeated weights) included: the first history item wins.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from django_recs import kernels
from django_recs.kernels import reasons
from django_recs.kernels._reference import reasons as reference


def exact_problem(n_users=80, n_items=60, factors=6, n=7, density=0.12, seed=0):
    rng = np.random.default_rng(seed)
    history = sp.random(n_users, n_items, density=density, format="lil", random_state=seed,
                        data_rvs=lambda size: rng.integers(1, 4, size=size)).astype(np.float32)
    history[1] = 0  # no history
    history[2] = 0
    history[2, 5] = 2.0  # a single item
    history = history.tocsr()
    unit = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=(n_items, factors)).astype(np.float32)
    unit[10:20] = unit[0]  # identical vectors: ties between history items
    recommended = rng.integers(0, n_items, size=(n_users, n)).astype(np.int32)
    recommended[::5, n - 3:] = -1  # padding
    recommended[7] = -1  # a user without recommendations
    return history, recommended, unit


def oracle(history, recommended, unit):
    """Each pair by the definition, first maximum in history order, > 0 only."""
    out = np.full(recommended.shape, -1, dtype=np.int32)
    for u, targets in enumerate(recommended):
        items = history.indices[history.indptr[u]:history.indptr[u + 1]]
        weights = history.data[history.indptr[u]:history.indptr[u + 1]]
        for k, j in enumerate(targets):
            if j < 0:
                continue
            best = 0.0
            for i, w in zip(items, weights):
                value = float(w) * float(unit[i].astype(np.float64) @ unit[j].astype(np.float64))
                if value > best:
                    best, out[u, k] = value, i
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_equals_the_pairwise_definition_and_the_reference(seed, num_threads):
    history, recommended, unit = exact_problem(seed=seed)
    expected = oracle(history, recommended, unit)
    result = kernels.factor_reasons(history, recommended, unit, num_threads=num_threads)
    assert result.dtype == np.int32 and result.shape == recommended.shape
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(reference.factor_reasons(history, recommended, unit), expected)
    assert (result[recommended < 0] == -1).all()
    assert (result[1] == -1).all() and (result[7] == -1).all()
    assert set(result[2]) <= {-1, 5}


def test_ties_go_to_the_first_history_item_and_non_positive_gives_none():
    unit = np.array([[1, 0], [1, 0], [0, 1], [-1, 0], [1, 0]], dtype=np.float32)
    history = sp.csr_matrix(np.array([
        [0, 2, 0, 0, 2],  # items 1 and 4: the same contribution, 1 comes first
        [0, 0, 3, 0, 0],  # orthogonal to item 0: contribution 0, no reason
        [0, 0, 0, 1, 0],  # opposite: negative, no reason
        [0, 1, 0, 0, 2],  # item 4 weighs more
    ], dtype=np.float32))
    recommended = np.array([[0, -1], [0, 2], [0, 3], [0, 1]], dtype=np.int32)
    result = kernels.factor_reasons(history, recommended, unit)
    np.testing.assert_array_equal(result, [[1, -1], [-1, 2], [-1, 3], [4, 4]])
    np.testing.assert_array_equal(reference.factor_reasons(history, recommended, unit), result)


def test_histories_longer_than_one_chunk():
    # 600 history items: the running best carries over from one chunk to the next.
    history, recommended, unit = exact_problem(n_users=9, n_items=700, density=0.9, seed=3)
    assert np.diff(history.indptr).max() > 512
    np.testing.assert_array_equal(kernels.factor_reasons(history, recommended, unit),
                                  oracle(history, recommended, unit))


def test_random_factors_match_the_reference():
    rng = np.random.default_rng(4)
    history = sp.random(300, 200, density=0.05, format="csr", random_state=4, dtype=np.float32)
    factors = rng.standard_normal((200, 16)).astype(np.float32)
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    recommended = rng.integers(-1, 200, size=(300, 20)).astype(np.int32)
    np.testing.assert_array_equal(kernels.factor_reasons(history, recommended, unit),
                                  reference.factor_reasons(history, recommended, unit))


def test_empty_inputs():
    history = sp.csr_matrix((3, 4), dtype=np.float32)
    unit = np.eye(4, dtype=np.float32)
    assert (kernels.factor_reasons(history, np.zeros((3, 2), dtype=np.int32), unit) == -1).all()
    assert kernels.factor_reasons(history, np.zeros((3, 0), dtype=np.int32), unit).shape == (3, 0)
    empty = kernels.factor_reasons(sp.csr_matrix((0, 4)), np.zeros((0, 5), dtype=np.int64), unit)
    assert empty.shape == (0, 5) and empty.dtype == np.int32


def test_reference_fallback_gives_the_same_result(monkeypatch):
    history, recommended, unit = exact_problem(seed=5)
    native = kernels.factor_reasons(history, recommended, unit)
    monkeypatch.setattr(reasons, "native_module", lambda name: None)
    np.testing.assert_array_equal(kernels.factor_reasons(history, recommended, unit), native)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"history": np.ones((80, 60))}, "history must be a scipy.sparse"),
        ({"history": sp.csr_matrix(-np.ones((80, 60)))}, "negative"),
        ({"recommended": np.zeros(80, dtype=np.int32)}, "recommended must be a 2-D"),
        ({"recommended": np.zeros((80, 3))}, "integer item indexes"),
        ({"recommended": np.zeros((79, 3), dtype=np.int32)}, "one row per history row"),
        ({"recommended": np.full((80, 3), 60)}, r"in \[0, 60\) or -1"),
        ({"recommended": np.full((80, 3), -2)}, r"in \[0, 60\) or -1"),
        ({"unit_items": np.ones((59, 6))}, "one row per history column"),
        ({"unit_items": np.full((60, 6), np.nan)}, "unit_items contains NaN"),
        ({"unit_items": np.ones(60)}, "2-D"),
        ({"num_threads": -1}, "num_threads"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_problem(kwargs, message):
    history, recommended, unit = exact_problem()
    arguments = {"history": history, "recommended": recommended, "unit_items": unit}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        kernels.factor_reasons(**arguments)
