"""The result tables' querysets (their models' managers): one run's stored rows.

``SimilarItem.objects.for_item(item)``, ``Recommendation.objects.for_user(user)``
and ``PopularItem.objects.for_model(Product)`` read the active run's rows,
best first, for the admin and for debugging. The lists a shop shows are
built by :mod:`django_recs.serving`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Subquery

from .items import item_content_type, item_key

__all__ = [
    "PopularItemQuerySet",
    "RecommendationListQuerySet",
    "RecommendationQuerySet",
    "RunRowsQuerySet",
    "SimilarItemQuerySet",
    "MAX_LIST_LENGTH",
    "active_run_id",
    "check_n",
]


def active_run_id(algorithm: str) -> Subquery:
    """``SELECT id FROM run WHERE algorithm = ... AND is_active LIMIT 1``.

    At most one run per algorithm is active (a database constraint), so the
    subquery yields one id or NULL; NULL matches no result row.
    """
    from .models import Run

    return Subquery(
        Run.objects.filter(algorithm=algorithm, is_active=True).order_by().values("pk")[:1],
        output_field=models.BigIntegerField(),
    )



#: The longest list one call reads: a larger ``n`` is a mistake (10**19 would
#: overflow the statement's LIMIT inside the database).
MAX_LIST_LENGTH = 10_000


def check_n(n) -> int:
    """``n`` as a list length; ValueError unless it is an integer in 0..MAX_LIST_LENGTH."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_LIST_LENGTH:
        raise ValueError(
            f"n must be a non-negative integer <= {MAX_LIST_LENGTH}, got {n!r}"[:200]
        )
    return n


class RunRowsQuerySet(models.QuerySet):
    """Rows of result tables, which all belong to a run."""

    def active(self, algorithm: str) -> RunRowsQuerySet:
        """Rows of the active run of ``algorithm`` (none when no run is active)."""
        return self.filter(run_id=active_run_id(algorithm))

    def top(self, n: int) -> RunRowsQuerySet:
        """The ``n`` best rows (lowest rank first)."""
        return self.order_by("rank")[: check_n(n)]


class SimilarItemQuerySet(RunRowsQuerySet):
    def for_item(self, item: models.Model, algorithm: str = "similar") -> SimilarItemQuerySet:
        """Stored neighbours of ``item`` in the active run of ``algorithm``, best first."""
        return (
            self.active(algorithm)
            .filter(item_type=item_content_type(item), item_key=item_key(item))
            .order_by("rank")
        )


class RecommendationQuerySet(RunRowsQuerySet):
    def for_user(self, user, algorithm: str = "personal") -> RecommendationQuerySet:
        """Stored recommendations of ``user`` in the active run of ``algorithm``, best first."""
        user_id = getattr(user, "pk", user)
        if user_id is None:
            return self.none()
        return self.active(algorithm).filter(user_id=user_id).order_by("rank")


class RecommendationListQuerySet(RunRowsQuerySet):
    def for_user(self, user, algorithm: str = "personal") -> RecommendationListQuerySet:
        """The stored lists of ``user`` in the active run of ``algorithm`` (one per item model)."""
        user_id = getattr(user, "pk", user)
        if user_id is None:
            return self.none()
        return self.active(algorithm).filter(user_id=user_id).order_by("item_type")


class PopularItemQuerySet(RunRowsQuerySet):
    def for_model(self, model: type[models.Model], algorithm: str = "popular") -> PopularItemQuerySet:
        """Stored popular items of ``model`` in the active run of ``algorithm``, best first.

        Items are stored under their root model's content type
        (:func:`~django_recs.items.item_root`): for a multi-table child these
        are the popular items of its whole family (its parent's too).
        """
        return self.active(algorithm).filter(item_type=item_content_type(model)).order_by("rank")
