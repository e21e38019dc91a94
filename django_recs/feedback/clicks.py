"""Recording a click: a visitor followed the signed link of an item of a logged list.

:func:`record_click` is called by :class:`~django_recs.feedback.middleware.ClickMiddleware`
(the ``recs_click`` query parameter of the item page) and by the beacon view.
A click counts when its token is genuine and unexpired, comes from the
visitor the list was shown to, not from a well-known bot or a prefetch, and
names an item that still exists; each (impression, position) counts once, so
a replayed link counts nothing more. A counted click is written with, when
CLICK_EVENT is set, an interaction of that event (it feeds training) in one
transaction. Nothing here raises into the page: every refusal and error is
logged (DEBUG for a refused token, ERROR with a traceback for a failure) and
None returned.
"""

from __future__ import annotations

import datetime
import logging

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from ..capture import insert_interaction, is_forgotten
from ..capture.validation import event_weight
from ..conf import recs_settings
from ..items import is_item_model, pk_for_key
from .tokens import ClickToken, InvalidToken, read_token
from .visitors import bindings, is_automated, visitor_of

__all__ = ["CLICK_PARAMETER", "attribution_window", "record_click"]

logger = logging.getLogger("django_recs.feedback")

#: The query parameter of an item link that carries its click token.
CLICK_PARAMETER = "recs_click"


def attribution_window() -> datetime.timedelta:
    """ATTRIBUTION_WINDOW_DAYS as a timedelta."""
    return datetime.timedelta(days=float(recs_settings.ATTRIBUTION_WINDOW_DAYS))


def record_click(request, token: str):
    """Record the click ``token`` stands for, made by ``request``'s visitor.

    Returns
    -------
    Click or None
        The click written, or None when it does not count (IMPRESSIONS off;
        a malformed, tampered or expired token; another visitor's; a bot or a
        prefetch; a forgotten user's; an item that no longer exists; a click already counted) or
        could not be written. Never raises.
    """
    if not recs_settings.IMPRESSIONS:
        return None
    try:
        clicked = read_token(token, max_age=attribution_window())
    except InvalidToken as error:
        logger.debug("django_recs: click token refused: %s", error)
        return None
    try:
        return _record(request, clicked)
    except Exception:
        logger.exception("django_recs: a click on impression %s could not be recorded",
                         clicked.impression_id)
        return None


def _record(request, clicked: ClickToken):
    from ..models import Click

    if is_automated(request):
        return None
    visitor = visitor_of(request)
    if visitor.user_id is not None and is_forgotten(visitor.user_id):
        return None  # nothing of a forgotten user is recorded (forget_user())
    if clicked.visitor and clicked.visitor not in bindings(visitor):
        logger.debug("django_recs: a click on impression %s by another visitor",
                     clicked.impression_id)
        return None
    model = ContentType.objects.get_for_id(clicked.item_type_id).model_class()
    if model is None or not is_item_model(model):
        return None
    pk = pk_for_key(model, clicked.item_key)
    if not model._base_manager.filter(pk=pk).exists():
        return None
    if visitor.user_id is None and visitor.session_key is None:
        visitor = _with_new_session(request, visitor)
    using = router.db_for_write(Click)
    now = timezone.now()
    try:
        with transaction.atomic(using=using):
            click = Click.objects.using(using).create(
                impression_id=clicked.impression_id, position=clicked.position,
                item_type_id=clicked.item_type_id, item_key=clicked.item_key,
                user_id=visitor.user_id, session_key=visitor.session_key or "", clicked_at=now,
            )
            _record_interaction(clicked, visitor, now, using)
    except IntegrityError:  # this (impression, position) was clicked before: a replay
        return None
    return click


def _record_interaction(clicked: ClickToken, visitor, now, using: str) -> None:
    """The click as an interaction of CLICK_EVENT (nothing when unset, or for nobody known)."""
    event = recs_settings.CLICK_EVENT
    events = recs_settings.EVENTS
    if not event or event not in events or (visitor.user_id is None and not visitor.session_key):
        return
    try:
        weight = event_weight(event)
    except ValueError:  # a default weight manage.py check reports (E020): never written
        return
    insert_interaction(
        using=using, user_id=visitor.user_id, session_key=visitor.session_key or "",
        item_type_id=clicked.item_type_id, item_key=clicked.item_key, event=event,
        weight=weight, timestamp=now,
    )


def _with_new_session(request, visitor):
    """A visitor with no session yet gets one (its cookie is set with this response)."""
    session = getattr(request, "session", None)
    if session is None:
        return visitor
    session.save()  # creates the key and marks the session modified
    return visitor_of(request)
