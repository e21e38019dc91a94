"""Interactions from a CSV file, for an evaluation without a database.

The file is in the format of ``manage.py recs_import``::

    user,item,event,weight,timestamp,session_key
    17,shop.product:42,purchase,2,2011-12-09 12:50:00,
    ,shop.product:7,view,,2011-12-09T12:51:00+01:00,3x9k2...

The header row is optional (without one the columns are in this order).
An empty ``event`` is "view", an empty ``weight`` the event's default weight
(EVENTS); entries of an event in ``exclude_seen`` are "seen". A row without a
user is an anonymous visitor, keyed by its session. Times are ISO 8601; one
without an offset is taken as UTC, and the evaluation needs every row's time.
Items are kept as the text in the file. ``.gz`` files are read compressed.
"""

from __future__ import annotations

import csv
import gzip
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..matrix import index_keys
from .interactions import TimedInteractions

CSV_COLUMNS = ("user", "item", "event", "weight", "timestamp", "session_key")


def read_interactions_csv(
    path: str | Path,
    *,
    events: dict[str, float] | None = None,
    exclude_seen: list[str] | tuple[str, ...] = ("purchase",),
    default_event: str = "view",
) -> TimedInteractions:
    """Read a ``recs_import`` CSV into :class:`TimedInteractions`.

    Parameters
    ----------
    path : str or Path
        A CSV file (``.gz`` for gzip), with or without a header row.
    events : dict, optional
        Event -> default weight (the EVENTS setting); an event not listed
        weighs 1 where the row has no weight.
    exclude_seen : sequence of str
        Events that make an item "seen" (EXCLUDE_SEEN).
    default_event : str
        The event of rows without one.

    Returns
    -------
    TimedInteractions
        ``user_ids`` holds the file's user values (``"session:<key>"`` for
        anonymous rows) and ``item_ids`` its item values, rows and columns
        numbered in their sorted order.

    Raises
    ------
    ValueError
        A missing column, or a row without user and session, without a
        time, or with an unreadable weight or time (named by its line).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    events = events or {}
    seen_events = set(exclude_seen)
    users, items, weights, times, seen = [], [], [], [], []
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            raise ValueError(f"{path.name}: the file is empty")
        names = [cell.strip().lower() for cell in first]
        has_header = "user" in names or "item" in names
        columns = names if has_header else list(CSV_COLUMNS[: len(first)])
        missing = [name for name in ("user", "item", "timestamp") if name not in columns]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}")
        position = {name: columns.index(name) for name in CSV_COLUMNS if name in columns}
        rows = reader if has_header else _chain_first(first, reader)
        for line, row in enumerate(rows, start=2 if has_header else 1):
            if not any(cell.strip() for cell in row):
                continue

            def cell(name: str, row=row) -> str:
                index = position.get(name)
                return row[index].strip() if index is not None and index < len(row) else ""

            event = cell("event") or default_event
            user = cell("user") or (f"session:{cell('session_key')}" if cell("session_key") else "")
            if not user:
                raise ValueError(f"{path.name} line {line}: no user and no session_key")
            if not cell("timestamp"):
                raise ValueError(f"{path.name} line {line}: no timestamp (the evaluation needs one)")
            try:
                weight = float(cell("weight")) if cell("weight") else float(events.get(event, 1.0))
                moment = _utc_seconds(cell("timestamp"))
            except ValueError as exc:
                raise ValueError(f"{path.name} line {line}: {exc}") from exc
            users.append(user)
            items.append(cell("item"))
            weights.append(weight)
            times.append(moment)
            seen.append(event in seen_events)
    user_ids, row_index = index_keys(np.asarray(users, dtype=str))
    item_ids, col_index = index_keys(np.asarray(items, dtype=str))
    return TimedInteractions(
        rows=row_index,
        cols=col_index,
        weights=np.asarray(weights, dtype=np.float32),
        timestamps=np.asarray(times, dtype=np.int64),
        shape=(len(user_ids), len(item_ids)),
        seen=np.asarray(seen, dtype=bool),
        user_ids=user_ids,
        item_ids=item_ids,
    )


def _chain_first(first, rest):
    yield first
    yield from rest


def _utc_seconds(text: str) -> int:
    """Seconds since the epoch of an ISO 8601 time (no offset = UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())
