"""Recording what the visitor of a request did: record_view().

A view knows its visitor by ``request.user`` and ``request.session``; the
session key comes from a cookie, which is whatever the browser sent. This
module turns a request into the user and the *real* session key of
:func:`~django_recs.capture.record`, so a view never fails on a visitor's
cookie and never records under a key that no session has.
"""

from __future__ import annotations

import datetime
import logging

from django.db import models

from ..models import checked_session_key
from .recording import record

__all__ = ["record_view"]

logger = logging.getLogger("django_recs.capture")


def record_view(
    request,
    item: models.Model,
    event: str = "view",
    *,
    weight: float | None = None,
    timestamp: datetime.datetime | None = None,
    value: float | None = None,
):
    """Record that the visitor of ``request`` did ``event`` (a page view by default) on ``item``.

    The way to record from a view::

        def product_detail(request, pk):
            product = get_object_or_404(Product, pk=pk)
            django_recs.record_view(request, product)

    A signed-in visitor is recorded as their user (with the session, whose
    later anonymous history it joins). An anonymous visitor is recorded
    under their session, which is created when they have none — the key of
    a session that exists, not the cookie's text: a cookie naming no session
    (expired, made up) gets a new session, as Django itself would give.
    ``weight``, ``timestamp`` and ``value`` are record()'s.

    Returns
    -------
    Interaction or None
        None when nothing was recorded: the visitor's session cookie is one
        no session can have (over 40 characters, a NUL character; logged at
        INFO on the logger ``django_recs.capture``), or the user was
        forgotten (:func:`~django_recs.capture.forget_user`).

    Raises
    ------
    ValueError
        As :func:`~django_recs.capture.record`, for what the code passes (an
        item outside ITEM_MODELS, an unknown event, a bad weight or value), never for
        what the visitor sent.
    """
    session = getattr(request, "session", None)
    cookie_key = getattr(session, "session_key", None)  # the cookie's text: nothing loaded
    if cookie_key is not None and not _storable(cookie_key):
        # Checked before request.user, which loads the session with that key in SQL.
        logger.info("django_recs: %s not recorded: the session cookie (%d characters) "
                    "is no session key", event, len(str(cookie_key)))
        return None
    user = getattr(request, "user", None)
    signed_in = user is not None and getattr(user, "is_authenticated", False)
    session_key = _real_session_key(session, create=not signed_in)
    if not signed_in and session_key is None:
        return None  # no session middleware, or a session that cannot be stored (logged)
    return record(user if signed_in else None, item, event, weight=weight,
                  session_key=session_key, timestamp=timestamp, value=value)


def _storable(session_key) -> bool:
    try:
        checked_session_key(session_key)
    except ValueError:
        return False
    return True


def _real_session_key(session, *, create: bool) -> str | None:
    """The key of the visitor's stored session; a new session's when ``create`` and none exists.

    Loading the session (``in``) turns a key the store does not know into
    None, which is what Django does on the first access to the session.
    """
    if session is None:
        return None
    try:
        "_django_recs" in session  # noqa: B015 (loads the session)
        if session.session_key is None and create:
            session.save()  # a new, empty session: its cookie is set on the response
    except Exception:  # a session store that cannot read or write this key: not the page's fault
        logger.warning("django_recs: the visitor's session could not be loaded or created; "
                       "nothing recorded", exc_info=True)
        return None
    key = session.session_key
    return key if key is not None and _storable(key) else None
