"""The textbook EASE weights (Steck 2019), with a dense inverse. The oracle of kernels.ease_weights."""

from __future__ import annotations

import numpy as np


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """``B = I - P diag(1 / diag P)`` with ``P = (gram + l2 I)^-1``; float64, zero diagonal."""
    gram = np.asarray(gram, dtype=np.float64)
    P = np.linalg.inv(gram + l2 * np.eye(gram.shape[0]))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B
