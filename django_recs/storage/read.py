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

from ..conf import exclude_seen_events
from ..items import ItemFamily, is_uuid_key, item_content_type, item_families, key_as_pk
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
        Columns are numbered per item content type (a model, or a parent
        listed with its children: see :class:`~django_recs.items.ItemFamily`)
        in ITEM_MODELS order, then by key.

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
        exclude_seen = exclude_seen_events()
    parts: list[_Columns] = []
    content_type_ids: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for family in item_families():
        model = family.root  # the keys' type
        queryset = _interaction_rows(family, exclude_seen, with_timestamps, user_ids, using)
        columns = _read(queryset, family, with_timestamps, using, whole_table=user_ids is None)
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


def _interaction_rows(family: ItemFamily, exclude_seen, with_timestamps, user_ids, using):
    """The query: user, item key as the family's pk type, weight, seen[, time].

    The readers run the query's SQL themselves, so every selected column is an
    annotation, added in the order selected: Django before 5.2 puts model
    fields ahead of annotations in the SELECT whatever values_list() asks.
    """
    model = family.root
    columns = {
        "recs_user": Cast("user_id", models.BigIntegerField()),
        "recs_key": key_as_pk(model, F("item_key")),
        "recs_weight": F("weight"),
        "recs_seen": Case(
            When(event__in=list(exclude_seen), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    }
    if with_timestamps:
        columns["recs_time"] = F("timestamp")
    queryset = (
        Interaction.objects.using(using)
        .filter(user__isnull=False, item_type=item_content_type(model))
        .annotate(**columns)
    )
    if connections[using].vendor != "postgresql":  # PostgreSQL's reader filters in numpy
        queryset = queryset.filter(recs_key__in=family.existing(using).values("pk"))
    if user_ids is not None:
        queryset = queryset.filter(user_id__in=list(user_ids))
    return queryset.order_by().values_list(*columns)


def _is_uuid(model) -> bool:
    return is_uuid_key(model)


def _read(queryset, family: ItemFamily, with_timestamps: bool, using: str, *,
          whole_table: bool) -> _Columns:
    connection = connections[using]
    if connection.vendor == "postgresql":
        return _read_postgresql_copy(queryset, family, with_timestamps, connection,
                                     in_parts=whole_table)
    return _read_batches(queryset, family.root, with_timestamps, connection)


# -- PostgreSQL: COPY (SELECT array_agg(...)) TO STDOUT (FORMAT BINARY) ----------
#
# COPY sends one message per row, and reading a million messages is a
# million Python calls. Aggregated, each part of the table comes back as a
# single row of arrays (one per column), each array a run of fixed-width
# (length, value) pairs that numpy reads in one go. The parts are id ranges
# small enough to keep the server's arrays modest, read by two connections
# at once when the caller is not inside a transaction (other connections
# could not see its rows).

#: Interaction ids per aggregated part (bounds the server's array memory).
COPY_PART_IDS = 500_000

#: Connections reading parts at once, outside a transaction.
COPY_READERS = 2

#: Element type of each aggregated column, as numpy reads PostgreSQL's binary format.
_PG_ELEMENT = {"user": ">i8", "int_key": ">i8", "uuid_key": "V16", "weight": ">f8",
               "seen": "u1", "time": ">i8"}


def _read_postgresql_copy(queryset, family: ItemFamily, with_timestamps, connection, *,
                          in_parts: bool = True) -> _Columns:
    model = family.root
    elements = ["user", "uuid_key" if _is_uuid(model) else "int_key", "weight", "seen"]
    if with_timestamps:
        elements.append("time")
    if not in_parts:  # a few users' rows (fold-in): one small query
        parts = [queryset]
    else:
        bounds = queryset.model._base_manager.using(connection.alias).aggregate(
            low=models.Min("pk"), high=models.Max("pk"))
        edges = []
        if bounds["low"] is not None:
            edges = [*range(bounds["low"], bounds["high"] + 1, COPY_PART_IDS), bounds["high"] + 1]
        parts = [queryset.filter(pk__gte=lo, pk__lt=hi) for lo, hi in zip(edges, edges[1:])]
    alias = connection.alias

    def read_part(part):
        return _copy_part(part, elements, connections[alias])

    if len(parts) > 1 and not connection.in_atomic_block:
        from concurrent.futures import ThreadPoolExecutor

        def read_and_close(part):
            try:
                return read_part(part)
            finally:
                connections[alias].close()

        with ThreadPoolExecutor(max_workers=COPY_READERS) as pool:
            arrays = list(pool.map(read_and_close, parts))
    else:
        arrays = [read_part(part) for part in parts]
    columns = [
        np.concatenate([part[i] for part in arrays]) if arrays
        else np.zeros(0, dtype=_PG_ELEMENT[name])
        for i, name in enumerate(elements)
    ]
    users, keys, weights, seen = columns[:4]
    if _is_uuid(model):
        # Two big-endian words per UUID: sortable, and unique-able without objects.
        keys = np.ascontiguousarray(keys).view([("high", ">u8"), ("low", ">u8")])
    else:
        keys = keys.astype(np.int64)
    existing = _existing_keys(family, connection)
    if len(keys) and existing is not None:
        kept = np.isin(_comparable(keys), _comparable(existing))
        if not kept.all():
            users, keys, weights, seen = users[kept], keys[kept], weights[kept], seen[kept]
            columns = [column[kept] for column in columns]
    timestamps = None
    if with_timestamps:
        timestamps = columns[4].astype(np.float64) / 1e6 + _PG_EPOCH_OFFSET_SECONDS
    return _Columns(
        users=users.astype(np.int64),
        keys=keys,
        weights=weights.astype(np.float64),
        seen=seen.astype(bool),
        timestamps=timestamps,
    )


def _copy_part(queryset, elements: list[str], connection) -> list[np.ndarray]:
    """One part of the query as arrays, one per selected column."""
    sql, params = queryset.query.sql_with_params()
    quote = connection.ops.quote_name
    names = [quote(f"c{i}") for i in range(len(elements))]
    statement = connection.ops.compose_sql(
        f"COPY (SELECT {', '.join(f'array_agg({name})' for name in names)} "
        f"FROM ({sql}) AS part ({', '.join(names)})) TO STDOUT (FORMAT BINARY)",
        params,
    )
    buffer = bytearray()
    with connection.cursor() as wrapper, wrapper.cursor.copy(statement) as copy:
        for block in copy:
            buffer += block
    return _aggregated_arrays(_binary_payload(buffer), [_PG_ELEMENT[e] for e in elements])


def _aggregated_arrays(data: memoryview, dtypes: list[str]) -> list[np.ndarray]:
    """The arrays of the single row of a binary COPY of ``array_agg`` columns."""
    if len(data) < 2 or int.from_bytes(data[:2], "big", signed=True) != len(dtypes):
        raise ValueError("unexpected COPY stream: not one row of the expected arrays")
    offset, arrays = 2, []
    for dtype in dtypes:
        length = int.from_bytes(data[offset:offset + 4], "big", signed=True)
        offset += 4
        if length == -1:  # array_agg of no rows is NULL
            arrays.append(np.zeros(0, dtype=dtype))
            continue
        ndim, has_nulls = (int.from_bytes(data[offset + i:offset + i + 4], "big")
                           for i in (0, 4))
        if has_nulls:
            raise ValueError("unexpected COPY stream: a NULL in an aggregated column")
        size = int.from_bytes(data[offset + 12:offset + 16], "big") if ndim else 0
        element = np.dtype([("length", ">i4"), ("value", dtype)])
        if 12 + 8 * ndim + size * element.itemsize != length or offset + length > len(data):
            raise ValueError("unexpected COPY stream: an array of the wrong length")
        pairs = np.frombuffer(data, dtype=element, count=size, offset=offset + 12 + 8 * ndim)
        if size and (pairs["length"] != np.dtype(dtype).itemsize).any():
            raise ValueError("unexpected COPY stream: an element of the wrong width")
        arrays.append(pairs["value"])
        offset += length
    return arrays


def _existing_keys(family: ItemFamily, connection) -> np.ndarray | None:
    """The primary keys of the family's items, as the loaded keys are represented."""
    table = family.existing(connection.alias).order_by()
    if _is_uuid(family.root):
        [keys] = _copy_part(table.values_list("pk"), ["uuid_key"], connection)
        return np.ascontiguousarray(keys).view([("high", ">u8"), ("low", ">u8")])
    [keys] = _copy_part(table.annotate(recs_pk=Cast("pk", models.BigIntegerField()))
                        .values_list("recs_pk"), ["int_key"], connection)
    return keys.astype(np.int64)


def _comparable(keys: np.ndarray) -> np.ndarray:
    """Keys np.isin can compare: integers as they are, UUID word pairs as 16 bytes."""
    return keys.view("S16") if keys.dtype.names else keys


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
