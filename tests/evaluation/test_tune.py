"""evaluation.tune: a seeded search over a validation split cut from the data it is given."""

from __future__ import annotations

import numpy as np
import pytest

from django_recs.algorithms import EASE, Algorithm, FitResult
from django_recs.evaluation import TimedInteractions, tune
from django_recs.evaluation.tune import candidate_settings, check_space, validation_split

N_GROUPS, ITEMS_PER_GROUP = 4, 6


def planted_history(n_users=120, seed=0) -> TimedInteractions:
    """Each user buys items of one group over 100 days: the group predicts the future."""
    rng = np.random.default_rng(seed)
    rows, cols, times = [], [], []
    for user in range(n_users):
        group = user % N_GROUPS
        items = rng.choice(ITEMS_PER_GROUP, size=5, replace=False) + group * ITEMS_PER_GROUP
        days = np.sort(rng.uniform(0, 100, size=5))
        rows += [user] * 5
        cols += list(items)
        times += list(days * 86_400)
    return TimedInteractions(rows=np.array(rows), cols=np.array(cols),
                             weights=np.ones(len(rows)), timestamps=np.array(times, dtype=np.int64),
                             shape=(n_users, N_GROUPS * ITEMS_PER_GROUP))


class GroupGuess(Algorithm):
    """Recommends the items of the user's group shifted by ``offset``: only 0 is right."""

    name = "groupguess"
    defaults = {"offset": 0, "spare": 1.0}

    def check_params(self):
        if not isinstance(self.offset, int) or self.offset < 0:
            raise ValueError(f"GroupGuess: parameter offset must be an integer >= 0, "
                             f"got {self.offset!r}")

    def fit(self, matrix, *, n_recommendations=10, num_threads=0, progress=None):
        n = min(n_recommendations, ITEMS_PER_GROUP)
        recommended = np.full((matrix.n_users, n), -1, dtype=np.int32)
        for user in range(matrix.n_users):
            history = matrix.weights[user].indices
            if len(history):
                group = (history[0] // ITEMS_PER_GROUP + self.offset) % N_GROUPS
                items = [j for j in range(group * ITEMS_PER_GROUP, (group + 1) * ITEMS_PER_GROUP)
                         if j not in history][:n]
                recommended[user, :len(items)] = items
        return FitResult(recommended=recommended,
                         recommended_scores=np.where(recommended >= 0, 1.0, 0.0).astype(np.float32))


def test_finds_the_planted_setting_and_reports_every_trial():
    data = planted_history()
    seen = []
    result = tune(data, GroupGuess, {"offset": [2, 0, 1, 3]}, params={"spare": 2.0},
                  on_trial=lambda i, trial: seen.append(trial.params["offset"]))
    assert result.searched == {"offset": 0}
    assert result.params == {"offset": 0, "spare": 2.0}  # the base parameters kept
    assert result.metrics["ndcg"] > 0.3
    assert sorted(seen) == [0, 1, 2, 3] and result.exhausted
    wrong = [t.metrics["ndcg"] for t in result.trials if t.params["offset"] != 0]
    assert max(wrong) == 0.0
    summary = result.summary()
    assert summary["params"] == {"offset": 0} and summary["metric"] == "ndcg@10"
    assert summary["trials"] == 4 and summary["validation_metrics"]["ndcg"] == result.metrics["ndcg"]
    # The validation split is cut from the data given: its last tenth in time.
    assert 0 < summary["validation"]["train_entries"] < len(data)
    assert summary["validation"]["held_out_pairs"] > 0


def test_the_configured_setting_is_tried_first_and_kept_unless_beaten():
    data = planted_history()
    # Not in the space: tried first anyway, and the best (offset 0 is right).
    result = tune(data, GroupGuess, {"offset": [3, 1, 2]})
    assert [t.params["offset"] for t in result.trials][0] == 0
    assert [t.configured for t in result.trials] == [True, False, False, False]
    assert result.searched == {"offset": 0} and len(result.trials) == 4
    assert result.configured_metrics == result.trials[0].metrics
    assert result.summary()["configured_validation_metrics"]["ndcg"] > 0.3
    # A configured setting the space also holds is evaluated once.
    assert len(tune(data, GroupGuess, {"offset": [3, 0, 1]}).trials) == 3
    # Equal scores: the configured setting wins the tie.
    tie = tune(data, GroupGuess, {"spare": [2.0, 3.0]}, params={"spare": 1.0})
    assert tie.searched == {"spare": 1.0} and tie.params == {"spare": 1.0}
    assert len({t.metrics["ndcg"] for t in tie.trials}) == 1
    # A wrong configured setting is beaten by a better one of the space.
    better = tune(data, GroupGuess, {"offset": [2, 0]}, params={"offset": 1})
    assert better.trials[0].params == {"offset": 1} and better.searched == {"offset": 0}
    assert better.metrics["ndcg"] > better.configured_metrics["ndcg"] == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_the_winner_is_never_worse_than_the_configured_setting(seed):
    result = tune(planted_history(seed=seed), "django_recs.algorithms.EASE",
                  {"l2": {"min": 0.01, "max": 1e4, "log": True}}, max_trials=3, seed=seed,
                  params={"l2": 30.0})
    assert result.trials[0].params == {"l2": 30.0} and result.trials[0].configured
    assert result.metrics["ndcg"] >= result.configured_metrics["ndcg"]
    assert result.metrics["ndcg"] == max(t.metrics["ndcg"] for t in result.trials)


def test_validation_holds_out_the_most_recent_entries():
    data = planted_history()
    split = validation_split(data, 0.25)
    train_times = split.train.timestamps.astype(np.int64)
    cutoff = np.quantile(data.timestamps.astype(np.int64), 0.75, method="higher")
    assert train_times.max() < cutoff
    assert abs(len(split.train) - 0.75 * len(data)) <= 2


def test_same_seed_same_order_other_seed_other_order():
    data = planted_history(n_users=40)
    space = {"offset": [0, 1, 2, 3], "spare": [1.0, 2.0]}

    def order(seed):
        return [t.params for t in tune(data, GroupGuess, space, seed=seed).trials]

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_a_budget_stops_new_settings_but_the_configured_one_always_runs():
    result = tune(planted_history(n_users=40), GroupGuess, {"offset": [3, 1, 2]},
                  budget_s=1e-9)
    assert len(result.trials) == 1 and not result.exhausted
    assert result.trials[0].configured and result.searched == {"offset": 0}


def test_ranges_are_sampled_within_bounds_and_grids_larger_than_max_trials_are_sampled():
    space = check_space({"l2": {"min": 10.0, "max": 1000.0, "log": True},
                         "k": {"min": 5, "max": 50}, "dtype": ["float32"]})
    settings, whole = candidate_settings(space, np.random.default_rng(0), None)
    assert not whole and len(settings) == 20
    assert all(10.0 <= s["l2"] <= 1000.0 and isinstance(s["k"], int) and 5 <= s["k"] <= 50
               for s in settings)
    assert np.median([np.log10(s["l2"]) for s in settings]) == pytest.approx(2.0, abs=0.6)
    settings, whole = candidate_settings(check_space({"a": list(range(10)), "b": [1, 2]}),
                                         np.random.default_rng(0), 5)
    assert len(settings) == 5 and not whole


def test_tunes_a_real_algorithm_by_dotted_path():
    result = tune(planted_history(), "django_recs.algorithms.EASE", {"l2": [1.0, 1000.0]},
                  max_trials=2, k=5, metric="recall")
    assert result.searched["l2"] in (200.0, 1.0, 1000.0) and result.metric == "recall"
    assert [t.params["l2"] for t in result.trials][0] == 200.0  # EASE's default first
    assert isinstance(EASE(**result.params), EASE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": {}}, "non-empty dict"),
        ({"space": {"offset": []}}, "offset has no values"),
        ({"space": {"offset": {"min": 3, "max": 1}}}, "min <= max"),
        ({"space": {"offset": {"min": 0, "max": 3, "log": True}}}, "log range needs min > 0"),
        ({"space": {"offset": {"low": 0}}}, "list of values or a range"),
        ({"space": {"offset": 3}}, "list of values or a range"),
        ({"space": {"offset": [0, -1]}}, "offset must be an integer >= 0"),
        ({"space": {"nope": [1]}}, "unknown parameter"),
        ({"metric": "fit_seconds"}, "metric must be one of"),
        ({"budget_s": 0}, "budget_s must be a positive number"),
        ({"budget_s": float("nan")}, "budget_s must be a positive number"),
        ({"max_trials": 0}, "max_trials must be an integer >= 1"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in"),
        ({"algorithm": "django_recs.algorithms.Nope"}, "cannot import"),
        ({"algorithm": dict}, "Algorithm subclass"),
    ],
)
def test_bad_input_is_refused_before_any_fit(kwargs, message):
    fitted = []

    class Counting(GroupGuess):
        def fit(self, *args, **kw):
            fitted.append(1)
            return super().fit(*args, **kw)

    call = {"algorithm": Counting, "space": {"offset": [0, 1]}, **kwargs}
    with pytest.raises(ValueError, match=message):
        tune(planted_history(n_users=20), call.pop("algorithm"), call.pop("space"), **call)
    assert not fitted


def test_too_little_history_for_a_validation_split_is_a_value_error():
    data = TimedInteractions(rows=np.array([0, 0]), cols=np.array([0, 1]),
                             weights=np.ones(2), timestamps=np.array([5, 5]), shape=(1, 2))
    with pytest.raises(ValueError):
        tune(data, GroupGuess, {"offset": [0]})
