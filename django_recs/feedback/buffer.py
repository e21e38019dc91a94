"""The impressions of one process, kept in memory and written in bulk.

A page adds its lists' rows to the buffer (an append under a lock: a few
microseconds) and never waits for the database. The rows are written by

- a background thread, every IMPRESSION_FLUSH_SECONDS or as soon as
  FLUSH_ROWS rows wait, with ``COPY`` on PostgreSQL and batched INSERTs
  elsewhere (:func:`django_recs.storage.bulk_insert`), on a connection of its
  own;
- with IMPRESSION_FLUSH_SECONDS = 0, the request that buffered them, once its
  response is sent (``request_finished``): no thread (tests, small sites);
- :func:`flush_impressions`, at any time, in the calling thread (tests, a
  management command before it exits), and at interpreter exit.

A write that fails is logged, and its rows are kept for the next attempt; at
most MAX_BUFFERED_ROWS wait, the oldest being dropped (and counted in the log)
beyond that, so a database outage costs impressions, never memory or pages.
What a crash of the process loses: the rows not yet written, at most
IMPRESSION_FLUSH_SECONDS of its lists (a clean exit writes them).

After a fork (a server that imports the app, then forks its workers) the
child starts with an empty buffer and a thread of its own (``os.register_at_fork``).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from collections import deque

from django.core.signals import request_finished
from django.db import connections, router

from ..conf import recs_settings
from .ids import id_time

__all__ = ["FLUSH_ROWS", "MAX_BUFFERED_ROWS", "ImpressionBuffer", "buffer", "flush_impressions"]

logger = logging.getLogger("django_recs.feedback")

#: Rows that wake the writer thread before its interval is up.
FLUSH_ROWS = 5_000
#: Rows kept while the database cannot take them (about 25 MB); older ones are dropped beyond.
MAX_BUFFERED_ROWS = 50_000
#: The columns of a buffered row, in order (Impression's attribute names). ``shown_at``
#: is not among them: it is read from the id when the rows are written, off the page.
COLUMNS = ("id", "placement", "user_id", "session_key", "item_type_id", "source_key", "items",
           "sources", "algorithm", "run_id", "experiment_id", "variant", "visitor_unit")


class ImpressionBuffer:
    """Rows of Impression waiting to be written, and the thread that writes them."""

    def __init__(self, *, flush_rows: int = FLUSH_ROWS, max_rows: int = MAX_BUFFERED_ROWS):
        self.flush_rows = flush_rows
        self.max_rows = max_rows
        self._reset()
        atexit.register(self._flush_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pid = os.getpid()  # the process whose rows these are
        self._rows: deque[tuple] = deque()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one write at a time keeps the rows in order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self._failing = False

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: tuple) -> None:
        """Buffer one row (values in COLUMNS order). Never raises, never waits for the database."""
        with self._lock:
            self._rows.append(row)
            waiting = len(self._rows)
            if waiting > self.max_rows:
                self._rows.popleft()
                self.dropped += 1
        if _flush_interval():
            if self._thread is None:
                self._start_thread()
            if waiting >= self.flush_rows:
                self._wake.set()

    def drop_rows(self, matching) -> int:
        """Remove the buffered rows for which ``matching(row)`` is true; how many."""
        with self._lock:
            kept = [row for row in self._rows if not matching(row)]
            dropped = len(self._rows) - len(kept)
            self._rows = deque(kept)
        return dropped

    def take(self) -> list[tuple]:
        """Every buffered row, removed from the buffer."""
        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
        return rows

    def flush(self) -> int:
        """Write every buffered row now, in this thread; rows written.

        A write in flight in the writer thread is waited for first.

        A failed write is logged (once until a write succeeds again) and its
        rows go back to the front of the buffer; nothing is raised.
        """
        from ..models import Impression
        from ..storage import bulk_insert

        with self._write_lock:
            rows = self.take()
            if not rows:
                return 0
            using = router.db_for_write(Impression)
            try:
                rows = _without_forgotten(rows, using)
                if not rows:
                    return 0
                columns = dict(zip(COLUMNS, zip(*rows)))
                columns["shown_at"] = [id_time(impression_id) for impression_id in columns["id"]]
                written = bulk_insert(Impression, columns, using=using)
            except Exception:
                self._give_back(rows)
                if not self._failing:
                    logger.exception("django_recs: %d impressions could not be written; kept "
                                     "for the next attempt", len(rows))
                self._failing = True
                _discard_connection(using)
                return 0
            if self._failing:
                logger.warning("django_recs: impressions are written again")
            self._failing = False
            self.written += written
            if self.dropped:
                logger.warning("django_recs: %d impressions were dropped while the database "
                               "could not take them", self.dropped)
                self.dropped = 0
            return written

    def _give_back(self, rows: list[tuple]) -> None:
        with self._lock:
            self._rows.extendleft(reversed(rows))
            while len(self._rows) > self.max_rows:
                self._rows.popleft()
                self.dropped += 1

    # -- the writer thread ------------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._write_forever, daemon=True,
                                            name="django_recs impressions")
        self._thread.start()

    def _write_forever(self) -> None:
        while True:
            interval = _flush_interval()
            self._wake.wait(interval or 1.0)
            self._wake.clear()
            if not interval:  # set to 0 since: requests write their rows, the thread idles
                continue
            started = time.monotonic()
            try:
                self.flush()
                # As at the end of a request: CONN_MAX_AGE says how long a connection lives.
                for connection in connections.all(initialized_only=True):
                    connection.close_if_unusable_or_obsolete()
            except Exception:  # never let the thread die: the next round tries again
                logger.exception("django_recs: the impression writer failed")
            # A failing database is not hammered: at most one attempt per interval.
            if self._failing:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def _flush_at_exit(self) -> None:
        # Also when the buffer is empty: flush() waits for a write in flight (the
        # thread's rows are taken from the buffer while they are written).
        if self._pid == os.getpid():
            self.flush()


def _without_forgotten(rows: list[tuple], using: str) -> list[tuple]:
    """``rows`` but those of forgotten users (forget_user() in any process meanwhile)."""
    from ..capture.forgetting import forgotten_user_ids

    at = COLUMNS.index("user_id")
    user_ids = {row[at] for row in rows if row[at] is not None}
    if not user_ids:
        return rows
    forgotten = forgotten_user_ids(user_ids, using=using)
    return [row for row in rows if row[at] not in forgotten] if forgotten else rows


def _flush_interval() -> float:
    """IMPRESSION_FLUSH_SECONDS as seconds; 1.0 for a value that is no number >= 0 (E085)."""
    value = recs_settings.IMPRESSION_FLUSH_SECONDS
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 1.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 1.0


def _discard_connection(using: str) -> None:
    """Close this thread's connection after an error, so the next write opens a fresh one.

    Not inside a transaction (a test's, a view's): the failed write was a
    savepoint there, rolled back, and the transaction is the caller's.
    """
    connection = connections[using]
    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except Exception:
        logger.debug("django_recs: closing a broken connection failed", exc_info=True)


#: The process's buffer.
buffer = ImpressionBuffer()


def flush_impressions() -> int:
    """Write the impressions this process has buffered, now; rows written (0 on failure)."""
    return buffer.flush()


def _flush_after_request(sender, **kwargs) -> None:
    if not _flush_interval() and len(buffer):
        buffer.flush()


request_finished.connect(_flush_after_request, dispatch_uid="django_recs.feedback.flush")
