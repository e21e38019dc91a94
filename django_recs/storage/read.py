"""Loading the interaction table into numpy arrays, fast.

On PostgreSQL the query is streamed with ``COPY (SELECT ...) TO STDOUT
(FORMAT BINARY)``: every selected column has a fixed width (the user id and
an integer item key cast to bigint, a UUID key cast to uuid, the weight, a
"seen" flag and the time), so the whole stream is one numpy structured array
read with ``np.frombuffer`` — no Python object per row. Elsewhere the cursor
is fetched in large batches and each batch becomes column arrays.

Only interactions of a signed-in user with an item of a model in
ITEM_MODELS that still exists are loaded: a deleted product is never
recommended again.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connections, models
from django.db.models import BooleanField, Case, F, Value, When
from django.db.models.functions import Cast

from ..conf import recs_settings
from ..items import item_content_type, item_models, key_as_pk
from ..matrix import index_keys
from ..models import Interaction

__all__ = ["ItemCatalog", "LoadedInteractions", "load_interactions"]

#: Rows fetched per round trip on databases without COPY.
FETCH_BATCH = 100_000

#: PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH_OFFSET_SECONDS = 946_684_800.0

_PG_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


@dataclass(frozen=True)
class ItemCatalog:
    """Column -> item: its content type id and stored key.

    Attributes
    ----------
    content_type_ids : ndarray, shape (n_items,), int64
    keys : ndarray, shape (n_items,), str
        The stored key (``str(pk)`` or ``uuid.hex``) of each column.
    """

    content_type_ids: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    @cached_property
    def key_bytes(self) -> np.ndarray:
        """The keys UTF-8 encoded (an ``S`` array): gathered per row by the writers."""
        return np.char.encode(np.asarray(self.keys, dtype=str), "utf-8") if len(self.keys) \
            else np.zeros(0, dtype="S1")

    @classmethod
    def empty(cls) -> ItemCatalog:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype="U1"))

    def column_lookup(self) -> dict[tuple[int, str], int]:
        """(content type id, key) -> column (a dict per item, for small lookups)."""
        return {
            (int(ct), str(key)): column
            for column, (ct, key) in enumerate(zip(self.content_type_ids, self.keys))
        }


@dataclass(frozen=True)
class LoadedInteractions:
    """The interaction table as parallel arrays, one entry per row.

    Attributes
    ----------
    users : ndarray, shape (nnz,), int64 — user primary key
    items : ndarray, shape (nnz,), int64 — column in ``catalog``
    weights : ndarray, shape (nnz,), float64
    seen : ndarray, shape (nnz,), bool — the event is in EXCLUDE_SEEN
    timestamps : ndarray, shape (nnz,), float64 seconds since the epoch, or None
        (only loaded when asked for: time decay needs them)
    catalog : ItemCatalog
    """

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    seen: np.ndarray
    timestamps: np.ndarray | None
    catalog: ItemCatalog

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class _Columns:
    users: np.ndarray
    keys: np.ndarray
    weights: np.ndarray
    seen: np.ndarray
    timestamps: np.ndarray | None


def load_interactions(
    *,
    using: str = "default",
    with_timestamps: bool = False,
    exclude_seen: list[str] | None = None,
    user_ids=None,
) -> LoadedInteractions:
    """Read the interactions of signed-in users with existing items.

    Parameters
    ----------
    using : database alias
    with_timestamps : load each row's time (needed for HALF_LIFE_DAYS decay)
    exclude_seen : events flagged as "seen"; default the EXCLUDE_SEEN setting
    user_ids : optional iterable of user pks to restrict the read to

    Returns
    -------
    LoadedInteractions
        Columns are numbered per item model in ITEM_MODELS order, then by key.

    Raises
    ------
    ValueError
        The user model's primary key is not an integer.
    """
    user_pk = get_user_model()._meta.pk
    if not isinstance(user_pk, models.AutoField | models.BigAutoField | models.IntegerField):
        raise ValueError(
            "django_recs needs an integer primary key on the user model, "
            f"got {type(user_pk).__name__}"
        )
    if exclude_seen is None:
        exclude_seen = list(recs_settings.EXCLUDE_SEEN)
    parts: list[_Columns] = []
    content_type_ids: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for model in item_models():
        queryset = _interaction_rows(model, exclude_seen, with_timestamps, user_ids, using)
        columns = _read(queryset, model, with_timestamps, using)
        unique_keys, index = index_keys(columns.keys)
        offset = sum(len(k) for k in keys)
        columns.keys = index.astype(np.int64) + offset
        parts.append(columns)
        keys.append(_stored_keys(model, unique_keys))
        content_type_ids.append(
            np.full(len(unique_keys), item_content_type(model).pk, dtype=np.int64)
        )
    if not parts:
        empty = np.zeros(0)
        return LoadedInteractions(
            empty.astype(np.int64), empty.astype(np.int64), empty, empty.astype(bool),
            empty if with_timestamps else None, ItemCatalog.empty(),
        )
    return LoadedInteractions(
        users=np.concatenate([p.users for p in parts]),
        items=np.concatenate([p.keys for p in parts]),
        weights=np.concatenate([p.weights for p in parts]),
        seen=np.concatenate([p.seen for p in parts]),
        timestamps=np.concatenate([p.timestamps for p in parts]) if with_timestamps else None,
        catalog=ItemCatalog(
            content_type_ids=np.concatenate(content_type_ids),
            keys=np.concatenate(keys) if keys else np.zeros(0, dtype="U1"),
        ),
    )


def _interaction_rows(model, exclude_seen, with_timestamps, user_ids, using):
    """The query: user, item key as the model's pk type, weight, seen[, time]."""
    queryset = (
        Interaction.objects.using(using)
        .filter(user__isnull=False, item_type=item_content_type(model))
        .annotate(
            recs_user=Cast("user_id", models.BigIntegerField()),
            recs_key=key_as_pk(model, F("item_key")),
            recs_seen=Case(
                When(event__in=list(exclude_seen), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .filter(recs_key__in=model._default_manager.using(using).values("pk"))
    )
    if user_ids is not None:
        queryset = queryset.filter(user_id__in=list(user_ids))
    fields = ["recs_user", "recs_key", "weight", "recs_seen"]
    if with_timestamps:
        fields.append("timestamp")
    return queryset.order_by().values_list(*fields)


def _is_uuid(model) -> bool:
    return isinstance(model._meta.pk, models.UUIDField)


def _read(queryset, model, with_timestamps: bool, using: str) -> _Columns:
    connection = connections[using]
    if connection.vendor == "postgresql":
        return _read_postgresql_copy(queryset, model, with_timestamps, connection)
    return _read_batches(queryset, model, with_timestamps, connection)


# -- PostgreSQL: COPY (SELECT ...) TO STDOUT (FORMAT BINARY) -------------------


def _binary_row_dtype(model, with_timestamps: bool) -> np.dtype:
    """A tuple of the binary COPY stream: field count, then (length, value) per column."""
    fields = [
        ("n_fields", ">i2"),
        ("user_len", ">i4"), ("user", ">i8"),
        ("key_len", ">i4"), ("key", ("V16" if _is_uuid(model) else ">i8")),
        ("weight_len", ">i4"), ("weight", ">f8"),
        ("seen_len", ">i4"), ("seen", "u1"),
    ]
    if with_timestamps:
        fields += [("time_len", ">i4"), ("time", ">i8")]
    return np.dtype(fields)


def _read_postgresql_copy(queryset, model, with_timestamps, connection) -> _Columns:
    sql, params = queryset.query.sql_with_params()
    statement = connection.ops.compose_sql(
        f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params
    )
    buffer = bytearray()
    with connection.cursor() as wrapper, wrapper.cursor.copy(statement) as copy:
        for block in copy:
            buffer += block
    data = _binary_payload(buffer)
    dtype = _binary_row_dtype(model, with_timestamps)
    if len(data) % dtype.itemsize:
        raise ValueError("unexpected COPY stream: rows are not of the expected width")
    rows = np.frombuffer(data, dtype=dtype)
    n_fields = 5 if with_timestamps else 4
    if rows.size and (rows["n_fields"] != n_fields).any():
        raise ValueError("unexpected COPY stream: a row has the wrong number of fields")
    if rows.size and (rows["weight_len"] != 8).any():
        raise ValueError("unexpected COPY stream: a weight is NULL or not a double")
    if _is_uuid(model):
        # Two big-endian words per UUID: sortable, and unique-able without objects.
        keys = rows["key"].copy().view([("high", ">u8"), ("low", ">u8")])
    else:
        keys = rows["key"].astype(np.int64)
    timestamps = None
    if with_timestamps:
        timestamps = rows["time"].astype(np.float64) / 1e6 + _PG_EPOCH_OFFSET_SECONDS
    return _Columns(
        users=rows["user"].astype(np.int64),
        keys=keys,
        weights=rows["weight"].astype(np.float64),
        seen=rows["seen"].astype(bool),
        timestamps=timestamps,
    )


def _binary_payload(buffer: bytearray) -> memoryview:
    """The tuples of a binary COPY stream, without its header and trailer."""
    if not buffer:
        return memoryview(b"")
    if not buffer.startswith(_PG_BINARY_SIGNATURE):
        raise ValueError("unexpected COPY stream: no binary signature")
    extension_length = int.from_bytes(buffer[15:19], "big")
    start = 19 + extension_length
    if buffer[-2:] != b"\xff\xff":
        raise ValueError("unexpected COPY stream: no trailer")
    return memoryview(buffer)[start:-2]


# -- Other databases: large fetchmany batches ----------------------------------


def _read_batches(queryset, model, with_timestamps, connection) -> _Columns:
    sql, params = queryset.query.sql_with_params()
    chunks: list[list[np.ndarray]] = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            batch = cursor.fetchmany(FETCH_BATCH)
            if not batch:
                break
            columns = list(zip(*batch))
            chunk = [
                np.asarray(columns[0], dtype=np.int64),
                _keys_array(columns[1], model),
                np.asarray(columns[2], dtype=np.float64),
                np.asarray(columns[3], dtype=bool),
            ]
            if with_timestamps:
                chunk.append(_seconds_since_epoch(columns[4]))
            chunks.append(chunk)
    if not chunks:
        return _Columns(
            users=np.zeros(0, dtype=np.int64),
            keys=np.zeros(0, dtype="U32" if _is_uuid(model) else np.int64),
            weights=np.zeros(0), seen=np.zeros(0, dtype=bool),
            timestamps=np.zeros(0) if with_timestamps else None,
        )
    return _Columns(
        users=np.concatenate([c[0] for c in chunks]),
        keys=np.concatenate([c[1] for c in chunks]),
        weights=np.concatenate([c[2] for c in chunks]),
        seen=np.concatenate([c[3] for c in chunks]),
        timestamps=np.concatenate([c[4] for c in chunks]) if with_timestamps else None,
    )


def _keys_array(values, model) -> np.ndarray:
    if _is_uuid(model):
        # SQLite and MySQL keep a UUID primary key as 32 hex characters.
        return np.asarray([str(v).replace("-", "") for v in values], dtype="U32")
    return np.asarray(values, dtype=np.int64)


def _seconds_since_epoch(values) -> np.ndarray:
    """Driver timestamps (ISO text on SQLite, datetimes elsewhere) as float seconds (UTC)."""
    first = values[0] if values else None
    if isinstance(first, str):
        # Django keeps UTC on SQLite as "YYYY-MM-DD HH:MM:SS[.ffffff]".
        moments = np.asarray([v[:26] for v in values], dtype="datetime64[us]")
        return moments.astype(np.int64) / 1e6
    # Naive datetimes (MySQL without time zone support in the driver) are UTC.
    return np.asarray(
        [(v if v.tzinfo else v.replace(tzinfo=datetime.timezone.utc)).timestamp() for v in values],
        dtype=np.float64,
    )


def _stored_keys(model, unique_keys: np.ndarray) -> np.ndarray:
    """The stored text keys of a model's unique loaded keys (one entry per item)."""
    if not len(unique_keys):
        return np.zeros(0, dtype="U1")
    if not _is_uuid(model):
        return unique_keys.astype(str)
    if unique_keys.dtype.kind == "U":
        return unique_keys
    raw = unique_keys.view("V16")
    return np.asarray([bytes(value).hex() for value in raw], dtype="U32")
