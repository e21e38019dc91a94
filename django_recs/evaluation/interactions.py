"""The input of an offline evaluation: interactions as COO arrays with a time each.

A split needs every interaction's time, which a summed matrix has lost, so
the evaluation works on the entries themselves: one entry per recorded event
(or per summed user-item-time triple), with row and column indexes into a
``shape = (n_users, n_items)`` matrix. ``matrix()`` sums them into the CSR an
algorithm is fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


def as_datetime64(values) -> np.ndarray:
    """Timestamps as ``datetime64[s]``; int or float input is seconds since the epoch."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[s]")
    if np.issubdtype(array.dtype, np.number):
        return array.astype(np.int64).astype("datetime64[s]")
    try:
        return array.astype("datetime64[s]")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"timestamps: cannot read {array.dtype} values as times ({exc})") from exc


@dataclass(frozen=True)
class TimedInteractions:
    """Interactions as parallel arrays, one entry per event.

    Parameters
    ----------
    rows : ndarray of int, shape (nnz,)
        User row of each entry, ``0 <= rows < shape[0]``.
    cols : ndarray of int, shape (nnz,)
        Item column of each entry, ``0 <= cols < shape[1]``.
    weights : ndarray of float, shape (nnz,)
        Weight of each entry, finite and ``>= 0``. Entries of one user and
        item are summed by :meth:`matrix`.
    timestamps : ndarray, shape (nnz,)
        Time of each entry: ``datetime64`` or seconds since the epoch
        (stored as ``datetime64[s]``).
    shape : (int, int)
        ``(n_users, n_items)``.
    seen : ndarray of bool, shape (nnz,), optional
        True where the entry's event makes its item "seen" (never recommended
        again to that user, the EXCLUDE_SEEN setting). None = every entry.
    user_ids, item_ids : ndarray, optional
        Row -> user key and column -> item id, carried along for reports.
    item_categories : ndarray of int, shape (n_items,), optional
        Column -> category code (-1 unknown), for category-based diversity.

    Raises
    ------
    ValueError
        On arrays of different lengths, indexes out of ``shape``, negative
        or non-finite weights, or unreadable timestamps.
    """

    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray
    shape: tuple[int, int]
    seen: np.ndarray | None = None
    user_ids: np.ndarray | None = field(default=None, repr=False)
    item_ids: np.ndarray | None = field(default=None, repr=False)
    item_categories: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        rows = np.asarray(self.rows, dtype=np.int64)
        cols = np.asarray(self.cols, dtype=np.int64)
        weights = np.asarray(self.weights, dtype=np.float32)
        timestamps = as_datetime64(self.timestamps)
        n_users, n_items = (int(n) for n in self.shape)
        lengths = {len(rows), len(cols), len(weights), len(timestamps)}
        if rows.ndim != 1 or len(lengths) != 1:
            raise ValueError(
                "rows, cols, weights and timestamps must be 1-D arrays of one length, got "
                f"{len(rows)}, {len(cols)}, {len(weights)}, {len(timestamps)}"
            )
        if n_users < 0 or n_items < 0:
            raise ValueError(f"shape must be non-negative, got {self.shape}")
        if rows.size:
            if rows.min() < 0 or rows.max() >= n_users:
                raise ValueError(f"rows: index out of range for {n_users} users")
            if cols.min() < 0 or cols.max() >= n_items:
                raise ValueError(f"cols: index out of range for {n_items} items")
            if not np.all(np.isfinite(weights)) or weights.min() < 0:
                raise ValueError("weights: must be finite and >= 0")
        if np.isnat(timestamps).any():
            raise ValueError("timestamps: missing values (NaT)")
        seen = None
        if self.seen is not None:
            seen = np.asarray(self.seen, dtype=bool)
            if seen.shape != rows.shape:
                raise ValueError(f"seen: expected {rows.shape[0]} flags, got {seen.shape}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "timestamps", timestamps)
        object.__setattr__(self, "shape", (n_users, n_items))
        object.__setattr__(self, "seen", seen)

    @property
    def n_users(self) -> int:
        return self.shape[0]

    @property
    def n_items(self) -> int:
        return self.shape[1]

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, mask: np.ndarray) -> TimedInteractions:
        """The entries where ``mask`` is True, with the same shape and ids."""
        return TimedInteractions(
            rows=self.rows[mask],
            cols=self.cols[mask],
            weights=self.weights[mask],
            timestamps=self.timestamps[mask],
            shape=self.shape,
            seen=None if self.seen is None else self.seen[mask],
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            item_categories=self.item_categories,
        )

    def matrix(self, dtype=np.float32) -> sp.csr_matrix:
        """Users x items CSR of summed weights (canonical: sorted, no duplicates)."""
        matrix = sp.csr_matrix(
            (self.weights.astype(dtype), (self.rows, self.cols)), shape=self.shape, dtype=dtype
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix

    def seen_matrix(self) -> sp.csr_matrix:
        """Users x items CSR, 1 where the user had a "seen" entry of the item."""
        mask = slice(None) if self.seen is None else self.seen
        return pairs_matrix(self.rows[mask], self.cols[mask], self.shape)

    def pairs(self) -> sp.csr_matrix:
        """Users x items CSR, 1 for every user-item pair with at least one entry."""
        return pairs_matrix(self.rows, self.cols, self.shape)


def pairs_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary CSR (float32 ones) of the distinct (row, col) pairs."""
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix
