"""Bulk capture: record_many(), the CSV import and the backfill from SOURCES.

All three validate every row and write in one transaction through
:func:`django_recs.storage.bulk_insert` (COPY on PostgreSQL, batched
INSERTs elsewhere). Rows are handled in chunks, so memory stays
bounded; a bad row stops the writing but not the validation, so every bad
row is reported, and the transaction is then rolled back: nothing is written
unless ``skip_invalid`` asks for the good rows.

CSV format (``manage.py recs_import FILE.csv``)::

    user,item,event,weight,timestamp,session_key
    17,shop.product:42,purchase,2,2011-12-09 12:50:00,
    ,shop.product:7,view,,2011-12-09T12:51:00+01:00,3x9k2...

The header row is optional (without one, the columns are user, item,
event, weight, timestamp[, session_key] in this order). ``item`` is
``app_label.model:pk`` (or the bare pk when ITEM_MODELS has one model);
``user`` the user's primary key, empty for an anonymous visitor with a
``session_key``; empty ``event``/``weight``/``timestamp`` mean "view", the
event's weight, and now. Timestamps are ISO 8601; without an offset they
are in the current time zone.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .capture import (
    SESSION_KEY_MAX_LENGTH,
    checked_weight,
    event_weight,
    item_reference,
    source_key,
    source_values,
    user_pk,
)
from .conf import recs_settings
from .items import item_content_type, item_models, key_for_pk
from .storage import bulk_insert

__all__ = [
    "CSV_COLUMNS",
    "ImportResult",
    "InvalidRows",
    "RowError",
    "backfill_sources",
    "csv_rows",
    "import_csv",
    "python_rows",
    "write_interactions",
]

CSV_COLUMNS = ("user", "item", "event", "weight", "timestamp", "session_key")
#: Errors kept in memory and shown; the count of bad rows is always exact.
MAX_ERRORS_KEPT = 1000
MAX_ERRORS_SHOWN = 20
QUERY_BATCH = 1000

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class RowError:
    """A bad row: where it is (``line 7``, ``interaction 3``, ``testapp.OrderLine #5``) and why."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ImportResult:
    """What a bulk capture did."""

    rows_read: int = 0
    written: int = 0
    already_recorded: int = 0  # backfill: source rows recorded before
    not_recorded: int = 0  # backfill: rows the source skips (no user, predicate false)
    bad_rows: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_ERRORS_KEPT

    def add_errors(self, errors: list[RowError]) -> None:
        self.bad_rows += len(errors)
        self.errors.extend(errors[: max(0, MAX_ERRORS_KEPT - len(self.errors))])


class InvalidRows(ValueError):
    """Some rows are bad; nothing was written. ``result.errors`` lists them."""

    def __init__(self, result: ImportResult):
        self.result = result
        shown = result.errors[:MAX_ERRORS_SHOWN]
        lines = [f"{result.bad_rows} invalid row(s); nothing was written."]
        lines += [f"  {error}" for error in shown]
        if result.bad_rows > len(shown):
            lines.append(f"  ... and {result.bad_rows - len(shown)} more")
        super().__init__("\n".join(lines))


class _Malformed(str):
    """Stands in for the item of a row that could not even be split into columns."""


# --- Turning raw values into interaction columns -----------------------------------


class _Batch:
    """Validated interactions as columns, with where each row came from."""

    COLUMNS = ("user_id", "session_key", "item_type_id", "item_key", "event", "weight",
               "timestamp", "source_type_id", "source_key")

    def __init__(self):
        self.data = {name: [] for name in self.COLUMNS}
        self.where: list[str] = []
        self.errors: list[RowError] = []
        self.rows_seen = 0
        self.already_recorded = 0
        self.not_recorded = 0

    def __len__(self) -> int:
        return len(self.where)

    def append(self, where: str, values: dict) -> None:
        self.where.append(where)
        for name, column in self.data.items():
            column.append(values.get(name))

    def drop(self, bad: set[int]) -> None:
        keep = [i for i in range(len(self.where)) if i not in bad]
        self.where = [self.where[i] for i in keep]
        for name, column in self.data.items():
            self.data[name] = [column[i] for i in keep]

    def columns(self) -> dict[str, list]:
        columns = dict(self.data)
        columns["session_key"] = [key or "" for key in columns["session_key"]]
        columns["source_key"] = [key or "" for key in columns["source_key"]]
        return columns


class _RowParser:
    """Validates raw rows (text from a file or Python objects), with caches for repeats."""

    def __init__(self, using: str):
        self.using = using
        self.now = timezone.now()
        self.events = {name: event_weight(name) for name in recs_settings.EVENTS}
        self.item_models = {model._meta.label_lower: model for model in item_models()}
        self.single_model = (
            next(iter(self.item_models.values())) if len(self.item_models) == 1 else None
        )
        self.user_model = get_user_model()
        self._items: dict = {}
        self._users: dict = {}
        self._timestamps: dict = {}
        self._existing_users: set = set()
        self._existing_items: dict[type[models.Model], set] = {}

    def parse(self, rows, label: str) -> _Batch:
        batch = _Batch()
        checked_users: list = []  # (row index, user pk) needing an existence check
        checked_items: list = []  # (row index, model, pk)
        self._timestamps.clear()
        for where, user, item, event, weight, timestamp, session_key in rows:
            batch.rows_seen += 1
            where = f"{label} {where}"
            try:
                if type(item) is _Malformed:
                    raise ValueError(str(item))
                values, user_check, item_check = self._row(
                    user, item, event, weight, timestamp, session_key
                )
            except ValueError as error:
                batch.errors.append(RowError(where, str(error)))
                continue
            if user_check is not None:
                checked_users.append((len(batch), user_check))
            if item_check is not None:
                checked_items.append((len(batch), *item_check))
            batch.append(where, values)
        self._check_existence(batch, checked_users, checked_items)
        return batch

    def _row(self, user, item, event, weight, timestamp, session_key):
        event = event or "view"
        default_weight = self.events.get(event)
        if default_weight is None:
            raise ValueError(
                f"unknown event {event!r}: DJANGO_RECS['EVENTS'] has {', '.join(sorted(self.events))}"
            )
        if weight is None or weight == "":
            weight = default_weight
        elif type(weight) is str:
            try:
                weight = float(weight)
            except ValueError:
                raise ValueError(f"weight {weight!r} is not a number") from None
            weight = checked_weight(weight, event)
        else:
            weight = checked_weight(weight, event)
        user_id, user_check = self._user(user)
        if session_key:
            if not isinstance(session_key, str) or len(session_key) > SESSION_KEY_MAX_LENGTH:
                raise ValueError(
                    f"session_key must be a string of at most {SESSION_KEY_MAX_LENGTH} characters"
                )
        else:
            session_key = ""
        if user_id is None and not session_key:
            raise ValueError("no user and no session_key")
        item_type_id, item_key, item_check = self._item(item)
        values = {
            "user_id": user_id,
            "session_key": session_key,
            "item_type_id": item_type_id,
            "item_key": item_key,
            "event": event,
            "weight": weight,
            "timestamp": self._timestamp(timestamp),
        }
        return values, user_check, item_check

    def _user(self, user):
        """(user pk or None, pk to check for existence or None)."""
        if user is None or user == "":
            return None, None
        cached = self._users.get(user) if _hashable(user) else None
        if cached is None:
            cached = self._parse_user(user)
            if _hashable(user):
                self._users[user] = cached
        if isinstance(cached, str):
            raise ValueError(cached)
        pk, check = cached
        return pk, (pk if check else None)

    def _parse_user(self, user):
        if isinstance(user, models.Model) or getattr(user, "is_anonymous", False):
            try:
                return (user_pk(user), False)
            except ValueError as error:
                return str(error)
        text = user.strip() if isinstance(user, str) else user
        try:
            return (self.user_model._meta.pk.to_python(text), True)
        except (ValidationError, TypeError, ValueError):
            return f"user {user!r} is not a {self.user_model._meta.label} primary key"

    def _item(self, item):
        """(content type id, key, (model, pk) to check or None)."""
        cached = self._items.get(item) if _hashable(item) else None
        if cached is None:
            try:
                cached = self._parse_item(item)
            except ValueError as error:
                cached = str(error)
            if _hashable(item):
                self._items[item] = cached
        if isinstance(cached, str):
            raise ValueError(cached)
        return cached

    def _parse_item(self, item):
        if isinstance(item, models.Model):
            return (*item_reference(item), None)
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], type):
            model, pk = item
            if model._meta.label_lower not in self.item_models:
                raise ValueError(f"{model._meta.label} is not in DJANGO_RECS['ITEM_MODELS']")
        elif isinstance(item, (str, int)) and item != "":
            text = str(item).strip()
            label, separator, pk = text.partition(":")
            if separator:
                model = self.item_models.get(label.lower())
                if model is None:
                    raise ValueError(
                        f"item {text!r}: {label!r} is not in DJANGO_RECS['ITEM_MODELS'] "
                        f"({', '.join(self.item_models)})"
                    )
            elif self.single_model is not None:
                model, pk = self.single_model, text
            else:
                raise ValueError(
                    f"item {text!r} must be written 'app_label.model:pk' when ITEM_MODELS has "
                    f"several models ({', '.join(self.item_models)})"
                )
        else:
            raise ValueError(f"item {item!r} is not an instance, a (model, pk) pair or text")
        try:
            pk = model._meta.pk.to_python(pk)
            key = key_for_pk(model, pk)
        except (ValidationError, TypeError, ValueError):
            raise ValueError(
                f"item {item!r}: {pk!r} is not a {model._meta.label} primary key"
            ) from None
        return item_content_type(model).pk, key, (model, pk)

    def _timestamp(self, timestamp):
        if timestamp is None or timestamp == "":
            return self.now
        if isinstance(timestamp, datetime.datetime):
            if settings.USE_TZ and timestamp.tzinfo is None:
                return timezone.make_aware(timestamp)
            return timestamp
        if not isinstance(timestamp, str):
            raise ValueError(f"timestamp {timestamp!r} is not a datetime or ISO 8601 text")
        parsed = self._timestamps.get(timestamp)
        if parsed is None:
            try:
                parsed = datetime.datetime.fromisoformat(timestamp.strip())
            except ValueError:
                parsed = parse_datetime(timestamp.strip())
                if parsed is None:
                    raise ValueError(
                        f"timestamp {timestamp!r} is not an ISO 8601 date and time "
                        "(e.g. 2011-12-09 12:50:00 or 2011-12-09T12:50:00+01:00)"
                    ) from None
            if settings.USE_TZ and parsed.tzinfo is None:
                parsed = timezone.make_aware(parsed)
            self._timestamps[timestamp] = parsed
        return parsed

    def _check_existence(self, batch: _Batch, users: list, items: list) -> None:
        bad: dict[int, str] = {}
        wanted = {pk for _, pk in users} - self._existing_users
        if wanted:
            self._existing_users |= _existing(self.user_model, wanted, self.using)
        for index, pk in users:
            if pk not in self._existing_users:
                bad[index] = f"no {self.user_model._meta.label} with primary key {pk!r}"
        by_model: dict = {}
        for _, model, pk in items:
            by_model.setdefault(model, set()).add(pk)
        for model, pks in by_model.items():
            known = self._existing_items.setdefault(model, set())
            wanted = pks - known
            if wanted:
                known |= _existing(model, wanted, self.using)
        for index, model, pk in items:
            if pk not in self._existing_items[model] and index not in bad:
                bad[index] = f"no {model._meta.label} with primary key {pk!r}"
        if bad:
            batch.errors.extend(RowError(batch.where[i], message) for i, message in bad.items())
            batch.drop(set(bad))


def _hashable(value) -> bool:
    return isinstance(value, (str, int, tuple, models.Model))


def _existing(model: type[models.Model], pks: set, using: str) -> set:
    found: set = set()
    pks = list(pks)
    manager = model._default_manager.db_manager(using)
    for start in range(0, len(pks), QUERY_BATCH):
        found.update(manager.filter(pk__in=pks[start:start + QUERY_BATCH])
                     .values_list("pk", flat=True))
    return found


# --- Writing ------------------------------------------------------------------------------


def write_interactions(
    rows: Iterable[tuple],
    *,
    skip_invalid: bool = False,
    using: str | None = None,
    chunk_size: int = 50_000,
    progress: Progress | None = None,
    total: int | None = None,
    line_label: str = "line",
) -> ImportResult:
    """Validate raw rows ``(where, user, item, event, weight, timestamp, session_key)`` and write them.

    Returns an :class:`ImportResult`; raises :class:`InvalidRows` (nothing
    written) when a row is bad and ``skip_invalid`` is False.
    """
    from .models import Interaction

    using = using or router.db_for_write(Interaction)
    parser = _RowParser(using)
    rows = iter(rows)
    batches = (parser.parse(chunk, line_label) for chunk in _chunks(rows, chunk_size))
    return _write_batches(batches, skip_invalid=skip_invalid, using=using, progress=progress,
                          total=total, chunk_size=chunk_size)


def _write_batches(batches: Iterable[_Batch], *, skip_invalid, using, progress, total,
                   chunk_size) -> ImportResult:
    """Write validated batches in one transaction; InvalidRows (rolled back) on a bad row.

    Each batch is produced (which may query the database: existence checks,
    source rows) before its COPY starts, so no query runs inside a COPY.
    """
    from .models import Interaction

    result = ImportResult()
    with transaction.atomic(using=using):
        for batch in batches:
            result.rows_read += batch.rows_seen
            result.already_recorded += batch.already_recorded
            result.not_recorded += batch.not_recorded
            result.add_errors(batch.errors)
            if len(batch) and (skip_invalid or not result.bad_rows):
                result.written += bulk_insert(Interaction, batch.columns(), using=using,
                                              batch_size=chunk_size)
            if progress is not None:
                progress(result.rows_read, total)
        if result.bad_rows and not skip_invalid:
            result.written = 0
            raise InvalidRows(result)
    return result


def _chunks(iterable: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(iterable, size)):
        yield chunk


# --- Sources of raw rows --------------------------------------------------------------------


def python_rows(interactions: Iterable) -> Iterator[tuple]:
    """Raw rows of record_many()'s mappings or tuples, numbered from 1."""
    for number, interaction in enumerate(interactions, start=1):
        if isinstance(interaction, dict):
            unknown = set(interaction) - set(CSV_COLUMNS)
            if unknown:
                yield (number, None, _Malformed(
                    f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}; known: "
                    f"{', '.join(CSV_COLUMNS)}"), None, None, None, None)
                continue
            yield (number, *(interaction.get(name) for name in CSV_COLUMNS))
        elif isinstance(interaction, (tuple, list)) and 2 <= len(interaction) <= 6:
            yield (number, *interaction, *([None] * (6 - len(interaction))))
        else:
            yield (number, None, _Malformed(
                "expected a mapping or a tuple (user, item[, event, weight, timestamp, "
                f"session_key]), got {type(interaction).__name__}"), None, None, None, None)


def csv_rows(handle: Iterable[str]) -> Iterator[tuple]:
    """Raw rows of a CSV file (header optional), numbered by file line."""
    reader = csv.reader(handle)
    order = CSV_COLUMNS
    first = True
    for cells in reader:
        line = reader.line_num
        if first:
            first = False
            names = [cell.strip().lower() for cell in cells]
            if "item" in names:
                unknown = [name for name in names if name not in CSV_COLUMNS]
                if unknown or len(set(names)) != len(names):
                    raise ValueError(
                        f"line {line}: the header names unknown or repeated columns "
                        f"{unknown or names}; known columns: {', '.join(CSV_COLUMNS)}"
                    )
                order = tuple(names)
                continue
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # blank line
        if len(cells) > len(order) or len(cells) < min(2, len(order)):
            yield (line, None, _Malformed(
                f"expected {len(order)} columns ({', '.join(order)}), got {len(cells)}"),
                None, None, None, None)
            continue
        row = dict(zip(order, cells))
        yield (line, *(row.get(name, "").strip() or None for name in CSV_COLUMNS))


def import_csv(
    path: str | os.PathLike,
    *,
    skip_invalid: bool = False,
    using: str | None = None,
    chunk_size: int = 50_000,
    progress: Progress | None = None,
) -> ImportResult:
    """Load a CSV file of interactions (see the module docstring for the format).

    ``path`` "-" reads standard input. Raises :class:`InvalidRows` when a row
    is bad (nothing written) unless ``skip_invalid``; FileNotFoundError.
    """
    import sys

    if str(path) == "-":
        handle = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        total = None
        return write_interactions(csv_rows(handle), skip_invalid=skip_invalid, using=using,
                                  chunk_size=chunk_size, progress=progress, total=total)
    total = _count_lines(path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return write_interactions(csv_rows(handle), skip_invalid=skip_invalid, using=using,
                                  chunk_size=chunk_size, progress=progress, total=total)


def _count_lines(path) -> int:
    """Lines in a file, roughly the rows to read (for the progress bar)."""
    count = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
    return count


# --- Backfill from SOURCES --------------------------------------------------------------------


def backfill_sources(
    *,
    skip_invalid: bool = False,
    using: str | None = None,
    chunk_size: int = 5_000,
    progress: Progress | None = None,
) -> ImportResult:
    """Record every existing row of every SOURCES model once.

    Each interaction stores the source row it came from, so a row already
    recorded (by an earlier backfill or live, when it was saved) is skipped:
    running the backfill twice records nothing twice. Rows are read in
    primary-key order with the relations of the paths loaded alongside. The
    ``when`` predicate of a source is called as ``when(instance, True)``.
    """
    from .models import Interaction
    from .sources import active_sources

    using = using or router.db_for_write(Interaction)
    sources = active_sources()
    total = sum(source.model._default_manager.using(using).count() for source in sources)
    now = timezone.now()
    batches = (
        batch
        for source in sources
        for batch in _source_batches(source, using=using, chunk_size=chunk_size, now=now)
    )
    return _write_batches(batches, skip_invalid=skip_invalid, using=using, progress=progress,
                          total=total, chunk_size=chunk_size)


def _source_batches(source, *, using, chunk_size, now) -> Iterator[_Batch]:
    from .models import Interaction

    model = source.model
    source_type_id = item_content_type(model).pk
    queryset = model._default_manager.using(using).order_by("pk")
    related = source.select_related()
    if related:
        queryset = queryset.select_related(*related)
    last_pk = None
    while True:
        page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
        instances = list(page[:chunk_size])
        if not instances:
            return
        last_pk = instances[-1].pk
        keys = [source_key(instance.pk) for instance in instances]
        recorded = set()
        for start in range(0, len(keys), QUERY_BATCH):
            recorded.update(
                Interaction.objects.using(using)
                .filter(source_type_id=source_type_id, event=source.event,
                        source_key__in=keys[start:start + QUERY_BATCH])
                .values_list("source_key", flat=True)
            )
        batch = _Batch()
        for instance, key in zip(instances, keys):
            batch.rows_seen += 1
            if key in recorded:
                batch.already_recorded += 1
                continue
            where = f"{model._meta.label} #{instance.pk}"
            try:
                values = (
                    source_values(source, instance, now=now)
                    if source.should_record(instance, True) else None
                )
            except Exception as error:  # a bad weight, a failing callable...
                batch.errors.append(RowError(where, f"{source.label}: {error}"))
                continue
            if values is None:
                batch.not_recorded += 1
                continue
            batch.append(where, values)
        yield batch
