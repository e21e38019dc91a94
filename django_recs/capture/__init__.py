"""Capture: the shop's events written as interactions.

- :mod:`.recording` — ``record()`` (one INSERT in the caller's transaction)
  and ``record_many()`` (validated, in bulk);
- :mod:`.visitors` — ``record_view(request, item)``: the request's user and
  real session, never an error for the visitor's cookie;
- :mod:`.validation` — the checks every written value goes through;
- :mod:`.sources` and :mod:`.signals` — SOURCES / ``register_source()``:
  model saves recorded as interactions;
- :mod:`.importing` — the CSV import and the backfill of existing rows;
- :mod:`.sessions` — an anonymous visitor's history joins the account on login;
- :mod:`.forgetting` — ``forget_user()`` (an erasure that stays erased:
  a tombstone every way in respects), ``unforget_user()``, and an item's
  deletion.

Capture writes interactions only: it never imports the pipeline, serving or
Celery tasks.
"""

from __future__ import annotations

from .forgetting import (
    forget_item,
    forget_user,
    forget_user_details,
    is_forgotten,
    unforget_user,
    user_forgotten,
)
from .recording import insert_interaction, record, record_many, user_history_changed
from .sessions import join_session, session_joined
from .signals import connect_sources, register_source, unregister_source
from .visitors import record_view

__all__ = [
    "connect_sources",
    "forget_item",
    "forget_user",
    "forget_user_details",
    "insert_interaction",
    "is_forgotten",
    "join_session",
    "record",
    "record_many",
    "record_view",
    "register_source",
    "session_joined",
    "unforget_user",
    "unregister_source",
    "user_forgotten",
    "user_history_changed",
]
