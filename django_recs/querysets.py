"""Reading: recommendations as chainable querysets of the shop's own items.

:func:`similar_to` and :func:`recommended_for` return a QuerySet of the item
model, ordered by descending score, at most ``n`` long, each object carrying
``recs_score`` (float), ``recs_source`` (which source of the cold-start chain
proposed it, see :mod:`django_recs.fallbacks`) and ``recs_reason`` (the item of
the visitor's history that led to it, or None).

The queryset is one SQL statement::

    SELECT item.*, <score of the first source proposing it> ...
    FROM item
    WHERE item.id IN (                       -- the n best allowed candidates
        SELECT id FROM item WHERE <allowed>
          AND id IN (<pool of source 1> UNION ALL <pool of source 2> ...)
        ORDER BY source, score DESC, id LIMIT n)
    ORDER BY source, score DESC, id

Pools and scores read the rows of each algorithm's active run through a
subquery on Run, so nothing is cached and a swap of runs is seen at once.
The outer query is not sliced, so the shop can keep chaining
(``.filter(in_stock=True)``, ``.select_related(...)``); restrictions that
must still yield ``n`` items go in ``queryset=`` instead, which restricts the
candidates before the best ``n`` are chosen.

The result models' querysets (``SimilarItem.objects.for_item(...)`` ...)
read one run's rows for the admin and for debugging.
"""

from __future__ import annotations

import math
from functools import lru_cache

from django.contrib.contenttypes.models import ContentType
from django.db import connections, models
from django.db.models import Value
from django.db.models.functions import ATan, Coalesce
from django.db.models.query import ModelIterable

from .conf import recs_settings
from .content.config import content_fallback_algorithm
from .expressions import active_run_id
from .items import is_item_model, item_content_type, item_key, item_models, pk_for_key
from .visitors import Visitor

#: Pools are this many times ``n`` when a category cap may drop candidates.
DIVERSITY_POOL_FACTOR = 5


# --- results of the result tables ----------------------------------------------------


class RunRowsQuerySet(models.QuerySet):
    """Rows of result tables, which all belong to a run."""

    def active(self, algorithm: str) -> RunRowsQuerySet:
        """Rows of the active run of ``algorithm`` (none when no run is active)."""
        return self.filter(run_id=active_run_id(algorithm))

    def top(self, n: int) -> RunRowsQuerySet:
        """The ``n`` best rows (lowest rank first)."""
        return self.order_by("rank")[: _check_n(n)]


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


class PopularItemQuerySet(RunRowsQuerySet):
    def for_model(self, model: type[models.Model], algorithm: str = "popular") -> PopularItemQuerySet:
        """Stored popular items of ``model`` in the active run of ``algorithm``, best first."""
        return self.active(algorithm).filter(item_type=item_content_type(model)).order_by("rank")


# --- the order of a list ----------------------------------------------------------------


def order_key(index: int, score) -> models.Expression:
    """One number ordering a list by source, then by descending score.

    ``2 * index + 1/2 - atan(score) / pi`` lies in ``[2 index, 2 index + 1]``:
    sources never interleave and, within one, a higher score sorts first.
    One number (instead of a source and a score) keeps the SQL small: each
    source's correlated subquery appears once per query level, and the
    source and score are recovered from it (:func:`decode_order_key`).
    """
    return Value(2 * index + 0.5) - ATan(score) / Value(math.pi)


def decode_order_key(key: float) -> tuple[int, float]:
    """(source index, score) of an :func:`order_key` value."""
    index = int(key // 2)
    score = math.tan(math.pi * (2 * index + 0.5 - key))
    # 12 significant digits: what survives the round trip (the stored
    # scores come from float32 kernels, good to about 7).
    return index, float(f"{score:.12g}")


class ExplainedModelIterable(ModelIterable):
    """Yields model instances with ``recs_score``, ``recs_source`` and ``recs_reason``.

    Reasons are stored as (content type, key); they are loaded with one query
    per item model among them (usually one), only when a list has reasons.
    """

    source_names: tuple[str, ...] = ()

    def __iter__(self):
        objects = list(super().__iter__())
        for obj in objects:
            key = getattr(obj, "recs_order", None)
            if key is None:
                continue
            index, obj.recs_score = decode_order_key(key)
            obj.recs_source = self.source_names[index]
        attach_reasons(objects)
        yield from objects


@lru_cache(maxsize=64)
def _iterable_for(source_names: tuple[str, ...]) -> type[ExplainedModelIterable]:
    return type("ExplainedModelIterable", (ExplainedModelIterable,), {"source_names": source_names})


def attach_reasons(objects: list[models.Model]) -> None:
    """Set ``obj.recs_reason`` from ``recs_reason_type_id`` / ``recs_reason_key``."""
    wanted: dict[int, set[str]] = {}
    for obj in objects:
        type_id = getattr(obj, "recs_reason_type_id", None)
        key = getattr(obj, "recs_reason_key", None)
        if type_id and key:
            wanted.setdefault(type_id, set()).add(key)
    found: dict[tuple[int, str], models.Model] = {}
    for type_id, keys in wanted.items():
        model = ContentType.objects.get_for_id(type_id).model_class()
        if model is None:  # the model was removed from the project
            continue
        pks = [pk_for_key(model, key) for key in keys]
        for reason in model._default_manager.filter(pk__in=pks):
            found[(type_id, item_key(reason))] = reason
    for obj in objects:
        type_id = getattr(obj, "recs_reason_type_id", None)
        obj.recs_reason = found.get((type_id, getattr(obj, "recs_reason_key", None)))


# --- the public functions --------------------------------------------------------------


def similar_to(
    item: models.Model,
    n: int = 10,
    *,
    algorithm: str = "similar",
    queryset: models.QuerySet | None = None,
    popular_algorithm: str = "popular",
    user=None,
    session_key: str | None = None,
    max_per_category: int | None = None,
) -> models.QuerySet:
    """Items similar to ``item`` ("customers who bought this also bought").

    Parameters
    ----------
    item : Model instance
        A saved instance of a model in ITEM_MODELS.
    n : int
        Length of the list, >= 0.
    algorithm : str
        The ALGORITHMS entry whose stored neighbours are served.
    queryset : QuerySet of ``item``'s model, optional
        Restricts the candidates (``Product.objects.filter(in_stock=True)``);
        the list is still topped up to ``n`` from the fallbacks.
    popular_algorithm : str
        The ALGORITHMS entry of the popular fallback.
    user, session_key : optional
        A visitor whose seen items (EXCLUDE_SEEN events) must not appear.
    max_per_category : int, optional
        Overrides MAX_PER_CATEGORY for this list.

    Returns
    -------
    QuerySet of ``item``'s model
        Ordered by source (neighbours, content neighbours (CONTENT_FALLBACK),
        popular items of the item's category, popular items) then descending score; at most ``n`` objects, never
        ``item`` itself; each with ``recs_score``, ``recs_source`` and
        ``recs_reason`` (None). An item without neighbours gets the fallbacks.

    Raises
    ------
    ValueError
        ``item`` is unsaved or not of an ITEM_MODELS model, ``n`` is not a
        non-negative integer, or ``queryset`` is of another model.
    """
    from . import fallbacks

    if not isinstance(item, models.Model):
        raise ValueError(f"similar_to() needs a model instance, got {type(item).__name__}")
    model = _item_model(type(item))
    if item.pk is None:
        raise ValueError(f"similar_to() needs a saved {model.__name__}: this one has no primary key")
    n = _check_n(n)
    base = _base_queryset(model, queryset)
    if n == 0:
        return base.none()
    category = fallbacks.category_lookup(model)
    cap = _category_cap(max_per_category, category)
    candidates = _candidates(model, queryset, Visitor.of(user, session_key), exclude=item)
    limit = n * DIVERSITY_POOL_FACTOR if cap else n

    sources = [fallbacks.stored_neighbours(candidates, item_key(item), algorithm)]
    # Without a cap, the fallbacks are read only when the first source is short.
    fallback = candidates.read_only_if(None if cap else sources[0].fewer_than(n))
    content = content_fallback_algorithm(exclude=algorithm)
    if content is not None:  # items alike in text and attributes, before popular ones
        sources.append(
            fallbacks.stored_neighbours(fallback, item_key(item), content, name="content")
        )
    if category:
        within = fallbacks.same_category(model, item.pk, category)
        sources.append(
            fallbacks.popular(fallback, popular_algorithm, limit, name="category", within=within)
        )
    sources.append(fallbacks.popular(fallback, popular_algorithm, limit))
    return _ranked(base, sources, n, category=category, cap=cap)


def recommended_for(
    user,
    n: int = 10,
    *,
    algorithm: str = "personal",
    queryset: models.QuerySet | None = None,
    session_key: str | None = None,
    model: type[models.Model] | str | None = None,
    similar_algorithm: str = "similar",
    popular_algorithm: str = "popular",
    max_per_category: int | None = None,
) -> models.QuerySet:
    """Items recommended to a visitor ("recommended for you").

    Parameters
    ----------
    user : user, AnonymousUser or None
        Anything but a saved, authenticated user is an anonymous visitor.
    n : int
        Length of the list, >= 0.
    algorithm : str
        The ALGORITHMS entry whose stored recommendations are served.
    queryset : QuerySet, optional
        Restricts the candidates; its model is the item model of the list.
    session_key : str, optional
        The visitor's session: its history counts, for anonymous visitors and
        for recent activity of a logged-in one.
    model : model class or "app_label.Model", optional
        The item model when ``queryset`` is not given; default the first of
        ITEM_MODELS.
    similar_algorithm, popular_algorithm : str
        The ALGORITHMS entries of the history and popular fallbacks.
    max_per_category : int, optional
        Overrides MAX_PER_CATEGORY for this list.

    Returns
    -------
    QuerySet of the item model
        Ordered by source (stored recommendations, neighbours of recent
        history, their content neighbours (CONTENT_FALLBACK), popular items)
        then descending score; at most ``n`` objects,
        never an item of the visitor's EXCLUDE_SEEN events; each with
        ``recs_score``, ``recs_source`` and ``recs_reason`` (the item of the
        visitor's history that led to it, or None). An unknown or anonymous
        visitor gets the fallbacks; nothing raises for them.

    Raises
    ------
    ValueError
        ``n`` is not a non-negative integer, or the model is not in ITEM_MODELS.
    """
    from . import fallbacks

    model = _item_model(_resolve_model(model, queryset))
    n = _check_n(n)
    base = _base_queryset(model, queryset)
    if n == 0:
        return base.none()
    category = fallbacks.category_lookup(model)
    cap = _category_cap(max_per_category, category)
    visitor = Visitor.of(user, session_key)
    candidates = _candidates(model, queryset, visitor)
    limit = n * DIVERSITY_POOL_FACTOR if cap else n

    sources = []
    fallback = candidates
    if visitor.user_id is not None:
        sources.append(fallbacks.stored_recommendations(candidates, visitor.user_id, algorithm))
        # Without a cap, the fallbacks are read only when the stored list is short.
        fallback = candidates.read_only_if(None if cap else sources[0].fewer_than(n))
    history = fallbacks.history_neighbours(fallback, visitor, similar_algorithm, limit)
    if history is not None:
        sources.append(history)
    content = content_fallback_algorithm(exclude=similar_algorithm)
    if history is not None and content is not None:
        sources.append(fallbacks.history_neighbours(
            fallback, visitor, content, limit, name="history_content"
        ))
    sources.append(fallbacks.popular(fallback, popular_algorithm, limit))
    return _ranked(base, sources, n, category=category, cap=cap)


# --- assembly ---------------------------------------------------------------------------


def _ranked(base, sources, n, *, category, cap) -> models.QuerySet:
    """The one-statement queryset described in the module docstring."""
    from .diversity import cap_per_category

    model = base.model
    keys = [order_key(i, source.score) for i, source in enumerate(sources)]
    key = Coalesce(*keys, output_field=models.FloatField()) if len(keys) > 1 else keys[0]

    pools = [pool for source in sources for pool in source.pools]
    if not connections[base.db].features.supports_slicing_ordering_in_compound:
        # SQLite allows no LIMIT inside a UNION member: wrap each pool.
        pools = [model._base_manager.filter(pk__in=pool).values("pk") for pool in pools]
    union = pools[0].union(*pools[1:], all=True) if len(pools) > 1 else pools[0]
    candidates = base.order_by().filter(pk__in=union).annotate(recs_order=key)
    if cap:
        candidates = cap_per_category(candidates, category, cap, order_by=["recs_order", "pk"])
    best = candidates.order_by("recs_order", "pk").values("pk")[:n]

    result = base.filter(pk__in=best).annotate(recs_order=key)
    explained = [source for source in sources if source.reason_key is not None]
    if explained:
        result = result.annotate(
            recs_reason_type_id=_first_non_null(
                [source.reason_type_id for source in explained], models.IntegerField()
            ),
            recs_reason_key=_first_non_null(
                [source.reason_key for source in explained], models.CharField()
            ),
        )
    result = result.order_by("recs_order", "pk")
    result._iterable_class = _iterable_for(tuple(source.name for source in sources))
    return result


def _first_non_null(expressions, output_field):
    if len(expressions) == 1:
        return expressions[0]
    return Coalesce(*expressions, output_field=output_field)


def _candidates(model, queryset, visitor, *, exclude=None):
    """What a list may contain: ``queryset``, minus ``exclude`` and the visitor's seen items."""
    from .fallbacks import Candidates

    content_type_id = item_content_type(model).pk
    return Candidates(
        model=model,
        content_type_id=content_type_id,
        allowed=queryset,
        excluded_keys=(item_key(exclude),) if exclude is not None else (),
        seen_keys=visitor.seen_keys(content_type_id),
    )


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return n


def _category_cap(override, category) -> int | None:
    cap = override if override is not None else recs_settings.MAX_PER_CATEGORY
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"MAX_PER_CATEGORY must be a positive integer or None, got {cap!r}")
    return cap if category else None


def _resolve_model(model, queryset) -> type[models.Model]:
    if queryset is not None:
        return queryset.model
    if model is None:
        models_ = item_models()
        if not models_:
            raise ValueError("DJANGO_RECS['ITEM_MODELS'] is empty: nothing can be recommended")
        return models_[0]
    if isinstance(model, str):
        from django.apps import apps

        try:
            return apps.get_model(model)
        except (LookupError, ValueError) as exc:
            raise ValueError(f"model {model!r} is not an installed model") from exc
    return model


def _item_model(model: type[models.Model]) -> type[models.Model]:
    if not is_item_model(model):
        raise ValueError(
            f"{model._meta.label} is not in DJANGO_RECS['ITEM_MODELS'] "
            f"({', '.join(recs_settings.ITEM_MODELS) or 'empty'})"
        )
    return model._meta.concrete_model


def _base_queryset(model, queryset) -> models.QuerySet:
    if queryset is None:
        return model._default_manager.all()
    if queryset.model._meta.concrete_model is not model:
        raise ValueError(
            f"queryset= is of {queryset.model._meta.label}, the list is of {model._meta.label}"
        )
    return queryset
