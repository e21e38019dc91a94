"""Interactions from a CSV file, for an evaluation without a database.

The columns are those of ``manage.py recs_import``: ``user,item,event,weight,timestamp``
(a header row names them; ``event`` and ``weight`` may be missing or empty).
A missing weight is the event's default weight; entries of an event in
``exclude_seen`` are "seen". ``.gz`` files are read compressed.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

from ..matrix import index_keys
from .interactions import TimedInteractions

REQUIRED_COLUMNS = ("user", "item", "timestamp")


def read_interactions_csv(
    path: str | Path,
    *,
    events: dict[str, float] | None = None,
    exclude_seen: list[str] | tuple[str, ...] = ("purchase",),
    default_event: str = "purchase",
) -> TimedInteractions:
    """Read ``user,item,event,weight,timestamp`` rows into :class:`TimedInteractions`.

    Parameters
    ----------
    path : str or Path
        A CSV file (``.gz`` for gzip) with a header row.
    events : dict, optional
        Event -> default weight (the EVENTS setting); default ``{"purchase": 1.0}``-like:
        every event weighs 1 when not listed and the row has no weight.
    exclude_seen : sequence of str
        Events that make an item "seen".
    default_event : str
        The event of rows without one.

    Returns
    -------
    TimedInteractions
        ``user_ids`` and ``item_ids`` hold the file's user and item values
        (as text), rows and columns numbered in their sorted order.

    Raises
    ------
    ValueError
        A missing column, or a row with an unreadable weight or time (named by line).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    events = events or {}
    users, items, weights, times, seen = [], [], [], [], []
    seen_events = set(exclude_seen)
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}")
        for line, row in enumerate(reader, start=2):
            event = (row.get("event") or "").strip() or default_event
            text = (row.get("weight") or "").strip()
            try:
                weight = float(text) if text else float(events.get(event, 1.0))
                moment = np.datetime64(row["timestamp"].strip().replace(" ", "T")[:19], "s")
            except ValueError as exc:
                raise ValueError(f"{path.name} line {line}: {exc}") from exc
            users.append(row["user"].strip())
            items.append(row["item"].strip())
            weights.append(weight)
            times.append(moment)
            seen.append(event in seen_events)
    user_ids, rows = index_keys(np.asarray(users, dtype=str))
    item_ids, cols = index_keys(np.asarray(items, dtype=str))
    return TimedInteractions(
        rows=rows,
        cols=cols,
        weights=np.asarray(weights, dtype=np.float32),
        timestamps=np.asarray(times, dtype="datetime64[s]"),
        shape=(len(user_ids), len(item_ids)),
        seen=np.asarray(seen, dtype=bool),
        user_ids=user_ids,
        item_ids=item_ids,
    )
