"""Candidate sources of a list, in the order of the cold-start chain.

A list is filled from the first source that has candidates and topped up
from the next ones:

=============  =================================================================
``personal``   stored recommendations of the user (active run of ``algorithm``)
``history``    built at request time: stored neighbours of the visitor's recent
               items (account and session), scores summed over those items
``similar``    stored neighbours of an item (active run of ``algorithm``)
``category``   popular items of the item's category (CATEGORY setting)
``popular``    stored popular items (active ``popular`` run), time-decayed by
               that run
``trending``   only while no popular run is active: popularity computed from
               the interactions, time-decayed with HALF_LIFE_DAYS (30 days when
               unset)
=============  =================================================================

Each source is two pieces of SQL, never a query of its own:

- ``pool``: the ids of its best candidates, already restricted to the allowed
  items (the caller's ``queryset=``, minus the source item and seen items),
  at most ``limit`` of them for the sources that are not bounded by storage;
- ``score``: a correlated subquery giving an outer item row its score from
  this source, NULL when the source does not propose it.

Scores of different sources are on different scales; a list orders by
source first, then by score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import models
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.utils import timezone

from .conf import recs_settings
from .expressions import active_run_exists, active_run_id, pk_as_key
from .items import key_as_pk
from .models import Interaction, PopularItem, Recommendation, SimilarItem
from .visitors import Visitor

#: Half-life of the request-time popularity when HALF_LIFE_DAYS is unset.
DEFAULT_POPULARITY_HALF_LIFE_DAYS = 30.0
#: Half-lives after which an interaction keeps the floor weight 2 ** -DECAY_STEPS.
DECAY_STEPS = 8


@dataclass(frozen=True)
class CandidateSource:
    """SQL proposing candidates: see the module docstring."""

    name: str
    pool: QuerySet
    score: models.Expression
    reason_type_id: models.Expression | None = None
    reason_key: models.Expression | None = None


def _outer_key(model: type[models.Model]):
    """The outer item row's primary key as a stored key (for correlated lookups)."""
    return pk_as_key(model, OuterRef("pk"))


def _restricted(rows: QuerySet, key_field: str, model, allowed: QuerySet) -> QuerySet:
    """``rows`` whose key (cast to ``model``'s pk) is among the allowed items."""
    return rows.annotate(candidate=key_as_pk(model, F(key_field))).filter(
        candidate__in=allowed.order_by().values("pk")
    )


def _float(subquery: QuerySet) -> Subquery:
    return Subquery(subquery, output_field=models.FloatField())


# --- stored results ------------------------------------------------------------------


def stored_neighbours(
    model, content_type_id: int, key: str, algorithm: str, allowed: QuerySet
) -> CandidateSource:
    """Neighbours of the item ``key`` stored by the active run of ``algorithm``."""
    rows = SimilarItem.objects.filter(
        run_id=active_run_id(algorithm),
        item_type_id=content_type_id,
        item_key=key,
        neighbour_type_id=content_type_id,
    )
    return CandidateSource(
        name="similar",
        pool=_restricted(rows, "neighbour_key", model, allowed).values("candidate"),
        score=_float(rows.filter(neighbour_key=_outer_key(model)).values("score")[:1]),
    )


def stored_recommendations(
    model, content_type_id: int, user_id, algorithm: str, allowed: QuerySet
) -> CandidateSource:
    """Recommendations of the user stored by the active run of ``algorithm``."""
    rows = Recommendation.objects.filter(
        run_id=active_run_id(algorithm), user_id=user_id, item_type_id=content_type_id
    )
    mine = rows.filter(item_key=_outer_key(model))
    return CandidateSource(
        name="personal",
        pool=_restricted(rows, "item_key", model, allowed).values("candidate"),
        score=_float(mine.values("score")[:1]),
        reason_type_id=Subquery(mine.values("reason_type_id")[:1]),
        reason_key=Subquery(mine.values("reason_key")[:1]),
    )


# --- request time ----------------------------------------------------------------------


def history_neighbours(
    model,
    content_type_id: int,
    visitor: Visitor,
    algorithm: str,
    allowed: QuerySet,
    limit: int,
) -> CandidateSource | None:
    """Neighbours of the visitor's recent items, scores summed; None for an unknown visitor.

    The reason of a candidate is the recent item it is most similar to.
    The recent items themselves are not proposed (the visitor has just seen them).
    """
    recent = visitor.recent_keys(content_type_id)
    if recent is None:
        return None
    rows = SimilarItem.objects.filter(
        run_id=active_run_id(algorithm),
        item_type_id=content_type_id,
        item_key__in=recent,
        neighbour_type_id=content_type_id,
    ).exclude(neighbour_key__in=recent)
    pool = (
        _restricted(rows, "neighbour_key", model, allowed)
        .values("candidate")
        .annotate(total=Sum("score"))
        .order_by("-total", "candidate")
        .values("candidate")[:limit]
    )
    mine = rows.filter(neighbour_key=_outer_key(model))
    total = mine.order_by().values("neighbour_type_id").annotate(total=Sum("score")).values("total")
    return CandidateSource(
        name="history",
        pool=pool,
        score=_float(total[:1]),
        reason_type_id=Value(content_type_id, output_field=models.IntegerField()),
        reason_key=Subquery(mine.order_by("-score", "rank").values("item_key")[:1]),
    )


# --- popularity -------------------------------------------------------------------------


def decayed_weight(now=None, half_life_days: float | None = None) -> models.Expression:
    """An interaction's weight times ``2 ** -age/half_life``, in half-life steps.

    Portable SQL has no exponential of a date difference, so the age is
    bucketed by whole half-lives and each bucket weighted at its midpoint
    (``2 ** -(i + 0.5)`` for ages in ``[i, i + 1)`` half-lives); older than
    DECAY_STEPS half-lives keeps a floor weight, so all-time counts still
    break ties.
    """
    now = now or timezone.now()
    half_life = timedelta(days=half_life_days or DEFAULT_POPULARITY_HALF_LIFE_DAYS)
    steps = [
        When(timestamp__gte=now - half_life * (i + 1), then=Value(2.0 ** -(i + 0.5)))
        for i in range(DECAY_STEPS)
    ]
    factor = Case(*steps, default=Value(2.0**-DECAY_STEPS), output_field=models.FloatField())
    return F("weight") * factor


def popular(
    model,
    content_type_id: int,
    algorithm: str,
    allowed: QuerySet,
    limit: int,
    *,
    name: str = "popular",
    within: Q | None = None,
) -> list[CandidateSource]:
    """Stored popular items, and the request-time popularity while none are stored.

    ``within`` (a Q on the item model) narrows both to, e.g., one category;
    ``name`` then names the pair (the ``trending`` half is ``name`` + ``_trending``
    unless ``name`` is ``popular``).
    """
    if within is not None:
        allowed = allowed.filter(within)

    def only_within(score):
        return score if within is None else Case(When(within, then=score), default=None)

    stored_rows = PopularItem.objects.filter(
        run_id=active_run_id(algorithm), item_type_id=content_type_id
    )
    stored = CandidateSource(
        name=name,
        pool=_restricted(stored_rows, "item_key", model, allowed)
        .order_by("rank")
        .values("candidate")[:limit],
        score=only_within(
            _float(stored_rows.filter(item_key=_outer_key(model)).values("score")[:1])
        ),
    )

    # Request-time popularity, only while no popular run is active: the guard
    # is a one-time check, so the aggregate is skipped once a run exists.
    weight = decayed_weight(half_life_days=recs_settings.HALF_LIFE_DAYS)
    event_rows = Interaction.objects.filter(~active_run_exists(algorithm), item_type_id=content_type_id)
    trending_pool = (
        _restricted(event_rows, "item_key", model, allowed)
        .values("candidate")
        .annotate(total=Sum(weight))
        .order_by("-total", "candidate")
        .values("candidate")[:limit]
    )
    trending_total = (
        event_rows.filter(item_key=_outer_key(model))
        .order_by()
        .values("item_type_id")
        .annotate(total=Sum(weight))
        .values("total")
    )
    trending = CandidateSource(
        name="trending" if name == "popular" else f"{name}_trending",
        pool=trending_pool,
        score=only_within(_float(trending_total[:1])),
    )
    return [stored, trending]


def category_lookup(model: type[models.Model]) -> str | None:
    """The ORM lookup of ``model``'s category from the CATEGORY setting, or None.

    CATEGORY maps ``"app_label.Model"`` to a dotted attribute path
    (``"category"``, ``"brand.category"``).
    """
    wanted = {model._meta.label_lower, model._meta.concrete_model._meta.label_lower}
    for label, path in (recs_settings.CATEGORY or {}).items():
        if label.lower() in wanted and path:
            return path.replace(".", "__")
    return None


def same_category(model, item_pk, lookup: str) -> Q:
    """Items whose category equals the item ``item_pk``'s (read in SQL, not in Python)."""
    source_category = Subquery(model._base_manager.filter(pk=item_pk).values(lookup)[:1])
    return Q(**{lookup: source_category})
