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

from ..conf import recs_settings
from ..items import is_item_model, item_content_type, key_for_pk

SESSION_KEY_MAX_LENGTH = 40
EVENT_MAX_LENGTH = 32


def event_weight(event: str) -> float:
    """The default weight of ``event``; ValueError naming the known events if unknown."""
    events = recs_settings.EVENTS
    try:
        if not isinstance(event, str):
            raise TypeError
        return float(events[event])
    except (KeyError, TypeError):
        known = ", ".join(sorted(map(str, events))) or "none"
        raise ValueError(
            f"unknown event {event!r}: DJANGO_RECS['EVENTS'] has {known}"
        ) from None


def checked_weight(weight, event: str) -> float:
    """``weight`` as a float (the event's default when None); ValueError if not finite >= 0."""
    if weight is None:
        return event_weight(event)
    if type(weight) is not float:
        if isinstance(weight, bool) or not isinstance(weight, (numbers.Real, Decimal)):
            raise ValueError(f"weight must be a number, got {type(weight).__name__} {weight!r}")
        weight = float(weight)
    if not math.isfinite(weight):
        raise ValueError(f"weight must be finite, got {weight!r}")
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    return weight


def checked_value(value) -> float | None:
    """What an event is worth, as a float (None stays None); ValueError if not finite >= 0."""
    if value is None:
        return None
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal)):
            raise ValueError(f"value must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"value must be a finite number >= 0, got {value!r}")
    return value


def checked_session_key(session_key) -> str:
    if session_key is None:
        return ""
    if not isinstance(session_key, str):
        raise ValueError(f"session_key must be a string, got {type(session_key).__name__}")
    if len(session_key) > SESSION_KEY_MAX_LENGTH:
        raise ValueError(
            f"session_key is {len(session_key)} characters long; at most "
            f"{SESSION_KEY_MAX_LENGTH} are stored"
        )
    return session_key


def checked_timestamp(timestamp) -> datetime.datetime:
    """An aware datetime (naive ones are in the current time zone); now when None."""
    if timestamp is None:
        return timezone.now()
    if not isinstance(timestamp, datetime.datetime):
        raise ValueError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
    if settings.USE_TZ and timezone.is_naive(timestamp):
        return timezone.make_aware(timestamp)
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
        raise ValueError(f"item must be a model instance, got {type(item).__name__} {item!r}")
    model = type(item)
    if not is_item_model(model):
        raise ValueError(
            f"{model._meta.label} is not in DJANGO_RECS['ITEM_MODELS'] "
            f"({', '.join(recs_settings.ITEM_MODELS) or 'empty'})"
        )
    if item.pk is None or item._state.adding:
        raise ValueError(f"item {model._meta.label} {item!r} is not saved yet")
    return item_content_type(model).pk, key_for_pk(model, item.pk)
