"""Who a list is for: an account, an anonymous session, or nobody known.

A logged-in visitor's history is their account's plus the current session's
(interactions recorded before the session joined the account); an anonymous
visitor's is their session's. See :class:`django_recs.fallbacks.ListScope`
for the SQL reading it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import checked_session_key


@dataclass(frozen=True)
class Visitor:
    """An account id and/or a session key; both None for an unknown visitor."""

    user_id: int | None = None
    session_key: str | None = None

    @classmethod
    def of(cls, user=None, session_key: str | None = None) -> Visitor:
        """The visitor behind ``user`` (a user, AnonymousUser or None) and a session key.

        Anything that is not a saved, authenticated user counts as anonymous.
        Raises ValueError, before any SQL, for a session key no column holds
        (not a string, over 40 characters, a NUL character): the database
        would fail the statement, and with it the caller's transaction.
        """
        user_id = None
        if user is not None and getattr(user, "is_authenticated", False):
            user_id = getattr(user, "pk", None)
        return cls(user_id=user_id, session_key=checked_session_key(session_key) or None)

    @property
    def is_known(self) -> bool:
        return self.user_id is not None or self.session_key is not None
