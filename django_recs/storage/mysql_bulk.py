"""Bulk writes on MySQL/MariaDB: ``LOAD DATA LOCAL INFILE``, batch by batch.

The rows arrive as text batches in the format both LOAD DATA and
PostgreSQL's COPY read (tab-separated, ``\\N`` for NULL, backslash
escapes; see :mod:`django_recs.storage.write`). Each batch is written to a
temporary file by the calling thread while a loader thread sends the
previous file on the same connection, inside the caller's transaction.

LOAD DATA LOCAL turns what an INSERT would refuse into warnings; they are
read after each file and raised as Django's ``IntegrityError`` (a
duplicate key, a NULL in a NOT NULL column, a foreign key) or
``DataError`` (anything else), so the transaction rolls back as it would
after a failed INSERT.

It needs ``local_infile`` allowed by both sides: the connection's
``OPTIONS`` (``{"local_infile": 1}`` with mysqlclient) and the server's
``local_infile`` variable (ON by default on MariaDB, OFF on MySQL 8).
:func:`load_data_allowed` says whether both do; otherwise the writer falls
back to multi-row INSERTs.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterable

from django.db import DataError, IntegrityError

__all__ = ["load_data", "load_data_allowed"]

#: Warning codes that mean a constraint refused a row (IntegrityError): duplicate
#: key, NULL into NOT NULL, foreign key, out of range, a CHECK constraint (MySQL, MariaDB).
_INTEGRITY_CODES = {1048, 1062, 1216, 1217, 1364, 1451, 1452, 1690, 3819, 4025}


def load_data_allowed(connection) -> bool:
    """Whether ``connection`` may send ``LOAD DATA LOCAL INFILE`` (client and server allow it)."""
    if connection.vendor != "mysql":
        return False
    if not connection.settings_dict.get("OPTIONS", {}).get("local_infile"):
        return False
    cache = connection.__dict__.setdefault("_django_recs_cache", {})
    if "local_infile" not in cache:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@GLOBAL.local_infile")
            (value,) = cursor.fetchone()
        cache["local_infile"] = bool(int(value))
    return cache["local_infile"]


def load_data(connection, table: str, column_names: str, texts: Iterable[str]) -> None:
    """Load text batches into ``table`` (quoted) ``(column_names)`` on ``connection``.

    Call it inside ``transaction.atomic``; the caller's thread must not use
    the connection meanwhile. Raises IntegrityError or DataError for rows
    the server refused (nothing of the transaction is then kept).
    """
    sql = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4"
        " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
        f" ({column_names})"
    )
    raw = connection.connection  # the driver's connection, used by one thread at a time
    files: queue.Queue = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def loader() -> None:
        while (path := files.get()) is not None:
            try:
                if not failure:
                    _load_file(raw, sql, path)
            except BaseException as error:  # reported to the caller's thread
                failure.append(error)
            finally:
                os.unlink(path)

    thread = threading.Thread(target=loader, name="django-recs-load-data", daemon=True)
    thread.start()
    try:
        for text in texts:
            if failure:
                break
            handle, path = tempfile.mkstemp(prefix="django-recs-", suffix=".tsv")
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
                file.write(text)
            files.put(path)
    finally:
        files.put(None)
        thread.join()
    if failure:
        raise failure[0]


def _load_file(raw, sql: str, path: str) -> None:
    with connection_errors():
        cursor = raw.cursor()
        try:
            cursor.execute(sql, [path])
            if raw.warning_count():
                cursor.execute("SHOW WARNINGS LIMIT 5")
                warnings = cursor.fetchall()
                message = "; ".join(f"{code}: {text}" for _, code, text in warnings)
                codes = {code for _, code, _ in warnings}
                error = IntegrityError if codes & _INTEGRITY_CODES else DataError
                raise error(f"LOAD DATA refused rows: {message}")
        finally:
            cursor.close()


class connection_errors:
    """The driver's errors as Django's (as ``connection.wrap_database_errors`` does)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            return False
        import MySQLdb
        from django.db import utils

        if not isinstance(value, MySQLdb.Error):
            return False
        for name in ("DataError", "OperationalError", "IntegrityError", "InternalError",
                     "ProgrammingError", "NotSupportedError", "DatabaseError", "InterfaceError"):
            if isinstance(value, getattr(MySQLdb, name)):
                raise getattr(utils, name)(*value.args) from value
        raise utils.Error(*value.args) from value
