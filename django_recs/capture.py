"""Writing interactions: record(), record_many(), signal sources, session merge, forgetting.

- :func:`record` writes one interaction with one INSERT, in the caller's
  transaction (an order that rolls back leaves no interaction).
- :func:`record_many` validates many interactions and writes them in bulk
  (COPY on PostgreSQL), all or nothing.
- Sources (see :mod:`django_recs.sources`) record model saves: receivers are
  connected by :func:`connect_sources` from ``AppConfig.ready()`` and again
  whenever the DJANGO_RECS setting changes.
- A visitor's anonymous history joins their account on login.
- Deleting an item removes its interactions and stored results;
  :func:`forget_user` removes everything stored for a user.
"""

from __future__ import annotations

import datetime
import logging
import math
import numbers
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.core.signals import setting_changed
from django.db import connections, models, router, transaction
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from .conf import recs_settings
from .items import is_item_model, item_content_type, item_models, key_for_pk
from .sources import SAVED_USER_IDS, register_source, remember_user_ids, unregister_source

__all__ = [
    "connect_sources",
    "forget_item",
    "forget_user",
    "join_session",
    "record",
    "record_many",
    "register_source",
    "unregister_source",
]

logger = logging.getLogger("django_recs.capture")

SESSION_KEY_MAX_LENGTH = 40
EVENT_MAX_LENGTH = 32


# --- Validation shared by record() and the bulk path ------------------------------------


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


# --- One interaction -----------------------------------------------------------------------


def record(
    user,
    item: models.Model,
    event: str = "view",
    *,
    weight: float | None = None,
    session_key: str | None = None,
    timestamp: datetime.datetime | None = None,
):
    """Record that ``user`` (or the anonymous ``session_key``) did ``event`` on ``item``.

    One INSERT, inside the caller's transaction: if it rolls back, the
    interaction goes with it.

    Parameters
    ----------
    user : AUTH_USER_MODEL instance or None
        None (or an AnonymousUser) for an anonymous visitor, who then needs
        ``session_key`` (e.g. ``request.session.session_key``).
    item : model instance
        A saved instance of a model in ITEM_MODELS (integer or UUID pk).
    event : str
        A name in EVENTS.
    weight : float, optional
        Finite and >= 0; defaults to the event's weight in EVENTS.
    session_key : str, optional
        The visitor's session; its history joins the account on login.
    timestamp : datetime, optional
        When it happened (naive = current time zone); defaults to now.

    Returns
    -------
    Interaction
        The saved row.

    Raises
    ------
    ValueError
        Unknown event; NaN, infinite or negative weight; unsaved item or user;
        a model not in ITEM_MODELS; neither a user nor a session key. Nothing
        is written.
    """
    event_weight(event)
    weight = checked_weight(weight, event)
    user_id = user_pk(user)
    session_key = checked_session_key(session_key)
    if user_id is None and not session_key:
        raise ValueError("record() needs a user or a session_key: both are empty")
    item_type_id, item_key = item_reference(item)
    return _insert(
        user_id=user_id,
        session_key=session_key,
        item_type_id=item_type_id,
        item_key=item_key,
        event=event,
        weight=weight,
        timestamp=checked_timestamp(timestamp),
    )


def _insert(*, using: str | None = None, **values):
    from .models import Interaction

    interaction = Interaction(**values)
    using = using or router.db_for_write(Interaction)
    interaction.save(force_insert=True, using=using)
    if values.get("user_id") is not None and recs_settings.REFRESH_ON_RECORD:
        user_id = values["user_id"]
        transaction.on_commit(lambda: _enqueue_refresh(user_id), using=using)
    return interaction


def _enqueue_refresh(user_id) -> None:
    from .tasks import refresh_user

    refresh_user.delay(user_id)


# --- Many interactions ----------------------------------------------------------------------


def record_many(
    interactions: Iterable,
    *,
    skip_invalid: bool = False,
    using: str | None = None,
    batch_size: int = 50_000,
    progress=None,
) -> int:
    """Validate and write many interactions in bulk (COPY on PostgreSQL); all or nothing.

    Parameters
    ----------
    interactions : iterable
        Each a mapping with keys ``user``, ``item``, ``event``, ``weight``,
        ``timestamp``, ``session_key`` (all but ``item`` optional), or a tuple
        ``(user, item[, event[, weight[, timestamp[, session_key]]]])``. A user
        is an instance, a primary key or None; an item is an instance, a
        ``(model, pk)`` pair, or text as in the import file
        (``"app_label.model:pk"``, or the bare pk when ITEM_MODELS has one model).
    skip_invalid : bool
        Write the valid interactions and skip the bad ones, instead of writing nothing.
    using : str, optional
        Database alias (default: the router's choice for Interaction).
    batch_size : int
        Interactions validated and sent per chunk.
    progress : callable, optional
        Called as ``progress(rows_done, rows_total_or_None)`` after each chunk.

    Returns
    -------
    int
        The number of interactions written.

    Raises
    ------
    django_recs.importing.InvalidRows
        (a ValueError) listing each bad interaction by its position (1-based)
        and problem, when one is bad and ``skip_invalid`` is False.
    """
    from .importing import python_rows, write_interactions

    # A list or tuple is read while a COPY streams; any other iterable might
    # query the database (a queryset), so it is read between writes.
    in_memory = isinstance(interactions, (list, tuple))
    return write_interactions(
        python_rows(interactions), skip_invalid=skip_invalid, using=using,
        chunk_size=batch_size, progress=progress, line_label="interaction",
        total=len(interactions) if in_memory else None, stream=in_memory,
    ).written


# --- Sessions joining accounts ----------------------------------------------------------------


def join_session(session_keys: str | Iterable[str], user) -> int:
    """Give ``user`` the anonymous history of ``session_keys``; rows updated (one UPDATE)."""
    from .models import Interaction

    keys = [session_keys] if isinstance(session_keys, str) else list(session_keys)
    keys = [key for key in keys if key and len(key) <= SESSION_KEY_MAX_LENGTH]
    user_id = user_pk(user)
    if not keys or user_id is None:
        return 0
    return Interaction.objects.filter(user__isnull=True, session_key__in=keys).update(
        user_id=user_id
    )


@receiver(user_logged_in, dispatch_uid="django_recs.capture.join_session_on_login")
def _join_session_on_login(sender, request, user, **kwargs) -> None:
    """On login, the history of the visitor's anonymous session joins the account.

    login() cycles the session key before this signal, so the pre-login key
    is read from the session cookie the browser sent with the login request
    (the current key is included for history recorded earlier in this request).
    """
    if request is None:
        return
    keys = set()
    cookie = getattr(request, "COOKIES", {}).get(settings.SESSION_COOKIE_NAME)
    if cookie:
        keys.add(cookie)
    session = getattr(request, "session", None)
    current = getattr(session, "session_key", None)
    if current:
        keys.add(current)
    try:
        joined = join_session(keys, user)
    except Exception:  # never break a login
        logger.exception("django_recs: could not join the session history of user %s", user.pk)
        return
    if joined:
        logger.debug("django_recs: %d anonymous interactions joined user %s", joined, user.pk)


# --- Forgetting --------------------------------------------------------------------------------


def forget_user(user, *, using: str | None = None) -> int:
    """Delete ``user``'s interactions and stored recommendations; rows deleted.

    ``user`` is a user instance or primary key (a user already deleted can
    still be forgotten by id).
    """
    return sum(forget_user_details(user, using=using).values())


def forget_user_details(user, *, using: str | None = None) -> dict[str, int]:
    """As :func:`forget_user`, with the rows deleted per model label."""
    from .models import Interaction, Recommendation

    user_id = user.pk if isinstance(user, models.Model) else user
    if user_id is None:
        raise ValueError("forget_user() needs a saved user or a user id")
    using = using or router.db_for_write(Interaction)
    deleted = {}
    with transaction.atomic(using=using):
        for model in (Interaction, Recommendation):
            count, _ = model.objects.using(using).filter(user_id=user_id).delete()
            deleted[model._meta.label] = count
    return deleted


def forget_item(item, *, using: str | None = None) -> int:
    """Delete an item's interactions and every stored result that names it; rows deleted."""
    from .models import Interaction, PopularItem, Recommendation, SimilarItem

    type_id = item_content_type(type(item)).pk
    key = key_for_pk(type(item), item.pk)
    using = using or router.db_for_write(Interaction)
    deleted = 0
    with transaction.atomic(using=using):
        for model, lookups in (
            (Interaction, [("item_type_id", "item_key")]),
            (SimilarItem, [("item_type_id", "item_key"), ("neighbour_type_id", "neighbour_key")]),
            (Recommendation, [("item_type_id", "item_key")]),
            (PopularItem, [("item_type_id", "item_key")]),
        ):
            for type_field, key_field in lookups:
                count, _ = model.objects.using(using).filter(
                    **{type_field: type_id, key_field: key}
                ).delete()
                deleted += count
        # A recommendation explained by the deleted item stays, without the reason.
        Recommendation.objects.using(using).filter(reason_type_id=type_id, reason_key=key).update(
            reason_type=None, reason_key=""
        )
    return deleted


def _on_item_deleted(sender, instance, using, **kwargs) -> None:
    if instance.pk is not None:
        forget_item(instance, using=using)


# --- Signal sources --------------------------------------------------------------------------

# Model class -> its sources, as connected by the last connect_sources().
_sources_by_model: dict[type[models.Model], list[Any]] = {}
# Model class -> the user *_id attributes its "user_set" sources watch.
_watched_users: dict[type[models.Model], tuple[str, ...]] = {}
_item_models_connected: list[type[models.Model]] = []


def connect_sources() -> None:
    """(Re)connect the post_save receivers of the sources and the item-deletion receivers.

    Called from ``AppConfig.ready()``, by register_source(), and when the
    DJANGO_RECS setting changes. A broken SOURCES entry is skipped here and
    reported by ``manage.py check``.
    """
    from .sources import active_sources

    for model in list(_sources_by_model):
        post_save.disconnect(sender=model, dispatch_uid=_uid("source", model))
        m2m_changed.disconnect(sender=model, dispatch_uid=_uid("through", model))
    for model in list(_watched_users):
        post_init.disconnect(sender=model, dispatch_uid=_uid("user_loaded", model))
        pre_save.disconnect(sender=model, dispatch_uid=_uid("user_saving", model))
    _sources_by_model.clear()
    _watched_users.clear()
    for source in active_sources():
        _sources_by_model.setdefault(source.model, []).append(source)
        if source.user_attname:
            watched = _watched_users.get(source.model, ())
            _watched_users[source.model] = tuple(dict.fromkeys((*watched, source.user_attname)))
    for model in _sources_by_model:
        post_save.connect(_on_source_saved, sender=model, dispatch_uid=_uid("source", model))
        # ManyToMany .add() creates through rows with bulk_create: no post_save.
        m2m_changed.connect(_on_through_rows_added, sender=model,
                            dispatch_uid=_uid("through", model))
    for model in _watched_users:
        # "user_set" compares the user with the one of the previous save.
        post_init.connect(_on_watched_row_loaded, sender=model,
                          dispatch_uid=_uid("user_loaded", model))
        pre_save.connect(_on_watched_row_saving, sender=model,
                         dispatch_uid=_uid("user_saving", model))

    for model in _item_models_connected:
        post_delete.disconnect(sender=model, dispatch_uid=_uid("item", model))
    _item_models_connected.clear()
    try:
        models_now = item_models()
    except (LookupError, ValueError):
        models_now = []  # reported by the checks (E002)
    for model in models_now:
        # Per model, not for every sender: a post_delete receiver on all
        # models would stop Django's fast bulk deletes everywhere.
        post_delete.connect(_on_item_deleted, sender=model, dispatch_uid=_uid("item", model))
        _item_models_connected.append(model)


def _uid(kind: str, model) -> str:
    return f"django_recs.capture.{kind}.{model._meta.label}"


@receiver(setting_changed, dispatch_uid="django_recs.capture.settings")
def _reconnect_on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in ("DJANGO_RECS", "AUTH_USER_MODEL"):
        recs_settings.reload()
        connect_sources()


def _on_source_saved(sender, instance, created, raw=False, using=None, update_fields=None,
                     **kwargs) -> None:
    if raw:  # fixtures: `manage.py recs_import --from-sources` records them
        return
    for source in _sources_by_model.get(sender, ()):
        record_from_source(source, instance, created, using=using, update_fields=update_fields)
    if sender in _watched_users:
        remember_user_ids(instance, _watched_users[sender], update_fields)


def _on_watched_row_loaded(sender, instance, **kwargs) -> None:
    """The user ids a row is loaded (or built) with: a dict read, no query."""
    remember_user_ids(instance, _watched_users.get(sender, ()))


def _on_watched_row_saving(sender, instance, raw=False, using=None, **kwargs) -> None:
    """Read the stored user ids the instance does not know (loaded deferred): one query."""
    if raw or instance._state.adding or instance.pk is None:
        return
    known = instance.__dict__.get(SAVED_USER_IDS, {})
    missing = [name for name in _watched_users.get(sender, ()) if name not in known]
    if not missing:
        return
    try:
        stored = sender._base_manager.using(using).filter(pk=instance.pk).values(*missing).first()
    except Exception:  # never break the shop's save
        logger.exception("django_recs: could not read the user of %s #%s",
                         sender._meta.label, instance.pk)
        return
    if stored is not None:
        instance.__dict__[SAVED_USER_IDS] = {**known, **stored}


def _on_through_rows_added(sender, instance, action, reverse, model, pk_set, using=None,
                           **kwargs) -> None:
    """Record the through rows a ManyToMany ``.add()`` created, as created rows."""
    if action != "post_add" or not pk_set:
        return
    try:
        declaring = model if reverse else type(instance)
        m2m = next(f for f in declaring._meta.many_to_many if f.remote_field.through is sender)
        own, other = m2m.m2m_field_name(), m2m.m2m_reverse_field_name()
        if reverse:
            own, other = other, own
        rows = list(sender._default_manager.using(using).filter(
            **{own: instance.pk, f"{other}__in": pk_set}
        ))
    except Exception:
        logger.exception("django_recs: could not read the %s rows just added",
                         sender._meta.label)
        return
    for row in rows:
        for source in _sources_by_model.get(sender, ()):
            record_from_source(source, row, True, using=using)


def record_from_source(source, instance, created: bool, *, using: str | None = None,
                       update_fields=None):
    """Record the interaction ``source`` derives from a saved ``instance``.

    Never raises: a failure (a weight or item function raising or returning
    a bad value...) is logged with its traceback, and inside a transaction
    the insert runs in a savepoint so the shop's own transaction stays
    usable. Returns the Interaction or None.
    """
    try:
        if not source.should_record(instance, created, update_fields):
            return None
        values = source_values(source, instance)
        if values is None:
            return None
        using = using or router.db_for_write(type(instance))
        if connections[using].in_atomic_block:
            with transaction.atomic(using=using):
                return _insert(using=using, **values)
        return _insert(using=using, **values)
    except Exception:
        logger.exception(
            "django_recs: %s could not record %s #%s", source.label,
            instance._meta.label, instance.pk,
        )
        return None


def source_values(source, instance, *, now: datetime.datetime | None = None) -> dict | None:
    """The Interaction field values ``source`` gives ``instance``; None when skipped.

    A row without a user or session key (a guest checkout), or without an
    item (an item function returning None), records nothing and is counted
    in a debug log. ValueError for a bad weight or an item outside
    ITEM_MODELS (an item function returning anything else).
    """
    user_id = source.user_id_of(instance)
    session_key = checked_session_key(source.session_key_of(instance))
    if user_id is None and not session_key:
        source.skipped_without_visitor += 1
        logger.debug(
            "django_recs: %s: %s #%s has no user (%d such rows so far); not recorded",
            source.label, instance._meta.label, instance.pk, source.skipped_without_visitor,
        )
        return None
    item = source.item_of(instance)
    if item is None:
        logger.debug("django_recs: %s: %s #%s has no item; not recorded",
                     source.label, instance._meta.label, instance.pk)
        return None
    item_model, item_pk = item
    if not is_item_model(item_model):
        raise ValueError(f"{item_model._meta.label} is not in DJANGO_RECS['ITEM_MODELS']")
    timestamp = source.timestamp_of(instance)
    if isinstance(timestamp, datetime.date) and not isinstance(timestamp, datetime.datetime):
        timestamp = datetime.datetime.combine(timestamp, datetime.time())
    return {
        "user_id": user_id,
        "session_key": session_key,
        "item_type_id": item_content_type(item_model).pk,
        "item_key": key_for_pk(item_model, item_pk),
        "event": source.event,
        "weight": checked_weight(source.weight_of(instance), source.event),
        "timestamp": checked_timestamp(timestamp) if timestamp is not None
        else (now or timezone.now()),
        "source_type_id": item_content_type(type(instance)).pk,
        "source_key": source_key(instance.pk),
    }


def source_key(pk) -> str:
    """How a source row's primary key is stored (UUIDs as hex, like item keys)."""
    return pk.hex if isinstance(pk, uuid.UUID) else str(pk)
