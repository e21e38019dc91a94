"""The algorithms configured in ALGORITHMS, built from their dotted paths.

Reads settings but no ORM. ``manage.py check`` runs :func:`check_algorithm`
over every entry (django_recs.E030-E032), so a typo shows up before a run.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from .algorithms.base import Algorithm
from .conf import recs_settings

#: The key of an ALGORITHMS entry holding its automatic tuning (not a parameter).
TUNE_KEY = "TUNE"
#: Keys of a TUNE dict that set the search; every other key is a searched parameter.
#: ("k" is a parameter of many algorithms: the list length goes with the metric, "ndcg@20".)
TUNE_OPTIONS = ("budget_s", "max_trials", "validation_fraction", "metric", "seed")


class AlgorithmConfigError(ValueError):
    """An ALGORITHMS entry cannot be turned into an algorithm."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


def algorithm_names() -> list[str]:
    """The names configured in ALGORITHMS, in order (none when it is not a dict)."""
    configured = recs_settings.ALGORITHMS
    return list(configured) if isinstance(configured, dict) else []


def algorithm_class(name: str) -> type[Algorithm]:
    """The class of ALGORITHMS[name] (AlgorithmConfigError when it cannot be used)."""
    config = algorithm_config(name)
    path = config.get("class")
    if not isinstance(path, str) or not path:
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'][{name!r}] has no 'class'", code="E031"
        )
    try:
        cls = import_string(path)
    except ImportError as error:
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'][{name!r}]: cannot import {path!r} ({error})", code="E031"
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'][{name!r}]: {path!r} is not a subclass of "
            "django_recs.algorithms.Algorithm",
            code="E031",
        )
    return cls


def algorithm_config(name: str) -> dict[str, Any]:
    """ALGORITHMS[name] (AlgorithmConfigError for an unknown name or a non-dict entry)."""
    configured = recs_settings.ALGORITHMS
    if not isinstance(configured, dict):
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'] must be a dict of name -> config, got "
            f"{type(configured).__name__}",
            code="E030",
        )
    if name not in configured:
        known = ", ".join(sorted(configured)) or "none"
        raise AlgorithmConfigError(
            f"Unknown algorithm {name!r}; DJANGO_RECS['ALGORITHMS'] configures: {known}",
            code="E030",
        )
    config = configured[name]
    if not isinstance(config, dict):
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'][{name!r}] must be a dict with a 'class', "
            f"got {type(config).__name__}",
            code="E030",
        )
    return config


def build_algorithm(name: str) -> Algorithm:
    """An instance of ALGORITHMS[name] with its parameters.

    Raises AlgorithmConfigError (a ValueError) naming the problem: unknown
    name, class that cannot be imported, or invalid parameters.
    """
    cls = algorithm_class(name)
    params = algorithm_params(name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'][{name!r}]: {error}", code="E032"
        ) from error


def algorithm_params(name: str) -> dict[str, Any]:
    """The parameters of ALGORITHMS[name]: its entry without ``class`` and ``TUNE``."""
    return {key: value for key, value in algorithm_config(name).items()
            if key not in ("class", TUNE_KEY)}


def tune_settings(name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(space, options)`` of ALGORITHMS[name]["TUNE"], or None when it has none.

    ``options`` are the TUNE_OPTIONS keys given; ``space`` every other key
    (parameter -> values or range). Not validated here: ``manage.py check``
    does that (django_recs.E130-E134).
    """
    tune = algorithm_config(name).get(TUNE_KEY)
    if tune is None:
        return None
    if not isinstance(tune, dict):
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'][{name!r}]['TUNE'] must be a dict of parameter -> "
            f"values and options, got {type(tune).__name__}", code="E130",
        )
    options = {key: value for key, value in tune.items() if key in TUNE_OPTIONS}
    space = {key: value for key, value in tune.items() if key not in TUNE_OPTIONS}
    metric = options.get("metric")
    if isinstance(metric, str) and "@" in metric:
        name, _, k = metric.partition("@")
        options["metric"] = name
        options["k"] = int(k) if k.isdigit() else k
    return space, options
