"""The endpoints' parameters, validated: anything a client can send is a 400 or a 404, never a 500.

- ``n``: the list's length, 1..API_MAX_N (default 10);
- ``exclude``: primary keys of items never to list, repeated
  (``exclude=3&exclude=9``) or comma-separated (``exclude=3,9``): integers
  or UUIDs (32 hex digits, or with dashes);
- ``placement``: where the page shows the list (logged as an impression);
- ``model``: the item model of ``recommended/`` and ``popular/``
  (``app_label.model``; default the first of ITEM_MODELS);
- the item of ``similar/<app_label>.<model>/<pk>/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.apps import apps
from django.db import models

from ..conf import DEFAULTS, recs_settings
from ..feedback.impressions import PLACEMENT_MAX_LENGTH
from ..items import item_models, key_for_pk, pk_for_key
from .errors import ApiError

__all__ = ["DEFAULT_N", "EXCLUDE_PATTERN", "MAX_EXCLUDED", "PLACEMENT_PATTERN", "ListRequest", "api_max_n", "item_of", "item_model",
           "list_request", "model_label"]

#: The length of a list when the request gives no ``n``.
DEFAULT_N = 10
#: At most this many excluded items per request.
MAX_EXCLUDED = 200
#: A placement's characters: no control characters (C0, DEL), not only spaces.
PLACEMENT_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
_PLACEMENT = re.compile(PLACEMENT_PATTERN)
_KEY = (r"(?:[0-9]{1,20}|[0-9a-fA-F]{32}"
        r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")
#: One ``exclude`` value: primary keys (integers or UUIDs) separated by commas.
EXCLUDE_PATTERN = rf"^{_KEY}?(?:,{_KEY}?)*$"
_EXCLUDE = re.compile(EXCLUDE_PATTERN)
_DIGITS = re.compile(r"[0-9]{1,6}")


def api_max_n() -> int:
    """API_MAX_N, or its default while it is not an integer from 1 to 10,000 (E122)."""
    value = recs_settings.API_MAX_N
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000:
        return value
    return DEFAULTS["API_MAX_N"]


@dataclass(frozen=True)
class ListRequest:
    """What a list request asks for, validated."""

    model: type[models.Model]
    n: int
    exclude: tuple  # primary keys, sorted by stored key, unique
    exclude_keys: tuple[str, ...]
    placement: str | None


def list_request(query, model: type[models.Model]) -> ListRequest:
    """The list parameters of ``query`` (a QueryDict) for a list of ``model``; ApiError (400)."""
    keys = _excluded_keys(query, model)
    return ListRequest(
        model=model,
        n=_length(query),
        exclude=tuple(pk_for_key(model, key) for key in keys),
        exclude_keys=keys,
        placement=_placement(query),
    )


def _length(query) -> int:
    text = query.get("n")
    if text is None:
        return DEFAULT_N
    largest = api_max_n()
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= largest:
        raise ApiError(400, f"n must be an integer from 1 to {largest}, got {text[:20]!r}",
                       parameter="n")
    return int(text)


def _excluded_keys(query, model: type[models.Model]) -> tuple[str, ...]:
    """The stored keys of ``exclude``'s items; ApiError (400) for a value not of keys' form.

    A well-formed key that names no item of ``model`` (an integer on a UUID-keyed
    model, an integer beyond the column's range) excludes nothing, like the key of
    an item deleted since: such an item cannot be in the list anyway.
    """
    given = query.getlist("exclude")
    for value in given:
        if not _EXCLUDE.fullmatch(value):
            raise ApiError(400, f"exclude must be primary keys (integers or UUIDs), separated by "
                           f"commas, got {value[:40]!r}", parameter="exclude")
    values = [part for value in given for part in value.split(",") if part]
    if max(len(given), len(values)) > MAX_EXCLUDED:
        raise ApiError(400, f"exclude names {max(len(given), len(values))} items; at most "
                       f"{MAX_EXCLUDED} are accepted", parameter="exclude")
    keys = set()
    for value in values:
        try:
            keys.add(key_for_pk(model, value))
        except (TypeError, ValueError):
            continue  # no item of this model has it
    return tuple(sorted(keys))


def _placement(query) -> str | None:
    placement = query.get("placement")
    if placement is None:
        return None
    if len(placement) > PLACEMENT_MAX_LENGTH or not _PLACEMENT.fullmatch(placement):
        raise ApiError(400, f"placement must be 1 to {PLACEMENT_MAX_LENGTH} characters, not "
                       "only spaces, without control characters", parameter="placement")
    return placement


def model_label(model: type[models.Model]) -> str:
    """``app_label.model_name`` (lower case), as the URLs spell an item model."""
    return f"{model._meta.app_label}.{model._meta.model_name}"


def item_model(label: str | None, *, parameter: str = "model") -> type[models.Model]:
    """The ITEM_MODELS model ``label`` names (any case), the first one for None; ApiError (404)."""
    listed = item_models()
    if label is None:
        if not listed:
            raise ApiError(404, "ITEM_MODELS is empty: nothing can be recommended",
                           parameter=parameter)
        return listed[0]
    app_label, dot, name = label.partition(".")
    model = None
    if dot and app_label and name:
        try:
            model = apps.get_model(app_label, name)
        except LookupError:
            model = None
    if model is None or model not in listed:
        known = ", ".join(model_label(m) for m in listed) or "none"
        raise ApiError(404, f"{label[:60]!r} is not an item model (the item models are "
                       f"{known})", parameter=parameter)
    return model


def item_of(model: type[models.Model], pk: str) -> models.Model:
    """The item of ``model`` whose primary key ``pk`` spells; ApiError (404) when there is none.

    The item is looked up through the model's default manager, not its
    ITEM_QUERYSETS entry: a product that is sold out still has a page, and
    that page wants its similar items. The list's candidates are
    ITEM_QUERYSETS' items.
    """
    try:
        value = pk_for_key(model, key_for_pk(model, pk))
    except (TypeError, ValueError):
        value = None
    item = None if value is None else model._default_manager.filter(pk=value).first()
    if item is None:
        raise ApiError(404, f"no {model_label(model)} has the primary key {pk[:40]!r}",
                       parameter="pk")
    return item
