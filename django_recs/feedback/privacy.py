"""The feedback's share of a user's erasure and of an anonymous session joining an account.

Capture sends the signals (it knows nothing of the feedback):

- ``user_forgotten`` (``forget_user()``, ``recs_forget``): the user's
  impressions, clicks and conversions are deleted, in the same transaction;
- ``session_joined`` (login): the session's clicks and conversions become
  the account's, so a visitor who clicked before logging in keeps the
  attribution of what they buy after.

Impressions of an anonymous session are not given to the account: nothing
reads them by visitor, and they expire with IMPRESSION_RETENTION_DAYS.
"""

from __future__ import annotations

from ..capture import session_joined, user_forgotten
from .buffer import buffer

__all__ = ["connect", "forget_user_feedback", "join_session_clicks"]


def forget_user_feedback(sender, *, user_id, using: str, **kwargs) -> dict[str, int]:
    """Delete the user's impressions, clicks and conversions; rows deleted per model label.

    The user's rows still in this process's impression buffer are dropped too.
    """
    from ..models import Click, Conversion, Impression

    _drop_buffered(user_id)
    deleted = {}
    for model in (Impression, Click, Conversion):
        count, _ = model.objects.using(using).filter(user_id=user_id).delete()
        deleted[model._meta.label] = count
    return deleted


def _drop_buffered(user_id) -> None:
    from .buffer import COLUMNS

    at = COLUMNS.index("user_id")
    buffer.drop_rows(lambda row: row[at] == user_id)


def join_session_clicks(sender, *, session_keys, user_id, **kwargs) -> None:
    """The anonymous clicks and conversions of ``session_keys`` become ``user_id``'s."""
    from ..models import Click, Conversion

    for model in (Click, Conversion):
        model.objects.filter(user__isnull=True, session_key__in=session_keys).update(
            user_id=user_id)


def connect() -> None:
    """Connect the receivers (from ``AppConfig.ready()``)."""
    user_forgotten.connect(forget_user_feedback, dispatch_uid="django_recs.feedback.forget")
    session_joined.connect(join_session_clicks, dispatch_uid="django_recs.feedback.join")
