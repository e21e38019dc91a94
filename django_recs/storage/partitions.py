"""One PostgreSQL partition per run for the result tables.

On PostgreSQL the result tables (similar items, recommendations, popular
items) are partitioned by ``run_id`` (migration 0007). A run's rows are
bulk-written into a table of their own that has no index yet, the indexes
are built once over the whole table (a sorted build, several times faster
than maintaining them row by row) and the table is attached as the run's
partition. Dropping a finished run is then ``DROP TABLE``, not millions of
deletes.

Rows written by anything else (a test's ORM ``create()``, rows of a run
that already has rows in the default partition) go through the parent to
the ``DEFAULT`` partition, and are deleted with ordinary batched deletes.
On other databases nothing here is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager

import numpy as np
from django.db import connections, models, transaction

__all__ = [
    "create_run_partition",
    "default_partition_name",
    "drop_run_partition",
    "is_partitioned",
    "partition_name",
    "run_partition_exists",
    "write_run_partition",
]

#: How long cleanup waits for the parent's lock before leaving a partition for next time.
DROP_LOCK_TIMEOUT = "5s"


def partition_name(model: type[models.Model], run_id: int) -> str:
    """The table holding ``model``'s rows of run ``run_id``."""
    return f"{model._meta.db_table}_run{int(run_id)}"


def default_partition_name(model: type[models.Model]) -> str:
    return f"{model._meta.db_table}_default"


def is_partitioned(model: type[models.Model], using: str) -> bool:
    """True when ``model``'s table is a PostgreSQL table partitioned by run."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        return cursor.fetchone() is not None


def run_partition_exists(model: type[models.Model], run_id: int, using: str) -> bool:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(model, run_id)])
        return bool(cursor.fetchone()[0])


@contextmanager
def _run_lock(model: type[models.Model], run_id: int, using: str):
    """Serialise partition creation for one (table, run) across connections.

    A session lock held until after the creating transaction commits, so a
    second writer (another shard) waits and then finds the partition.
    """
    key = [f"django_recs:{model._meta.db_table}", int(run_id)]
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", key)
    try:
        yield
    finally:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", key)


def write_run_partition(
    model: type[models.Model],
    run_id: int,
    chunks: Iterable[Mapping[str, np.ndarray]],
    *,
    using: str,
) -> int | None:
    """Write a run's rows as a new partition of their own; rows written.

    Returns None (and writes nothing) when the run cannot get a partition of
    its own — it already has one, or some of its rows are in the default
    partition — so the caller appends through the parent table instead.
    The table is created, filled, indexed and attached in one transaction:
    a failure leaves no trace.
    """
    from .copy_binary import copy_binary

    with _run_lock(model, run_id, using):
        if run_partition_exists(model, run_id, using) or _has_default_rows(model, run_id, using):
            return None
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            part = _create_table(model, run_id, cursor)
            written = copy_binary(model, chunks, using=using, table=part)
            _index_and_attach(model, run_id, cursor)
    return written


def create_run_partition(model: type[models.Model], run_id: int, *, using: str) -> bool:
    """Create a run's partition empty, indexed and attached; False if it cannot have one.

    For a run whose rows come from several writers at once (shards on
    several workers): they append to it concurrently instead of waiting for
    the first to fill and index it.
    """
    with _run_lock(model, run_id, using):
        if run_partition_exists(model, run_id, using):
            return True
        if _has_default_rows(model, run_id, using):
            return False
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            _create_table(model, run_id, cursor)
            _index_and_attach(model, run_id, cursor)
    return True


def _create_table(model: type[models.Model], run_id: int, cursor) -> str:
    quote = cursor.db.ops.quote_name
    part = partition_name(model, run_id)
    cursor.execute(
        f"CREATE TABLE {quote(part)} (LIKE {quote(model._meta.db_table)} INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS)"
    )
    return part


def _index_and_attach(model: type[models.Model], run_id: int, cursor) -> None:
    """Build the parent's indexes on the run's table, then attach it as the run's partition."""
    quote = cursor.db.ops.quote_name
    parent, part = model._meta.db_table, partition_name(model, run_id)
    # Built over the whole table at once; ATTACH adopts them as the partitions
    # of the parent's partitioned indexes.
    for columns in _parent_index_columns(parent, cursor):
        cursor.execute(f"CREATE INDEX ON {quote(part)} ({', '.join(quote(c) for c in columns)})")
    cursor.execute(f"ALTER TABLE {quote(part)} ADD PRIMARY KEY ({quote('id')})")
    # The check lets ATTACH skip scanning the new table for foreign rows.
    cursor.execute(
        f"ALTER TABLE {quote(part)} ADD CONSTRAINT {quote(part + '_run')} "
        f"CHECK ({quote('run_id')} IS NOT NULL AND {quote('run_id')} = {int(run_id)})"
    )
    cursor.execute(
        f"ALTER TABLE {quote(parent)} ATTACH PARTITION {quote(part)} FOR VALUES IN ({int(run_id)})"
    )
    cursor.execute(f"ANALYZE {quote(part)}")


def drop_run_partition(model: type[models.Model], run_id: int, *, using: str) -> int:
    """Drop a run's partition; the rows it held (0 when it has none).

    Dropping takes the parent's exclusive lock for an instant; a reader
    holding it longer than DROP_LOCK_TIMEOUT makes this raise, and the
    partition is left for the next cleanup.
    """
    connection = connections[using]
    if not run_partition_exists(model, run_id, using):
        return 0
    quote = connection.ops.quote_name
    part = partition_name(model, run_id)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
        cursor.execute(f"SELECT count(*) FROM {quote(part)}")
        rows = int(cursor.fetchone()[0])
        cursor.execute(f"DROP TABLE {quote(part)}")
    return rows


def _has_default_rows(model: type[models.Model], run_id: int, using: str) -> bool:
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [default_partition_name(model)])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(
            f"SELECT 1 FROM {quote(default_partition_name(model))} WHERE {quote('run_id')} = %s "
            "LIMIT 1",
            [int(run_id)],
        )
        return cursor.fetchone() is not None


def _parent_index_columns(parent: str, cursor) -> list[list[str]]:
    """Column names of each (partitioned) index of the parent table, in order."""
    cursor.execute(
        """
        SELECT array_agg(a.attname ORDER BY k.position)
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = to_regclass(%s)
        GROUP BY i.indexrelid
        ORDER BY i.indexrelid
        """,
        [parent],
    )
    return [list(columns) for (columns,) in cursor.fetchall()]
