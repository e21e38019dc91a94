"""Reference factor reasons: batched numpy products per group of similar history lengths."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def factor_reasons(
    history: sp.csr_matrix, recommended: np.ndarray, unit_items: np.ndarray
) -> np.ndarray:
    """The history item i maximising ``w(u, i) * (unit[i] . unit[j])`` per recommendation j.

    ``history`` is float32 CSR (users x items), ``recommended`` int32 (users
    x n, -1 padding), ``unit_items`` float32 (items x f). Returns int32 (users
    x n): the item column, -1 for padding or when no contribution is
    positive; ties go to the first item in the history.

    Users are grouped by history length (within a factor of two) and each
    group is one batched product ``(users, history, f) @ (users, f, n)``.
    """
    n_users, n = recommended.shape
    reasons = np.full((n_users, n), -1, dtype=np.int32)
    lengths = np.diff(history.indptr)
    candidates = np.flatnonzero((lengths > 0) & (recommended >= 0).any(axis=1))
    if candidates.size == 0 or n == 0:
        return reasons
    factors = unit_items.shape[1]
    bucket = np.ceil(np.log2(lengths[candidates])).astype(np.int64)
    for b in np.unique(bucket):
        users = candidates[bucket == b]
        width = int(lengths[users].max())
        # About 2**22 floats in the largest temporary: the gathered history
        # (width x f), the gathered recommendations (n x f) or the products (width x n).
        per_chunk = max(1, (1 << 22) // max(1, width * factors, n * factors, width * n))
        for start in range(0, len(users), per_chunk):
            chunk = users[start:start + per_chunk]
            offsets = np.arange(width)
            inside = offsets[None, :] < lengths[chunk][:, None]
            position = np.where(inside, history.indptr[chunk][:, None] + offsets[None, :], 0)
            items = history.indices[position]
            weights = np.where(inside, history.data[position], 0.0).astype(np.float32)
            targets = recommended[chunk]
            affinity = np.matmul(unit_items[items],
                                 unit_items[np.maximum(targets, 0)].transpose(0, 2, 1))
            contribution = weights[:, :, None] * affinity
            contribution[~inside] = -np.inf
            best = np.argmax(contribution, axis=1)
            best_value = np.take_along_axis(contribution, best[:, None, :], axis=1)[:, 0, :]
            chosen = np.take_along_axis(items, best, axis=1)
            reasons[chunk] = np.where((targets >= 0) & (best_value > 0), chosen, -1)
    return reasons
