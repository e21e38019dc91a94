"""Locks a database gives: table locks for the swap, a named lock for starting runs.

The pipeline's swap reads the erasure list (``ForgottenUser``) in the same
transaction that makes a run the one served; an erasure committing in
between must not be missed. On PostgreSQL a SHARE lock on the table waits
for the inserts in flight and holds new ones until the swap commits. On
MySQL/MariaDB a locking read of the table (``LOCK IN SHARE MODE``) waits
for the inserts in flight (their rows are locked until they commit); an
erasure starting after it deletes the run's rows itself, as they are
written by then. SQLite runs one writing transaction at a time, which
already gives that.

Starting a run is single flight: at most one pending or running run per
algorithm. PostgreSQL and SQLite enforce it with a partial unique
constraint; Django creates none on MySQL/MariaDB, so there the start is
serialised by a named lock (``GET_LOCK``) per database and algorithm, see
:func:`run_start_lock`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, models

__all__ = ["RUN_START_LOCK_TIMEOUT", "RunStartLockTimeout", "hold_writes", "run_start_lock"]

#: Seconds a trigger waits for another trigger of the same algorithm to start its run.
RUN_START_LOCK_TIMEOUT = 30.0


class RunStartLockTimeout(RuntimeError):
    """Another process held the lock that starts a run of this algorithm for too long."""


def hold_writes(model: type[models.Model], *, using: str) -> bool:
    """Within the current transaction, wait for the writes in flight to ``model``'s table.

    On PostgreSQL the table is SHARE-locked, so new writes also wait until
    the transaction ends; on MySQL/MariaDB its rows are read with
    ``LOCK IN SHARE MODE``, which waits for uncommitted inserts. Returns True
    when a lock was taken, False elsewhere (SQLite: one writer at a time).
    Call it inside ``transaction.atomic``: the lock lasts until it ends.
    """
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    if connection.vendor == "postgresql":
        sql = f"LOCK TABLE {table} IN SHARE MODE"
    elif connection.vendor == "mysql":
        pk = connection.ops.quote_name(model._meta.pk.column)
        sql = f"SELECT COUNT({pk}) FROM {table} LOCK IN SHARE MODE"
    else:
        return False
    with connection.cursor() as cursor:
        cursor.execute(sql)
    return True


def run_start_lock_name(connection, algorithm: str) -> str:
    """The ``GET_LOCK`` name for starting runs of ``algorithm`` in ``connection``'s database.

    Named locks are server-wide: the database's name is part of it, so two
    shops (or two test databases) on one server do not wait for each other.
    Hashed, as a lock name has at most 64 characters.
    """
    key = f"{connection.settings_dict['NAME']}\0{algorithm}".encode()
    return "django_recs.run_start." + hashlib.sha256(key).hexdigest()[:40]


@contextmanager
def run_start_lock(
    algorithm: str, *, using: str, timeout: float = RUN_START_LOCK_TIMEOUT
) -> Iterator[bool]:
    """Hold the lock that serialises starting runs of ``algorithm``, where one is needed.

    On MySQL/MariaDB yields True while holding ``GET_LOCK`` (a named lock
    of the connection's session, released on leaving, whatever happens);
    elsewhere yields False at once, the database's constraint doing the
    job. Called outside a transaction, the run created under the lock is
    committed before another trigger reads; inside one, that trigger may not
    see the uncommitted run.

    Raises
    ------
    RunStartLockTimeout
        The lock was not granted within ``timeout`` seconds.
    """
    connection = connections[using]
    if connection.vendor != "mysql":
        yield False
        return
    name = run_start_lock_name(connection, algorithm)
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, %s)", [name, timeout])
        (granted,) = cursor.fetchone()
    if granted != 1:
        raise RunStartLockTimeout(
            f"could not start a run of {algorithm!r}: another trigger held the lock "
            f"{name!r} for more than {timeout:g} s (a stuck connection? see "
            "information_schema.METADATA_LOCK_INFO or performance_schema.metadata_locks)"
        )
    try:
        yield True
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT RELEASE_LOCK(%s)", [name])
