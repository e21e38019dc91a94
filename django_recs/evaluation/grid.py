"""Parameter search: every combination of a grid, the best by nDCG@k.

``parse_grid(["factors=32,64,128", "regularization=0.01,0.1"])`` reads the
command-line form; :func:`grid_search` evaluates each combination on one
:class:`~.evaluator.Evaluator` (one split, one k) and ranks them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..algorithms.base import Algorithm
from .evaluator import AlgorithmEvaluation, Evaluator

#: The metric a grid search maximises.
SELECTION_METRIC = "ndcg"


def parse_value(text: str) -> Any:
    """``"32"`` -> 32, ``"0.1"`` -> 0.1, ``"true"``/``"false"``/``"none"`` -> True/False/None, else the text."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text.strip()


def parse_grid(specs: Iterable[str]) -> dict[str, list]:
    """``["name=v1,v2", ...]`` -> ``{"name": [v1, v2], ...}`` (values parsed by :func:`parse_value`).

    Raises
    ------
    ValueError
        On an entry without ``=``, an empty name or no values, or a name given twice.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        items = [v for v in values.split(",") if v.strip()]
        if not sep or not name or not items:
            raise ValueError(f"grid: expected name=value1,value2,..., got {spec!r}")
        if name in grid:
            raise ValueError(f"grid: parameter {name!r} given twice")
        grid[name] = [parse_value(v) for v in items]
    return grid


def parameter_grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order (the last name varies fastest)."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


@dataclass
class GridResult:
    """All evaluations of a grid search, and the best by nDCG@k."""

    evaluations: list[AlgorithmEvaluation]
    best: AlgorithmEvaluation

    def ranked(self) -> list[AlgorithmEvaluation]:
        """The evaluations, best first."""
        return sorted(self.evaluations, key=_score, reverse=True)


def grid_search(
    evaluator: Evaluator,
    algorithm_class: type[Algorithm],
    base_params: dict[str, Any],
    grid: dict[str, list],
    *,
    label: str,
    on_step: Callable[[int, int, AlgorithmEvaluation | None], None] | None = None,
    prepare: Callable[[Algorithm], Any] | None = None,
) -> GridResult:
    """Evaluate ``algorithm_class(**base_params, **combination)`` for every combination.

    Parameters
    ----------
    on_step : callable(done, total, evaluation), optional
        Called before the first fit with ``(0, total, None)`` and after each.
    prepare : callable(algorithm), optional
        Called on each instance before it is fitted (see ``Candidate.prepare``).

    Raises
    ------
    ValueError
        On an empty grid, or a parameter the class rejects (named by the class).
    """
    combinations = parameter_grid(grid)
    if not combinations or not grid:
        raise ValueError("grid: no parameter combinations to search")
    # Build every instance first: a bad value fails before hours of fitting.
    algorithms = [algorithm_class(**{**base_params, **combo}) for combo in combinations]
    if prepare is not None:
        for algorithm in algorithms:
            prepare(algorithm)
    total = len(algorithms)
    if on_step:
        on_step(0, total, None)
    evaluations = []
    for done, (algorithm, combo) in enumerate(zip(algorithms, combinations), start=1):
        suffix = ",".join(f"{key}={value}" for key, value in combo.items())
        evaluation = evaluator.evaluate(algorithm, label=f"{label}[{suffix}]")
        evaluations.append(evaluation)
        if on_step:
            on_step(done, total, evaluation)
    return GridResult(evaluations=evaluations, best=max(evaluations, key=_score))


def _score(evaluation: AlgorithmEvaluation) -> float:
    value = evaluation.metrics.get(SELECTION_METRIC, math.nan)
    return -math.inf if value is None or math.isnan(value) else value
