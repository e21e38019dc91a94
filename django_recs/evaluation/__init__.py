"""Offline evaluation: splits, metrics, baselines and reports. numpy in, numbers out.

Nothing here touches the ORM: a split is made of time-stamped interaction
arrays (:class:`TimedInteractions`), an algorithm is fitted on its training
part, and its top-k lists are measured against the held-out part. The
``recs_evaluate`` management command only loads the interactions from the
database and stores the numbers on a Run.
"""

from __future__ import annotations

from .baselines import Random, baseline_algorithms
from .beyond import (
    catalog_coverage,
    exposure,
    exposure_gini,
    gini_index,
    intra_list_diversity,
    item_popularity,
    novelty,
)
from .evaluator import METRIC_ORDER, AlgorithmEvaluation, Evaluator, training_matrix
from .grid import GridResult, grid_search, parameter_grid, parse_grid
from .interactions import TimedInteractions
from .metrics import (
    RANKING_METRICS,
    auc_score,
    hit_matrix,
    metrics_at_each_k,
    ranking_metrics,
    ranking_metrics_per_user,
)
from .splits import Split, leave_last_k_out, random_holdout, split_from_spec, temporal_split
from .suite import Candidate, EvaluationOutcome, run_evaluation
from .tune import Trial, TuneResult, tune

__all__ = [
    "METRIC_ORDER",
    "RANKING_METRICS",
    "AlgorithmEvaluation",
    "Candidate",
    "EvaluationOutcome",
    "Evaluator",
    "GridResult",
    "Random",
    "Split",
    "TimedInteractions",
    "Trial",
    "TuneResult",
    "baseline_algorithms",
    "grid_search",
    "parameter_grid",
    "parse_grid",
    "run_evaluation",
    "training_matrix",
    "auc_score",
    "catalog_coverage",
    "exposure",
    "exposure_gini",
    "gini_index",
    "hit_matrix",
    "intra_list_diversity",
    "item_popularity",
    "leave_last_k_out",
    "metrics_at_each_k",
    "novelty",
    "random_holdout",
    "ranking_metrics",
    "ranking_metrics_per_user",
    "split_from_spec",
    "temporal_split",
    "tune",
]
