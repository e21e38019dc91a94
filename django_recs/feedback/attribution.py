"""Attribution: a conversion goes to the last click of the same visitor on the same item.

A conversion interaction (an event of CONVERSION_EVENTS: a purchase) is
attributed to the latest click on the same item by the same visitor made at
most ATTRIBUTION_WINDOW_DAYS before it (both ends included), and through that
click to its impression: the list, its placement, algorithm and run. "The
same visitor" is the same account, or for an anonymous click the same
session; clicks of a session become the account's when the visitor logs in
(:func:`~django_recs.feedback.privacy.join_session_clicks`), so an anonymous
visitor who clicks, logs in and buys keeps the attribution. A conversion
without such a click is attributed to nothing.
"""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.db.models import Q

__all__ = ["last_clicks"]


def last_clicks(conversions: list[dict], *, window: datetime.timedelta,
                using: str) -> list[tuple[dict, dict]]:
    """Pair each conversion with the click it is attributed to (conversions without one are left out).

    ``conversions`` are Interaction values with ``pk``, ``user_id``,
    ``session_key``, ``item_type_id``, ``item_key`` and ``timestamp``; the
    clicks paired with them are Click values with ``pk``, ``impression_id``,
    ``user_id``, ``session_key`` and ``clicked_at``. One query.
    """
    from ..models import Click

    if not conversions:
        return []
    users = {row["user_id"] for row in conversions if row["user_id"] is not None}
    sessions = {row["session_key"] for row in conversions if row["session_key"]}
    visitors = Q(pk__in=[])
    if users:
        visitors |= Q(user_id__in=users)
    if sessions:
        visitors |= Q(user__isnull=True, session_key__in=sessions)
    earliest = min(row["timestamp"] for row in conversions) - window
    latest = max(row["timestamp"] for row in conversions)
    clicks = (
        Click.objects.using(using)
        .filter(visitors, clicked_at__gte=earliest, clicked_at__lte=latest,
                item_key__in={row["item_key"] for row in conversions})
        .values("pk", "impression_id", "item_type_id", "item_key", "user_id", "session_key",
                "clicked_at")
    )
    by_item = defaultdict(list)
    for click in clicks:
        by_item[(click["item_type_id"], click["item_key"])].append(click)
    pairs = []
    for conversion in conversions:
        best = None
        for click in by_item.get((conversion["item_type_id"], conversion["item_key"]), ()):
            if not _same_visitor(conversion, click):
                continue
            if not conversion["timestamp"] - window <= click["clicked_at"] <= conversion["timestamp"]:
                continue
            if best is None or (click["clicked_at"], click["pk"]) > (best["clicked_at"], best["pk"]):
                best = click
        if best is not None:
            pairs.append((conversion, best))
    return pairs


def _same_visitor(conversion: dict, click: dict) -> bool:
    if conversion["user_id"] is not None and click["user_id"] == conversion["user_id"]:
        return True
    return (click["user_id"] is None and bool(conversion["session_key"])
            and click["session_key"] == conversion["session_key"])
