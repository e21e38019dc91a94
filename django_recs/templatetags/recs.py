"""Template tags: ``{% load recs %}``.

Assignment tags return the querysets of :mod:`django_recs.querysets`::

    {% similar_items product 6 as items %}
    {% recommended_for request.user 8 as items %}

Each takes ``exclude=`` items not to show, so two lists on one page do not
repeat each other::

    {% similar_items product 6 as also_bought %}
    {% recommended_for request.user 8 exclude=also_bought as items %}

Inclusion tags render ``django_recs/item_list.html`` (override it in the
project's templates)::

    {% show_similar_items product 6 title="Customers who bought this also bought" %}
    {% show_recommended_for request.user 8 title="Recommended for you" %}

``recommended_for`` reads the visitor's session from ``request`` in the
context (the ``request`` context processor), so anonymous visitors get
recommendations from their session's history. The tags only call the
queryset functions, which read the list when the tag runs: iterating it,
``{% if items %}`` and ``{{ items|length }}`` cost no further query.
"""

from __future__ import annotations

from django import template

from .. import querysets

register = template.Library()


def _session_key(context) -> str | None:
    request = context.get("request")
    session = getattr(request, "session", None)
    # session_key comes from the cookie: reading it loads nothing.
    return getattr(session, "session_key", None)


def _items(value):
    # A variable missing from the context renders as "": nothing to exclude.
    return value or ()


@register.simple_tag
def similar_items(item, n=10, algorithm="similar", exclude=None):
    """Items similar to ``item`` (an empty list when ``item`` is None or empty).

    ``exclude``: items not to show (another list on the page, say).
    """
    if not item:
        return []
    return querysets.similar_to(item, n, algorithm=algorithm, exclude=_items(exclude))


@register.simple_tag(takes_context=True)
def recommended_for(context, user, n=10, algorithm="personal", model=None, exclude=None):
    """Items recommended to ``user`` and the request's session (anonymous works).

    ``exclude``: items not to show (another list on the page, say).
    """
    return querysets.recommended_for(
        user, n, algorithm=algorithm, session_key=_session_key(context), model=model,
        exclude=_items(exclude),
    )


@register.inclusion_tag("django_recs/item_list.html", takes_context=True)
def show_similar_items(context, item, n=10, algorithm="similar", title="", exclude=None):
    """Render ``django_recs/item_list.html`` with the items similar to ``item``."""
    return {
        "items": similar_items(item, n, algorithm, exclude),
        "title": title,
        "kind": "similar",
        "request": context.get("request"),
    }


@register.inclusion_tag("django_recs/item_list.html", takes_context=True)
def show_recommended_for(context, user, n=10, algorithm="personal", title="", model=None,
                         exclude=None):
    """Render ``django_recs/item_list.html`` with the items recommended to ``user``."""
    return {
        "items": recommended_for(context, user, n, algorithm, model, exclude),
        "title": title,
        "kind": "recommended",
        "request": context.get("request"),
    }
