"""PostgreSQL ``COPY ... FROM STDIN (FORMAT BINARY)`` of numpy columns, encoded by numpy.

The result tables take millions of rows per run. Text COPY needs a Python
string per value; binary COPY of fixed-width values is a numpy structured
array written with ``tobytes()``. Text columns (the item keys) vary in length,
so rows are grouped by the byte lengths of their text values (and which
values are NULL): within a group every row has the same layout, one
structured dtype. Keys have a handful of distinct lengths, so a write is a
few dozen vectorised groups, with no Python object per row.

Long texts of as many lengths as rows (a stored list's JSON) come as
:class:`PackedText`, values back to back in one buffer: they are sent last
in each row, after the row's fixed-width values, without padding them to
the longest value.

Used by the pipeline on PostgreSQL for the rows it stores; every other write
goes through :func:`django_recs.storage.bulk_insert`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from django.db import connections, models, transaction

from .. import kernels

__all__ = ["PackedText", "copy_binary", "supports_binary_copy"]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)

#: PostgreSQL column type (as Django's db_type reports it) -> big-endian numpy dtype.
_FIXED_TYPES = {
    "smallint": ">i2", "smallserial": ">i2",
    "integer": ">i4", "serial": ">i4",
    "bigint": ">i8", "bigserial": ">i8",
    "double precision": ">f8", "real": ">f4",
    "boolean": "?",
}

#: Rows encoded and sent per piece (bounds the memory of a write).
CHUNK_ROWS = 250_000


class PackedText:
    """UTF-8 texts back to back: value ``i`` is ``data[starts[i]:ends[i]]``.

    A text column for :func:`copy_binary` (and, as str, for
    :func:`django_recs.storage.bulk_insert` through :meth:`tolist`) whose
    values have no common length to pad to.
    """

    def __init__(self, data: bytes, starts: np.ndarray, ends: np.ndarray) -> None:
        self.data = data
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)
        if self.starts.shape != self.ends.shape or self.starts.ndim != 1:
            raise ValueError("starts and ends must be 1-D arrays of the same length")
        if len(self.starts) and (
                (self.ends < self.starts).any() or self.starts.min() < 0
                or self.ends.max() > len(data)):
            raise ValueError("every value must lie within data (0 <= start <= end <= len(data))")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, rows) -> PackedText:
        return PackedText(self.data, self.starts[rows], self.ends[rows])

    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def tolist(self) -> list[str]:
        data = self.data
        return [data[start:end].decode("utf-8")
                for start, end in zip(self.starts.tolist(), self.ends.tolist(), strict=True)]


def _column_kind(field: models.Field, connection) -> str:
    """A fixed numpy dtype string, or "text"; ValueError for other column types."""
    db_type = (field.db_type(connection) or "").split("(")[0].strip().lower()
    if db_type in _FIXED_TYPES:
        return _FIXED_TYPES[db_type]
    if db_type in ("varchar", "character varying", "text"):
        return "text"
    raise ValueError(f"{field.model._meta.label}.{field.name}: no binary COPY for {db_type!r}")


def supports_binary_copy(model: type[models.Model], names: Iterable[str], using: str) -> bool:
    """True when the database is PostgreSQL and every named column can be encoded."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    fields = {field.attname: field for field in model._meta.concrete_fields}
    try:
        for name in names:
            _column_kind(fields[name], connection)
    except (KeyError, ValueError):
        return False
    return True


def copy_binary(
    model: type[models.Model],
    chunks: Iterable[Mapping[str, np.ndarray]],
    *,
    using: str = "default",
    table: str | None = None,
) -> int:
    """Write column chunks into ``model``'s table with one binary COPY, in one transaction.

    Parameters
    ----------
    model : Django model class
    chunks : iterable of {attribute name: 1-D array}
        Every chunk has the same columns. Integer and float columns are
        numpy numbers; text columns numpy strings (``U``) or sequences of
        str; a nullable column may be an object array holding None.

    Returns
    -------
    int : rows written.

    Raises
    ------
    ValueError
        Not PostgreSQL, an unknown column, columns of different lengths, or
        a column type without a binary encoding here.

    ``table`` names another table of the same columns to write to (a run's
    partition before it is attached).
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise ValueError("copy_binary needs PostgreSQL; use bulk_insert elsewhere")
    fields_by_name = {field.attname: field for field in model._meta.concrete_fields}
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return 0
    # Packed texts go last in each row: a row is then its fixed part, then the text.
    names = sorted(first, key=lambda name: isinstance(first[name], PackedText))
    unknown = [name for name in names if name not in fields_by_name]
    if unknown:
        raise ValueError(f"{model._meta.label} has no column {', '.join(unknown)}")
    fields = [fields_by_name[name] for name in names]
    kinds = [_column_kind(field, connection) for field in fields]
    quote = connection.ops.quote_name
    statement = (
        f"COPY {quote(table or model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        "FROM STDIN (FORMAT BINARY)"
    )
    written = 0
    with (
        transaction.atomic(using=using),
        connection.cursor() as wrapper,
        wrapper.cursor.copy(statement) as copy,
    ):
        copy.write(_SIGNATURE)
        for columns in _pieces(first, chunks, names):
            n_rows, data = _encode(columns, names, kinds)
            if n_rows:
                copy.write(data)
                written += n_rows
        copy.write(_TRAILER)
    return written


def _pieces(first, rest, names):
    for columns in _chain(first, rest):
        if sorted(columns) != sorted(names):
            raise ValueError(f"every chunk must have the columns {names}, got {list(columns)}")
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns differ in length: {sorted(lengths)}")
        n_rows = lengths.pop() if lengths else 0
        for start in range(0, n_rows, CHUNK_ROWS):
            yield {name: columns[name][start:start + CHUNK_ROWS] for name in names}


def _chain(first, rest):
    yield first
    yield from rest


def _encode(columns: Mapping, names: list[str], kinds: list[str]) -> tuple[int, bytes]:
    """The binary COPY tuples of one piece."""
    n_rows = len(columns[names[0]])
    if n_rows == 0:
        return 0, b""
    packed = [name for name in names if isinstance(columns[name], PackedText)]
    if packed == names[-1:] and kinds[-1] == "text" and all(
            kind != "text" and np.asarray(columns[name]).dtype != object
            for name, kind in zip(names[:-1], kinds[:-1])):
        return n_rows, _encode_packed(columns, names, kinds)
    if packed:  # another mix of columns: padded like any text
        columns = {name: _padded(values) if isinstance(values, PackedText) else values
                   for name, values in columns.items()}
    values, lengths = [], []  # per column: the array to store, and byte length per row (-1 NULL)
    for name, kind in zip(names, kinds):
        column = columns[name]
        if kind == "text":
            encoded, length = _text_bytes(column)
            values.append(encoded)
            lengths.append(length)
        else:
            fixed, null = _fixed_values(column, kind, name)
            values.append(fixed)
            width = np.dtype(kind).itemsize
            lengths.append(None if null is None else np.where(null, -1, width))
    variable = [i for i, length in enumerate(lengths) if length is not None]
    if variable:
        signature = np.stack([lengths[i] for i in variable], axis=1)
        if len(variable) <= 3:
            # One integer per row (21 bits per length, NULL = -1 shifted to 0) sorts fastest.
            key = np.zeros(n_rows, dtype=np.int64)
            for j in range(len(variable)):
                key |= (signature[:, j] + 1) << (21 * j)
            _, first_of, group = np.unique(key, return_index=True, return_inverse=True)
            layouts = signature[first_of]
        else:
            layouts, group = np.unique(signature, axis=0, return_inverse=True)
        group = group.reshape(-1)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(layouts) + 1))
    else:
        layouts, order, bounds = np.zeros((1, 0), dtype=np.int64), np.arange(n_rows), [0, n_rows]
    parts = []
    for g, layout in enumerate(layouts):
        rows = order[bounds[g]:bounds[g + 1]]
        sizes = dict(zip(variable, layout.tolist()))
        parts.append(_encode_group(rows, values, kinds, sizes))
    return n_rows, b"".join(parts)


def _padded(values: PackedText) -> np.ndarray:
    return _bytes_array([values.data[start:end] for start, end
                         in zip(values.starts.tolist(), values.ends.tolist(), strict=True)])


def _encode_packed(columns: Mapping, names: list[str], kinds: list[str]) -> bytes:
    """Rows of fixed-width values then one packed text: each row's fixed part, then its text."""
    text = columns[names[-1]]
    layout = [("n_fields", ">i2")]
    for i, kind in enumerate(kinds[:-1]):
        layout += [(f"len{i}", ">i4"), (f"value{i}", kind)]
    layout.append(("text_len", ">i4"))
    records = np.empty(len(text), dtype=layout)
    records["n_fields"] = len(kinds)
    for i, (name, kind) in enumerate(zip(names[:-1], kinds[:-1])):
        fixed, _null = _fixed_values(columns[name], kind, name)  # no NULL: not an object array
        records[f"len{i}"] = np.dtype(kind).itemsize
        records[f"value{i}"] = fixed
    records["text_len"] = text.lengths()
    heads = records.view(np.uint8).reshape(len(text), records.dtype.itemsize)
    return kernels.interleave_rows(heads, text.data, text.starts, text.ends)


def _encode_group(rows, values, kinds, sizes) -> bytes:
    """Rows that share every variable length: one structured array."""
    layout = [("n_fields", ">i2")]
    for i, kind in enumerate(kinds):
        size = sizes.get(i, np.dtype(kind).itemsize if kind != "text" else None)
        layout.append((f"len{i}", ">i4"))
        if size is not None and size > 0:
            layout.append((f"value{i}", f"S{size}" if kind == "text" else kind))
    records = np.empty(len(rows), dtype=layout)
    records["n_fields"] = len(kinds)
    for i, kind in enumerate(kinds):
        size = sizes.get(i, np.dtype(kind).itemsize if kind != "text" else None)
        records[f"len{i}"] = size
        if size is not None and size > 0:
            records[f"value{i}"] = values[i][rows]
    return records.tobytes()


def _fixed_values(column, kind: str, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Values as ``kind``, and a NULL mask when the column holds None."""
    array = np.asarray(column)
    null = None
    if array.dtype == object:
        null = np.array([value is None for value in array], dtype=bool)
        if null.any():
            array = np.where(null, 0, array)
        else:
            null = None
    target = np.dtype(kind)
    if target.kind in "iu" and array.dtype.kind == "f":
        as_int = array.astype(np.int64)
        if not np.array_equal(as_int, array):
            raise ValueError(f"column {name!r} is an integer column; got non-integer floats")
        array = as_int
    return array.astype(target), null


def _text_bytes(column) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of each value (an ``S`` array) and their lengths (-1 for None)."""
    array = np.asarray(column)
    if array.dtype.kind == "S":  # already UTF-8
        return array, _byte_lengths(array)
    if array.dtype.kind == "U":
        try:
            encoded = array.astype("S")  # ASCII: numpy encodes the whole array at once
        except UnicodeEncodeError:
            encoded = np.array([value.encode() for value in array.tolist()], dtype=object)
            return _bytes_array(encoded), np.fromiter(map(len, encoded), np.int64, len(encoded))
        return encoded, _byte_lengths(encoded)
    items = array.tolist()
    encoded = [None if value is None else str(value).encode() for value in items]
    lengths = np.fromiter((-1 if value is None else len(value) for value in encoded), np.int64,
                          len(encoded))
    return _bytes_array([b"" if value is None else value for value in encoded]), lengths


def _bytes_array(values) -> np.ndarray:
    width = max((len(value) for value in values), default=0)
    return np.array(list(values), dtype=f"S{max(1, width)}")


def _byte_lengths(array: np.ndarray) -> np.ndarray:
    """Lengths of the values of an ``S`` array (numpy pads them with NUL bytes)."""
    width = array.dtype.itemsize
    if len(array) == 0 or width == 0:
        return np.zeros(len(array), dtype=np.int64)
    padded = np.ascontiguousarray(array).view(np.uint8).reshape(len(array), width) != 0
    # The length is one past the last non-NUL byte (UTF-8 text has no NUL inside).
    last = width - np.argmax(padded[:, ::-1], axis=1)
    return np.where(padded.any(axis=1), last, 0).astype(np.int64)
