"""Bulk writes of many rows of one model, by column, without a model instance per row.

:func:`bulk_insert` takes the rows as columns (numpy arrays or sequences)
keyed by the model's attribute names (``"user_id"``, ``"item_key"``...). On
PostgreSQL the rows are streamed with ``COPY ... FROM STDIN`` in text format,
each column turned into text as a whole (numpy arrays without a Python loop
per value where the dtype allows); on other databases they go in batches of
``executemany`` INSERTs. On MySQL/MariaDB the same text goes through
``LOAD DATA LOCAL INFILE`` where client and server allow it
(:mod:`~django_recs.storage.mysql_bulk`), else multi-row INSERTs of up to
4 MiB. Either way the whole write is one transaction.

Columns not given take the field's default as a model instance would (a
callable default is called per row, NULL for a nullable field, "" for a text
field); an automatic primary key is left to the database.
"""

from __future__ import annotations

import datetime
import decimal
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

import numpy as np
from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone

from .mysql_bulk import load_data, load_data_allowed

__all__ = ["bulk_insert", "bulk_insert_chunks"]

# COPY's text format: the NULL marker, and the characters that must be escaped.
_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

_INTEGER_TYPES = {
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
    "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}
_TEXT_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField"}


# Field types whose values have a plain COPY text form (others go through INSERTs).
_COPY_TEXT_TYPES = _INTEGER_TYPES | _TEXT_TYPES | {
    "FloatField", "DecimalField", "BooleanField", "DateTimeField", "DateField", "TimeField",
    "UUIDField",
}


def bulk_insert(
    model: type[models.Model],
    columns: Mapping[str, Sequence | np.ndarray],
    *,
    using: str = "default",
    batch_size: int = 10_000,
) -> int:
    """Insert rows given as columns into ``model``'s table, in one transaction.

    Parameters
    ----------
    model : Django model class
    columns : mapping of str to a numpy array or a sequence, each of length n_rows
        Keyed by concrete field attribute names (a foreign key is ``"user_id"``,
        not ``"user"``). Values are what the field stores: ints for foreign
        keys, aware datetimes or ``datetime64`` (read as UTC) for
        DateTimeFields, ``None`` for NULL. Fields left out take their default.
    using : str
        Database alias.
    batch_size : int
        Rows formatted and sent per chunk (bounds the memory of one write).

    Returns
    -------
    int
        The number of rows written.

    Raises
    ------
    ValueError
        An unknown column, columns of different lengths, a required field
        left out, or ``batch_size`` < 1. Nothing is written.
    """
    return bulk_insert_chunks(model, [columns], using=using, batch_size=batch_size)


def bulk_insert_chunks(
    model: type[models.Model],
    chunks: Iterable[Mapping[str, Sequence | np.ndarray]],
    *,
    using: str = "default",
    batch_size: int = 10_000,
) -> int:
    """Insert a stream of column chunks (as :func:`bulk_insert`) in one transaction.

    Every chunk has the same column names. On PostgreSQL all chunks go
    through a single ``COPY``, sent by a writer thread, so producing the next
    chunk (parsing, validating) overlaps the database's work on the previous
    one. An exception raised by the iterator aborts the write: nothing is kept.

    Returns
    -------
    int
        The number of rows written.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    chunks = iter(chunks)
    for first in chunks:
        n_first = _common_length(model, first)
        if n_first:
            break
    else:
        return 0
    fields, _ = _columns_with_defaults(model, first, n_first)
    names = set(first)

    def batches():
        for columns, n_rows in chain([(first, n_first)],
                                     ((c, _common_length(model, c)) for c in chunks)):
            if set(columns) != names:
                raise ValueError(
                    f"every chunk must have the columns {sorted(names)}, got {sorted(columns)}"
                )
            if not n_rows:
                continue
            _, data = _columns_with_defaults(model, columns, n_rows)
            for start in range(0, n_rows, batch_size):
                yield [values[start:start + batch_size] for values in data]

    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_names = ", ".join(quote(field.column) for field in fields)
    insert_sql = (
        f"INSERT INTO {table} ({column_names}) VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql" and all(
            _storage_field(f).get_internal_type() in _COPY_TEXT_TYPES for f in fields
        ):
            return _copy_in(connection, f"COPY {table} ({column_names}) FROM STDIN", fields,
                            batches())
        if connection.vendor == "mysql" and all(
            _storage_field(f).get_internal_type() in _COPY_TEXT_TYPES for f in fields
        ) and load_data_allowed(connection):
            return _load_data_in(connection, table, column_names, fields, batches())
        # Other databases, and rare field types (JSON, arrays...) the driver must adapt.
        return _insert_batches(connection, insert_sql, fields, batches())


def _common_length(model, columns) -> int:
    by_attname = {field.attname for field in model._meta.concrete_fields}
    unknown = sorted(set(columns) - by_attname)
    if unknown:
        raise ValueError(
            f"{model._meta.label} has no column {', '.join(map(repr, unknown))}; columns are "
            f"keyed by attribute name, one of: {', '.join(sorted(by_attname))}"
        )
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.ndim != 1:
            raise ValueError(f"column {name!r} must be one-dimensional, got shape {values.shape}")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def _columns_with_defaults(model, columns, n_rows) -> tuple[list[models.Field], list]:
    """The fields written, in table order, and their values (defaults filled in)."""
    fields, data = [], []
    for field in model._meta.concrete_fields:
        if field.attname in columns:
            values = columns[field.attname]
        elif isinstance(field, models.AutoField) or _has_db_default(field):
            continue  # the database assigns it
        elif field.has_default():
            if callable(field.default):
                values = [field.get_default() for _ in range(n_rows)]
            else:
                values = _Repeat(field.get_default(), n_rows)
        elif field.null:
            values = _Repeat(None, n_rows)
        elif field.empty_strings_allowed and field.get_default() == "":
            values = _Repeat("", n_rows)  # as a model instance would (CharField: "")
        else:
            raise ValueError(
                f"column {field.attname!r} of {model._meta.label} is required "
                "(it has no default and is not nullable)"
            )
        fields.append(field)
        data.append(values)
    return fields, data


def _has_db_default(field: models.Field) -> bool:
    return getattr(field, "db_default", models.NOT_PROVIDED) is not models.NOT_PROVIDED


class _Repeat(Sequence):
    """One value n times, sliceable, without holding n references."""

    def __init__(self, value, n: int):
        self.value, self.n = value, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.value] * len(range(*index.indices(self.n)))
        if not -self.n <= index < self.n:
            raise IndexError(index)
        return self.value

    def __iter__(self):
        return iter([self.value] * self.n)

    def __contains__(self, value) -> bool:
        return self.n > 0 and self.value == value


def _storage_field(field: models.Field) -> models.Field:
    """The field whose values a column holds (a foreign key holds its target's)."""
    while field.is_relation and field.target_field is not field:
        field = field.target_field
    return field


def _aware(value):
    """Aware datetimes as they are; naive ones in the current time zone, as Django does."""
    if isinstance(value, datetime.datetime) and value.tzinfo is None and settings.USE_TZ:
        return timezone.make_aware(value)
    return value


# --- PostgreSQL: COPY FROM STDIN ----------------------------------------------


def _copy_in(connection, sql, fields, batches) -> int:
    written = 0

    def texts():
        nonlocal written
        for data in batches:
            written += len(data[0])
            yield _copy_text(connection, fields, data)

    # wrap_database_errors: the driver's errors become Django's (IntegrityError...).
    # The driver holds the connection's lock for the whole COPY: a query on the
    # same connection from the chunk iterator (a progress UPDATE...) would wait
    # forever, so it is refused with an error instead.
    with connection.cursor() as wrapper, connection.wrap_database_errors, \
            connection.execute_wrapper(_refuse_queries_during_copy):
        cursor = wrapper.cursor  # the driver's own cursor
        if hasattr(cursor, "copy"):  # psycopg 3
            from psycopg.copy import QueuedLibpqWriter

            with cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
                for text in texts():
                    copy.write(text)
        else:  # psycopg2
            cursor.copy_expert(sql, _ChunkReader(texts()))
    return written


def _load_data_in(connection, table, column_names, fields, batches) -> int:
    written = 0

    def texts():
        nonlocal written
        for data in batches:
            written += len(data[0])
            yield _copy_text(connection, fields, data)

    with connection.execute_wrapper(_refuse_queries_during_copy):
        load_data(connection, table, column_names, texts())
    return written


def _refuse_queries_during_copy(execute, sql, params, many, context):
    raise RuntimeError(
        "a query ran on the database connection while bulk_insert_chunks() was streaming "
        "a COPY on it (the chunk iterator must not query that connection; write progress "
        f"from another connection or after the write): {sql[:80]}"
    )


def _copy_text(connection, fields, data) -> str:
    text_columns = [_copy_text_column(connection, f, v) for f, v in zip(fields, data)]
    return "\n".join(map("\t".join, zip(*text_columns))) + "\n"


def _copy_text_column(connection, field, values) -> list[str]:
    """One column as COPY text, converted as a whole where its type allows."""
    storage = _storage_field(field)
    kind = storage.get_internal_type()
    mysql = connection.vendor == "mysql"
    if isinstance(values, np.ndarray) and values.dtype.kind in "biufM":
        return _copy_text_array(values, kind, field, mysql)
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if kind in _INTEGER_TYPES:
        if None not in values:
            return list(map(str, map(int, values)))
        return [_NULL if v is None else str(int(v)) for v in values]
    if kind == "FloatField":
        if None not in values:
            return list(map(repr, map(float, values)))
        return [_NULL if v is None else repr(float(v)) for v in values]
    if kind in _TEXT_TYPES:
        if set(map(type, values)) <= {str}:
            if any(c in "".join(values) for c in "\\\t\n\r"):
                return [v.translate(_COPY_ESCAPES) for v in values]
            return values if isinstance(values, list) else list(values)
        return [_NULL if v is None else str(v).translate(_COPY_ESCAPES) for v in values]
    if kind == "DateTimeField":
        # Events share timestamps (the lines of one order): format each once.
        texts = {None: _NULL}
        out = []
        for value in values:
            text = texts.get(value)
            if text is None:
                text = texts[value] = _datetime_text(_aware(value), mysql)
            out.append(text)
        return out
    if mysql and kind == "BooleanField":
        return [_NULL if v is None else ("1" if v else "0") for v in values]
    return [_copy_text_value(storage.get_db_prep_save(v, connection)) for v in values]


def _datetime_text(value, mysql: bool) -> str:
    """COPY's ISO text; MySQL's DATETIME takes UTC without an offset (as Django stores it)."""
    if not mysql or not isinstance(value, datetime.datetime):
        return value.isoformat()
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.isoformat(sep=" ")


def _copy_text_array(values: np.ndarray, kind: str, field, mysql: bool = False) -> list[str]:
    if values.dtype.kind == "M":
        text = np.datetime_as_string(values.astype("datetime64[us]"), unit="us").tolist()
        suffix = "" if mysql else "+00:00"
        return [_NULL if t == "NaT" else t + suffix for t in text]
    if values.dtype.kind == "b":
        return np.where(values, "1", "0").tolist() if mysql else np.where(values, "t", "f").tolist()
    if values.dtype.kind == "f":
        if kind in _INTEGER_TYPES:
            return list(map(str, _float_to_int(values, field).tolist()))
        return list(map(repr, values.astype(np.float64).tolist()))
    return list(map(str, values.tolist()))


def _float_to_int(values: np.ndarray, field) -> np.ndarray:
    as_int = values.astype(np.int64)
    if not np.array_equal(as_int, values):
        raise ValueError(f"column {field.attname!r} is an integer field; got non-integer floats")
    return as_int


def _copy_text_value(value) -> str:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(f"no COPY text form for a {type(value).__name__}")


class _ChunkReader(io.TextIOBase):
    """A file-like reader over text chunks (for psycopg2's copy_expert)."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        size = -1 if size is None else size
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, ""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


# --- Other databases: batched executemany -------------------------------------

#: Bytes of one multi-row INSERT on MySQL/MariaDB, below the server's smallest
#: default max_allowed_packet (MySQL 8: 64 MiB, MariaDB: 16 MiB) with room to spare.
MYSQL_STATEMENT_BYTES = 4 * 1024 * 1024


def _insert_batches(connection, sql, fields, batches) -> int:
    written = 0
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            # mysqlclient sends an executemany INSERT as multi-row statements of at
            # most max_stmt_length bytes (64 KiB by default): fewer, larger ones.
            cursor.cursor.max_stmt_length = MYSQL_STATEMENT_BYTES
        for data in batches:
            columns = [_prepared_column(connection, f, v) for f, v in zip(fields, data)]
            cursor.executemany(sql, list(zip(*columns)))
            written += len(columns[0])
    return written


def _prepared_column(connection, field, values) -> list:
    """One column as driver parameters (what Field.get_db_prep_save returns)."""
    storage = _storage_field(field)
    kind = storage.get_internal_type()
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "M":
            utc = datetime.timezone.utc
            naive = values.astype("datetime64[us]").tolist()
            values = [None if t is None else t.replace(tzinfo=utc) for t in naive]
            if not settings.USE_TZ:
                values = [None if t is None else timezone.make_naive(t) for t in values]
        elif values.dtype.kind == "f" and kind in _INTEGER_TYPES:
            return _float_to_int(values, field).tolist()
        elif values.dtype.kind in "biuf":
            values = values.tolist()
            return [str(v) for v in values] if kind in _TEXT_TYPES else values
        else:
            values = values.tolist()
    elif not isinstance(values, list):
        values = list(values)
    types = set(map(type, values))  # one pass in C, instead of a check per value
    if kind in _INTEGER_TYPES and types <= {int, type(None)}:
        return values
    if kind == "FloatField" and types <= {float, type(None)}:
        return values
    if kind in _TEXT_TYPES and types <= {str}:
        return values
    prep = storage.get_db_prep_save
    if kind == "DateTimeField":
        return [None if v is None else prep(_aware(v), connection) for v in values]
    return [prep(v, connection) for v in values]
