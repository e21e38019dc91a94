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
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..conf import max_weight, recs_settings
from ..items import (
    integer_pk,
    is_item_model,
    item_content_type,
    item_models,
    key_field,
    key_for_pk,
)
from ..storage import bulk_insert, bulk_insert_chunks
from .forgetting import forgotten_user_ids
from .sources import active_sources, source_content_type, source_key, source_values
from .validation import (
    checked_event,
    checked_session_key,
    checked_weight,
    event_weight,
    item_reference,
    user_pk,
)

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
#: Tables up to this size have all their keys loaded once they need a second lookup.
LOAD_ALL_KEYS_UP_TO = 2_000_000

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
    forgotten: int = 0  # rows of forgotten users (forget_user()), never recorded
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
    """Validated interactions, a tuple per row, with where each row came from."""

    COLUMNS = ("user_id", "session_key", "item_type_id", "item_key", "event", "weight",
               "timestamp")
    SOURCE_COLUMNS = ("source_type_id", "source_key", "value")

    def __init__(self, label: str = "", *, with_source: bool = False):
        self.label = label
        self.with_source = with_source
        self.rows: list[tuple] = []
        self.where: list = []
        self.errors: list[RowError] = []
        self.rows_seen = 0
        self.already_recorded = 0
        self.not_recorded = 0
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self, where) -> str:
        return f"{self.label} {where}" if self.label else str(where)

    def error(self, where, message: str) -> None:
        # Cut short: a value is named, not a whole field of the file quoted.
        self.errors.append(RowError(self.describe(where), message[:500]))

    def append_values(self, where, values: dict) -> None:
        names = self.COLUMNS + (self.SOURCE_COLUMNS if self.with_source else ())
        self.rows.append(tuple(values[name] for name in names))
        self.where.append(where)

    def drop(self, bad: set[int]) -> None:
        self.rows = [row for i, row in enumerate(self.rows) if i not in bad]
        self.where = [where for i, where in enumerate(self.where) if i not in bad]

    def columns(self, *, by_user: bool = False) -> dict:
        """The rows as columns; ``by_user`` groups them by user first.

        Rows written grouped as the (user, timestamp) index is ordered update
        it with far fewer random page visits: a quarter less database work.
        """
        names = self.COLUMNS + (self.SOURCE_COLUMNS if self.with_source else ())
        rows = sorted(self.rows, key=_user_order) if by_user else self.rows
        return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def _user_order(row: tuple) -> int:
    # User ids are integers here; sessions (None) first. The sort is stable,
    # so one user's rows keep their order (usually already by time).
    return row[0] or 0


class _RowParser:
    """Validates raw rows (text from a file or Python objects), with caches for repeats.

    Users and items given by primary key are checked to exist in bulk, once
    per distinct key; the per-row work is a few dictionary lookups.
    """

    def __init__(self, using: str):
        self.using = using
        self.now = timezone.now()
        self.tz = timezone.get_current_timezone() if settings.USE_TZ else None
        self.events, self.broken_events = _event_defaults()
        self.max_weight = max_weight()
        self.item_models = {model._meta.label_lower: model for model in item_models()}
        self.single_model = (
            next(iter(self.item_models.values())) if len(self.item_models) == 1 else None
        )
        self.user_model = get_user_model()
        #: Users forgotten when the parse began: their rows are skipped (and counted).
        self.forgotten = forgotten_user_ids(using=using)
        # raw value -> parsed value, or the error text for a bad one
        self._users: dict = {}
        self._items: dict = {}
        self._timestamps: dict = {}
        self._weights: dict[str, float] = {}
        # parsed primary keys not yet known to exist
        self._unchecked_users: set = set()
        self._unchecked_items: dict[type[models.Model], set] = {}
        # Models whose every primary key is loaded (after repeated lookups),
        # so new keys are checked without a query, and lookups made per model.
        self._all_pks: dict[type[models.Model], set] = {}
        self._lookups: dict[type[models.Model], int] = {}

    @property
    def needs_lookup(self) -> bool:
        """True when parsed users or items must still be checked to exist (a query)."""
        return bool(self._unchecked_users or self._unchecked_items)

    def parse(self, rows, label: str, *, check: bool = True) -> _Batch:
        """Validate rows; with ``check`` also drop those whose user or item does not exist.

        Without ``check`` no query runs; call :meth:`check_existence` on the
        batch before writing it when :attr:`needs_lookup`.
        """
        batch = _Batch(label)
        out, wheres = batch.rows, batch.where
        events, users, items, forgotten = self.events, self._users, self._items, self.forgotten
        self._timestamps.clear()
        for where, user, item, event, weight, timestamp, session_key in rows:
            batch.rows_seen += 1
            try:
                if type(item) is _Malformed:
                    raise ValueError(item)
                if event is None or event == "":
                    event = "view"
                default = events.get(event) if type(event) is str else None
                if weight is None or weight == "":
                    if default is None:
                        raise ValueError(self._event_error(event))
                    weight = default
                elif default is None and not (type(event) is str and event in self.broken_events):
                    raise ValueError(self._event_error(event))
                elif not (type(weight) is float and 0.0 <= weight <= self.max_weight):
                    weight = self._weight(weight, event)
                # Only values whose equality means "same key" are looked up in the
                # caches: True == 1 and (Product, 2.0) == (Product, 2), but no key.
                kind = type(user)
                user_id = users.get(user) if kind is str or kind is int or user is None \
                    or _cacheable(user) else None
                if user_id is None:
                    user_id = self._user(user)
                elif type(user_id) is _Invalid:
                    raise ValueError(user_id)
                if forgotten and user_id in forgotten:
                    batch.forgotten += 1
                    continue
                if session_key:
                    session_key = checked_session_key(session_key)
                else:
                    session_key = ""
                    if user_id is _NO_USER:
                        raise ValueError("no user and no session_key")
                kind = type(item)
                reference = items.get(item) if kind is str or kind is int or _cacheable(item) \
                    else None
                if reference is None:
                    reference = self._item(item)
                elif type(reference) is _Invalid:
                    raise ValueError(reference)
                if not (type(timestamp) is datetime.datetime and timestamp.tzinfo is not None):
                    timestamp = self._timestamp(timestamp)
            except (ValueError, TypeError) as error:
                batch.error(where, str(error))
                continue
            out.append((None if user_id is _NO_USER else user_id, session_key, reference[0],
                        reference[1], event, weight, timestamp))
            wheres.append(where)
        if check:
            self.check_existence(batch)
        return batch

    def _weight(self, weight, event) -> float:
        if type(weight) is str:
            parsed = self._weights.get(weight)
            if parsed is None:
                try:
                    parsed = checked_weight(float(weight), event)
                except ValueError as error:
                    if "could not convert" in str(error):
                        raise ValueError(f"weight {weight!r} is not a number") from None
                    raise
                self._weights[weight] = parsed
            return parsed
        return checked_weight(weight, event)

    def _user(self, user):
        """The user's pk (_NO_USER for none); cached, ValueError for a bad one."""
        try:
            parsed = self._parse_user(user)
        except ValueError as error:
            parsed = _Invalid(error)
        if _cacheable(user):
            self._users[user] = parsed
        if type(parsed) is _Invalid:
            raise ValueError(parsed)
        return parsed

    def _parse_user(self, user):
        if user is None or user == "" or getattr(user, "is_anonymous", False):
            return _NO_USER
        if isinstance(user, models.Model):
            return user_pk(user)  # a saved instance: no existence check
        text = user.strip() if isinstance(user, str) else user
        try:
            pk = _primary_key(self.user_model, text)
        except ValueError as error:
            raise ValueError(
                f"user {_shown(user)} is not a {self.user_model._meta.label} primary key "
                f"({error})"
            ) from None
        if pk is None:  # empty text of a UUID key
            return _NO_USER
        known = self._all_pks.get(self.user_model)
        if known is None:
            self._unchecked_users.add(pk)
        elif pk not in known:
            raise ValueError(f"no {self.user_model._meta.label} with primary key {pk!r}")
        return pk

    def _item(self, item):
        """(content type id, key); cached, ValueError for a bad one."""
        try:
            parsed = self._parse_item(item)
        except ValueError as error:
            parsed = _Invalid(error)
        if _cacheable(item):
            self._items[item] = parsed
        if type(parsed) is _Invalid:
            raise ValueError(parsed)
        return parsed

    def _parse_item(self, item):
        if isinstance(item, models.Model):
            return item_reference(item)  # a saved instance: no existence check
        if (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], type)
                and issubclass(item[0], models.Model)):
            model, pk = item
            if not is_item_model(model):
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
            raise ValueError(
                f"item {_shown(item)} is not an instance, a (model, pk) pair or text"
            )
        try:
            pk = _primary_key(model, pk)
            key = key_for_pk(model, pk)
        except ValueError as error:
            raise ValueError(
                f"item {_shown(item)}: {_shown(pk)} is not a {model._meta.label} primary key "
                f"({error})"
            ) from None
        known = self._all_pks.get(model)
        if known is None:
            self._unchecked_items.setdefault(model, set()).add(pk)
        elif pk not in known:
            raise ValueError(f"no {model._meta.label} with primary key {pk!r}")
        return item_content_type(model).pk, key

    def _timestamp(self, timestamp):
        if timestamp is None or timestamp == "":
            return self.now
        if isinstance(timestamp, datetime.datetime):
            return self._aware(timestamp)
        if not isinstance(timestamp, str):
            raise ValueError(f"timestamp {timestamp!r} is not a datetime or ISO 8601 text")
        parsed = self._timestamps.get(timestamp)
        if parsed is None:
            text = timestamp.strip()
            try:
                parsed = datetime.datetime.fromisoformat(text)
            except ValueError:
                parsed = parse_datetime(text)
                if parsed is None:
                    raise ValueError(
                        f"timestamp {timestamp!r} is not an ISO 8601 date and time "
                        "(e.g. 2011-12-09 12:50:00 or 2011-12-09T12:50:00+01:00)"
                    ) from None
            parsed = self._aware(parsed)
            self._timestamps[timestamp] = parsed
        return parsed

    def _aware(self, value: datetime.datetime) -> datetime.datetime:
        try:
            if self.tz is not None and value.tzinfo is None:
                if isinstance(self.tz, zoneinfo.ZoneInfo) or self.tz is datetime.timezone.utc:
                    value = value.replace(tzinfo=self.tz)  # what make_aware does for these
                else:
                    value = timezone.make_aware(value, self.tz)
            if value.tzinfo is not None:
                value.astimezone(datetime.timezone.utc)  # the databases store UTC
        except (OverflowError, ValueError) as error:
            raise ValueError(f"timestamp {value!r} cannot be stored: {error}") from None
        return value

    def _event_error(self, event) -> str:
        """Why ``event`` cannot be recorded: unknown, or a broken default weight."""
        if type(event) is str and event in self.broken_events:
            return self.broken_events[event]
        return (f"unknown event {_shown(event)}: DJANGO_RECS['EVENTS'] has "
                f"{', '.join(sorted(map(str, recs_settings.EVENTS)))}")

    def check_existence(self, batch: _Batch) -> None:
        """Drop (as errors) the rows whose user or item does not exist."""
        missing_users: set = set()
        if self._unchecked_users:
            wanted = self._unchecked_users
            missing_users = wanted - self._existing(self.user_model, wanted)
            self._unchecked_users = set()
        missing_items: dict[tuple, str] = {}
        for model, wanted in self._unchecked_items.items():
            for pk in wanted - self._existing(model, wanted):
                missing_items[(item_content_type(model).pk, key_for_pk(model, pk))] = (
                    f"no {model._meta.label} with primary key {pk!r}"
                )
        self._unchecked_items = {}
        if not missing_users and not missing_items:
            return
        # Later rows with these keys hit the cache: make it answer with the error.
        label = self.user_model._meta.label
        for raw, pk in list(self._users.items()):
            if type(pk) is not _Invalid and pk in missing_users:
                self._users[raw] = _Invalid(f"no {label} with primary key {pk!r}")
        for raw, reference in list(self._items.items()):
            if type(reference) is tuple and reference in missing_items:
                self._items[raw] = _Invalid(missing_items[reference])
        bad = {}
        for index, row in enumerate(batch.rows):
            if row[0] is not None and row[0] in missing_users:
                bad[index] = f"no {label} with primary key {row[0]!r}"
            elif (row[2], row[3]) in missing_items:
                bad[index] = missing_items[(row[2], row[3])]
        for index, message in bad.items():
            batch.error(batch.where[index], message)
        batch.drop(set(bad))


    def _existing(self, model: type[models.Model], pks: set) -> set:
        """Which of ``pks`` exist. From the second lookup of a model on, when its
        table is small enough, all its keys are loaded at once: a streamed import
        then never has to pause its COPY for another lookup."""
        self._lookups[model] = self._lookups.get(model, 0) + 1
        manager = model._default_manager.db_manager(self.using)
        if self._lookups[model] >= 2 and manager.count() <= LOAD_ALL_KEYS_UP_TO:
            self._all_pks[model] = set(manager.values_list("pk", flat=True).iterator(
                chunk_size=QUERY_BATCH * 10))
            return pks & self._all_pks[model]
        return _existing(model, pks, self.using)


#: The parsed user of a row without one (None means "not cached yet").
_NO_USER = object()


def _event_defaults() -> tuple[dict[str, float], dict[str, str]]:
    """EVENTS as {name: default weight}, and {name: error} for defaults that are unusable."""
    usable, broken = {}, {}
    for name in recs_settings.EVENTS:
        try:
            checked_event(name)
        except ValueError:
            continue  # a name no row can store: unknown to the import (E021)
        try:
            usable[name] = event_weight(name)
        except ValueError as error:
            broken[name] = str(error)
    return usable, broken


def _primary_key(model: type[models.Model], value):
    """``value`` as ``model``'s primary key (integer or UUID); ValueError for anything else.

    The key's type is the root's (a multi-table child's own primary key is a parent link).
    """
    field = key_field(model)
    if isinstance(field, models.UUIDField):
        try:
            return field.to_python(value)
        except (ValidationError, TypeError, ValueError, AttributeError):
            raise ValueError(f"{_shown(value)} is not a UUID") from None
    return integer_pk(model, value)


def _shown(value, limit: int = 60) -> str:
    """repr() of a raw value, cut short: an error names the value without quoting a whole file."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class _Invalid(str):
    """A cached parse result that is an error message."""


#: Key types whose equal values are the same key (1.0 == 1 and True == 1 are not).
_CACHED_KEY_TYPES = (str, int, uuid.UUID)


def _cacheable(value) -> bool:
    """Whether a raw user or item may be looked up in a parse cache.

    Only values whose equality means "same key": text, integers, saved model
    instances and (model, key) pairs of those; a bool or a float equals an
    integer but must be checked on its own.
    """
    kind = type(value)
    if kind in _CACHED_KEY_TYPES or value is None:
        return True
    if kind is tuple:
        return len(value) == 2 and type(value[1]) in _CACHED_KEY_TYPES
    return isinstance(value, models.Model) and type(value.pk) in _CACHED_KEY_TYPES


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
    stream: bool = True,
) -> ImportResult:
    """Validate raw rows ``(where, user, item, event, weight, timestamp, session_key)``; write them.

    With ``stream`` (the rows come from a file or memory, not from this
    database) the chunks go through one COPY on PostgreSQL while the next
    chunk is parsed, so parsing and the database's work overlap; the COPY is
    closed and reopened only when unknown users or items must be looked up.
    Returns an :class:`ImportResult`; raises :class:`InvalidRows` (nothing
    written) when a row is bad and ``skip_invalid`` is False.
    """
    from ..models import Interaction

    using = using or router.db_for_write(Interaction)
    parser = _RowParser(using)
    raw_chunks = _chunks(iter(rows), chunk_size)
    if not stream:
        batches = (parser.parse(chunk, line_label) for chunk in raw_chunks)
        return _write_batches(batches, skip_invalid=skip_invalid, using=using,
                              progress=progress, total=total, chunk_size=chunk_size,
                              forgotten=parser.forgotten)

    result = ImportResult()
    account = _Accountant(result, skip_invalid, progress, total)
    held: list[_Batch] = []  # parsed, waiting for the existence queries
    finished = False

    def columns_until_a_lookup() -> Iterator[dict]:
        nonlocal finished
        while held:
            columns = account(held.pop())
            if columns:
                yield columns
        for chunk in raw_chunks:
            batch = parser.parse(chunk, line_label, check=False)
            if parser.needs_lookup:
                held.append(batch)  # the open COPY must end before the query
                return
            columns = account(batch)
            if columns:
                yield columns
        finished = True

    with transaction.atomic(using=using):
        while not finished:
            for batch in held:
                parser.check_existence(batch)
            bulk_insert_chunks(Interaction, columns_until_a_lookup(), using=using,
                               batch_size=chunk_size)
        account.finish()
        _erase_newly_forgotten(parser.forgotten, result, using)
    return result


class _Accountant:
    """Counts each batch into the result; the columns to write, or None once a row is bad."""

    def __init__(self, result: ImportResult, skip_invalid: bool, progress, total):
        self.result, self.skip_invalid = result, skip_invalid
        self.progress, self.total = progress, total
        self.by_user = isinstance(get_user_model()._meta.pk, models.IntegerField)

    def __call__(self, batch: _Batch) -> dict | None:
        result = self.result
        result.rows_read += batch.rows_seen
        result.already_recorded += batch.already_recorded
        result.not_recorded += batch.not_recorded
        result.forgotten += batch.forgotten
        result.add_errors(batch.errors)
        write = len(batch) and (self.skip_invalid or not result.bad_rows)
        if write:
            result.written += len(batch)
        if self.progress is not None:
            self.progress(result.rows_read, self.total)
        return batch.columns(by_user=self.by_user) if write else None

    def finish(self) -> None:
        """InvalidRows (the transaction rolls back) when a row was bad and not skipped."""
        if self.result.bad_rows and not self.skip_invalid:
            self.result.written = 0
            raise InvalidRows(self.result)


def _write_batches(batches: Iterable[_Batch], *, skip_invalid, using, progress, total,
                   chunk_size, forgotten: set) -> ImportResult:
    """Write validated batches in one transaction; InvalidRows (rolled back) on a bad row.

    Each batch is produced (which may query the database: existence checks,
    source rows) before its COPY starts, so no query runs inside a COPY.
    """
    from ..models import Interaction

    result = ImportResult()
    account = _Accountant(result, skip_invalid, progress, total)
    with transaction.atomic(using=using):
        for batch in batches:
            columns = account(batch)
            if columns:
                bulk_insert(Interaction, columns, using=using, batch_size=chunk_size)
        account.finish()
        _erase_newly_forgotten(forgotten, result, using)
    return result


def _erase_newly_forgotten(known: set, result: ImportResult, using: str) -> None:
    """Delete, before the commit, rows of users forgotten while this transaction wrote.

    Their forget_user() could not see the rows still uncommitted here; the
    users forgotten when the parse began were skipped row by row.
    """
    from ..models import Interaction

    newly = forgotten_user_ids(using=using) - known
    if not newly:
        return
    count, _ = Interaction.objects.using(using).filter(user_id__in=list(newly)).delete()
    result.written = max(0, result.written - count)
    result.forgotten += count


def _chunks(iterable: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(iterable, size)):
        yield chunk


# --- Sources of raw rows --------------------------------------------------------------------


def python_rows(interactions: Iterable) -> Iterator[tuple]:
    """Raw rows of record_many()'s mappings or tuples, numbered from 1."""
    pads = {n: (None,) * (6 - n) for n in range(2, 7)}
    for number, interaction in enumerate(interactions, start=1):
        pad = pads.get(len(interaction)) if type(interaction) is tuple else None
        if pad is not None:
            yield (number, *interaction, *pad)
        elif isinstance(interaction, dict):
            unknown = set(interaction) - set(CSV_COLUMNS)
            if unknown:
                yield (number, None, _Malformed(
                    f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}; known: "
                    f"{', '.join(CSV_COLUMNS)}"), None, None, None, None)
                continue
            yield (number, *(interaction.get(name) for name in CSV_COLUMNS))
        elif isinstance(interaction, (tuple, list)) and 2 <= len(interaction) <= 6:
            yield (number, *interaction, *pads[len(interaction)])
        else:
            yield (number, None, _Malformed(
                "expected a mapping or a tuple (user, item[, event, weight, timestamp, "
                f"session_key]), got {type(interaction).__name__}"), None, None, None, None)


def csv_rows(handle: Iterable[str]) -> Iterator[tuple]:
    """Raw rows of a CSV file (header optional), numbered by file line.

    Raises ValueError naming the line for what is no CSV of interactions: a
    line the csv module cannot read (a field longer than its limit of
    131,072 characters, bytes that are not UTF-8), a header without an
    ``item`` column or with unknown or repeated names.
    """
    reader = csv.reader(handle)
    cells = next(_readable(reader), None)
    if cells is None:
        return
    names = [cell.strip().lower() for cell in cells]
    order = CSV_COLUMNS[:5]
    first_cells = cells
    if any(name in CSV_COLUMNS for name in names):  # a header: no data row has these cells
        unknown = [name for name in names if name not in CSV_COLUMNS]
        if unknown or len(set(names)) != len(names) or "item" not in names:
            problem = ("has no item column" if not unknown and len(set(names)) == len(names)
                       else f"names unknown or repeated columns {unknown or names}")
            raise ValueError(
                f"line {reader.line_num}: the header {problem}; known columns: "
                f"{', '.join(CSV_COLUMNS)} (item is required)"[:500]
            )
        order, first_cells = tuple(names), None
    elif len(cells) == len(CSV_COLUMNS):
        order = CSV_COLUMNS  # no header, with the session_key column
    positions = [order.index(name) if name in order else None for name in CSV_COLUMNS]
    yield from _csv_data_rows(reader, order, positions, first_cells=first_cells)


def _readable(reader) -> Iterator[list[str]]:
    """The reader's rows; ValueError naming the line where the file cannot be read."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ValueError(f"line {reader.line_num}: not readable as CSV: {error}") from None
        except UnicodeDecodeError as error:  # decoded a block at a time: the line is near
            raise ValueError(
                f"after line {reader.line_num}: the file is not UTF-8 text ({error.reason})"
            ) from None
        yield cells


def _csv_data_rows(reader, order, positions, first_cells) -> Iterator[tuple]:
    width = len(order)
    expected = f"expected {width} columns ({', '.join(order)})"
    for cells in chain([first_cells] if first_cells is not None else [], _readable(reader)):
        line = reader.line_num
        if len(cells) != width:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line
            if len(cells) > width or len(cells) < 2:
                yield (line, None, _Malformed(f"{expected}, got {len(cells)}"),
                       None, None, None, None)
                continue
            cells = cells + [""] * (width - len(cells))  # trailing empty columns left out
        cells = [cell.strip() or None for cell in cells]
        yield (line, *[None if i is None else cells[i] for i in positions])


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
    from ..models import Interaction

    using = using or router.db_for_write(Interaction)
    forgotten = forgotten_user_ids(using=using)
    sources = active_sources()
    total = sum(source.model._default_manager.using(using).count() for source in sources)
    now = timezone.now()
    batches = (
        batch
        for source in sources
        for batch in _source_batches(source, using=using, chunk_size=chunk_size, now=now,
                                     forgotten=forgotten)
    )
    return _write_batches(batches, skip_invalid=skip_invalid, using=using, progress=progress,
                          total=total, chunk_size=chunk_size, forgotten=forgotten)


def _source_batches(source, *, using, chunk_size, now, forgotten: set) -> Iterator[_Batch]:
    from ..models import Interaction

    model = source.model
    source_type_id = source_content_type(model).pk
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
        batch = _Batch(with_source=True)
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
                batch.error(where, f"{source.label}: {error}")
                continue
            if values is None:
                batch.not_recorded += 1
                continue
            if values["user_id"] in forgotten:
                batch.forgotten += 1
                continue
            batch.append_values(where, values)
        yield batch
