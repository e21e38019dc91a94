"""Fit an algorithm on a split's training part and measure its lists.

:class:`Evaluator` prepares what every algorithm of one evaluation shares
(the training matrix, the held-out relevance, item popularity) once, then
:meth:`Evaluator.evaluate` fits one algorithm through the same
``fit(matrix)`` a recompute run calls and returns an
:class:`AlgorithmEvaluation`: every metric, the precision/recall curves over
1..k and the popularity profile of what it recommended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..algorithms.base import Algorithm, FitResult, ProgressCallback
from ..algorithms.popular import popular_minus_seen
from ..matrix import InteractionMatrix
from .beyond import (
    catalog_coverage,
    exposure,
    exposure_gini,
    intra_list_diversity,
    item_popularity,
    novelty,
)
from .metrics import auc_score, metrics_at_each_k, ranking_metrics
from .scoring import full_scorer
from .splits import Split

#: Metric names in the order tables and reports show them.
METRIC_ORDER = (
    "precision",
    "recall",
    "ndcg",
    "map",
    "hit_rate",
    "mrr",
    "auc",
    "coverage",
    "gini",
    "novelty",
    "diversity",
    "avg_popularity",
    "fit_seconds",
)

#: Items of the catalog split into this many popularity bins (head to tail) for the profile.
POPULARITY_BINS = 10


@dataclass
class AlgorithmEvaluation:
    """The outcome of evaluating one algorithm on one split.

    Attributes
    ----------
    label : str
        The name shown in tables (the ALGORITHMS name, or "Random"/"Popular").
    algorithm : str
        The class's dotted path.
    params : dict
        The algorithm's parameters.
    k : int
    split : str
        The split's name, e.g. ``"temporal:2011-10-01"``.
    users : int
        Evaluated users.
    metrics : dict
        ``METRIC_ORDER`` names -> float (NaN where a metric could not be taken).
    curves : dict
        ``{"k": [1..k], "precision": [...], "recall": [...], "ndcg": [...]}``.
    popularity_profile : dict
        ``{"catalog": [...], "recommended": [...]}``: the share of training
        interactions and of recommendations falling in each of
        ``POPULARITY_BINS`` equal-sized item bins, most popular first.
    auc_source : str
        What the AUC ranking came from (see :func:`~.scoring.full_scorer`).
    """

    label: str
    algorithm: str
    params: dict
    k: int
    split: str
    users: int
    metrics: dict[str, float]
    curves: dict[str, list]
    popularity_profile: dict[str, list]
    auc_source: str = ""
    counts: dict[str, Any] = field(default_factory=dict)

    def run_metrics(self, baselines: list[AlgorithmEvaluation] | None = None) -> dict:
        """The JSON stored in ``Run.metrics``: the metrics plus k, split, users, curves."""
        stored: dict[str, Any] = {
            name: _json_number(value) for name, value in self.metrics.items()
        }
        stored.update(
            k=self.k,
            split=self.split,
            users=self.users,
            auc_source=self.auc_source,
            curves={key: [_json_number(v) for v in values] for key, values in self.curves.items()},
        )
        if baselines:
            stored["baselines"] = {
                other.label: {name: _json_number(v) for name, v in other.metrics.items()}
                for other in baselines
            }
        return stored


def training_matrix(split: Split, *, half_life_days: float | None = None) -> InteractionMatrix:
    """The InteractionMatrix of a split's training part, as a run would build it.

    With ``split.exclude_train_items`` every training pair is "seen", so no
    algorithm recommends an item the user already has (such items are not
    relevant in that split); otherwise only the entries flagged seen are.
    Time decay (HALF_LIFE_DAYS) counts ages from the last training entry.
    """
    train = split.train
    seen_mask = np.ones(len(train), dtype=bool) if split.exclude_train_items else train.seen
    return InteractionMatrix.from_arrays(
        train.rows,
        train.cols,
        train.weights,
        seen_mask,
        shape=train.shape,
        user_ids=train.user_ids,
        item_ids=train.item_ids,
        item_categories=train.item_categories,
        timestamps=train.timestamps.astype(np.int64).astype(np.float64),
        half_life_days=half_life_days,
    )


class Evaluator:
    """Evaluate algorithms on one split at one ``k``.

    Parameters
    ----------
    split : Split
    k : int, default 10
    half_life_days : float or None
        Time decay of the training weights (the HALF_LIFE_DAYS setting).
    num_threads : int, default 0 (all cores)
    compute_auc : bool, default True
        AUC scores every item for every evaluated user: the slowest metric.
    diversity_users : int, default 2000
        Intra-list diversity is measured on a seeded sample of this many
        evaluated users (all when fewer), so it stays cheap on big catalogs.
    seed : int, default 0
        Seed of that sample.

    Raises
    ------
    ValueError
        If ``k`` is not a positive integer or the split has no evaluated user.
    """

    def __init__(
        self,
        split: Split,
        k: int = 10,
        *,
        half_life_days: float | None = None,
        num_threads: int = 0,
        compute_auc: bool = True,
        diversity_users: int = 2000,
        seed: int = 0,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k: expected a positive integer, got {k!r}")
        if split.n_users == 0:
            raise ValueError(
                f"split {split.name}: no user has both a training history and a held-out item"
            )
        self.split = split
        self.k = int(k)
        self.num_threads = num_threads
        self.compute_auc = compute_auc
        self.train = training_matrix(split, half_life_days=half_life_days)
        self.users = split.users
        self.relevant = split.test_rows()
        self.item_popularity = item_popularity(self.train.weights)
        rng = np.random.default_rng(seed)
        sample = min(int(diversity_users), self.users.size)
        self._diversity_rows = np.sort(rng.choice(self.users.size, size=sample, replace=False))
        pairs = self.train.weights.copy()
        pairs.data[:] = 1.0
        self._item_columns = pairs.tocsc()

    def evaluate(
        self,
        algorithm: Algorithm,
        *,
        label: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> AlgorithmEvaluation:
        """Fit ``algorithm`` on the training part and measure its top-k lists."""
        started = time.perf_counter()
        fit = algorithm.fit(
            self.train, n_recommendations=self.k, num_threads=self.num_threads, progress=progress
        )
        fit_seconds = time.perf_counter() - started
        recommended = self._lists(fit)
        k, n_items = self.k, self.train.n_items
        metrics: dict[str, float] = dict(ranking_metrics(recommended, self.relevant, k))
        auc_source = ""
        if self.compute_auc:
            scorer, auc_source = full_scorer(fit, self.train)
            metrics["auc"] = auc_score(
                lambda rows: scorer(self.users[rows]),
                self.relevant,
                exclude=self.train.seen[self.users],
                # About 4M dense scores at a time, whatever the catalog size.
                batch_size=max(1, 2**22 // max(n_items, 1)),
            )
        else:
            metrics["auc"] = float("nan")
        metrics["coverage"] = catalog_coverage(recommended, n_items, k)
        metrics["gini"] = exposure_gini(recommended, n_items, k)
        metrics["novelty"] = novelty(recommended, self.train.weights, k)
        metrics["diversity"] = self._diversity(recommended)
        metrics["avg_popularity"] = self._average_popularity(recommended)
        metrics["fit_seconds"] = fit_seconds
        curves = metrics_at_each_k(recommended, self.relevant, k)
        cls = type(algorithm)
        return AlgorithmEvaluation(
            label=label or algorithm.name,
            algorithm=f"{cls.__module__}.{cls.__qualname__}",
            params=algorithm.get_params(),
            k=k,
            split=self.split.name,
            users=int(self.users.size),
            metrics={name: float(metrics[name]) for name in METRIC_ORDER},
            curves={name: np.asarray(values).tolist() for name, values in curves.items()},
            popularity_profile=self._popularity_profile(recommended),
            auc_source=auc_source,
            counts=dict(fit.counts),
        )

    # --- pieces -------------------------------------------------------------

    def _lists(self, fit: FitResult) -> np.ndarray:
        """The evaluated users' lists, padded with -1 to k columns."""
        if fit.recommended is not None:
            lists = np.asarray(fit.recommended)[self.users]
        elif fit.popular is not None:
            lists = popular_minus_seen(np.asarray(fit.popular), self.train, self.k)[self.users]
        else:
            raise ValueError("the algorithm returned no recommendations to evaluate")
        lists = lists[:, : self.k].astype(np.int64)
        if lists.shape[1] < self.k:
            padding = np.full((lists.shape[0], self.k - lists.shape[1]), -1, dtype=np.int64)
            lists = np.hstack([lists, padding])
        return lists

    def _diversity(self, recommended: np.ndarray) -> float:
        lists = recommended[self._diversity_rows]
        categories = self.train.item_categories
        if categories is not None and np.any(np.asarray(categories) >= 0):
            return intra_list_diversity(lists, self.k, categories=np.asarray(categories))
        # Cosine similarity of the items' training columns (who interacted
        # with them), among the items these lists use only.
        used, positions = np.unique(lists[lists >= 0], return_inverse=True)
        if used.size < 2:
            return float("nan")
        columns = self._item_columns[:, used]
        norms = np.sqrt(np.asarray(columns.sum(axis=0), dtype=np.float64).ravel())
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        scale = sp.diags(inverse)
        similarity = scale @ (columns.T @ columns).astype(np.float64) @ scale
        remapped = np.full(lists.shape, -1, dtype=np.int64)
        remapped[lists >= 0] = positions
        return intra_list_diversity(remapped, self.k, similarity=sp.csr_matrix(similarity))

    def _average_popularity(self, recommended: np.ndarray) -> float:
        valid = recommended[recommended >= 0]
        return float(self.item_popularity[valid].mean()) if valid.size else float("nan")

    def _popularity_profile(self, recommended: np.ndarray) -> dict[str, list]:
        order = np.argsort(-self.item_popularity, kind="stable")
        bins = np.array_split(order, min(POPULARITY_BINS, order.size))
        interactions = self.item_popularity
        shown = exposure(recommended, self.train.n_items, self.k).astype(np.float64)
        total_interactions = interactions.sum() or 1.0
        total_shown = shown.sum() or 1.0
        return {
            "catalog": [float(interactions[b].sum() / total_interactions) for b in bins],
            "recommended": [float(shown[b].sum() / total_shown) for b in bins],
        }


def _json_number(value):
    """NaN and infinities are not JSON: they are stored as None."""
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value
