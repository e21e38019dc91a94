"""Impression ids: time-ordered UUIDs (version 7, RFC 9562) made in Python.

An id is made when a list is rendered, before its row is written, so a click
link can name the impression at once. Its first 48 bits are the Unix time in
milliseconds, so ids sort by time both as PostgreSQL ``uuid`` values and as
SQLite's hex text: a time range is an id range, read through the primary key
(the roll-up, the retention), and a click token's age is read from the id
alone. The other 74 bits are random: two processes making ids in the same
millisecond collide with probability about n² / 2^75.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
import uuid

__all__ = ["id_time", "new_impression_id", "smallest_id_at"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MILLISECOND = datetime.timedelta(milliseconds=1)
_RANDOM_12 = (1 << 12) - 1
_RANDOM_62 = (1 << 62) - 1
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62


class _RandomBits:
    """80-bit random numbers from the system's generator, read 256 at a time.

    One ``os.urandom`` call per 256 ids instead of one each; ``next()`` on a
    list iterator is atomic, so threads never share a number, and a forked
    child drops its parent's numbers (it would otherwise repeat them).
    """

    def __init__(self):
        self._numbers = iter(())
        self._lock = threading.Lock()

    def next(self) -> int:
        number = next(self._numbers, None)
        while number is None:
            with self._lock:
                raw = os.urandom(2560)
                self._numbers = iter([int.from_bytes(raw[i:i + 10], "big")
                                      for i in range(0, 2560, 10)])
            number = next(self._numbers, None)
        return number

    def forget(self) -> None:
        self._numbers = iter(())


_random_bits = _RandomBits()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random_bits.forget)


def new_impression_id(now_ms: int | None = None) -> uuid.UUID:
    """A new UUID version 7 for the current time (or ``now_ms``, Unix milliseconds)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    random = _random_bits.next()
    return uuid.UUID(int=(ms << 80) | _VERSION_7 | ((random >> 62) & _RANDOM_12) << 64
                     | _VARIANT | (random & _RANDOM_62))


def smallest_id_at(moment: datetime.datetime) -> uuid.UUID:
    """The bound below every id made at or after ``moment`` (aware), above every earlier one."""
    ms = (moment - _EPOCH) // _MILLISECOND  # exact: no float rounding at the boundary
    return uuid.UUID(int=max(ms, 0) << 80)


def id_time(impression_id: uuid.UUID) -> datetime.datetime:
    """When ``impression_id`` was made (UTC, millisecond precision)."""
    return _EPOCH + (impression_id.int >> 80) * _MILLISECOND
