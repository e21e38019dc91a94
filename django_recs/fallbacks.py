"""Candidate sources of a list, in the order of the cold-start chain.

A list is filled from the first source that has candidates and topped up
from the next ones:

=============  =================================================================
``personal``   stored recommendations of the user (active run of ``algorithm``)
``history``    built at request time: stored neighbours of the visitor's recent
               items (account and session), scores summed over those items
``similar``    stored neighbours of an item (active run of ``algorithm``)
``content``    stored content neighbours of the item (``history_content``: of
               the visitor's recent items), from the CONTENT_FALLBACK algorithm
               (ContentKNN or Hybrid): a new item has them from its first save
``category``   popular items of the item's category (CATEGORY setting)
``popular``    stored popular items (active ``popular`` run, time-decayed by
               that run); while no popular run is active, popularity computed
               from the interactions, time-decayed with HALF_LIFE_DAYS (30
               days when unset)
=============  =================================================================

Each source is SQL, never a query of its own:

- ``pools``: ids of its best candidates among the allowed items (see
  :class:`Candidates`), at most ``limit`` of them for the sources not bounded
  by storage;
- ``score``: a correlated subquery giving an outer item row its score from
  this source, NULL when the source does not propose it;
- ``reason_type_id`` / ``reason_key``: the same for the item that explains it.

Scores of different sources are on different scales; a list orders by
source first, then by score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, NullIf
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
#: Interactions (the latest) that request-time popularity reads.
RECENT_INTERACTIONS = 10_000


@dataclass(frozen=True)
class Candidates:
    """The items a list may contain, as filters on a result table's key column.

    ``allowed`` is the caller's ``queryset=`` (None: every item), so the best
    ``n`` are chosen among allowed items, not cut down afterwards.
    ``excluded_keys`` (the source item) and ``seen_keys`` (a subquery of the
    visitor's EXCLUDE_SEEN items) are compared as stored keys.
    """

    model: type[models.Model]
    content_type_id: int
    allowed: QuerySet | None = None
    excluded_keys: tuple[str, ...] = ()
    seen_keys: QuerySet | None = None
    #: A one-time SQL condition; the source's rows are read only while it holds.
    only_if: models.Expression | None = None

    def restrict(self, rows: QuerySet, key_field: str) -> QuerySet:
        """``rows`` proposing allowed items, annotated with ``candidate`` (the item's pk)."""
        rows = rows.annotate(candidate=key_as_pk(self.model, F(key_field)))
        if self.only_if is not None:
            rows = rows.filter(self.only_if)
        if self.excluded_keys:
            rows = rows.exclude(**{f"{key_field}__in": self.excluded_keys})
        if self.seen_keys is not None:
            rows = rows.exclude(**{f"{key_field}__in": self.seen_keys})
        if self.allowed is not None:
            rows = rows.filter(candidate__in=self.allowed.order_by().values("pk"))
        return rows

    def within(self, condition: Q) -> Candidates:
        """These candidates narrowed by a condition on the item model."""
        allowed = self.allowed if self.allowed is not None else self.model._default_manager.all()
        return replace(self, allowed=allowed.filter(condition))

    def read_only_if(self, condition) -> Candidates:
        """These candidates, read only while ``condition`` holds (None: always)."""
        return self if condition is None else replace(self, only_if=condition)

    def outer_key(self):
        """The key of the item row of the enclosing query (for correlated lookups)."""
        return pk_as_key(self.model, OuterRef("pk"))


@dataclass(frozen=True)
class CandidateSource:
    """SQL proposing candidates: see the module docstring."""

    name: str
    pools: tuple[QuerySet, ...]
    score: models.Expression
    reason_type_id: models.Expression | None = None
    reason_key: models.Expression | None = None

    def fewer_than(self, n: int):
        """A one-time SQL check: this source's first pool has fewer than ``n`` candidates.

        Later sources are read only while it holds, so an item with enough
        neighbours (a user with enough stored recommendations) costs no
        popularity lookups at all.
        """
        return ~Exists(self.pools[0][n - 1 : n])


def _float(subquery: QuerySet) -> Subquery:
    return Subquery(subquery, output_field=models.FloatField())


# --- stored results ------------------------------------------------------------------


def stored_neighbours(
    candidates: Candidates, key: str, algorithm: str, *, name: str = "similar"
) -> CandidateSource:
    """Neighbours of the item ``key`` stored by the active run of ``algorithm``."""
    rows = SimilarItem.objects.filter(
        run_id=active_run_id(algorithm),
        item_type_id=candidates.content_type_id,
        item_key=key,
        neighbour_type_id=candidates.content_type_id,
    )
    return CandidateSource(
        name=name,
        pools=(candidates.restrict(rows, "neighbour_key").values("candidate"),),
        score=_float(rows.filter(neighbour_key=candidates.outer_key()).values("score")[:1]),
    )


def stored_recommendations(candidates: Candidates, user_id, algorithm: str) -> CandidateSource:
    """Recommendations of the user stored by the active run of ``algorithm``."""
    rows = Recommendation.objects.filter(
        run_id=active_run_id(algorithm), user_id=user_id, item_type_id=candidates.content_type_id
    )
    mine = rows.filter(item_key=candidates.outer_key())
    return CandidateSource(
        name="personal",
        pools=(candidates.restrict(rows, "item_key").values("candidate"),),
        score=_float(mine.values("score")[:1]),
        reason_type_id=Subquery(mine.values("reason_type_id")[:1]),
        reason_key=NullIf(Subquery(mine.values("reason_key")[:1]), Value("")),
    )


# --- request time ----------------------------------------------------------------------


def history_neighbours(
    candidates: Candidates, visitor: Visitor, algorithm: str, limit: int, *, name: str = "history"
) -> CandidateSource | None:
    """Neighbours of the visitor's recent items, scores summed; None for an unknown visitor.

    The reason of a candidate is the recent item it is most similar to.
    The recent items themselves are not proposed (the visitor has just seen them).
    """
    recent = visitor.recent_keys(candidates.content_type_id)
    if recent is None:
        return None
    rows = SimilarItem.objects.filter(
        run_id=active_run_id(algorithm),
        item_type_id=candidates.content_type_id,
        item_key__in=recent,
        neighbour_type_id=candidates.content_type_id,
    ).exclude(neighbour_key__in=recent)
    pool = (
        candidates.restrict(rows, "neighbour_key")
        .values("candidate")
        .annotate(total=Sum("score"))
        .order_by("-total", "candidate")
        .values("candidate")[:limit]
    )
    mine = rows.filter(neighbour_key=candidates.outer_key())
    total = mine.order_by().values("neighbour_type_id").annotate(total=Sum("score")).values("total")
    reason_key = Subquery(mine.order_by("-score", "rank").values("item_key")[:1])
    return CandidateSource(
        name=name,
        pools=(pool,),
        score=_float(total[:1]),
        reason_type_id=Value(candidates.content_type_id, output_field=models.IntegerField()),
        reason_key=reason_key,
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
    candidates: Candidates,
    algorithm: str,
    limit: int,
    *,
    name: str = "popular",
    within: Q | None = None,
) -> CandidateSource:
    """Stored popular items, or, while no popular run is active, popularity from interactions.

    ``within`` (a Q on the item model) narrows the source to, e.g., a
    category; it then reads stored popular items only.
    """
    if within is not None:
        candidates = candidates.within(within)
    stored_rows = PopularItem.objects.filter(
        run_id=active_run_id(algorithm), item_type_id=candidates.content_type_id
    )
    pools = [candidates.restrict(stored_rows, "item_key").order_by("rank").values("candidate")[:limit]]
    score = _float(stored_rows.filter(item_key=candidates.outer_key()).values("score")[:1])
    if within is None:
        recent = recent_interactions(candidates.content_type_id, unless_active=algorithm)
        weight = decayed_weight(half_life_days=recs_settings.HALF_LIFE_DAYS)
        pools.append(
            candidates.restrict(recent, "item_key")
            .values("candidate")
            .annotate(total=Sum(weight))
            .order_by("-total", "candidate")
            .values("candidate")[:limit]
        )
        computed = (
            recent.filter(item_key=candidates.outer_key())
            .order_by()
            .values("item_type_id")
            .annotate(total=Sum(weight))
            .values("total")
        )
        score = Coalesce(score, _float(computed[:1]), output_field=models.FloatField())
    else:
        score = Case(When(within, then=score), default=None, output_field=models.FloatField())
    return CandidateSource(name=name, pools=tuple(pools), score=score)


def recent_interactions(content_type_id: int, *, unless_active: str) -> QuerySet:
    """The RECENT_INTERACTIONS latest interactions, none once ``unless_active`` has an active run.

    Request-time popularity reads a bounded window, so its cost does not
    grow with the history; and the guard is a one-time check, so nothing is
    read once a popular run exists.
    """
    window = (
        Interaction.objects.filter(~active_run_exists(unless_active), item_type_id=content_type_id)
        .order_by("-pk")
        .values("pk")[:RECENT_INTERACTIONS]
    )
    return Interaction.objects.filter(pk__in=window)


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
