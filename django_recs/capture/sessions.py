"""A visitor's anonymous history joins their account on login."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import Signal, receiver

from .forgetting import is_forgotten
from .validation import checked_session_key, user_pk

__all__ = ["join_session", "session_joined"]

logger = logging.getLogger("django_recs.capture")

#: Sent by :func:`join_session` with ``session_keys`` (a list) and ``user_id``
#: after the sessions' interactions became the user's, so the layers above give
#: the user what else they keep per session (the feedback's clicks).
session_joined = Signal()


def join_session(session_keys: str | Iterable[str], user) -> int:
    """Give ``user`` the anonymous history of ``session_keys``; rows updated (one UPDATE).

    Then sends :data:`session_joined` (its receivers' rows are not counted).
    For a forgotten user the sessions' anonymous rows are deleted instead
    (they are now known to be that user's), :data:`session_joined` is not
    sent (nothing of theirs is joined) and 0 is returned.
    """
    from ..models import Interaction

    keys = [session_keys] if isinstance(session_keys, str) else list(session_keys)
    keys = [key for key in keys if _storable(key)]
    user_id = user_pk(user)
    if not keys or user_id is None:
        return 0
    anonymous = Interaction.objects.filter(user__isnull=True, session_key__in=keys)
    if is_forgotten(user_id):
        # The session turns out to be a forgotten user's: their history, not joined but erased.
        anonymous.delete()
        return 0
    joined = anonymous.update(user_id=user_id)
    session_joined.send(sender=Interaction, session_keys=keys, user_id=user_id)
    return joined


def _storable(key) -> bool:
    try:
        return bool(checked_session_key(key))
    except ValueError:  # a cookie no session could have: no row has it
        return False


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
