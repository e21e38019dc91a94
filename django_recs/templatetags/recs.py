"""Template tags: ``{% load recs %}``.

Assignment tags return the querysets of :mod:`django_recs.serving`::

    {% similar_items product 6 as items %}
    {% recommended_for request.user 8 as items %}

Each takes ``exclude=`` items not to show — an item, a list, given more than
once for several — so a product page never lists its own product and two
lists on one page do not repeat each other::

    {% similar_items product 6 as also_bought %}
    {% recommended_for request.user 8 exclude=product exclude=also_bought as items %}

and ``queryset=`` to restrict the candidates (default: the model's
ITEM_QUERYSETS entry)::

    {% similar_items product 6 queryset=in_stock as items %}

Inclusion tags render ``django_recs/item_list.html`` (override it in the
project's templates)::

    {% show_similar_items product 6 title="Customers who bought this also bought" %}
    {% show_recommended_for request.user 8 title="Recommended for you" %}

``recommended_for`` reads the visitor's session from ``request`` in the
context (the ``request`` context processor), so anonymous visitors get
recommendations from their session's history. The tags only call the
queryset functions, which read the list when the tag runs: iterating it,
``{% if items %}`` and ``{{ items|length }}`` cost no further query.

With IMPRESSIONS on, every list a tag shows is logged as an impression at
its ``placement=`` (default: the tag's name, ``similar_items`` or
``recommended_for``), and each item's link can carry its click token::

    {% similar_items product 6 placement="product-also-bought" as items %}
    {% for p in items %}<a href="{{ p|recs_click_url }}">{{ p }}</a>{% endfor %}

``recs_click_url`` gives the item's ``get_absolute_url()`` (or the URL given
as its argument) with ``?recs_click=<token>`` added, and the plain URL for an
item of a list that was not logged; ``recs_click_token`` gives the token
alone, for a ``data-recs-click`` attribute (docs/feedback.md).
"""

from __future__ import annotations

import logging

from django import template
from django.db import models
from django.template.base import Token

from .. import feedback
from ..feedback.clicks import CLICK_PARAMETER
from ..models import checked_session_key

register = template.Library()
logger = logging.getLogger("django_recs.feedback")


def _session_key(context) -> str | None:
    """The request's session key, or None when the visitor's cookie holds none we can use.

    The key comes from the cookie (reading it loads nothing), so it is
    whatever the visitor sent: one no column holds (over 40 characters, a
    NUL) is dropped here rather than raised as a ValueError into the page.
    """
    request = context.get("request")
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    try:
        return checked_session_key(key) or None
    except ValueError:
        return None


def _length(n, default: int = 10):
    """The tag's ``n``: its default when the variable is missing from the context ("")."""
    return default if n is None or n == "" else n


class _Exclusions(tuple):
    """The values of an ``exclude=`` given more than once."""


class _AllExcluded:
    """Resolves every ``exclude=`` of a tag (a stand-in for its one filter expression)."""

    def __init__(self, expressions):
        self.expressions = expressions

    def resolve(self, context) -> _Exclusions:
        return _Exclusions(expression.resolve(context) for expression in self.expressions)


def _items(value) -> list | models.Model | tuple:
    """What ``exclude=`` leaves out: an item, items, or several ``exclude=`` values together."""
    if isinstance(value, _Exclusions):
        return [item for part in value for item in _as_list(part)]
    # A variable missing from the context renders as "": nothing to exclude.
    return value or ()


def _as_list(value) -> list:
    if value is None or isinstance(value, str) and not value:  # "": a missing variable
        return []
    if isinstance(value, models.Model | str | int) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _candidates(value) -> models.QuerySet | None:
    """``queryset=``: a QuerySet, or None for a variable missing from the context.

    Raises ValueError for anything else, such as a list of items.
    """
    if value is None or isinstance(value, str) and not value:
        return None
    if not isinstance(value, models.QuerySet):
        raise ValueError(f"queryset= must be a QuerySet, got {type(value).__name__}")
    return value


def _exclude_repeatable(name: str) -> None:
    """Let tag ``name`` take ``exclude=`` more than once; every value is left out.

    Django's tag parser refuses a repeated keyword, so the extra ``exclude=``
    are taken out before it runs and resolved together into that argument.
    """
    compile_tag = register.tags[name]

    def compile_func(parser, token):
        bits = token.split_contents()
        excluded = [bit for bit in bits[1:] if bit.startswith("exclude=")]
        if len(excluded) < 2:
            return compile_tag(parser, token)
        first = bits.index(excluded[0])
        kept = [bit for i, bit in enumerate(bits) if i == first or not bit.startswith("exclude=")]
        node = compile_tag(parser, Token(token.token_type, " ".join(kept), token.position,
                                         token.lineno))
        node.kwargs["exclude"] = _AllExcluded(
            [parser.compile_filter(bit.removeprefix("exclude=")) for bit in excluded]
        )
        return node

    register.tag(name, compile_func)


@register.simple_tag(takes_context=True)
def similar_items(context, item, n=10, algorithm="similar", exclude=None, queryset=None,
                  placement="similar_items"):
    """Items similar to ``item`` (an empty list when ``item`` is None or empty).

    ``exclude``: items not to show (another list on the page, say);
    ``queryset``: the candidates (default: ITEM_QUERYSETS, else every item);
    ``placement``: where the list is logged as shown (IMPRESSIONS).
    """
    if not item:
        return []
    return feedback.similar_to(item, _length(n), algorithm=algorithm, exclude=_items(exclude),
                               queryset=_candidates(queryset), placement=placement,
                               request=context.get("request"))


@register.simple_tag(takes_context=True)
def recommended_for(context, user, n=10, algorithm="personal", model=None, exclude=None,
                    queryset=None, placement="recommended_for"):
    """Items recommended to ``user`` and the request's session (anonymous works).

    ``exclude``: items not to show (the page's product, another list on the
    page); ``queryset``: the candidates (default: ITEM_QUERYSETS, else every
    item; its model is the list's); ``placement``: where the list is logged
    as shown (IMPRESSIONS).
    """
    return feedback.recommended_for(
        user, _length(n), algorithm=algorithm, session_key=_session_key(context), model=model,
        exclude=_items(exclude), queryset=_candidates(queryset), placement=placement,
        request=context.get("request"),
    )


@register.inclusion_tag("django_recs/item_list.html", takes_context=True)
def show_similar_items(context, item, n=10, algorithm="similar", title="", exclude=None,
                       queryset=None, placement="similar_items"):
    """Render ``django_recs/item_list.html`` with the items similar to ``item``."""
    return {
        "items": similar_items(context, item, n, algorithm, exclude, queryset, placement),
        "title": title,
        "kind": "similar",
        "request": context.get("request"),
    }


@register.inclusion_tag("django_recs/item_list.html", takes_context=True)
def show_recommended_for(context, user, n=10, algorithm="personal", title="", model=None,
                         exclude=None, queryset=None, placement="recommended_for"):
    """Render ``django_recs/item_list.html`` with the items recommended to ``user``."""
    return {
        "items": recommended_for(context, user, n, algorithm, model, exclude, queryset,
                                 placement),
        "title": title,
        "kind": "recommended",
        "request": context.get("request"),
    }


@register.filter
def recs_click_token(item) -> str:
    """The signed click token of an item of a logged list; "" for any other value."""
    shown = getattr(item, "recs_impression", None)
    position = getattr(item, "recs_position", None)
    if shown is None or position is None:
        return ""
    try:
        return shown.token(position)
    except Exception:  # a link without its token, never a broken page
        logger.exception("django_recs: no click token for %r", item)
        return ""


@register.filter
def recs_click_url(item, url=None) -> str:
    """``url`` (default: the item's ``get_absolute_url()``) with the item's click token added.

    The URL unchanged for an item of a list that was not logged, "" without a URL.
    """
    if url is None or url == "":
        get_url = getattr(item, "get_absolute_url", None)
        url = get_url() if callable(get_url) else ""
    url = str(url)
    token = recs_click_token(item)
    if not url or not token:
        return url
    # String operations, not urlsplit(): a page builds one per item.
    address, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in address else "?"
    return f"{address}{separator}{CLICK_PARAMETER}={token}{hash_mark}{fragment}"


for _name in ("similar_items", "recommended_for", "show_similar_items", "show_recommended_for"):
    _exclude_repeatable(_name)
