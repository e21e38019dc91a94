"""The roll-up: impressions, clicks and conversions counted into DailyFeedback, incrementally.

:func:`roll_up` (the ``django_recs.roll_up_feedback`` task, ``manage.py
recs_rollup``) reads only what arrived since the previous roll-up, from where
:class:`~django_recs.models.FeedbackRollup` says it stopped:

1. **impressions** by id range (ids are time-ordered): per day shown,
   placement, algorithm and run, one ``GROUP BY``;
2. **clicks** by id: each added to the day row of its impression (clicks
   count on the day their list was shown), and to ``clicked`` when it is its
   impression's first;
3. **conversions**: interactions of CONVERSION_EVENTS by id, each attributed
   (:mod:`.attribution`) and written as a Conversion, its value added to the
   impression's day row as revenue.

Each step works in chunks of CHUNK_ROWS rows, each chunk one transaction that
also moves the step's mark: a roll-up that dies leaves every chunk counted
exactly once, and two roll-ups at once take turns (the mark's row is locked).
Only *settled* rows are read: impressions shown, clicks made and conversions
timestamped at least ``settle`` ago (SETTLE, 5 minutes), so the rows still in
the web processes' buffers, or in transactions not yet committed, are in the
database by the time the roll-up reaches them. Then the raw rows older than
IMPRESSION_RETENTION_DAYS and already rolled up are deleted
(:mod:`.retention`); the roll-ups stay.

Runs and items are not looked up: an impression of a run deleted since
(KEEP_RUNS) still counts under that run's id, and one that shows an item
deleted since still counts; neither stops a roll-up.
"""

from __future__ import annotations

import datetime
import itertools
from collections import defaultdict
from dataclasses import dataclass, field, fields

from django.db import router, transaction
from django.db.models import Count, FloatField, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from ..conf import recs_settings
from .clicks import attribution_window
from .ids import smallest_id_at

__all__ = ["CHUNK_ROWS", "SETTLE", "Counts", "RollupResult", "roll_up"]

#: Rows read per chunk (and per transaction).
CHUNK_ROWS = 10_000
#: How old a row must be to be rolled up: the buffers' write interval and a
#: request's transaction are far shorter.
SETTLE = datetime.timedelta(minutes=5)


@dataclass
class Counts:
    """What is added to one DailyFeedback row."""

    impressions: int = 0
    clicked: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0


@dataclass
class RollupResult:
    """What one roll-up read, counted, and deleted."""

    impressions: int = 0
    clicks: int = 0
    clicks_without_impression: int = 0
    conversions: int = 0
    conversions_without_impression: int = 0
    deleted: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def roll_up(*, settle: datetime.timedelta = SETTLE, now: datetime.datetime | None = None,
            using: str | None = None, retention: bool = True) -> RollupResult:
    """Count what arrived since the last roll-up into DailyFeedback; delete expired raw rows.

    Parameters
    ----------
    settle : timedelta
        Rows younger than this wait for the next roll-up (0: everything in
        the database now, for tests and a shop with nothing writing).
    now : datetime, optional
        The current time (tests).
    using : str, optional
        The database (default: the router's for DailyFeedback).
    retention : bool
        Delete the raw rows older than IMPRESSION_RETENTION_DAYS afterwards.

    Returns
    -------
    RollupResult
        Rows counted per kind, clicks and conversions whose impression is
        missing (never written, lost in a crash), rows deleted per model.
    """
    from ..models import DailyFeedback, FeedbackRollup
    from .retention import delete_expired

    now = now or timezone.now()
    horizon = now - settle
    using = using or router.db_for_write(DailyFeedback)
    result = RollupResult()
    while _impressions_chunk(horizon, using, result):
        pass
    while _clicks_chunk(horizon, using, result):
        pass
    while _conversions_chunk(horizon, using, result):
        pass
    if retention:
        result.deleted = delete_expired(now, using=using)
    FeedbackRollup.objects.using(using).filter(pk=1).update(rolled_up_at=now)
    return result


def _locked_state(using: str):
    """The roll-up's marks, locked until the transaction ends (created at the first roll-up)."""
    from ..models import FeedbackRollup

    FeedbackRollup.objects.using(using).get_or_create(pk=1)
    return FeedbackRollup.objects.using(using).select_for_update().get(pk=1)


def _impressions_chunk(horizon, using: str, result: RollupResult) -> bool:
    """Count the next CHUNK_ROWS settled impressions; whether more may follow."""
    from ..models import Impression

    bound = smallest_id_at(horizon)
    with transaction.atomic(using=using):
        state = _locked_state(using)
        rows = Impression.objects.using(using).filter(id__lt=bound)
        if state.impressions_until is not None:
            rows = rows.filter(id__gte=state.impressions_until)
        beyond = list(rows.order_by("id").values_list("id", flat=True)[CHUNK_ROWS:CHUNK_ROWS + 1])
        end = beyond[0] if beyond else bound
        groups = (
            rows.filter(id__lt=end).order_by()
            .values("placement", "algorithm", "run_id", day=TruncDate("shown_at"))
            .annotate(count=Count("id"))
        )
        deltas = defaultdict(Counts)
        for group in groups:
            key = (group["day"], group["placement"], group["algorithm"], group["run_id"])
            deltas[key].impressions += group["count"]
            result.impressions += group["count"]
        add_to_days(deltas, using)
        if state.impressions_until is None or end > state.impressions_until:
            state.impressions_until = end
            state.save(update_fields=["impressions_until"])
    return bool(beyond)


def _clicks_chunk(horizon, using: str, result: RollupResult) -> bool:
    """Count the next settled clicks on their impressions' day rows; whether more may follow."""
    from ..models import Click

    with transaction.atomic(using=using):
        state = _locked_state(using)
        fetched = list(
            Click.objects.using(using).filter(pk__gt=state.clicks_until).order_by("pk")
            .values("pk", "impression_id", "clicked_at")[:CHUNK_ROWS]
        )
        # In id order up to the first one too recent: ids are taken before commit.
        settled = list(itertools.takewhile(lambda c: c["clicked_at"] < horizon, fetched))
        if not settled:
            return False
        impressions = _impressions_of({c["impression_id"] for c in settled}, using)
        clicked_before = set(
            Click.objects.using(using)
            .filter(impression_id__in={c["impression_id"] for c in settled},
                    pk__lte=state.clicks_until)
            .values_list("impression_id", flat=True)
        )
        deltas = defaultdict(Counts)
        for click in settled:
            impression = impressions.get(click["impression_id"])
            if impression is None:
                result.clicks_without_impression += 1
                continue
            counts = deltas[_day_key(impression)]
            counts.clicks += 1
            if click["impression_id"] not in clicked_before:
                counts.clicked += 1
                clicked_before.add(click["impression_id"])
            result.clicks += 1
        add_to_days(deltas, using)
        state.clicks_until = settled[-1]["pk"]
        state.save(update_fields=["clicks_until"])
    return len(settled) == CHUNK_ROWS


def _conversions_chunk(horizon, using: str, result: RollupResult) -> bool:
    """Attribute the next settled conversion interactions; whether more may follow."""
    from ..models import Conversion, Interaction
    from .attribution import last_clicks

    events = list(recs_settings.CONVERSION_EVENTS or ())
    if not events:
        return False
    with transaction.atomic(using=using):
        state = _locked_state(using)
        fetched = list(
            Interaction.objects.using(using)
            .filter(pk__gt=state.interactions_until, event__in=events).order_by("pk")
            .values("pk", "user_id", "session_key", "item_type_id", "item_key", "timestamp",
                    "value")[:CHUNK_ROWS]
        )
        settled = list(itertools.takewhile(lambda i: i["timestamp"] < horizon, fetched))
        if not settled:
            return False
        done = set(Conversion.objects.using(using)
                   .filter(interaction_id__in=[i["pk"] for i in settled])
                   .values_list("interaction_id", flat=True))
        pairs = [(i, c) for i, c in last_clicks(settled, window=attribution_window(), using=using)
                 if i["pk"] not in done]
        impression_ids = {click["impression_id"] for _, click in pairs}
        impressions = _impressions_of(impression_ids, using)
        converted = set(Conversion.objects.using(using)
                        .filter(click_id__in={click["pk"] for _, click in pairs})
                        .values_list("click_id", flat=True))
        revenue = dict(
            Conversion.objects.using(using).filter(impression_id__in=impression_ids)
            .values("impression_id").order_by()
            .annotate(total=Sum(Coalesce("value", Value(0.0), output_field=FloatField())))
            .values_list("impression_id", "total")
        )
        deltas = defaultdict(Counts)
        written = []
        for interaction, click in pairs:
            impression = impressions.get(click["impression_id"])
            if impression is None:
                result.conversions_without_impression += 1
                continue
            value = interaction["value"]
            counts = deltas[_day_key(impression)]
            if click["pk"] not in converted:
                counts.conversions += 1
                converted.add(click["pk"])
            before = revenue.get(click["impression_id"], 0.0)
            after = before + (value or 0.0)
            counts.revenue += after - before
            # Per impression, so the revenue per mille gets its variance (intervals.py).
            counts.revenue_squares += after * after - before * before
            revenue[click["impression_id"]] = after
            written.append(Conversion(
                interaction_id=interaction["pk"], click_id=click["pk"],
                impression_id=click["impression_id"], user_id=interaction["user_id"],
                session_key=interaction["session_key"], value=value,
                converted_at=interaction["timestamp"],
            ))
            result.conversions += 1
        Conversion.objects.using(using).bulk_create(written)
        add_to_days(deltas, using)
        state.interactions_until = settled[-1]["pk"]
        state.save(update_fields=["interactions_until"])
    return len(settled) == CHUNK_ROWS


def _impressions_of(ids: set, using: str) -> dict:
    """id -> the values of each of these impressions that exists."""
    from ..models import Impression

    return {
        row["id"]: row
        for row in Impression.objects.using(using).filter(id__in=ids)
        .values("id", "shown_at", "placement", "algorithm", "run_id")
    }


def _day_key(impression: dict) -> tuple:
    """(day, placement, algorithm, run id) of an impression's DailyFeedback row.

    The day in the current time zone, as TruncDate reads it in SQL.
    """
    shown = impression["shown_at"]
    day = timezone.localdate(shown) if timezone.is_aware(shown) else shown.date()
    return day, impression["placement"], impression["algorithm"], impression["run_id"]


def add_to_days(deltas: dict[tuple, Counts], using: str) -> None:
    """Add ``deltas`` ({(day, placement, algorithm, run id): Counts}) to their DailyFeedback rows.

    Rows are created where missing. Called inside a roll-up's transaction,
    which holds the lock on the marks: no other writer of these rows.
    """
    from ..models import DailyFeedback

    if not deltas:
        return
    existing = {
        (row.day, row.placement, row.algorithm, row.run_id): row
        for row in DailyFeedback.objects.using(using).filter(
            day__in={key[0] for key in deltas}, placement__in={key[1] for key in deltas},
            algorithm__in={key[2] for key in deltas})
    }
    names = [f.name for f in fields(Counts)]
    created, changed = [], []
    for (day, placement, algorithm, run_id), counts in deltas.items():
        row = existing.get((day, placement, algorithm, run_id))
        if row is None:
            created.append(DailyFeedback(day=day, placement=placement, algorithm=algorithm,
                                         run_id=run_id, **{n: getattr(counts, n) for n in names}))
            continue
        for name in names:
            setattr(row, name, getattr(row, name) + getattr(counts, name))
        changed.append(row)
    DailyFeedback.objects.using(using).bulk_create(created)
    DailyFeedback.objects.using(using).bulk_update(changed, names)
