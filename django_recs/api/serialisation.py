"""A list as the endpoints' JSON: each item as API_SERIALIZER says, with its score, reason and token.

::

    {"model": "shop.product", "placement": "home", "impression": "0190…",
     "items": [{"item": {"pk": 12, "name": "Red mug", "url": "/products/12/"},
                "score": 0.93, "source": "personal",
                "reason": {"pk": 7, "name": "Blue mug"},
                "token": "AQGQ…"}]}

``token`` is the item's click token and ``impression`` the list's id when
the list was logged (a ``placement`` with IMPRESSIONS on), else null.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from functools import lru_cache

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.module_loading import import_string

from ..conf import DEFAULTS, recs_settings

logger = logging.getLogger("django_recs.api")

__all__ = ["default_serializer", "item_serializer", "json_pk", "list_body", "list_document"]


def json_pk(pk):
    """A primary key as JSON: an integer stays one, anything else (a UUID) is its text."""
    return pk if type(pk) is int else str(pk)


def default_serializer(item: models.Model) -> dict:
    """``{"pk": …, "name": str(item), "url": item.get_absolute_url()}`` (``url`` when it has one)."""
    data = {"pk": json_pk(item.pk), "name": str(item)}
    get_url = getattr(item, "get_absolute_url", None)
    if callable(get_url):
        data["url"] = get_url()
    return data


def item_serializer() -> Callable[[models.Model], dict]:
    """The function API_SERIALIZER names (the default one while it does not import: E120)."""
    try:
        return _imported(recs_settings.API_SERIALIZER)
    except (ImportError, TypeError, ValueError):
        return _imported(DEFAULTS["API_SERIALIZER"])


@lru_cache(maxsize=8)
def _imported(path: str) -> Callable:
    function = import_string(path)
    if not callable(function):
        raise TypeError(f"{path} is not callable")
    return function


def list_document(items: models.QuerySet, *, model_label: str, placement: str | None) -> dict:
    """The JSON document of a list returned by ``django_recs.similar_to``/``recommended_for``."""
    serialise = item_serializer()
    shown = getattr(items, "recs_impression", None)
    entries = []
    for item in items:
        position = item.__dict__.get("recs_position")
        token = _token(shown, position, item)
        reason = getattr(item, "recs_reason", None)
        score = float(getattr(item, "recs_score", 0.0) or 0.0)
        entries.append({
            "item": serialise(item),
            "score": score if math.isfinite(score) else 0.0,
            "source": getattr(item, "recs_source", None),
            "reason": None if reason is None else {"pk": json_pk(reason.pk), "name": str(reason)},
            "token": token,
        })
    return {
        "model": model_label,
        "placement": placement,
        "impression": None if shown is None else str(shown.id),
        "items": entries,
    }


def _token(shown, position, item) -> str | None:
    """The item's click token; None for a list not logged (and, logged, for an error)."""
    if shown is None or position is None:
        return None
    try:
        return shown.token(position)
    except Exception:  # a list without a click token, never a failed request
        logger.exception("django_recs: no click token for %r", item)
        return None


def list_body(document: dict) -> bytes:
    """``document`` as compact UTF-8 JSON (Decimals, dates and UUIDs as Django writes them)."""
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":"),
                      ensure_ascii=False).encode()
