"""Who a list is for: an account, an anonymous session, or nobody known.

The serving layer needs two things about a visitor, both as subqueries of
stored item keys so they join the single query of a list:

- :meth:`Visitor.seen_keys`: items of EXCLUDE_SEEN events (bought items by
  default), which are never recommended to that visitor again;
- :meth:`Visitor.recent_keys`: the most recent items of their history, from
  which recommendations are built at request time when none are stored.

A logged-in visitor's history is their account's plus the current session's
(interactions recorded before the session joined the account).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from .conf import recs_settings

#: How many of a visitor's most recent interactions feed request-time recommendations.
RECENT_HISTORY = 20


@dataclass(frozen=True)
class Visitor:
    """An account id and/or a session key; both None for an unknown visitor."""

    user_id: int | None = None
    session_key: str | None = None

    @classmethod
    def of(cls, user=None, session_key: str | None = None) -> Visitor:
        """The visitor behind ``user`` (a user, AnonymousUser or None) and a session key.

        Never raises: anything that is not a saved, authenticated user counts
        as anonymous.
        """
        user_id = None
        if user is not None and getattr(user, "is_authenticated", False):
            user_id = getattr(user, "pk", None)
        return cls(user_id=user_id, session_key=session_key or None)

    @property
    def is_known(self) -> bool:
        return self.user_id is not None or self.session_key is not None

    def _own_interactions(self, content_type_id: int) -> QuerySet:
        from .models import Interaction

        mine = Q()
        if self.user_id is not None:
            mine |= Q(user_id=self.user_id)
        if self.session_key is not None:
            # Session rows not yet joined to an account (the partial index).
            mine |= Q(session_key=self.session_key, user__isnull=True)
        return Interaction.objects.filter(mine, item_type_id=content_type_id)

    def seen_keys(self, content_type_id: int) -> QuerySet | None:
        """Keys of items this visitor must not be offered again, or None."""
        events = list(recs_settings.EXCLUDE_SEEN or ())
        if not self.is_known or not events:
            return None
        return (
            self._own_interactions(content_type_id)
            .filter(event__in=events)
            .order_by()
            .values("item_key")
        )

    def recent_keys(self, content_type_id: int, limit: int = RECENT_HISTORY) -> QuerySet | None:
        """Keys of the ``limit`` most recent interactions (repeats possible), or None."""
        if not self.is_known:
            return None
        return (
            self._own_interactions(content_type_id)
            .order_by("-timestamp", "-pk")
            .values("item_key")[:limit]
        )
