"""Reading: recommendations as chainable querysets of the shop's own items.

:func:`similar_to` and :func:`recommended_for` return a QuerySet of the item
model, ordered by descending score, at most ``n`` long, each object carrying
``recs_score`` (float), ``recs_source`` (which source of the cold-start chain
proposed it, see :mod:`django_recs.serving.fallbacks`) and ``recs_reason`` (the item of
the visitor's history that led to it, or None).

A list is read when the function is called, usually with one statement
(see :mod:`django_recs.serving.candidates`): the pools of its sources, each
candidate joined to its item row and its reason's row; Python picks the
``n`` best. The first source of the chain is read alone, and the rest
with a second statement only when it falls short (see :func:`_ranked`), so
a list costs one query, two at most. The first statement reads its run
through a subquery on Run: nothing is cached, and a swap of runs is seen by
the next list.

The returned queryset is ``base.filter(pk__in=<the n items>)`` ordered by
their place in the list, with the instances already loaded: iterating it
costs nothing more, and the shop can keep chaining (``.filter(in_stock=True)``,
``.select_related(...)``), which reads the same items again with one query by
primary key. Restrictions that must still yield ``n`` items go in
``queryset=`` instead, which restricts the candidates before the best ``n``
are chosen. A ``queryset=`` that loads more than plain rows (select_related,
only/defer, annotations, prefetch_related) is honoured the same way: the
statement picks the items, and the queryset reads them when iterated.

The result models' querysets (``SimilarItem.objects.for_item(...)`` ...),
which read one run's rows for the admin and for debugging, are in
:mod:`django_recs.querysets`.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import models
from django.db.models.query import ModelIterable

from ..conf import max_per_category, recs_settings
from ..content.config import content_fallback_algorithm
from ..items import (
    default_item_queryset,
    is_item_model,
    item_content_type,
    item_key,
    item_models,
    item_root,
    key_for_pk,
    listed_item_model,
)
from ..querysets import check_n
from ..registry import algorithm_names
from .ordering import ListPosition
from .visitors import Visitor

logger = logging.getLogger("django_recs.serving")

# --- explained items ------------------------------------------------------------------


class ExplainedModelIterable(ModelIterable):
    """Yields model instances with ``recs_score``, ``recs_source`` and ``recs_reason``.

    For a chained queryset of a list: the explanations travel in the
    queryset's :class:`~django_recs.expressions.ListPosition` annotation
    (so the queryset stays picklable), and each row's position finds its own.
    """

    def __iter__(self):
        position = self.queryset.query.annotations.get("recs_order")
        entries = getattr(position, "entries", ())
        for obj in super().__iter__():
            index = getattr(obj, "recs_order", None)
            if index is not None and 0 <= index < len(entries):
                explain(obj, entries[index])
            yield obj


def explain(obj: models.Model, entry: tuple) -> None:
    """Set ``recs_source``, ``recs_score`` and ``recs_reason`` from a list entry."""
    _pk, obj.recs_source, obj.recs_score, obj.recs_reason = entry


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
    exclude=(),
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
        the list is still topped up to ``n`` from the fallbacks. Default: the
        model's ITEM_QUERYSETS entry (called now), else every item; an
        explicit ``queryset`` replaces that entry.
    popular_algorithm : str
        The ALGORITHMS entry of the popular fallback.
    user, session_key : optional
        A visitor whose seen items (EXCLUDE_SEEN events) must not appear.
    max_per_category : int, optional
        Overrides MAX_PER_CATEGORY for this list.
    exclude : iterable of items or primary keys, optional
        Items never to propose (those another list on the page shows); the
        list is topped up from further down instead.

    Returns
    -------
    QuerySet of ``item``'s model
        Ordered by source (neighbours, content neighbours (CONTENT_FALLBACK),
        popular items of the item's category, popular items) then descending score; at most ``n`` objects, never
        ``item`` itself; each with ``recs_score``, ``recs_source`` and
        ``recs_reason`` (None). An item without neighbours gets the fallbacks.
        With ``algorithm == popular_algorithm`` (a "popular" A/B variant),
        only the popular items (of the item's category first).

    Raises
    ------
    ValueError
        ``item`` is unsaved or not of an ITEM_MODELS model, ``n`` is not a
        non-negative integer, ``queryset`` is of another model, or
        ``exclude`` holds an item of another model or an invalid key.
    ItemQuerysetError (a ValueError)
        The model's ITEM_QUERYSETS entry cannot be used (see ``manage.py check``).
    """
    from . import fallbacks

    if not isinstance(item, models.Model):
        raise ValueError(f"similar_to() needs a model instance, got {type(item).__name__}")
    # A Book's list is of Books; a Book that is no item model itself is listed as its
    # nearest listed parent (a Product); queryset= may pick another model of its family.
    model = _item_model(type(item), as_listed=True)
    if item.pk is None:
        raise ValueError(
            f"similar_to() needs a saved {type(item).__name__}: this one has no primary key")
    n = check_n(n)
    _check_algorithm(algorithm, default="similar")
    base = _base_queryset(model, queryset)
    model = base.model._meta.concrete_model
    visitor = Visitor.of(user, session_key)
    if n == 0:
        return base.none()
    scope = _scope(model, base, visitor, exclude=exclude, source=item)
    sources = []
    if algorithm != popular_algorithm:  # asked for the popular list (an A/B variant): only it
        sources.append(fallbacks.StoredNeighbours(key=item_key(item), algorithm=algorithm))
        content = content_fallback_algorithm(exclude=algorithm)
        if content is not None:  # items alike in text and attributes, before popular ones
            sources.append(fallbacks.StoredNeighbours(key=item_key(item), algorithm=content,
                                                      name="content"))
    if scope.category:
        sources.append(fallbacks.Popular(popular_algorithm, within_category_of=item.pk))
    sources += _popular(popular_algorithm)
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
    exclude=(),
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
        Default: the model's ITEM_QUERYSETS entry (called now), else every
        item; an explicit ``queryset`` replaces that entry.
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
    exclude : iterable of items or primary keys, optional
        Items never to propose (those another list on the page shows); the
        list is topped up from further down instead.

    Returns
    -------
    QuerySet of the item model
        Ordered by source (stored recommendations, neighbours of recent
        history, their content neighbours (CONTENT_FALLBACK), popular items)
        then descending score; at most ``n`` objects,
        never an item of the visitor's EXCLUDE_SEEN events; each with
        ``recs_score``, ``recs_source`` and ``recs_reason`` (the item of the
        visitor's history that led to it, or None). An unknown or anonymous
        visitor gets the fallbacks; nothing raises for them. With
        ``algorithm == popular_algorithm`` (a "popular" A/B variant), only
        the popular items (the visitor's seen ones still left out).

    Raises
    ------
    ValueError
        ``n`` is not a non-negative integer, the model is not in ITEM_MODELS,
        or ``exclude`` holds an item of another model or an invalid key.
    ItemQuerysetError (a ValueError)
        The model's ITEM_QUERYSETS entry cannot be used (see ``manage.py check``).
    """
    from . import fallbacks

    model = _item_model(_resolve_model(model, queryset))
    n = check_n(n)
    _check_algorithm(algorithm, default="personal")
    base = _base_queryset(model, queryset)
    model = base.model._meta.concrete_model
    visitor = Visitor.of(user, session_key)
    if n == 0:
        return base.none()
    scope = _scope(model, base, visitor, exclude=exclude)
    sources = []
    personal = algorithm != popular_algorithm  # asked for the popular list (an A/B variant): only it
    if personal and visitor.user_id is not None:
        sources.append(fallbacks.StoredRecommendations(user_id=visitor.user_id, algorithm=algorithm))
    if personal and visitor.is_known:
        sources.append(fallbacks.HistoryNeighbours(algorithm=similar_algorithm))
        content = content_fallback_algorithm(exclude=similar_algorithm)
        if content is not None:
            sources.append(fallbacks.HistoryNeighbours(algorithm=content, name="history_content"))
    sources += _popular(popular_algorithm)
    return _ranked(base, scope, sources, n, max_per_category)


# --- assembly ---------------------------------------------------------------------------


def _ranked(base, scope, sources, n, max_per_category) -> models.QuerySet:
    """Read the list, pick the ``n`` best, return them as a queryset.

    The chain's first source is read alone: usually it fills the list (a
    user's stored recommendations, an item's neighbours, the neighbours of a
    visitor's recent items). The same statement reports the active run of
    every source's algorithm (the returned queryset's ``recs_runs``); only
    when the list is short does a second
    statement read the sources that can add to it (:func:`_served`), naming
    their runs. So a list costs one statement, two at most, and a page with
    both tags at most four.
    """
    from .candidates import DIVERSITY_POOL_FACTOR, load_items, pick, read_candidates

    cap = _category_cap(max_per_category, scope.category)
    if base.query.is_empty():  # queryset=Model.objects.none()
        return base
    using = base.db
    loads_rows = _plain_rows(base)
    read = partial(
        read_candidates, using, scope, pool_limit=n * DIVERSITY_POOL_FACTOR if cap else n,
        with_items=loads_rows, with_categories=bool(cap),
    )
    indexed = list(enumerate(sources))
    # The first source's algorithm too: the list's impression names the run that
    # produced it (django_recs.feedback), at no cost (the same statement).
    algorithms = tuple(dict.fromkeys(source.algorithm for _, source in indexed))
    candidates, runs = read(indexed[:1], report_runs=algorithms)
    chosen = pick(candidates, n, cap)
    rest = [(i, source) for i, source in indexed[1:] if _served(source, runs)]
    if len(chosen) < n and rest:
        more, _ = read(rest, runs=runs)
        chosen = pick(candidates + more, n, cap)
    if not chosen:
        result = base.none()
        result._result_cache = []
        result.recs_runs = runs
        return result
    items = load_items(chosen, scope, using, model=base.model)
    names = [source.name for source in sources]
    entries = [(c.pk, names[c.source], float(c.score), c.reason) for c in chosen]
    result = (
        base.filter(pk__in=[c.pk for c in chosen])
        .annotate(recs_order=ListPosition(entries))
        .order_by("recs_order")
    )
    result._iterable_class = ExplainedModelIterable
    # {algorithm: id of its active run, or None} as the list was read (not kept
    # by a chained queryset).
    result.recs_runs = runs
    if loads_rows:
        # The statement read the rows: iterating the list costs no query.
        # A chained queryset is a new one, which reads them again.
        for position, (item, entry) in enumerate(zip(items, entries)):
            item.recs_order = position
            explain(item, entry)
        result._result_cache = items
    return result


def _served(source, runs: dict) -> bool:
    """Whether ``source`` can add to a list, given the active runs (algorithm: id or None).

    A source of stored rows needs its algorithm's active run; a stand-in
    (recent popularity) is read only while there is none.
    """
    active = runs.get(source.algorithm) is not None
    return not active if source.stand_in else active


def _plain_rows(queryset: models.QuerySet) -> bool:
    """Whether ``queryset`` loads plain rows of its model's own table.

    Only then are instances built from the statement's columns identical to
    the queryset's; otherwise the queryset reads the chosen items itself.
    """
    query = queryset.query
    return (
        queryset._iterable_class is ModelIterable
        and not queryset._prefetch_related_lookups
        and not queryset._known_related_objects
        and query.select_related is False
        and not query.annotations
        and not query.extra
        and query.deferred_loading == (frozenset(), True)
        and not query.distinct
    )


def _popular(algorithm: str) -> list:
    """The last link of every chain: stored popular items, else recent popularity."""
    from . import fallbacks

    return [fallbacks.Popular(algorithm), fallbacks.RecentPopular(algorithm)]


def _scope(model, base, visitor, *, exclude=(), source=None):
    """What a list may contain: ``base``'s items but ``source``, ``exclude`` and the visitor's seen items."""
    from ..categories import category_lookup
    from .fallbacks import ListScope

    # Filters of queryset= or of a default manager restrict the candidates, and
    # so does a child's own table: its items share their parent's content type.
    restricted = base.query.has_filters() or item_root(model) is not model
    return ListScope(
        model=model,
        content_type_id=item_content_type(model).pk,
        visitor=visitor,
        allowed=base if restricted else None,
        excluded_keys=_excluded_keys(model, exclude, source),
        category=category_lookup(model),
    )


def _excluded_keys(model, exclude, source=None) -> tuple[str, ...]:
    """The stored keys of ``source`` and ``exclude`` (items of ``model`` or primary keys).

    Sorted and unique, so that lists excluding the same items share one
    statement text (and, prepared, one plan).
    """
    if exclude is None:
        exclude = ()
    elif isinstance(exclude, (models.Model, str, bytes)) or not hasattr(exclude, "__iter__"):
        exclude = [exclude]
    keys = set() if source is None else {item_key(source)}
    for excluded in exclude:
        if isinstance(excluded, models.Model):
            if item_root(type(excluded)) is not item_root(model):
                raise ValueError(
                    f"exclude= holds a {excluded._meta.label}; the list is of {model._meta.label}"
                )
            excluded = excluded.pk
        if excluded is None:
            continue  # an unsaved item is in no list
        try:
            keys.add(key_for_pk(model, excluded))
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"exclude= holds {excluded!r}, not a primary key of {model._meta.label}"
            ) from error
    return tuple(sorted(keys))


def _category_cap(override, category) -> int | None:
    """The list's cap per category: ``max_per_category=`` (checked) or the setting.

    An invalid MAX_PER_CATEGORY (E092) means no cap, with a warning in the
    log: it would otherwise fail every list of every page.
    """
    from .diversity import check_cap

    if override is not None:
        cap = check_cap(override)
    else:
        cap = max_per_category()
        if cap is None and recs_settings.MAX_PER_CATEGORY is not None:
            logger.warning("django_recs: MAX_PER_CATEGORY %r is not a positive integer and is "
                           "ignored (manage.py check: django_recs.E092)",
                           recs_settings.MAX_PER_CATEGORY)
    return cap if category else None


def _check_algorithm(name, *, default: str) -> None:
    """ValueError naming the configured algorithms when ``name`` is none of them.

    A typo would otherwise serve the fallbacks without a word. The default
    name is exempt: a shop that configures no "similar" (or "personal")
    algorithm still gets the fallbacks from the tags, as before.
    """
    names = algorithm_names()
    if not isinstance(name, str):
        raise ValueError(f"algorithm must be a name in DJANGO_RECS['ALGORITHMS'], got {name!r}")
    if name in names or (name == default and default not in names):
        return
    raise ValueError(
        f"unknown algorithm {name!r}: DJANGO_RECS['ALGORITHMS'] configures "
        f"{', '.join(map(repr, names)) or 'none'}"[:300]
    )


def _resolve_model(model, queryset) -> type[models.Model]:
    if queryset is not None:
        if not isinstance(queryset, models.QuerySet):
            raise ValueError(f"queryset= must be a QuerySet, got {type(queryset).__name__}")
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
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise ValueError(f"model= must be a model class or 'app_label.Model', got {model!r}")
    return model


def _item_model(model: type[models.Model], *, as_listed: bool = False) -> type[models.Model]:
    """``model``'s concrete model, or the listed one it is an instance of (``as_listed``).

    ValueError unless ``model``'s instances are items (see
    :func:`~django_recs.items.listed_item_model`).
    """
    listed = listed_item_model(model)
    if listed is None:
        raise ValueError(
            f"{model._meta.label} is not in DJANGO_RECS['ITEM_MODELS'] "
            f"({', '.join(recs_settings.ITEM_MODELS) or 'empty'})"
        )
    return listed if as_listed else model._meta.concrete_model


def _base_queryset(model, queryset) -> models.QuerySet:
    """``queryset``, or the model's ITEM_QUERYSETS default (which ``queryset=`` replaces).

    ``queryset`` may be of any item model keyed like ``model`` (a parent or
    child of it in ITEM_MODELS): the list is then of that model.
    """
    if queryset is None:
        return default_item_queryset(model)
    if not isinstance(queryset, models.QuerySet):
        raise ValueError(f"queryset= must be a QuerySet, got {type(queryset).__name__}")
    if not is_item_model(queryset.model) or item_root(queryset.model) is not item_root(model):
        raise ValueError(
            f"queryset= is of {queryset.model._meta.label}, the list is of {model._meta.label}"
        )
    return queryset
