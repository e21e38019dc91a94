"""Validation shared by record(), the sources and the bulk path: each value checked once.

Every function returns the value as stored or raises ValueError naming the
problem; nothing here writes.
"""

from __future__ import annotations

import datetime
import math
import numbers
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone

from ..conf import max_weight, recs_settings
from ..items import is_item_model, item_content_type, key_for_pk
from ..models import SESSION_KEY_MAX_LENGTH, checked_session_key

__all__ = [
    "EVENT_MAX_LENGTH",
    "MAX_VALUE",
    "SESSION_KEY_MAX_LENGTH",
    "checked_event",
    "checked_session_key",
    "checked_timestamp",
    "checked_value",
    "checked_weight",
    "event_weight",
    "item_reference",
    "user_pk",
]

EVENT_MAX_LENGTH = 32


def checked_event(event) -> str:
    """``event`` when it is a name in EVENTS that a row can store; ValueError otherwise."""
    events = recs_settings.EVENTS
    if not isinstance(event, str) or event not in events:
        known = ", ".join(sorted(map(str, events))) or "none"
        raise ValueError(f"unknown event {event!r}: DJANGO_RECS['EVENTS'] has {known}"[:500])
    if len(event) > EVENT_MAX_LENGTH or "\x00" in event:
        raise ValueError(
            f"DJANGO_RECS['EVENTS'] has the event name {event[:40]!r}, which cannot be "
            f"stored: names are 1-{EVENT_MAX_LENGTH} characters (manage.py check: "
            "django_recs.E021)"
        )
    return event


def event_weight(event: str) -> float:
    """The default weight of ``event``; ValueError if the event is unknown or its weight bad.

    A default weight that manage.py check reports (E020: negative, NaN, above
    MAX_WEIGHT) is refused here too, so it is never written.
    """
    default = recs_settings.EVENTS[checked_event(event)]
    try:
        return checked_weight(default, event)
    except ValueError as error:
        raise ValueError(
            f"DJANGO_RECS['EVENTS'][{event!r}] is not a usable default weight: {error} "
            "(manage.py check: django_recs.E020)"
        ) from None


def checked_weight(weight, event: str) -> float:
    """``weight`` as a float (the event's default when None).

    ValueError unless it is a finite number between 0 and MAX_WEIGHT: an
    integer too large for a float (``10**400``) included.
    """
    if weight is None:
        return event_weight(event)
    if type(weight) is not float:
        if isinstance(weight, bool) or not isinstance(weight, (numbers.Real, Decimal)):
            raise ValueError(
                f"weight must be a number, got {type(weight).__name__} {weight!r}"[:200]
            )
        try:
            weight = float(weight)
        except OverflowError:  # 10**400: no float holds it
            raise ValueError(
                f"weight must be a finite number <= {max_weight():g} "
                "(DJANGO_RECS['MAX_WEIGHT']), got an integer too large for a float"
            ) from None
    if not math.isfinite(weight):
        raise ValueError(f"weight must be finite, got {weight!r}")
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    limit = max_weight()
    if weight > limit:
        raise ValueError(
            f"weight must be <= {limit:g} (DJANGO_RECS['MAX_WEIGHT']), got {weight:g}"
        )
    return weight


#: The largest value an event can be worth (record(value=), SOURCES "value"):
#: the feedback sums values and their squares per list and day, which stay
#: finite and exact to the cent below it.
MAX_VALUE = 1e12


def checked_value(value) -> float | None:
    """What an event is worth, as a float (None stays None).

    ValueError unless it is a finite number between 0 and :data:`MAX_VALUE`:
    an integer too large for a float (``10**400``) included.
    """
    if value is None:
        return None
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
            raise ValueError(
                f"value must be a number, got {type(value).__name__} {value!r}"[:200]
            )
        try:
            value = float(value)
        except OverflowError:  # 10**400: no float holds it
            raise ValueError(
                f"value must be a finite number <= {MAX_VALUE:g}, got an integer too "
                "large for a float"
            ) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"value must be a finite number >= 0, got {value!r}")
    if value > MAX_VALUE:
        raise ValueError(f"value must be <= {MAX_VALUE:g}, got {value:g}")
    return value


def checked_timestamp(timestamp) -> datetime.datetime:
    """An aware datetime (naive ones are in the current time zone); now when None.

    ValueError for anything else, and for a time that has no UTC equivalent
    (the first or last hours of year 1 or 9999 in a far time zone).
    """
    if timestamp is None:
        return timezone.now()
    if not isinstance(timestamp, datetime.datetime):
        raise ValueError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
    try:
        if settings.USE_TZ and timezone.is_naive(timestamp):
            timestamp = timezone.make_aware(timestamp)
        if timestamp.tzinfo is not None:
            timestamp.astimezone(datetime.timezone.utc)  # what the database is given
    except (OverflowError, ValueError) as error:
        raise ValueError(f"timestamp {timestamp!r} cannot be stored: {error}") from None
    return timestamp


def user_pk(user):
    """The primary key of ``user``; None for None or an anonymous user."""
    if user is None or getattr(user, "is_anonymous", False):
        return None
    user_model = get_user_model()
    if not isinstance(user, user_model):
        raise ValueError(
            f"user must be a {user_model._meta.label} instance or None, got "
            f"{type(user).__name__}"
        )
    if user.pk is None or user._state.adding:
        raise ValueError(f"user {user!r} is not saved yet")
    return user.pk


def item_reference(item) -> tuple[int, str]:
    """(content type id, stored key) of a saved instance of an ITEM_MODELS model."""
    if not isinstance(item, models.Model):
        raise ValueError(
            f"item must be a model instance, got {type(item).__name__} {item!r}"[:200]
        )
    model = type(item)
    if not is_item_model(model):
        raise ValueError(
            f"{model._meta.label} is not in DJANGO_RECS['ITEM_MODELS'] "
            f"({', '.join(recs_settings.ITEM_MODELS) or 'empty'})"
        )
    if item.pk is None or item._state.adding:
        raise ValueError(f"item {model._meta.label} {item!r} is not saved yet")
    return item_content_type(model).pk, key_for_pk(model, item.pk)
