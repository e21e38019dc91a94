"""Train/test splits of time-stamped interactions.

Three ways to hide part of the history and ask an algorithm to find it again:

- :func:`temporal_split`: everything before a cut-off is training, the rest
  is the test period. The most honest protocol for a shop: it is how the
  recommendations are used (fit on the past, shown in the future).
- :func:`leave_last_k_out`: per user, the ``k`` items the user came to last
  are held out.
- :func:`random_holdout`: a seeded random fraction of the user-item pairs is
  held out.

Relevance is binary and per user-item pair: an item is relevant to a user
when the user has at least one held-out entry of it. Items the user already
had in training are not relevant again by default (``remove_train_items``):
the algorithms never recommend what the user already has, so such items
could only lower every algorithm's score alike.

A user is evaluated when at least one relevant item is left and the user has
a training history. The others are dropped and counted in ``Split.dropped``:
``"nothing_to_test"`` (held-out entries, but only of items already seen in
training, or too few items to hold any out) and ``"no_history"`` (nothing in
training: a cold-start user no personal algorithm can serve; keep them with
``keep_cold_users=True`` to measure a fallback such as Popular).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np
import scipy.sparse as sp

from .interactions import TimedInteractions, pairs_matrix


@dataclass(frozen=True)
class Split:
    """A training part and the held-out relevance to measure against.

    Attributes
    ----------
    train : TimedInteractions
        The training entries (same shape and ids as the input).
    test : csr_matrix, float32, shape (n_users, n_items)
        1 where an item is relevant to an evaluated user; rows of users that
        are not evaluated are empty.
    users : ndarray of int64, shape (n_evaluated,)
        Rows of the evaluated users, ascending.
    dropped : dict
        ``{"nothing_to_test": int, "no_history": int}``: users left out.
    name : str
        How the split was made, e.g. ``"temporal:2011-10-01"``.
    exclude_train_items : bool
        True when no training item of a user can be relevant to that user
        (so an algorithm fitted on the split should not recommend any of them).
    """

    train: TimedInteractions
    test: sp.csr_matrix
    users: np.ndarray
    dropped: dict
    name: str
    exclude_train_items: bool = True

    @property
    def n_users(self) -> int:
        return int(self.users.size)

    def test_rows(self) -> sp.csr_matrix:
        """The relevance of the evaluated users only, one row per ``users`` entry."""
        return self.test[self.users]

    def summary(self) -> dict:
        """Counts worth printing: entries, evaluated users, held-out pairs, dropped users."""
        return {
            "split": self.name,
            "train_entries": len(self.train),
            "test_pairs": int(self.test.nnz),
            "users_evaluated": self.n_users,
            "users_dropped_nothing_to_test": int(self.dropped["nothing_to_test"]),
            "users_dropped_no_history": int(self.dropped["no_history"]),
        }


def temporal_split(
    data: TimedInteractions,
    cutoff,
    *,
    remove_train_items: bool = True,
    keep_cold_users: bool = False,
) -> Split:
    """Train on entries before ``cutoff``, test on the entries at or after it.

    Parameters
    ----------
    data : TimedInteractions
    cutoff : str, date, datetime, numpy.datetime64 or float
        The first moment of the test period (an ISO date string such as
        ``"2011-10-01"``; aware datetimes are converted to UTC), or a float
        in (0, 1): that fraction of the time span from the first to the last
        entry is training.
    remove_train_items : bool
        Drop from a user's relevant items those the user already had in training.
    keep_cold_users : bool
        Evaluate users with no training entries too.

    Raises
    ------
    ValueError
        On an unreadable cut-off or a fraction outside (0, 1).
    """
    moment = _cutoff_moment(data, cutoff)
    before = data.timestamps < moment
    if isinstance(cutoff, (float, np.floating)):
        label = f"{float(cutoff):g}"
    elif moment == moment.astype("datetime64[D]"):
        label = str(moment.astype("datetime64[D]"))
    else:
        label = str(moment)
    return _finish(
        data,
        train_mask=before,
        name=f"temporal:{label}",
        remove_train_items=remove_train_items,
        keep_cold_users=keep_cold_users,
    )


def leave_last_k_out(data: TimedInteractions, k: int = 1, *, keep_cold_users: bool = False) -> Split:
    """Hold out, per user, the ``k`` items the user came to last.

    A user's items are ordered by the time of the user's first entry of each
    (ties by column); all entries of the last ``k`` items go to the test part,
    so a held-out item never appears in that user's training. Users with at
    most ``k`` distinct items stay whole in training and are counted in
    ``dropped["nothing_to_test"]``.

    Raises
    ------
    ValueError
        If ``k`` is not a positive integer.
    """
    k = _positive_int(k, "k")
    pair_of_entry, pair_rows, pair_cols, first_times = _pairs_with_first_time(data)
    order = np.lexsort((pair_cols, first_times, pair_rows))
    counts = np.bincount(pair_rows, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_rows = pair_rows[order]
    position = np.arange(order.size) - starts[sorted_rows]
    per_user = counts[sorted_rows]
    held_out_sorted = (per_user > k) & (position >= per_user - k)
    held_out = np.empty(order.size, dtype=bool)
    held_out[order] = held_out_sorted
    too_few = int(np.count_nonzero((counts > 0) & (counts <= k)))
    return _finish(
        data,
        train_mask=~held_out[pair_of_entry],
        name=f"leave_last_{k}_out",
        remove_train_items=False,
        exclude_train_items=True,
        keep_cold_users=keep_cold_users,
        extra_nothing_to_test=too_few,
    )


def random_holdout(
    data: TimedInteractions,
    fraction: float = 0.2,
    *,
    seed: int | None = 0,
    keep_cold_users: bool = False,
) -> Split:
    """Hold out a random ``fraction`` of the distinct user-item pairs.

    Exactly ``round(fraction * n_pairs)`` pairs are drawn (all entries of a
    drawn pair go to the test part); the same ``seed`` gives the same split.

    Raises
    ------
    ValueError
        If ``fraction`` is not in (0, 1).
    """
    fraction = _fraction(fraction, "fraction")
    pair_of_entry, pair_rows, _, _ = _pairs_with_first_time(data)
    n_pairs = pair_rows.size
    rng = np.random.default_rng(seed)
    held_out = np.zeros(n_pairs, dtype=bool)
    held_out[rng.permutation(n_pairs)[: int(round(fraction * n_pairs))]] = True
    return _finish(
        data,
        train_mask=~held_out[pair_of_entry],
        name=f"random:{fraction:g}" + ("" if seed is None else f":seed={seed}"),
        remove_train_items=False,
        exclude_train_items=True,
        keep_cold_users=keep_cold_users,
    )


def split_from_spec(data: TimedInteractions, spec: str, *, seed: int | None = 0) -> Split:
    """A split from its command-line form.

    ``"temporal:2011-10-01"`` (a date or datetime), ``"temporal:0.8"`` (a
    fraction of the time span), ``"last:1"`` (leave-last-k-out, also
    ``"leave_last:1"``) or ``"random:0.2"`` (random hold-out, seeded by ``seed``).

    Raises
    ------
    ValueError
        On an unknown kind or a bad argument, naming the accepted forms.
    """
    kind, _, argument = spec.partition(":")
    kind = kind.strip().lower()
    argument = argument.strip()
    try:
        if kind == "temporal" and argument:
            value = float(argument) if _looks_like_fraction(argument) else argument
            return temporal_split(data, value)
        if kind in {"last", "leave_last", "leave-last"}:
            return leave_last_k_out(data, int(argument or 1))
        if kind == "random":
            return random_holdout(data, float(argument or 0.2), seed=seed)
    except ValueError as exc:
        raise ValueError(f"split {spec!r}: {exc}") from exc
    raise ValueError(
        f"split {spec!r}: expected temporal:DATE, temporal:FRACTION, last:K or random:FRACTION"
    )


# --- internals --------------------------------------------------------------


def _finish(
    data: TimedInteractions,
    *,
    train_mask: np.ndarray,
    name: str,
    remove_train_items: bool,
    keep_cold_users: bool,
    extra_nothing_to_test: int = 0,
    exclude_train_items: bool | None = None,
) -> Split:
    train = data.subset(train_mask)
    if exclude_train_items is None:
        exclude_train_items = remove_train_items
    held_out = ~train_mask
    test = pairs_matrix(data.rows[held_out], data.cols[held_out], data.shape)
    had_test_entries = np.diff(test.indptr) > 0
    if remove_train_items:
        test = test - test.multiply(train.pairs())
        test = sp.csr_matrix(test, dtype=np.float32)
        test.eliminate_zeros()
    has_relevant = np.diff(test.indptr) > 0
    has_history = np.bincount(train.rows, minlength=data.n_users) > 0
    cold = has_relevant & ~has_history
    evaluated = has_relevant if keep_cold_users else has_relevant & has_history
    test = sp.diags(evaluated.astype(np.float32), format="csr") @ test
    test.eliminate_zeros()
    test.sort_indices()
    dropped = {
        "nothing_to_test": int(np.count_nonzero(had_test_entries & ~has_relevant))
        + extra_nothing_to_test,
        "no_history": 0 if keep_cold_users else int(np.count_nonzero(cold)),
    }
    return Split(
        train=train,
        test=sp.csr_matrix(test, dtype=np.float32),
        users=np.flatnonzero(evaluated).astype(np.int64),
        dropped=dropped,
        name=name,
        exclude_train_items=exclude_train_items,
    )


def _pairs_with_first_time(data: TimedInteractions):
    """(pair index of each entry, pair rows, pair cols, first time of each pair)."""
    keys = data.rows * np.int64(max(data.n_items, 1)) + data.cols
    unique_keys, pair_of_entry = np.unique(keys, return_inverse=True)
    seconds = data.timestamps.astype(np.int64)
    first = np.full(unique_keys.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, pair_of_entry, seconds)
    pair_rows, pair_cols = np.divmod(unique_keys, np.int64(max(data.n_items, 1)))
    return pair_of_entry.ravel(), pair_rows, pair_cols, first


def _cutoff_moment(data: TimedInteractions, cutoff) -> np.datetime64:
    if isinstance(cutoff, bool):
        raise ValueError(f"cutoff: expected a date or a fraction, got {cutoff!r}")
    if isinstance(cutoff, (float, np.floating)):
        fraction = _fraction(float(cutoff), "cutoff fraction")
        if not len(data):
            raise ValueError("cutoff fraction: no interactions to take a time span from")
        seconds = data.timestamps.astype(np.int64)
        start, end = int(seconds.min()), int(seconds.max())
        return np.datetime64(int(start + fraction * (end - start)), "s")
    if isinstance(cutoff, datetime):
        if cutoff.tzinfo is not None:
            cutoff = cutoff.astimezone(timezone.utc).replace(tzinfo=None)
        return np.datetime64(cutoff, "s")
    if isinstance(cutoff, date):
        return np.datetime64(cutoff, "D").astype("datetime64[s]")
    try:
        moment = np.datetime64(cutoff)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cutoff: cannot read {cutoff!r} as a date ({exc})") from exc
    if np.isnat(moment):
        raise ValueError(f"cutoff: cannot read {cutoff!r} as a date")
    return moment.astype("datetime64[s]")


def _looks_like_fraction(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fraction(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}") from exc
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}")
    return value


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)
