"""Reading: recommendations as chainable querysets of the shop's own items.

:func:`similar_to` and :func:`recommended_for` return a QuerySet of the item
model, ordered by descending score, at most ``n`` long, each object carrying
``recs_score`` (float), ``recs_source`` (which source of the cold-start chain
proposed it, see :mod:`django_recs.fallbacks`) and ``recs_reason`` (the item of
the visitor's history that led to it, or None).

The queryset is one SQL statement::

    SELECT item.*, COALESCE(<order key from source 1>, <from source 2>, ...)
    FROM item
    WHERE item.id IN (                -- the n best allowed candidates
        SELECT candidate FROM (<pool of source 1> UNION ALL <pool of source 2> ...)
        GROUP BY candidate ORDER BY MIN(order key), candidate LIMIT n)
    ORDER BY order key, id

Pools read each source once (see :mod:`django_recs.fallbacks`); the outer
query looks up the order key of its ``n`` rows by index. One number orders
a list by source, then score (see :func:`~django_recs.expressions.decode_order_key`).
Pools and lookups read the rows of each algorithm's active run through a
subquery on Run, so nothing is cached and a swap of runs is seen at once.
The outer query is not sliced, so the shop can keep chaining
(``.filter(in_stock=True)``, ``.select_related(...)``); restrictions that
must still yield ``n`` items go in ``queryset=`` instead, which restricts the
candidates before the best ``n`` are chosen. Reasons (recommended_for) are
loaded for the whole list with one more query when the list has any.

The result models' querysets (``SimilarItem.objects.for_item(...)`` ...)
read one run's rows for the admin and for debugging.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Value
from django.db.models.query import ModelIterable

from .conf import recs_settings
from .content.config import content_fallback_algorithm
from .expressions import BestCandidates, ListOrder, ListReason, active_run_id, decode_order_key
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


# --- explained items ------------------------------------------------------------------


class ExplainedModelIterable(ModelIterable):
    """Yields model instances with ``recs_score``, ``recs_source`` and ``recs_reason``.

    Reasons are stored as (content type, key); they are loaded with one query
    per item model among them (usually one), only when a list has reasons.
    """

    def __iter__(self):
        objects = list(super().__iter__())
        for obj in objects:
            key = getattr(obj, "recs_order", None)
            if key is None:
                continue
            index, obj.recs_score = decode_order_key(key)
            # The list's source names travel in the query (a constant column),
            # so the queryset stays picklable.
            obj.recs_source = obj.recs_sources.split(",")[index]
        attach_reasons(objects)
        yield from objects


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
    scope = _scope(model, queryset, Visitor.of(user, session_key), exclude=item)
    sources = [fallbacks.StoredNeighbours(key=item_key(item), algorithm=algorithm)]
    content = content_fallback_algorithm(exclude=algorithm)
    if content is not None:  # items alike in text and attributes, before popular ones
        sources.append(fallbacks.StoredNeighbours(key=item_key(item), algorithm=content, name="content"))
    if scope.category:
        sources.append(fallbacks.Popular(popular_algorithm, within_category_of=item.pk))
    sources.append(fallbacks.Popular(popular_algorithm))
    return _ranked(base, scope, sources, n, max_per_category)


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
    visitor = Visitor.of(user, session_key)
    scope = _scope(model, queryset, visitor)
    sources = []
    if visitor.user_id is not None:
        sources.append(fallbacks.StoredRecommendations(user_id=visitor.user_id, algorithm=algorithm))
    if visitor.is_known:
        sources.append(fallbacks.HistoryNeighbours(algorithm=similar_algorithm))
        content = content_fallback_algorithm(exclude=similar_algorithm)
        if content is not None:
            sources.append(fallbacks.HistoryNeighbours(algorithm=content, name="history_content"))
    sources.append(fallbacks.Popular(popular_algorithm))
    return _ranked(base, scope, sources, n, max_per_category)


# --- assembly ---------------------------------------------------------------------------


def _ranked(base, scope, sources, n, max_per_category) -> models.QuerySet:
    """The one-statement queryset described in the module docstring."""
    cap = _category_cap(max_per_category, scope.category)
    if not cap and sources[0].cheap_to_count:
        # The fallbacks are read only when the first source is short (with a
        # cap, any source may lose candidates, so all are read).
        for source in sources[1:]:
            source.short_of = (sources[0], n)
    pk_field = base.model._meta.pk
    best = BestCandidates(
        sources,
        scope,
        n,
        pool_limit=n * DIVERSITY_POOL_FACTOR if cap else n,
        cap=cap,
        output_field=pk_field,
    )
    annotations = {
        "recs_order": ListOrder(sources, scope),
        "recs_sources": Value(",".join(source.name for source in sources)),
    }
    if any(source.explained for source in sources):
        annotations["recs_reason_type_id"] = ListReason(sources, scope, 0)
        annotations["recs_reason_key"] = ListReason(sources, scope, 1)
    result = base.filter(pk__in=best).annotate(**annotations).order_by("recs_order", "pk")
    result._iterable_class = ExplainedModelIterable
    return result


def _scope(model, queryset, visitor, *, exclude=None):
    """What a list may contain: ``queryset``, minus ``exclude`` and the visitor's seen items."""
    from .fallbacks import ListScope, category_lookup

    return ListScope(
        model=model,
        content_type_id=item_content_type(model).pk,
        visitor=visitor,
        allowed=queryset,
        excluded_keys=(item_key(exclude),) if exclude is not None else (),
        category=category_lookup(model),
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
