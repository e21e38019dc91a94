"""The algorithms configured in ALGORITHMS, built from their dotted paths.

Reads settings but no ORM. ``manage.py check`` runs :func:`check_algorithm`
over every entry (django_recs.E030-E032), so a typo shows up before a run.
"""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from .algorithms.base import Algorithm
from .conf import recs_settings


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
    params = {key: value for key, value in algorithm_config(name).items() if key != "class"}
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise AlgorithmConfigError(
            f"DJANGO_RECS['ALGORITHMS'][{name!r}]: {error}", code="E032"
        ) from error
