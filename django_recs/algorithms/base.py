"""The algorithm interface: parameters in, :class:`FitResult` out. No ORM here.

An algorithm is configured in ALGORITHMS by its dotted class path and keyword
parameters. ``__init__`` validates the parameters (a ValueError names the bad
one, and ``manage.py check`` reports it as django_recs.E032); ``fit`` turns
an :class:`~django_recs.matrix.InteractionMatrix` into arrays the pipeline
stores and the evaluation scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..matrix import InteractionMatrix

ProgressCallback = Callable[[float], None]


@dataclass
class FitResult:
    """What a fitted algorithm hands to the pipeline (and the evaluation).

    Attributes
    ----------
    similar : csr_matrix, shape (n_items, n_items), float32, optional
        Row i holds the neighbours of item i, best first in storage order.
    recommended : ndarray, shape (n_users, n), int32, optional
        Item columns recommended to each user, best first, -1 padding, seen
        items (EXCLUDE_SEEN) excluded.
    recommended_scores : ndarray, shape (n_users, n), float32, optional
        Score of each recommendation (0 where padded).
    reasons : ndarray, shape (n_users, n), int32, optional
        The column of the user's history that contributed most to each
        recommendation, -1 where unknown.
    popular : ndarray, shape (m,), int32, optional
        Item columns by descending popularity.
    popular_scores : ndarray, shape (m,), float32, optional
    user_factors, item_factors : ndarray, float32, optional
        Latent factors (ALS), shapes (n_users, f) and (n_items, f).
    counts : dict
        Numbers worth showing on the run, e.g. ``{"items_without_neighbours": 3}``.
    content_index : django_recs.algorithms.content_index.ContentIndex, optional
        Content-based algorithms (ContentKNN, Hybrid): the item features and
        similarity settings, stored with the run so a new item's neighbours
        can be computed without a full run.
    user_neighbours : csr_matrix, shape (n_users, n_users), float32, optional
        User-based algorithms (UserKNN): row u holds the neighbours of user
        u, best first. Not stored by the pipeline; the evaluation scores
        every item from it.
    """

    similar: sp.csr_matrix | None = None
    recommended: np.ndarray | None = None
    recommended_scores: np.ndarray | None = None
    reasons: np.ndarray | None = None
    popular: np.ndarray | None = None
    popular_scores: np.ndarray | None = None
    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    content_index: Any = None
    user_neighbours: sp.csr_matrix | None = None


class Algorithm:
    """Base class of the algorithms named in ALGORITHMS.

    Subclasses set ``name``, ``defaults`` (every accepted parameter with its
    default value) and implement :meth:`fit`; they may override
    :meth:`check_params` to validate values.

    ``personal`` is False for algorithms whose per-user lists are the same
    for everyone (Popular): the pipeline then stores only their item list.
    """

    name: ClassVar[str] = "algorithm"
    defaults: ClassVar[dict[str, Any]] = {}
    personal: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(
                f"{type(self).__name__}: unknown parameter(s) {', '.join(unknown)} "
                f"(accepted: {known})"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.check_params()

    def __getattr__(self, name: str) -> Any:
        # Parameters read as attributes: ``algorithm.k``.
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}({args})"

    def check_params(self) -> None:
        """Raise ValueError naming a parameter whose value is invalid."""

    def get_params(self) -> dict[str, Any]:
        """The parameters, as stored on the Run (JSON-serialisable)."""
        return dict(self.params)

    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        n_recommendations: int = 50,
        num_threads: int = 0,
        progress: ProgressCallback | None = None,
    ) -> FitResult:
        """Compute what to store from ``matrix``.

        Parameters
        ----------
        matrix : InteractionMatrix
        n_recommendations : int
            Length of each user's list (and of each item's neighbour list
            where the algorithm has no ``k`` of its own).
        num_threads : int, 0 = all available cores
        progress : callable(fraction in [0, 1]), optional
            Called from time to time while fitting.
        """
        raise NotImplementedError


# -- parameter checks shared by the algorithms ---------------------------------


def require_int(owner: Algorithm, name: str, *, minimum: int = 1, allow_none: bool = False) -> None:
    value = owner.params[name]
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(
            f"{type(owner).__name__}: parameter {name} must be an integer >= {minimum}, "
            f"got {value!r}"
        )


def require_number(
    owner: Algorithm, name: str, *, minimum: float = 0.0, strict: bool = False
) -> None:
    value = owner.params[name]
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and np.isfinite(value)
        and (value > minimum if strict else value >= minimum)
    )
    if not ok:
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(
            f"{type(owner).__name__}: parameter {name} must be a number {bound}, got {value!r}"
        )


def require_choice(owner: Algorithm, name: str, choices: tuple) -> None:
    value = owner.params[name]
    if value not in choices:
        raise ValueError(
            f"{type(owner).__name__}: parameter {name} must be one of "
            f"{', '.join(map(repr, choices))}, got {value!r}"
        )


def report(progress: ProgressCallback | None, fraction: float) -> None:
    """Call ``progress`` with ``fraction`` clipped to [0, 1], if there is one."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))))
