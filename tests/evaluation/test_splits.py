"""Temporal, leave-last-k-out and random splits on a small hand-made history."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from django_recs.evaluation import (
    TimedInteractions,
    leave_last_k_out,
    random_holdout,
    split_from_spec,
    temporal_split,
)


def day(n: int) -> np.datetime64:
    return np.datetime64("2024-01-01") + np.timedelta64(n - 1, "D")


@pytest.fixture
def history() -> TimedInteractions:
    # (user, item, day)
    entries = [
        (0, 0, 1), (0, 1, 2), (0, 2, 5), (0, 0, 6),  # new item 2 and a repeat of 0 after day 4
        (1, 1, 1), (1, 3, 2),                        # nothing after day 4
        (2, 2, 5),                                   # only after day 4: no history
        (3, 0, 1), (3, 0, 6),                        # only a repeat after day 4
    ]
    users, items, days = zip(*entries)
    return TimedInteractions(
        rows=np.array(users),
        cols=np.array(items),
        weights=np.ones(len(entries)),
        timestamps=np.array([day(d) for d in days]),
        shape=(5, 4),
    )


def relevant(split) -> dict[int, list[int]]:
    test = split.test.tocsr()
    return {int(u): test[u].indices.tolist() for u in split.users}


def test_temporal_split_by_date(history):
    split = temporal_split(history, "2024-01-04")
    assert split.name == "temporal:2024-01-04"
    assert relevant(split) == {0: [2]}
    assert split.dropped == {"nothing_to_test": 1, "no_history": 1}
    assert len(split.train) == 5
    assert split.train.timestamps.max() < np.datetime64("2024-01-04")
    assert split.test.shape == (5, 4)
    assert split.test_rows().shape == (1, 4)


def test_temporal_split_options(history):
    with_cold = temporal_split(history, "2024-01-04", keep_cold_users=True)
    assert relevant(with_cold) == {0: [2], 2: [2]}
    assert with_cold.dropped == {"nothing_to_test": 1, "no_history": 0}
    with_repeats = temporal_split(history, "2024-01-04", remove_train_items=False)
    assert relevant(with_repeats) == {0: [0, 2], 3: [0]}
    assert with_repeats.dropped["nothing_to_test"] == 0


def test_temporal_split_by_fraction_and_datetime(history):
    # Span day 1 .. day 6: half of it ends on day 3.5, between the entries of days 2 and 5.
    by_fraction = temporal_split(history, 0.5)
    assert by_fraction.name == "temporal:0.5"
    assert relevant(by_fraction) == {0: [2]}
    aware = datetime(2024, 1, 4, tzinfo=timezone.utc)
    assert relevant(temporal_split(history, aware)) == {0: [2]}


def test_leave_last_one_out(history):
    split = leave_last_k_out(history, 1)
    # u0 came to item 2 last, u1 to item 3; u2 and u3 have one item only.
    assert relevant(split) == {0: [2], 1: [3]}
    assert split.dropped == {"nothing_to_test": 2, "no_history": 0}
    train_pairs = split.train.pairs()
    assert train_pairs[0].indices.tolist() == [0, 1]  # both entries of item 0 stay
    assert split.train.pairs().multiply(split.test).nnz == 0


def test_leave_last_two_out(history):
    split = leave_last_k_out(history, 2)
    assert relevant(split) == {0: [1, 2]}
    assert split.dropped["nothing_to_test"] == 3


def test_random_holdout_partitions_pairs_reproducibly(history):
    first = random_holdout(history, 0.3, seed=5)
    again = random_holdout(history, 0.3, seed=5)
    assert (first.test != again.test).nnz == 0
    all_pairs = history.pairs()
    train_pairs = first.train.pairs()
    held_out = all_pairs - train_pairs  # pairs are held out whole
    assert held_out.nnz == round(0.3 * all_pairs.nnz) == 2
    assert train_pairs.multiply(held_out).nnz == 0
    # Evaluated + users whose every pair was held out = users with a held-out pair.
    users_with_held_out = np.flatnonzero(np.diff(held_out.tocsr().indptr))
    assert first.n_users + first.dropped["no_history"] == users_with_held_out.size


def test_split_from_spec(history):
    assert split_from_spec(history, "temporal:2024-01-04").name == "temporal:2024-01-04"
    assert split_from_spec(history, "temporal:0.5").name == "temporal:0.5"
    assert split_from_spec(history, "last:1").name == "leave_last_1_out"
    assert split_from_spec(history, "random:0.25", seed=1).name == "random:0.25:seed=1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("weird:1", "expected temporal:DATE"),
        ("temporal:not-a-date", "cannot read 'not-a-date' as a date"),
        ("temporal:1.5", r"expected a number in \(0, 1\)"),
        ("random:0", r"expected a number in \(0, 1\)"),
        ("last:0", "k: expected a positive integer"),
    ],
)
def test_bad_split_specs(history, spec, message):
    with pytest.raises(ValueError, match=message):
        split_from_spec(history, spec)


def test_timed_interactions_validation():
    good = {"rows": [0], "cols": [0], "weights": [1.0], "timestamps": [0], "shape": (1, 1)}
    TimedInteractions(**good)
    with pytest.raises(ValueError, match="one length"):
        TimedInteractions(**{**good, "cols": [0, 0]})
    with pytest.raises(ValueError, match="cols: index out of range"):
        TimedInteractions(**{**good, "cols": [1]})
    with pytest.raises(ValueError, match="weights: must be finite and >= 0"):
        TimedInteractions(**{**good, "weights": [-1.0]})
    with pytest.raises(ValueError, match="timestamps: missing values"):
        TimedInteractions(**{**good, "timestamps": np.array(["NaT"], dtype="datetime64[s]")})


def test_seconds_since_epoch_are_times():
    data = TimedInteractions(rows=[0], cols=[0], weights=[1.0], timestamps=[86_400], shape=(1, 1))
    assert data.timestamps[0] == np.datetime64("1970-01-02T00:00:00")
