"""The users x items matrix an algorithm is fitted on. No ORM here.

:class:`InteractionMatrix` holds the event weights (time-decayed with
HALF_LIFE_DAYS, duplicates summed), the "seen" mask of EXCLUDE_SEEN events,
and the maps from rows and columns back to user and item keys. The pipeline
builds it from the arrays :mod:`django_recs.storage.read` loads; the
evaluation builds it from a training split.

Time decay: an interaction ``age`` days old counts
``weight * 0.5 ** (age / half_life_days)``, so a purchase a half-life ago
weighs half a purchase today. Interactions from the future (clock skew)
count at full weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

SECONDS_PER_DAY = 86_400.0

__all__ = ["InteractionMatrix", "decay_weights", "index_keys"]


def decay_weights(
    weights: np.ndarray,
    timestamps: np.ndarray,
    half_life_days: float | None,
    now: float,
) -> np.ndarray:
    """Weights halved every ``half_life_days`` of age.

    Parameters
    ----------
    weights : ndarray, shape (nnz,), float
    timestamps : ndarray, shape (nnz,), float64 seconds since the epoch
    half_life_days : float or None
        None returns ``weights`` unchanged.
    now : float, seconds since the epoch the ages are measured from.

    Returns
    -------
    ndarray, shape (nnz,), float32.

    Raises
    ------
    ValueError
        ``half_life_days`` is not a positive number.
    """
    weights = np.asarray(weights, dtype=np.float32)
    if half_life_days is None:
        return weights
    if isinstance(half_life_days, bool) or not half_life_days > 0:
        raise ValueError(f"half_life_days must be a positive number or None, got {half_life_days!r}")
    age_days = np.maximum(now - np.asarray(timestamps, dtype=np.float64), 0.0) / SECONDS_PER_DAY
    return (weights * np.exp2(-age_days / float(half_life_days))).astype(np.float32)


def index_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map arbitrary keys to contiguous indexes.

    Returns ``(unique_keys, index)``: ``unique_keys`` sorted, and for each
    input key its position in ``unique_keys`` (int32, or int64 past 2**31).
    Works on integer, float, string and structured (e.g. two-word UUID) arrays.
    """
    index_dtype = np.int32 if len(keys) < 2**31 else np.int64
    if keys.dtype.kind in "iu" and len(keys):
        low, high = int(keys.min()), int(keys.max())
        if high - low <= 4 * len(keys) + 1024:
            # Dense integer keys (primary keys): a lookup table, no sort.
            present = np.zeros(high - low + 1, dtype=bool)
            present[keys - low] = True
            unique = np.flatnonzero(present).astype(keys.dtype, copy=False) + low
            position = np.cumsum(present, dtype=np.int64) - 1
            return unique, position[keys - low].astype(index_dtype, copy=False)
    unique, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    index_dtype = np.int32 if len(unique) < 2**31 else np.int64
    return unique, inverse.astype(index_dtype, copy=False)


def _ones_pattern(rows, cols, shape) -> sp.csr_matrix:
    """Float32 CSR holding 1.0 at every distinct (row, col) pair."""
    pattern = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32
    )
    pattern.sum_duplicates()
    pattern.data[:] = 1.0
    return pattern


@dataclass(frozen=True)
class InteractionMatrix:
    """Weights of users x items, with the maps back to keys.

    Attributes
    ----------
    weights : csr_matrix, shape (n_users, n_items), float32
        Event weights, time-decayed, duplicates summed; canonical (sorted
        indices, no explicit zeros).
    seen : csr_matrix, shape (n_users, n_items), float32
        1.0 where the user had an EXCLUDE_SEEN event for the item; those
        items are never recommended to that user.
    user_ids : ndarray, shape (n_users,), int64
        Row -> user key (the user's primary key in the pipeline).
    item_ids : ndarray, shape (n_items,)
        Column -> item id, opaque here (the pipeline maps it back to a
        content type and key).
    item_categories : ndarray, shape (n_items,), int, optional
        Column -> category code, -1 unknown.
    """

    weights: sp.csr_matrix
    seen: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_categories: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n_users, n_items = self.weights.shape
        if self.seen.shape != self.weights.shape:
            raise ValueError(
                f"seen has shape {self.seen.shape}, weights {self.weights.shape}; they must match"
            )
        if len(self.user_ids) != n_users:
            raise ValueError(f"user_ids has {len(self.user_ids)} entries for {n_users} rows")
        if len(self.item_ids) != n_items:
            raise ValueError(f"item_ids has {len(self.item_ids)} entries for {n_items} columns")
        if self.item_categories is not None and len(self.item_categories) != n_items:
            raise ValueError(
                f"item_categories has {len(self.item_categories)} entries for {n_items} columns"
            )

    @property
    def n_users(self) -> int:
        return self.weights.shape[0]

    @property
    def n_items(self) -> int:
        return self.weights.shape[1]

    @property
    def nnz(self) -> int:
        """Stored (user, item) pairs with a non-zero weight."""
        return self.weights.nnz

    def user_range(self, start: int, stop: int) -> InteractionMatrix:
        """The users ``start <= row < stop`` with every item: one shard of a sharded run.

        Raises
        ------
        ValueError
            Not integers with 0 <= start <= stop <= n_users.
        """
        if not all(isinstance(value, int | np.integer) and not isinstance(value, bool)
                   for value in (start, stop)):
            raise ValueError(f"start and stop must be integers, got {start!r}, {stop!r}")
        if not 0 <= start <= stop <= self.n_users:
            raise ValueError(
                f"users ({start}, {stop}) must satisfy 0 <= start <= stop <= {self.n_users}"
            )
        return InteractionMatrix(
            weights=self.weights[start:stop],
            seen=self.seen[start:stop],
            user_ids=self.user_ids[start:stop],
            item_ids=self.item_ids,
            item_categories=self.item_categories,
        )

    @classmethod
    def from_arrays(
        cls,
        rows: np.ndarray,
        cols: np.ndarray,
        weights: np.ndarray,
        seen_mask: np.ndarray | None = None,
        *,
        shape: tuple[int, int] | None = None,
        user_ids: np.ndarray | None = None,
        item_ids: np.ndarray | None = None,
        item_categories: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        half_life_days: float | None = None,
        now: float | None = None,
    ) -> InteractionMatrix:
        """Build the matrix from one entry per interaction.

        Parameters
        ----------
        rows, cols : ndarray, shape (nnz,), int
            Row (user) and column (item) index of each interaction.
        weights : ndarray, shape (nnz,), float, finite and >= 0
            Entries of one (row, col) are summed.
        seen_mask : ndarray, shape (nnz,), bool, optional
            True for interactions whose event is in EXCLUDE_SEEN. None = none seen.
        shape : (n_users, n_items), optional
            Defaults to the size of ``user_ids``/``item_ids``, else max index + 1.
        user_ids, item_ids : ndarray, optional
            Row and column keys; default ``arange``.
        timestamps : ndarray, shape (nnz,), float64 seconds since the epoch, optional
        half_life_days, now : time decay (see :func:`decay_weights`); ``now``
            defaults to the latest timestamp.

        Raises
        ------
        ValueError
            Arrays of different lengths, an index out of range, a negative
            or non-finite weight.
        """
        rows = np.asarray(rows).reshape(-1)
        cols = np.asarray(cols).reshape(-1)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        if not len(rows) == len(cols) == len(weights):
            raise ValueError(
                f"rows, cols and weights must have one length, got {len(rows)}, {len(cols)}, "
                f"{len(weights)}"
            )
        if weights.size and (not np.isfinite(weights).all() or weights.min() < 0):
            raise ValueError("weights must be finite and >= 0")
        if seen_mask is not None:
            seen_mask = np.asarray(seen_mask, dtype=bool).reshape(-1)
            if len(seen_mask) != len(rows):
                raise ValueError(f"seen_mask has {len(seen_mask)} entries for {len(rows)} rows")
        if shape is None:
            n_users = len(user_ids) if user_ids is not None else int(rows.max(initial=-1)) + 1
            n_items = len(item_ids) if item_ids is not None else int(cols.max(initial=-1)) + 1
            shape = (n_users, n_items)
        n_users, n_items = (int(n) for n in shape)
        if rows.size and (rows.min() < 0 or rows.max() >= n_users):
            raise ValueError(f"rows: index out of range for {n_users} users")
        if cols.size and (cols.min() < 0 or cols.max() >= n_items):
            raise ValueError(f"cols: index out of range for {n_items} items")
        if timestamps is not None and half_life_days is not None:
            timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
            if len(timestamps) != len(rows):
                raise ValueError(f"timestamps has {len(timestamps)} entries for {len(rows)} rows")
            if now is None:
                now = float(timestamps.max(initial=0.0))
            weights = decay_weights(weights, timestamps, half_life_days, now)
        matrix = sp.csr_matrix(
            (weights.astype(np.float32), (rows, cols)), shape=(n_users, n_items), dtype=np.float32
        )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        if seen_mask is None:
            seen = sp.csr_matrix((n_users, n_items), dtype=np.float32)
        else:
            seen = _ones_pattern(rows[seen_mask], cols[seen_mask], (n_users, n_items))
        return cls(
            weights=matrix,
            seen=seen,
            user_ids=np.arange(n_users, dtype=np.int64) if user_ids is None else np.asarray(user_ids),
            item_ids=np.arange(n_items, dtype=np.int64) if item_ids is None else np.asarray(item_ids),
            item_categories=item_categories,
        )

    @classmethod
    def from_csr(
        cls,
        weights,
        seen=None,
        *,
        user_ids: np.ndarray | None = None,
        item_ids: np.ndarray | None = None,
        item_categories: np.ndarray | None = None,
    ) -> InteractionMatrix:
        """Wrap an existing users x items matrix (``seen``: any matrix of its shape)."""
        coo = sp.coo_matrix(weights)
        seen_mask = None
        matrix = cls.from_arrays(
            coo.row, coo.col, coo.data, seen_mask, shape=coo.shape,
            user_ids=user_ids, item_ids=item_ids, item_categories=item_categories,
        )
        if seen is None:
            return matrix
        seen = sp.coo_matrix(seen)
        if seen.shape != coo.shape:
            raise ValueError(f"seen has shape {seen.shape}, weights {coo.shape}; they must match")
        nonzero = seen.data != 0
        return cls(
            weights=matrix.weights,
            seen=_ones_pattern(seen.row[nonzero], seen.col[nonzero], coo.shape),
            user_ids=matrix.user_ids,
            item_ids=matrix.item_ids,
            item_categories=item_categories,
        )
