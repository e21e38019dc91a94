"""Writing interactions: record() for one, record_many() for many.

- :func:`record` writes one interaction with one INSERT, in the caller's
  transaction (an order that rolls back leaves no interaction).
- :func:`record_many` validates many interactions and writes them in bulk
  (COPY on PostgreSQL), all or nothing.

With REFRESH_ON_RECORD, a recorded user's :data:`user_history_changed`
signal is sent once the transaction commits; the Celery side
(:mod:`django_recs.dispatch`) enqueues the user's refresh from it, so capture
never imports the pipeline or the tasks.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db import models, router, transaction
from django.dispatch import Signal

from ..conf import recs_settings
from .forgetting import is_forgotten
from .validation import (
    checked_event,
    checked_session_key,
    checked_timestamp,
    checked_value,
    checked_weight,
    item_reference,
    user_pk,
)

__all__ = ["record", "record_many", "user_history_changed"]

#: Sent with ``user_id`` after a transaction that recorded an interaction of
#: that user commits, when REFRESH_ON_RECORD is on.
user_history_changed = Signal()


def record(
    user,
    item: models.Model,
    event: str = "view",
    *,
    weight: float | None = None,
    session_key: str | None = None,
    timestamp: datetime.datetime | None = None,
    value: float | None = None,
):
    """Record that ``user`` (or the anonymous ``session_key``) did ``event`` on ``item``.

    One INSERT, inside the caller's transaction (and, for a signed-in user,
    one SELECT of the erasure list): if it rolls back, the interaction goes
    with it.

    Parameters
    ----------
    user : AUTH_USER_MODEL instance or None
        None (or an AnonymousUser) for an anonymous visitor, who then needs
        ``session_key``. From a view, use :func:`record_view`, which reads
        both from the request.
    item : model instance
        A saved instance of a model in ITEM_MODELS (integer or UUID pk).
    event : str
        A name in EVENTS.
    weight : float, optional
        Finite, >= 0 and <= MAX_WEIGHT; defaults to the event's weight in EVENTS.
    session_key : str, optional
        The visitor's session (at most 40 characters, no NUL, not ending
        with a space); its history joins the account on login.
    timestamp : datetime, optional
        When it happened (naive = current time zone); defaults to now.
    value : float, optional
        What the event is worth (a purchase's price times quantity), finite,
        >= 0 and <= MAX_VALUE (1e12): the revenue of the list it is attributed to (docs/feedback.md).

    Returns
    -------
    Interaction or None
        The saved row; None when ``user`` was forgotten (``forget_user()``):
        nothing of a forgotten user is recorded until ``unforget_user()``.

    Raises
    ------
    ValueError
        Unknown event (or, without a weight, one whose EVENTS default is
        unusable); a weight that is NaN, infinite, negative, above MAX_WEIGHT
        or too large for a float; a value that is NaN, infinite, negative or
        above MAX_VALUE (1e12); unsaved item or user; a model not in
        ITEM_MODELS; neither a user nor a session key; a session key no
        column holds; a timestamp without a UTC time. Raised before any SQL:
        nothing is written and the caller's transaction stays usable.
    """
    weight = checked_weight(weight, checked_event(event))
    value = checked_value(value)
    user_id = user_pk(user)
    session_key = checked_session_key(session_key)
    if user_id is None and not session_key:
        raise ValueError("record() needs a user or a session_key: both are empty")
    item_type_id, item_key = item_reference(item)
    return insert_interaction(
        user_id=user_id,
        session_key=session_key,
        item_type_id=item_type_id,
        item_key=item_key,
        event=event,
        weight=weight,
        timestamp=checked_timestamp(timestamp),
        value=value,
    )


def insert_interaction(*, using: str | None = None, **values):
    """Save one Interaction of already checked ``values``; the history signal on commit.

    None, and nothing written, for a forgotten user (one indexed query more).
    """
    from ..models import Interaction

    using = using or router.db_for_write(Interaction)
    if values.get("user_id") is not None and is_forgotten(values["user_id"], using=using):
        return None
    interaction = Interaction(**values)
    interaction.save(force_insert=True, using=using)
    if values.get("user_id") is not None and recs_settings.REFRESH_ON_RECORD:
        user_id = values["user_id"]
        transaction.on_commit(
            lambda: user_history_changed.send(sender=Interaction, user_id=user_id), using=using
        )
    return interaction


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
