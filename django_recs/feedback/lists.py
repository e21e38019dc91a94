"""The public list functions: serving's, and the list logged as an impression when asked.

``django_recs.similar_to`` and ``django_recs.recommended_for`` are these:
they return exactly what :mod:`django_recs.serving` returns and, given
``placement=`` while IMPRESSIONS is on, log the list as shown there
(:func:`~django_recs.feedback.impressions.log_list`) to the visitor of
``request=`` (or of ``user``/``session_key``). The template tags call them
with a placement of their own.

At a placement, the list served is the one :func:`django_recs.experiments.route`
says: a running experiment's variant for the visitor (``"none"``: an empty
list, still logged so the visitor counts), or the algorithm promoted there;
the impression records the experiment, the variant and the visitor's unit.
"""

from __future__ import annotations

from django.db import models

from .. import experiments, serving
from ..querysets import check_n
from .impressions import checked_placement, log_list
from .visitors import is_automated, request_session_key, visitor_of

__all__ = ["recommended_for", "similar_to"]


def similar_to(
    item: models.Model,
    n: int = 10,
    *,
    algorithm: str = "similar",
    queryset: models.QuerySet | None = None,
    exclude=None,
    placement: str | None = None,
    request=None,
    **options,
) -> models.QuerySet:
    """Items similar to ``item`` (:func:`django_recs.serving.similar_to`), logged when asked.

    Parameters
    ----------
    placement : str, optional
        Where the list is shown (``"product-also-bought"``, at most 64
        characters): with IMPRESSIONS on, the list is logged as an impression
        there and its items carry their click tokens (docs/feedback.md).
    request : HttpRequest, optional
        The request the list is shown in: the impression's visitor (its
        user and session) and the bot filter. It does not change the list:
        pass ``user``/``session_key`` to leave out the visitor's seen items.
    options
        The other arguments of :func:`django_recs.serving.similar_to`.

    Returns
    -------
    QuerySet of ``item``'s model
        As serving returns it; logged, it and its items also carry
        ``recs_impression`` (and the items ``recs_position``).

    Raises
    ------
    ValueError
        As serving's, and for a placement that is not a non-empty string of
        at most 64 characters. Logging itself never raises.
    """
    route = visitor = None
    if placement is not None:
        placement = checked_placement(placement)
        visitor = visitor_of(request, options.get("user"), options.get("session_key"))
        route = _route(placement, visitor, request)
    algorithm, n = _routed(route, algorithm, n)
    items = serving.similar_to(item, n, algorithm=algorithm, queryset=queryset,
                               exclude=() if exclude is None else exclude, **options)
    if placement is not None:
        log_list(items, placement=placement, algorithm=algorithm, visitor=visitor, source=item,
                 request=request, route=route)
    return items


def recommended_for(
    user,
    n: int = 10,
    *,
    algorithm: str = "personal",
    queryset: models.QuerySet | None = None,
    exclude=None,
    placement: str | None = None,
    request=None,
    session_key: str | None = None,
    **options,
) -> models.QuerySet:
    """Items recommended to a visitor (:func:`django_recs.serving.recommended_for`), logged when asked.

    ``session_key`` defaults to ``request``'s session. ``placement`` and
    ``request`` are as for :func:`similar_to`; the impression's visitor is
    ``user`` and that session. Returns what serving returns; raises what it
    raises, and ValueError for a bad placement.
    """
    if placement is not None:
        placement = checked_placement(placement)
    if session_key is None and request is not None:
        session_key = request_session_key(request)
    route = visitor = None
    if placement is not None:
        visitor = visitor_of(None, user, session_key)
        route = _route(placement, visitor, request)
    algorithm, n = _routed(route, algorithm, n)
    items = serving.recommended_for(user, n, algorithm=algorithm, queryset=queryset,
                                    exclude=() if exclude is None else exclude,
                                    session_key=session_key, **options)
    if placement is not None:
        log_list(items, placement=placement, algorithm=algorithm, visitor=visitor,
                 request=request, route=route)
    return items


def _route(placement: str, visitor, request) -> experiments.Route | None:
    """The experiment's (or promoted) route of the list; none for a bot's request."""
    if request is not None and is_automated(request):
        return None  # bots see the page's list, counted nowhere
    return experiments.route(placement, visitor, request)


def _routed(route, algorithm: str, n):
    """The algorithm and length to serve: the route's, or the page's; "none" serves 0 items."""
    if route is None:
        return algorithm, n
    if route.algorithm == experiments.NONE:
        check_n(n)  # the page's n is still checked
        return algorithm, 0
    return route.algorithm, n
