"""Table locks, where a database has them.

The pipeline's swap reads the erasure list (``ForgottenUser``) in the same
transaction that makes a run the one served; an erasure committing in
between must not be missed. On PostgreSQL a SHARE lock on the table waits
for the inserts in flight and holds new ones until the swap commits. SQLite
runs one writing transaction at a time, which already gives that; other
databases go without (the next run drops what a lost race computed).
"""

from __future__ import annotations

from django.db import connections, models

__all__ = ["hold_writes"]


def hold_writes(model: type[models.Model], *, using: str) -> bool:
    """Within the current transaction, wait for and block writes to ``model``'s table.

    Returns True when a lock was taken (PostgreSQL), False elsewhere. Call it
    inside ``transaction.atomic``: the lock lasts until the transaction ends.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"LOCK TABLE {connection.ops.quote_name(model._meta.db_table)} IN SHARE MODE"
        )
    return True
