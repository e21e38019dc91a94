"""A visitor's variant: a deterministic hash of (experiment, visitor), split by weight.

The hash is BLAKE2b of ``"<experiment id>:<salt>:<unit>"`` read as a 64-bit
number, scaled to the sum of the weights: the same visitor always gets the
same variant of an experiment (no state is stored), each experiment (its id
and random salt) splits the visitors anew, and over many visitors each
variant's share is its weight's.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

__all__ = ["bucket", "choose"]

_SCALE = float(2 ** 64)


def bucket(experiment_id: int, salt: str, unit: str) -> float:
    """The visitor's point in [0, 1) for this experiment (uniform over visitors)."""
    digest = hashlib.blake2b(f"{experiment_id}:{salt}:{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def choose(experiment_id: int, salt: str, unit: str, cumulative_weights: Sequence[float]) -> int:
    """The index of the visitor's variant, given the running sums of the variants' weights.

    ``cumulative_weights`` = ``[w0, w0 + w1, ...]`` (each weight > 0).
    ValueError when it is empty.
    """
    if not cumulative_weights:
        raise ValueError("an experiment needs at least one variant with a weight > 0")
    point = bucket(experiment_id, salt, unit) * cumulative_weights[-1]
    return min(bisect.bisect_right(cumulative_weights, point), len(cumulative_weights) - 1)
