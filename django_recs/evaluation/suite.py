"""One evaluation end to end: split, baselines, each algorithm (or its grid), summary.

This is what ``manage.py recs_evaluate`` and the benchmark script run;
they only differ in where the interactions come from and where the numbers go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..algorithms.base import Algorithm
from .baselines import baseline_algorithms
from .evaluator import AlgorithmEvaluation, Evaluator
from .grid import GridResult, grid_search
from .interactions import TimedInteractions
from .splits import Split, split_from_spec


@dataclass(frozen=True)
class Candidate:
    """An algorithm to evaluate: its label, class and parameters.

    ``prepare`` is called on each built instance before it is fitted, e.g.
    to hand a content algorithm its item features (``use_item_features``).
    """

    label: str
    algorithm_class: type[Algorithm]
    params: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Algorithm], Any] | None = field(default=None, compare=False)

    @property
    def class_path(self) -> str:
        cls = self.algorithm_class
        return f"{cls.__module__}.{cls.__qualname__}"

    def build(self) -> Algorithm:
        algorithm = self.algorithm_class(**self.params)
        if self.prepare is not None:
            self.prepare(algorithm)
        return algorithm


@dataclass
class EvaluationOutcome:
    """Everything one evaluation measured.

    Attributes
    ----------
    split : Split
    summary : dict
        Counts of the data and the split (for reports and the stored runs).
    baselines : list of AlgorithmEvaluation
        Random and Popular (empty when baselines were off).
    evaluations : list of AlgorithmEvaluation
        One per candidate, in order: the best combination when a grid was searched.
    grids : dict
        Candidate label -> GridResult, for the candidates that were searched.
    """

    split: Split
    summary: dict
    baselines: list[AlgorithmEvaluation]
    evaluations: list[AlgorithmEvaluation]
    grids: dict[str, GridResult] = field(default_factory=dict)

    def compared(self) -> list[AlgorithmEvaluation]:
        """Baselines first, then the candidates: the rows of the results table."""
        return [*self.baselines, *self.evaluations]

    def grid_evaluations(self) -> list[AlgorithmEvaluation]:
        return [e for result in self.grids.values() for e in result.evaluations]


def run_evaluation(
    data: TimedInteractions,
    candidates: list[Candidate],
    *,
    split: str | Split = "temporal:0.8",
    k: int = 10,
    grid: dict[str, list] | None = None,
    baselines: bool = True,
    seed: int = 0,
    half_life_days: float | None = None,
    num_threads: int = 0,
    compute_auc: bool = True,
    on_start: Callable[[str], None] | None = None,
    on_grid_step: Callable[[str, int, int, AlgorithmEvaluation | None], None] | None = None,
) -> EvaluationOutcome:
    """Split ``data``, then evaluate the baselines and every candidate at ``k``.

    Parameters
    ----------
    data : TimedInteractions
    candidates : list of Candidate
    split : str or Split
        A :func:`~.splits.split_from_spec` form, or a ready split.
    grid : dict, optional
        Parameter name -> values searched for every candidate (best by nDCG@k).
    baselines : bool
        Evaluate Random and Popular beside the candidates.
    on_start : callable(label), optional
        Called before each fit (baselines and candidates without a grid).
    on_grid_step : callable(label, done, total, evaluation), optional
        Progress of each candidate's grid search.

    Raises
    ------
    ValueError
        On a bad split, k or grid, a parameter a candidate's class rejects,
        or a split that leaves no user to evaluate.
    """
    if grid:
        for candidate in candidates:
            accepted = set(getattr(candidate.algorithm_class, "defaults", {}))
            unknown = sorted(set(grid) - accepted)
            if accepted and unknown:
                raise ValueError(
                    f"grid: {candidate.label} ({candidate.algorithm_class.__name__}) has no "
                    f"parameter {', '.join(unknown)} (accepted: {', '.join(sorted(accepted))})"
                )
    built = {candidate.label: candidate.build() for candidate in candidates}  # fail early
    the_split = split if isinstance(split, Split) else split_from_spec(data, split, seed=seed)
    evaluator = Evaluator(
        the_split,
        k,
        half_life_days=half_life_days,
        num_threads=num_threads,
        compute_auc=compute_auc,
        seed=seed,
    )
    summary = {
        "users": data.n_users,
        "items": data.n_items,
        "interactions": len(data),
        **the_split.summary(),
        "k": k,
    }
    baseline_results = []
    if baselines:
        for label, algorithm in baseline_algorithms(seed).items():
            if on_start:
                on_start(label)
            baseline_results.append(evaluator.evaluate(algorithm, label=label))
    evaluations, grids = [], {}
    for candidate in candidates:
        if grid:
            def step(done, total, evaluation, label=candidate.label):
                if on_grid_step:
                    on_grid_step(label, done, total, evaluation)

            result = grid_search(
                evaluator,
                candidate.algorithm_class,
                candidate.params,
                grid,
                label=candidate.label,
                on_step=step,
                prepare=candidate.prepare,
            )
            grids[candidate.label] = result
            best = result.best
            evaluations.append(
                AlgorithmEvaluation(**{**best.__dict__, "label": candidate.label})
            )
        else:
            if on_start:
                on_start(candidate.label)
            evaluations.append(evaluator.evaluate(built[candidate.label], label=candidate.label))
    return EvaluationOutcome(
        split=the_split,
        summary=summary,
        baselines=baseline_results,
        evaluations=evaluations,
        grids=grids,
    )
