"""Offline evaluation: splits, metrics, baselines and reports. numpy in, numbers out.

Nothing here touches the ORM: a split is made of time-stamped interaction
arrays (:class:`TimedInteractions`), an algorithm is fitted on its training
part, and its top-k lists are measured against the held-out part. The
``recs_evaluate`` management command only loads the interactions from the
database and stores the numbers on a Run.
"""

from __future__ import annotations

from .beyond import (
    catalog_coverage,
    exposure,
    exposure_gini,
    gini_index,
    intra_list_diversity,
    item_popularity,
    novelty,
)
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

__all__ = [
    "RANKING_METRICS",
    "Split",
    "TimedInteractions",
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
]
