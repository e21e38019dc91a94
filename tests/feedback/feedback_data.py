"""Impressions, clicks and purchases written straight into the tables, at chosen times."""

from __future__ import annotations

import datetime

from django_recs.feedback.ids import id_time, new_impression_id
from django_recs.items import item_content_type, item_key
from django_recs.models import Click, Impression, Interaction

START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.timezone.utc)


def ms(moment: datetime.datetime) -> int:
    return (moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) \
        // datetime.timedelta(milliseconds=1)


def shown(at: datetime.datetime, items, *, placement="home", algorithm="personal", run=None,
          user=None, session_key="") -> Impression:
    """An impression of ``items`` shown at ``at`` (its id made for that time)."""
    impression_id = new_impression_id(now_ms=ms(at))
    return Impression.objects.create(
        id=impression_id, shown_at=id_time(impression_id), placement=placement,
        algorithm=algorithm, run=run, user=user, session_key=session_key,
        item_type=item_content_type(items[0]), items=",".join(item_key(i) for i in items),
        sources=",".join(["personal"] * len(items)),
    )


def clicked(impression: Impression, position: int, item, at: datetime.datetime, *, user=None,
            session_key="") -> Click:
    return Click.objects.create(
        impression_id=impression.id, position=position, item_type=item_content_type(item),
        item_key=item_key(item), user=user, session_key=session_key, clicked_at=at,
    )


def bought(item, at: datetime.datetime, *, user=None, session_key="", value=None,
           event="purchase") -> Interaction:
    return Interaction.objects.create(
        user=user, session_key=session_key, item_type=item_content_type(item),
        item_key=item_key(item), event=event, weight=5.0, timestamp=at, value=value,
    )


def later(days=0.0, **kwargs) -> datetime.datetime:
    return START + datetime.timedelta(days=days, **kwargs)

