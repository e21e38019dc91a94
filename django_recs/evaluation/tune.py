"""Automatic tuning: the parameters that rank the last part of a shop's own history best.

:func:`tune` holds out the most recent interactions of the data it is given
(a validation split *inside* the training data, so the held-out part of an
evaluation is never seen), fits the algorithm with each candidate setting
on the rest, and keeps the one with the best validation metric. The
configured setting (the class defaults with ``params`` applied) is always
evaluated first and wins ties, so the chosen setting is never worse than it
on the validation split. The search of the others is a grid (every combination of listed values, in a seeded random order) or
a random search (ranges, or a grid larger than ``max_trials``), cut short
by a time budget. The pipeline calls it for ``recs_recompute --tune`` (the
``TUNE`` entry of an ALGORITHMS setting); scripts and notebooks call it on
arrays.
"""

from __future__ import annotations

import importlib
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..algorithms.base import Algorithm
from .evaluator import METRIC_ORDER, Evaluator
from .interactions import TimedInteractions
from .splits import temporal_split

__all__ = ["TuneResult", "Trial", "check_space", "tune"]

#: Trials of a random search when neither ``max_trials`` nor a budget bounds it.
DEFAULT_RANDOM_TRIALS = 20
#: Keys of a range in a search space.
RANGE_KEYS = {"min", "max", "log"}


@dataclass
class Trial:
    """One evaluated setting: the searched parameters, its validation metrics and fit time."""

    params: dict[str, Any]
    metrics: dict[str, float]
    seconds: float
    #: True for the configured setting (always the first trial).
    configured: bool = False


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    params : dict
        The best setting: the base parameters with the searched ones applied
        (what to build the algorithm with).
    searched : dict
        The searched parameters' best values only.
    metrics : dict
        The best setting's validation metrics (``METRIC_ORDER`` names).
    metric : str
        The metric maximised, e.g. ``"ndcg"`` (at ``k``).
    k : int
    trials : list of Trial
        Every evaluated setting, in the order tried: the configured one
        first (``Trial.configured``).
    configured_metrics : dict
        The configured setting's validation metrics: ``metrics`` is never
        lower on ``metric``.
    validation : dict
        The validation split: its cut-off, training entries, held-out pairs
        and evaluated users.
    seconds : float
        Time of the whole search.
    exhausted : bool
        Whether every setting of a grid was tried (False when the budget or
        ``max_trials`` cut it short, or for a random search).
    """

    params: dict[str, Any]
    searched: dict[str, Any]
    metrics: dict[str, float]
    metric: str
    k: int
    trials: list[Trial] = field(default_factory=list)
    configured_metrics: dict[str, float] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    exhausted: bool = False

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable record of the search (stored on the run)."""
        return {
            "params": self.searched,
            "metric": f"{self.metric}@{self.k}",
            "validation_metrics": {name: _finite(value) for name, value in self.metrics.items()},
            "configured_validation_metrics": {
                name: _finite(value) for name, value in self.configured_metrics.items()},
            "trials": len(self.trials),
            "exhausted": self.exhausted,
            "seconds": round(self.seconds, 3),
            "validation": self.validation,
        }


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def check_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """The search space validated: name -> list of values, or a range dict.

    A range is ``{"min": a, "max": b}`` (uniform; integers when both bounds
    are integers) or with ``"log": True`` (log-uniform, both bounds > 0).

    Raises
    ------
    ValueError
        Naming the parameter: not a dict, an empty list, a range with
        unknown keys, bounds that are not finite numbers or not ordered,
        or a log range that is not positive.
    """
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space must be a non-empty dict of parameter -> values, got {space!r}")
    checked: dict[str, Any] = {}
    for name, values in space.items():
        if not isinstance(name, str):
            raise ValueError(f"space: parameter names must be strings, got {name!r}")
        if isinstance(values, (list, tuple)):
            if not values:
                raise ValueError(f"space: {name} has no values to try")
            checked[name] = list(values)
        elif isinstance(values, Mapping):
            unknown = set(values) - RANGE_KEYS
            if unknown or not {"min", "max"} <= set(values):
                raise ValueError(
                    f"space: {name} must be a list of values or a range "
                    f"{{'min': a, 'max': b, 'log': bool}}, got {dict(values)!r}"
                )
            low, high = values["min"], values["max"]
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          and math.isfinite(v) for v in (low, high))
            if not numbers or low > high:
                raise ValueError(f"space: {name}'s range needs finite numbers min <= max, "
                                 f"got {low!r}, {high!r}")
            if values.get("log") and low <= 0:
                raise ValueError(f"space: {name}'s log range needs min > 0, got {low!r}")
            checked[name] = {"min": low, "max": high, "log": bool(values.get("log", False))}
        else:
            raise ValueError(f"space: {name} must be a list of values or a range dict, "
                             f"got {values!r}")
    return checked


def check_budget(budget_s) -> None:
    """Raise ValueError unless ``budget_s`` is None or a finite number of seconds > 0."""
    if budget_s is None:
        return
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) \
            or not math.isfinite(budget_s) or budget_s <= 0:
        raise ValueError(f"budget_s must be a positive number of seconds or None, "
                         f"got {budget_s!r}")


def resolve_class(algorithm: type[Algorithm] | str) -> type[Algorithm]:
    """An Algorithm subclass, or one named by its dotted path."""
    if isinstance(algorithm, str):
        module, _, name = algorithm.rpartition(".")
        try:
            algorithm = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as error:
            raise ValueError(f"algorithm: cannot import {algorithm!r} ({error})") from error
    if not (isinstance(algorithm, type) and issubclass(algorithm, Algorithm)):
        raise ValueError(f"algorithm must be an Algorithm subclass or its dotted path, "
                         f"got {algorithm!r}")
    return algorithm


def candidate_settings(space: dict[str, Any], rng: np.random.Generator,
                       max_trials: int | None) -> tuple[list[dict[str, Any]], bool]:
    """The settings to try, in order, and whether they are the whole grid.

    A space of lists only, with at most ``max_trials`` combinations, is the
    grid in a seeded random order (a budget then cuts a random subset);
    otherwise ``max_trials`` (default DEFAULT_RANDOM_TRIALS) random draws,
    each list sampled uniformly and each range as documented.
    """
    names = list(space)
    if all(isinstance(space[n], list) for n in names):
        size = math.prod(len(space[n]) for n in names)
        if max_trials is None or size <= max_trials:
            grid = [dict(zip(names, values))
                    for values in itertools.product(*(space[n] for n in names))]
            return [grid[i] for i in rng.permutation(len(grid))], True
    count = DEFAULT_RANDOM_TRIALS if max_trials is None else max_trials
    settings = []
    for _ in range(count):
        setting = {}
        for name in names:
            values = space[name]
            if isinstance(values, list):
                setting[name] = values[int(rng.integers(len(values)))]
                continue
            low, high = values["min"], values["max"]
            if values["log"]:
                value = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            else:
                value = float(rng.uniform(low, high))
            if isinstance(low, int) and isinstance(high, int):
                value = int(round(value))
            setting[name] = value
        settings.append(setting)
    return settings, False


def validation_split(interactions: TimedInteractions, fraction: float):
    """The training data split in time: its last ``fraction`` of entries are held out."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction!r}")
    if len(interactions) == 0:
        raise ValueError("tune: no interactions to tune on")
    seconds = interactions.timestamps.astype("datetime64[s]").astype(np.int64)
    cutoff = np.datetime64(int(np.quantile(seconds, 1.0 - fraction, method="higher")), "s")
    return temporal_split(interactions, cutoff)


def tune(
    interactions: TimedInteractions,
    algorithm: type[Algorithm] | str,
    space: Mapping[str, Any],
    *,
    budget_s: float | None = None,
    k: int = 10,
    metric: str = "ndcg",
    params: Mapping[str, Any] | None = None,
    validation_fraction: float = 0.1,
    max_trials: int | None = None,
    seed: int = 0,
    half_life_days: float | None = None,
    num_threads: int = 0,
    on_trial: Callable[[int, Trial], None] | None = None,
) -> TuneResult:
    """Search ``space`` for the parameters of ``algorithm`` that rank held-out recent items best.

    Parameters
    ----------
    interactions : TimedInteractions
        The data to tune on (for an offline evaluation: its training part
        only). Its most recent ``validation_fraction`` of entries (by
        time) are held out; each setting is fitted on the rest and its top
        ``k`` lists are measured against them.
    algorithm : Algorithm subclass or its dotted path
    space : dict
        Parameter -> list of values to try, or a range ``{"min": a, "max":
        b}`` (``"log": True`` for log-uniform; integer bounds give integers).
    budget_s : float > 0, optional
        No new setting is started after this many seconds (the configured
        one always runs); None = no limit.
    k : int >= 1, default 10
    metric : one of ``METRIC_ORDER`` except fit_seconds, default "ndcg"
        Maximised at ``k``.
    params : dict, optional
        Fixed parameters of every setting (the searched ones override them).
        With the class defaults they make the configured setting, which is
        evaluated first (in addition to the searched settings; once if the
        space holds it too) and kept unless another one is strictly better.
    validation_fraction : float in (0, 1), default 0.1
    max_trials : int >= 1, optional
        At most this many settings besides the configured one. A grid with more combinations is
        sampled at random instead; a space with ranges takes
        DEFAULT_RANDOM_TRIALS (20) draws when this is None.
    seed : int, default 0
        Seeds the order of the grid and the random draws: the same call
        tries the same settings in the same order (a budget may stop it
        earlier on a slower machine).
    half_life_days, num_threads
        As for the evaluation.
    on_trial : callable(index, Trial), optional
        Called after each setting.

    Returns
    -------
    TuneResult
        The best setting (``params``: ready to build the algorithm with),
        its validation metrics, the configured setting's, and every trial.

    Raises
    ------
    ValueError
        A bad space (see :func:`check_space`), a parameter or value the
        class refuses (before any fit), an unknown metric, a budget that is
        not a positive number, a bad k, max_trials or validation_fraction,
        or a validation split with no user to evaluate.
    """
    cls = resolve_class(algorithm)
    space = check_space(space)
    if metric not in METRIC_ORDER or metric == "fit_seconds":
        choices = ", ".join(m for m in METRIC_ORDER if m != "fit_seconds")
        raise ValueError(f"metric must be one of {choices}, got {metric!r}")
    check_budget(budget_s)
    if max_trials is not None and (isinstance(max_trials, bool)
                                   or not isinstance(max_trials, int) or max_trials < 1):
        raise ValueError(f"max_trials must be an integer >= 1 or None, got {max_trials!r}")
    base = dict(params or {})
    settings, whole_grid = candidate_settings(space, np.random.default_rng(seed), max_trials)
    # The configured setting first: the winner is never worse on validation.
    configured = cls(**base).get_params()
    default = {name: configured[name] for name in space if name in configured}
    settings = [default] + [setting for setting in settings if setting != default]
    # Every setting is built first: a bad value fails before any fit.
    algorithms = [cls(**{**base, **setting}) for setting in settings]
    started = time.perf_counter()
    split = validation_split(interactions, validation_fraction)
    evaluator = Evaluator(split, k, half_life_days=half_life_days, num_threads=num_threads,
                          compute_auc=False)
    trials: list[Trial] = []
    for index, (setting, instance) in enumerate(zip(settings, algorithms)):
        if trials and budget_s is not None and time.perf_counter() - started >= budget_s:
            break
        trial_started = time.perf_counter()
        evaluation = evaluator.evaluate(instance)
        trial = Trial(params=setting, metrics=dict(evaluation.metrics),
                      seconds=time.perf_counter() - trial_started, configured=index == 0)
        trials.append(trial)
        if on_trial is not None:
            on_trial(index, trial)

    def score(trial: Trial) -> float:
        value = trial.metrics.get(metric, math.nan)
        return -math.inf if value is None or math.isnan(value) else value

    best = max(trials, key=score)  # the first of equals: the configured one on a tie
    return TuneResult(
        params={**base, **best.params},
        searched=dict(best.params),
        metrics=best.metrics,
        metric=metric,
        k=int(k),
        trials=trials,
        configured_metrics=trials[0].metrics,
        validation={"split": split.name, "train_entries": len(split.train),
                    "held_out_pairs": int(split.test.nnz), "users": int(split.n_users)},
        seconds=time.perf_counter() - started,
        exhausted=whole_grid and len(trials) == len(settings),
    )
