"""SQL expressions that mean the same on every supported database.

MySQL and MariaDB give a ``CAST(... AS CHAR)`` the connection's collation
with the strength of a column's: a cast compared with, or put in one
``UNION`` with, a text column of another collation (the tables' is often
``utf8mb4_unicode_ci``, a connection's ``utf8mb4_general_ci``) is an
"Illegal mix of collations" error. There, text is made with ``LEFT(x, n)``,
whose result yields to the column's collation, a text NULL is a bare
``NULL``, and a UUID key is compared as stored: Django keeps a UUID there
as ``char(32)`` (before Django 5.0, and on MySQL), the 32 hex digits a
stored key already is; MariaDB's own ``uuid`` type (Django 5.0+ on MariaDB
10.7+) takes the hex digits too.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Func
from django.db.models.functions import Cast

__all__ = ["KeyAsPk", "Text", "is_mysql", "key_as_pk_sql", "null_text_sql", "text_sql"]


def is_mysql(connection) -> bool:
    """Whether ``connection`` is MySQL or MariaDB, whatever its ``vendor`` says."""
    return _is_mysql(connection)


def _is_mysql(connection) -> bool:
    # The wrapper's class, not only ``vendor``: a MySQL connection keeps its collations
    # whatever it is called.
    return connection.vendor == "mysql" or hasattr(type(connection), "mysql_is_mariadb")


def text_sql(connection, sql: str, max_length: int = 64) -> str:
    """``sql`` as text of at most ``max_length`` characters, comparable with text columns."""
    if _is_mysql(connection):
        return f"LEFT({sql}, {int(max_length)})"
    text_type = models.CharField(max_length=max_length).cast_db_type(connection)
    return f"CAST({sql} AS {text_type})"


def null_text_sql(connection, max_length: int = 64) -> str:
    """A text NULL that a ``UNION`` lines up with any text column."""
    if _is_mysql(connection):
        return "NULL"
    text_type = models.CharField(max_length=max_length).cast_db_type(connection)
    return f"CAST(NULL AS {text_type})"


def key_as_pk_sql(connection, key_sql: str, pk: models.Field) -> str:
    """A stored key (text) as a value of the primary key ``pk``'s type."""
    if _is_mysql(connection) and isinstance(pk, models.UUIDField):
        return key_sql  # char(32) of hex digits on both sides
    return f"CAST({key_sql} AS {pk.cast_db_type(connection)})"


class Text(Func):
    """The ORM's form of :func:`text_sql`: ``CAST(x AS varchar(n))``, ``LEFT(x, n)`` on MySQL."""

    arity = 1

    def __init__(self, expression, max_length: int = 64, **extra):
        self.max_length = int(max_length)
        super().__init__(expression, output_field=models.CharField(max_length=self.max_length),
                         **extra)

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return text_sql(connection, sql, self.max_length), params


class KeyAsPk(Cast):
    """The ORM's form of :func:`key_as_pk_sql`: ``Cast(key, output_field)`` for a primary key's type.

    On MySQL/MariaDB a UUID primary key kept as ``char(32)`` is compared
    with the stored key as it is: ``CAST(key AS char(32))`` would take the
    connection's collation and fail against the column's ("Illegal mix of
    collations"). Where the database has a UUID type of its own, the cast
    stays, so the value read back is a UUID as the ORM expects.
    """

    def as_mysql(self, compiler, connection, **extra_context):
        if isinstance(self.output_field, models.UUIDField) and not getattr(
            connection.features, "has_native_uuid_field", False
        ):
            return compiler.compile(self.source_expressions[0])
        return super().as_mysql(compiler, connection, **extra_context)
