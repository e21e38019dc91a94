"""Retention: raw feedback rows older than IMPRESSION_RETENTION_DAYS are deleted.

Only rows the roll-up has counted are deleted (their numbers live on in
DailyFeedback), in chunks of a transaction each. Impressions go by id range
(ids are time-ordered); clicks and conversions with the impression they name.
An anonymous visitor's rows, which nothing else ties to a person, are gone
with them; a user's go earlier with forget_user().
"""

from __future__ import annotations

import datetime

from django.db import transaction

from ..conf import recs_settings
from .ids import smallest_id_at

__all__ = ["DELETE_CHUNK", "delete_expired"]

#: Rows deleted per statement (and transaction).
DELETE_CHUNK = 10_000


def delete_expired(now: datetime.datetime, *, using: str) -> dict[str, int]:
    """Delete the rolled-up impressions, clicks and conversions older than the retention.

    Returns ``{model label: rows deleted}``.
    """
    from ..models import Click, Conversion, FeedbackRollup, Impression

    state = FeedbackRollup.objects.using(using).filter(pk=1).first()
    if state is None or state.impressions_until is None:
        return {}
    days = float(recs_settings.IMPRESSION_RETENTION_DAYS)
    bound = min(smallest_id_at(now - datetime.timedelta(days=days)), state.impressions_until)
    deleted = {}
    for model, rows in (
        (Conversion, Conversion.objects.filter(impression_id__lt=bound,
                                               interaction_id__lte=state.interactions_until)),
        (Click, Click.objects.filter(impression_id__lt=bound, pk__lte=state.clicks_until)),
        (Impression, Impression.objects.filter(id__lt=bound)),
    ):
        deleted[model._meta.label] = _delete_in_chunks(model, rows.using(using), using)
    return deleted


def _delete_in_chunks(model, rows, using: str) -> int:
    total = 0
    while True:
        with transaction.atomic(using=using):
            ids = list(rows.values_list("pk", flat=True)[:DELETE_CHUNK])
            if not ids:
                return total
            count, _ = model.objects.using(using).filter(pk__in=ids).delete()
            total += count
