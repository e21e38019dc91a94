"""index_keys: primary keys to contiguous indexes, dense or sparse, against np.unique."""

import numpy as np
import pytest

from django_recs.matrix import index_keys


@pytest.mark.parametrize("keys", [
    np.random.default_rng(0).integers(1, 5_000, 20_000),          # dense: lookup table
    np.random.default_rng(1).integers(-10**12, 10**12, 1_000),    # sparse: sort
    np.array([7, -3, 7, 0], dtype=np.int32),
    np.array([2**63 - 1, 0, 2**63 - 1], dtype=np.int64),
    np.array([5, 5, 5], dtype=np.uint32),
    np.array(["b", "a", "b"]),
    np.zeros(0, dtype=np.int64),
])
def test_index_keys_matches_np_unique(keys):
    unique, index = index_keys(keys)
    expected_unique, expected_index = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(unique, expected_unique)
    np.testing.assert_array_equal(index, expected_index.reshape(-1))
    assert unique.dtype == keys.dtype
    assert index.dtype == np.int32
    np.testing.assert_array_equal(unique[index], keys)
