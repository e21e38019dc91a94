"""The cold-item view of a split: can an algorithm find items with little history?

Most held-out purchases are of popular items, so overall metrics say little
about new or rarely bought items — exactly where content-based and hybrid
similarity should help. :func:`cold_item_split` keeps a split's training part
and only the held-out items that had fewer than ``max_interactions``
training interactions (entries); users left with none are dropped. The same
:class:`~.evaluator.Evaluator` then measures every algorithm on it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .splits import Split

__all__ = ["cold_item_split", "training_interactions_per_item"]

#: Items with fewer training interactions than this are "cold" by default.
DEFAULT_MAX_INTERACTIONS = 5


def training_interactions_per_item(split: Split) -> np.ndarray:
    """Training entries of each item, shape (n_items,), int64."""
    return np.bincount(split.train.cols, minlength=split.train.n_items).astype(np.int64)


def cold_item_split(split: Split, max_interactions: int = DEFAULT_MAX_INTERACTIONS) -> Split:
    """``split`` with only the held-out items of fewer than ``max_interactions`` training entries.

    Returns
    -------
    Split
        Same training part; ``test`` restricted to the cold items; ``users``
        the evaluated users that still have a relevant item (the others are
        added to ``dropped["nothing_to_test"]``); name ``"<name>, cold items (<N)"``.

    Raises
    ------
    ValueError
        ``max_interactions`` is not a positive integer.
    """
    if isinstance(max_interactions, bool) or not isinstance(max_interactions, (int, np.integer)) \
            or max_interactions < 1:
        raise ValueError(f"max_interactions: expected a positive integer, got {max_interactions!r}")
    cold = training_interactions_per_item(split) < max_interactions
    test = sp.csr_matrix(split.test @ sp.diags(cold.astype(np.float32)), dtype=np.float32)
    test.eliminate_zeros()
    test.sort_indices()
    has_relevant = np.diff(test.indptr) > 0
    users = split.users[has_relevant[split.users]]
    dropped = dict(split.dropped)
    dropped["nothing_to_test"] = int(dropped.get("nothing_to_test", 0)) + int(
        split.users.size - users.size
    )
    return Split(
        train=split.train,
        test=test,
        users=users.astype(np.int64),
        dropped=dropped,
        name=f"{split.name}, cold items (<{int(max_interactions)})",
        exclude_train_items=split.exclude_train_items,
    )
