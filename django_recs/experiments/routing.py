"""What a placement serves: a running experiment's variant, a promoted algorithm, or the page's.

Each process keeps a copy of the running experiments (with their variants,
by each of their placements) and of the promoted algorithms (:class:`PlacementAlgorithm`), read in one go
and served from memory: a list at a placement asks the database nothing. The
copy is dropped when this process saves or deletes one of them (signals),
and read again after EXPERIMENT_REFRESH_SECONDS otherwise, which is how the
other processes see a change.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ..conf import recs_settings
from ..registry import algorithm_names
from ..serving.visitors import Visitor
from .assignment import choose
from .units import unit_for

__all__ = ["NONE", "Route", "invalidate", "route", "running_plans"]

logger = logging.getLogger("django_recs.experiments")

#: The algorithm of a hold-out variant: no list.
NONE = "none"


@dataclass(frozen=True)
class Route:
    """What to serve at a placement to one visitor.

    ``algorithm`` is an ALGORITHMS name or ``"none"`` (an empty list); for a
    visitor in an experiment, ``experiment_id``, ``variant`` (its name) and
    ``unit`` say so, else they are None and "".
    """

    algorithm: str
    experiment_id: int | None = None
    variant: str = ""
    unit: str = ""


@dataclass(frozen=True)
class Plan:
    """A running experiment as the routing needs it."""

    experiment_id: int
    salt: str
    names: tuple[str, ...]
    algorithms: tuple[str, ...]
    cumulative_weights: tuple[float, ...]


_lock = threading.Lock()
_cache: dict = {"plans": None, "promoted": None, "loaded_at": 0.0}


def invalidate() -> None:
    """Drop this process's copy of the experiments: the next list reads them again."""
    _drop()


def _changed(sender, using=None, **kwargs) -> None:
    """A save or delete: drop the copy now and again once the transaction commits.

    (A list read in between must not keep the state from before the change.)
    """
    from django.db import transaction

    _drop()
    transaction.on_commit(_drop, using=using)


def _drop() -> None:
    with _lock:
        _cache["plans"] = None


def running_plans() -> tuple[dict[str, Plan], dict[str, str]]:
    """The running experiments by placement, and the promoted algorithms by placement."""
    refresh = _refresh_seconds()
    with _lock:
        plans, promoted, loaded_at = _cache["plans"], _cache["promoted"], _cache["loaded_at"]
    if plans is not None and time.monotonic() - loaded_at < refresh:
        return plans, promoted
    plans, promoted = _load()
    with _lock:
        _cache.update(plans=plans, promoted=promoted, loaded_at=time.monotonic())
    return plans, promoted


def _load() -> tuple[dict[str, Plan], dict[str, str]]:
    from ..models import Experiment, ExperimentPlacement, PlacementAlgorithm, Variant

    variants: dict[int, list] = {}
    rows = (Variant.objects.filter(experiment__status=Experiment.Status.RUNNING, weight__gt=0)
            .order_by("id")
            .values_list("experiment_id", "experiment__salt", "name", "algorithm", "weight"))
    for experiment_id, salt, name, algorithm, weight in rows:
        variants.setdefault(experiment_id, [salt, []])[1].append((name, algorithm, weight))
    by_experiment = {}
    for experiment_id, (salt, arms) in variants.items():
        total, cumulative = 0.0, []
        for _, _, weight in arms:
            total += weight
            cumulative.append(total)
        by_experiment[experiment_id] = Plan(experiment_id, salt, tuple(a[0] for a in arms),
                                            tuple(a[1] for a in arms), tuple(cumulative))
    plans = {}
    for placement, experiment_id in ExperimentPlacement.objects.filter(
            running_placement__isnull=False).values_list("running_placement", "experiment_id"):
        if experiment_id in by_experiment:
            plans[placement] = by_experiment[experiment_id]
    promoted = dict(PlacementAlgorithm.objects.values_list("placement", "algorithm"))
    return plans, promoted


def _refresh_seconds() -> float:
    value = recs_settings.EXPERIMENT_REFRESH_SECONDS
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return 10.0  # E110 reports it
    return float(value)


def route(placement: str, visitor: Visitor, request=None) -> Route | None:
    """What ``placement`` serves to ``visitor``; None: what the page asks for.

    A visitor of a placement with a running experiment gets their variant
    (stored their unit in ``request.session`` the first time); an unknown
    visitor (no account, no session) is left out of it and gets the
    promoted algorithm, if any. Never raises: an error is logged and None
    returned; a variant whose algorithm is no longer in ALGORITHMS is not
    served (logged), the page's algorithm is.
    """
    try:
        plans, promoted = running_plans()
        plan = plans.get(placement)
        unit = unit_for(visitor, request) if plan is not None else None
        if unit is None:
            algorithm = promoted.get(placement)
            if algorithm is None or not _servable(algorithm, placement):
                return None
            return Route(algorithm)
        index = choose(plan.experiment_id, plan.salt, unit, plan.cumulative_weights)
        algorithm = plan.algorithms[index]
        if not _servable(algorithm, placement):
            return None
        return Route(algorithm, plan.experiment_id, plan.names[index], unit)
    except Exception:
        logger.exception("django_recs: no experiment routing at placement %r", placement)
        return None


def _servable(algorithm: str, placement: str) -> bool:
    if algorithm == NONE or algorithm in algorithm_names():
        return True
    logger.error("django_recs: placement %r should serve algorithm %r, which is not in "
                 "ALGORITHMS: the page's algorithm is served", placement, algorithm)
    return False


def connect() -> None:
    """Drop the copy when an experiment, a variant or a promoted algorithm changes here."""
    from django.db.models.signals import post_delete, post_save

    from ..models import Experiment, ExperimentPlacement, PlacementAlgorithm, Variant

    for model in (Experiment, ExperimentPlacement, Variant, PlacementAlgorithm):
        post_save.connect(_changed, sender=model, dispatch_uid=f"django_recs.experiments.{model.__name__}.save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"django_recs.experiments.{model.__name__}.delete")
