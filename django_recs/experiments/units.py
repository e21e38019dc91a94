"""The visitor as experiments know them: a unit that a login does not change.

A list's visitor is an account or a session, and ``login()`` replaces the
session key; a variant drawn from either would change at login. So the
experiments hash a **unit** kept in the session's data (which ``login()``
keeps):

- an anonymous visitor gets a random unit (``"v..."``) the first time a
  placement in an experiment is served to them, stored in their session;
- a signed-in visitor's unit is their account's (:class:`ExperimentVisitor`,
  ``"u<pk>"`` unless a login gave it the anonymous unit of its session),
  copied into the session: the same variant on every device;
- at login, an account without a unit takes the session's, so the visitor
  keeps their variants; an account that has one keeps it (the session takes
  the account's: every device agrees from then on);
- without a request (``session_key=`` alone), a session's unit is a hash of
  its key (it changes at login: pass ``request=`` for sticky variants).

The session holds the unit, so the common request reads it from the session
it has already loaded: no query. An account's unit is read once per session
(then it is in the session) and kept per process.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections import OrderedDict

from ..serving.visitors import Visitor

__all__ = ["SESSION_KEY", "account_unit", "forget_account_unit", "join_login", "unit_for"]

logger = logging.getLogger("django_recs.experiments")

#: The session data key of the visitor's unit.
SESSION_KEY = "_recs_experiment_unit"
#: Accounts whose units a process keeps (a unit never changes once stored).
ACCOUNT_CACHE_SIZE = 10_000

_accounts: OrderedDict = OrderedDict()
_accounts_lock = threading.Lock()


def unit_for(visitor: Visitor, request=None) -> str | None:
    """The unit of ``visitor`` (or of ``request``'s session); None for an unknown visitor.

    May store the unit in ``request.session`` (an anonymous visitor then
    gets a session cookie with the response).
    """
    session = getattr(request, "session", None) if request is not None else None
    if session is not None:
        unit = session.get(SESSION_KEY)
        if isinstance(unit, str) and unit:
            return unit
    if visitor.user_id is not None:
        unit = account_unit(visitor.user_id)
    elif session is not None:
        unit = "v" + secrets.token_urlsafe(15)  # 120 random bits, 21 characters
    elif visitor.session_key:
        return "s" + hashlib.blake2b(visitor.session_key.encode(), digest_size=12).hexdigest()
    else:
        return None
    if session is not None:
        session[SESSION_KEY] = unit
    return unit


def account_unit(user_id) -> str:
    """The account's unit (created as ``"u<pk>"`` the first time it is asked for)."""
    from ..models import ExperimentVisitor

    with _accounts_lock:
        unit = _accounts.get(user_id)
        if unit is not None:
            _accounts.move_to_end(user_id)
            return unit
    row, _ = ExperimentVisitor.objects.get_or_create(user_id=user_id,
                                                     defaults={"unit": f"u{user_id}"})
    _remember(user_id, row.unit)
    return row.unit


def _remember(user_id, unit: str) -> None:
    with _accounts_lock:
        _accounts[user_id] = unit
        _accounts.move_to_end(user_id)
        while len(_accounts) > ACCOUNT_CACHE_SIZE:
            _accounts.popitem(last=False)


def forget_account_unit(sender=None, *, user_id, using: str = "default", **kwargs) -> dict[str, int]:
    """Delete the account's unit (``user_forgotten`` receiver); rows deleted per model label."""
    from ..models import ExperimentVisitor

    with _accounts_lock:
        _accounts.pop(user_id, None)
    count, _ = ExperimentVisitor.objects.using(using).filter(user_id=user_id).delete()
    return {ExperimentVisitor._meta.label: count}


def join_login(sender, request, user, **kwargs) -> None:
    """On login: an account without a unit takes the session's; else the session the account's.

    Never breaks a login: an error is logged.
    """
    from ..models import ExperimentVisitor

    session = getattr(request, "session", None) if request is not None else None
    user_id = getattr(user, "pk", None)
    if session is None or user_id is None:
        return
    try:
        anonymous = session.get(SESSION_KEY)
        row = ExperimentVisitor.objects.filter(user_id=user_id).first()
        if row is None and isinstance(anonymous, str) and anonymous:
            row, _ = ExperimentVisitor.objects.get_or_create(user_id=user_id,
                                                             defaults={"unit": anonymous})
        if row is not None:
            session[SESSION_KEY] = row.unit
            _remember(user_id, row.unit)
    except Exception:
        logger.exception("django_recs: the experiment unit of user %s was not joined", user_id)
