"""Sources: model saves that are recorded as interactions, declared in settings.

Each entry of ``DJANGO_RECS["SOURCES"]`` (and each :func:`register_source`
call) names a model whose saves become interactions::

    {"model": "shop.OrderLine", "event": "purchase",
     "user": "order.customer",       # attribute path to the user (None = guest: skipped)
     "item": "product",              # attribute path | "module.func"(instance) -> item or None
     "weight": "quantity",           # number | attribute path | "module.func"(instance)
     "value": "price * quantity",    # optional: number | attribute paths joined by "*"
                                     #  | "module.func"(instance): what the event is worth
     "when": "created",              # "created" | "saved" | "user_set"
                                     #  | "module.func"(instance, created)
     "timestamp": "order.created",   # optional attribute path (default: now)
     "session_key": "cart.session",  # optional attribute path, for anonymous rows
     "select_related": ["variant__product"]}  # optional: loaded with each row (backfill)

A string ``weight`` or ``item`` is an attribute path when its first part is a
field or attribute of the model, otherwise it is imported as a function (an
``item`` without a dot is always a path). An item function returns an
instance of an ITEM_MODELS model, or None to skip the row; anything else is a
``ValueError`` at record time, handled like an item path leading outside
ITEM_MODELS (logged, the shop's save goes on; a bad row in the backfill).

``when="user_set"`` records the save on which the row's user becomes known:
the row is created with a user, or saved with one after a save without (an
anonymous basket line that gains its owner at login). The user path must be a
ForeignKey of the model itself; its ``*_id`` is remembered when an instance
is loaded (``post_init``, no query) and after each save, so a second save
with the same user records nothing. A user field deferred at load is read
with one query before the save. ``QuerySet.update()`` sends no signal and is
not seen.

This module parses and validates entries (for the system checks) and turns a
saved instance into the values of one interaction; :mod:`django_recs.capture`
connects the receivers.
"""

from __future__ import annotations

import datetime
import logging
import math
import numbers
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.module_loading import import_string

from ..conf import max_weight, recs_settings
from ..items import is_item_model, item_content_type, key_for_pk
from .validation import checked_session_key, checked_timestamp, checked_value, checked_weight

logger = logging.getLogger("django_recs.capture")

WHEN_CHOICES = ("created", "saved", "user_set")
KNOWN_KEYS = {"model", "event", "user", "item", "weight", "when", "timestamp", "session_key",
              "select_related", "value"}
REQUIRED_KEYS = ("model", "event", "user", "item")

NUMERIC_FIELD_TYPES = (models.IntegerField, models.FloatField, models.DecimalField)

#: Where an instance of a "user_set" source keeps its user ``*_id`` values as
#: loaded or last saved: {attname: value}.
SAVED_USER_IDS = "_django_recs_saved_user_ids"
_UNKNOWN = object()

CALLABLE_HINTS = {
    "weight": "Use a field or property of the model, or 'package.module.function'.",
    "item": "Use a path to the item (\"product\", \"variant.product\"), or "
            "'package.module.function' returning an item of ITEM_MODELS or None.",
    "value": "Use a number, a numeric field or property (\"total\"), paths multiplied "
             "(\"price * quantity\"), or 'package.module.function' returning a number or None.",
}


class SourceError(ValueError):
    """A SOURCES entry that cannot work; ``code`` is the system check id suffix."""

    def __init__(self, message: str, code: str, hint: str = ""):
        super().__init__(message)
        self.code = code
        self.hint = hint


@dataclass(frozen=True)
class PathStep:
    """One attribute of a path: a forward relation, a field, or a plain attribute."""

    name: str
    field: models.Field | None
    related_model: type[models.Model] | None


@dataclass(frozen=True)
class AttributePath:
    """A dotted attribute path resolved against a model class.

    ``ends_in_relation`` paths are read through the last foreign key's
    ``*_id`` attribute, so reading the user or item of a row loads neither.
    """

    text: str
    steps: tuple[PathStep, ...]

    @property
    def target_model(self) -> type[models.Model] | None:
        """The model the path ends on when it ends on a forward relation."""
        return self.steps[-1].related_model

    @property
    def ends_in_relation(self) -> bool:
        """True when the path ends in a foreign key to its target's primary key."""
        last = self.steps[-1]
        return (
            last.field is not None
            and last.related_model is not None
            and last.field.concrete
            and last.field.target_field.primary_key
        )

    @property
    def select_related(self) -> str | None:
        """The select_related() lookup that loads the relations walked before the end."""
        names = []
        for step in self.steps[:-1]:
            if step.field is None or not step.field.concrete or step.related_model is None:
                break
            names.append(step.name)
        return "__".join(names) or None

    def value(self, instance):
        """The object at the end of the path (None when a step is None or missing)."""
        return _walk(instance, [step.name for step in self.steps])

    def related_pk(self, instance):
        """The primary key at the end of a path that ends in a foreign key."""
        owner = _walk(instance, [step.name for step in self.steps[:-1]])
        return None if owner is None else getattr(owner, self.steps[-1].field.attname)


def _walk(value, names: list[str]):
    for name in names:
        try:
            value = getattr(value, name)
        except ObjectDoesNotExist:  # a missing reverse one-to-one
            return None
        if value is None:
            return None
    return value


def resolve_path(model: type[models.Model], text: str) -> AttributePath:
    """Resolve ``text`` ("order.customer") on ``model``; SourceError when a step is missing.

    Steps are fields (forward relations are followed) or, for the last
    checkable step, any attribute of the class (a property); after a plain
    attribute the rest of the path cannot be checked and is trusted.
    """
    if not isinstance(text, str) or not text or any(not part for part in text.split(".")):
        raise SourceError(f"{text!r} is not a dotted attribute path", "E012")
    steps = []
    current: type[models.Model] | None = model
    for name in text.split("."):
        if current is None:  # after a plain attribute: not checkable
            steps.append(PathStep(name, None, None))
            continue
        try:
            model_field = current._meta.get_field(name)
        except FieldDoesNotExist:
            if not hasattr(current, name):
                raise SourceError(
                    f"{text!r} does not resolve on {model._meta.label}: "
                    f"{current._meta.label} has no field or attribute {name!r}",
                    "E012",
                    hint=f"Fields of {current._meta.label}: "
                    + ", ".join(sorted(f.name for f in current._meta.get_fields())),
                ) from None
            steps.append(PathStep(name, None, None))
            current = None
            continue
        if model_field.is_relation and (model_field.many_to_many or model_field.one_to_many):
            raise SourceError(
                f"{text!r} on {model._meta.label} goes through {name!r}, a to-many relation",
                "E012",
                hint="Each step must lead to one object: a ForeignKey or OneToOneField.",
            )
        related = model_field.related_model if model_field.is_relation else None
        steps.append(PathStep(name, model_field, related))
        current = related if isinstance(related, type) else None
    return AttributePath(text, tuple(steps))


@dataclass(frozen=True)
class Product:
    """A ``value`` of factors multiplied together: attribute paths and numbers."""

    text: str
    factors: tuple[AttributePath | float, ...]

    def value(self, instance):
        """The product of the factors; None when a path leads to None."""
        result = 1.0
        for factor in self.factors:
            number = factor if isinstance(factor, float) else factor.value(instance)
            if number is None:
                return None
            if isinstance(number, bool) or not isinstance(number, (numbers.Real, Decimal)):
                raise ValueError(f"value {self.text!r}: {factor.text!r} gave a "
                                 f"{type(number).__name__}, not a number")
            result *= float(number)
        return result


@dataclass
class Source:
    """One source: a model whose saves record an event."""

    model: type[models.Model]
    event: str
    user: AttributePath
    item: AttributePath | Callable
    weight: float | AttributePath | Callable | None = None
    value: float | Product | Callable | None = None
    when: str | Callable = "created"
    timestamp: AttributePath | None = None
    session_key: AttributePath | None = None
    origin: str = ""
    extra_select_related: tuple[str, ...] = ()
    skipped_without_visitor: int = field(default=0, compare=False)

    @property
    def label(self) -> str:
        return self.origin or f"{self.model._meta.label} -> {self.event}"

    def should_record(self, instance, created: bool, update_fields=None) -> bool:
        """Whether this save of ``instance`` records (``update_fields`` as post_save gives it)."""
        if self.when == "created":
            return created
        if self.when == "saved":
            return True
        if self.when == "user_set":
            return self.user_was_set(instance, created, update_fields)
        return bool(self.when(instance, created))

    @property
    def user_attname(self) -> str | None:
        """The ``*_id`` attribute a "user_set" source watches (None for other sources)."""
        return self.user.steps[0].field.attname if self.when == "user_set" else None

    def user_was_set(self, instance, created: bool, update_fields=None) -> bool:
        """True when this save gave the row a user it did not have at its previous save.

        A row whose previous user is unknown (never loaded with the field)
        does not record: better one interaction missed than one recorded twice.
        """
        attname = self.user_attname
        if instance.__dict__.get(attname) is None:
            return False
        if created:
            return True
        if update_fields is not None and not {attname, self.user.steps[0].name} & set(update_fields):
            return False  # the user was not written by this save
        return saved_user_ids(instance).get(attname, _UNKNOWN) is None

    def weight_of(self, instance) -> float | None:
        """This row's weight (None: the event's default weight)."""
        if self.weight is None or isinstance(self.weight, float):
            return self.weight
        if isinstance(self.weight, AttributePath):
            return self.weight.value(instance)
        return self.weight(instance)

    def value_of(self, instance):
        """What this row's event is worth (None: unknown)."""
        if self.value is None or isinstance(self.value, float):
            return self.value
        if isinstance(self.value, Product):
            return self.value.value(instance)
        return self.value(instance)

    def user_id_of(self, instance):
        """The user's primary key, or None (no user, or an anonymous user)."""
        if self.user.ends_in_relation:
            return self.user.related_pk(instance)
        user = self.user.value(instance)
        if user is None or getattr(user, "is_anonymous", False):
            return None
        if not isinstance(user, get_user_model()):
            raise ValueError(
                f"{self.label}: user path {self.user.text!r} gave a {type(user).__name__}, "
                "not a user"
            )
        return user.pk

    def item_of(self, instance) -> tuple[type[models.Model], Any] | None:
        """(item model, primary key) of the row's item, or None.

        ValueError when an item function returns something other than a
        saved instance of an ITEM_MODELS model (or None).
        """
        if not isinstance(self.item, AttributePath):
            return self._item_from_function(instance)
        if self.item.ends_in_relation:
            pk = self.item.related_pk(instance)
            return None if pk is None else (self.item.target_model, pk)
        item = self.item.value(instance)
        if item is None:
            return None
        if not isinstance(item, models.Model):
            raise ValueError(
                f"{self.label}: item path {self.item.text!r} gave a {type(item).__name__}, "
                "not a model instance"
            )
        return type(item), item.pk

    def _item_from_function(self, instance) -> tuple[type[models.Model], Any] | None:

        item = self.item(instance)
        if item is None:
            return None
        name = callable_name(self.item)
        if not isinstance(item, models.Model) or not is_item_model(type(item)):
            got = item._meta.label if isinstance(item, models.Model) else type(item).__name__
            raise ValueError(
                f"{self.label}: item function {name} returned a {got} ({item!r}), not an "
                "instance of a model in DJANGO_RECS['ITEM_MODELS'] (or None to skip the row)"
            )
        if item.pk is None or item._state.adding:
            raise ValueError(f"{self.label}: item function {name} returned an unsaved "
                             f"{item._meta.label} ({item!r})")
        return type(item), item.pk

    def session_key_of(self, instance) -> str:
        if self.session_key is None:
            return ""
        return self.session_key.value(instance) or ""

    def timestamp_of(self, instance):
        return None if self.timestamp is None else self.timestamp.value(instance)

    def select_related(self) -> list[str]:
        """Relations to load with each row when many rows are read (the backfill)."""
        paths = [self.user, self.item, self.timestamp, self.session_key, self.weight]
        if isinstance(self.value, Product):
            paths += self.value.factors
        lookups = {p.select_related for p in paths if isinstance(p, AttributePath)}
        lookups.discard(None)
        # What the entry's select_related adds for its functions (an item
        # function reading line.variant.product): not a query per row.
        lookups.update(self.extra_select_related)
        return sorted(lookups)


def parse_source(entry: dict, *, origin: str = "") -> Source:
    """A :class:`Source` from a SOURCES entry; SourceError naming the problem."""
    where = origin or "a source"
    if not isinstance(entry, dict):
        raise SourceError(f"{where} must be a dict, got {type(entry).__name__}", "E010",
                          hint='e.g. {"model": "shop.OrderLine", "event": "purchase", '
                               '"user": "order.customer", "item": "product"}')
    unknown = sorted(set(entry) - KNOWN_KEYS)
    if unknown:
        raise SourceError(f"{where} has unknown key(s) {', '.join(map(repr, unknown))}", "E010",
                          hint=f"Known keys: {', '.join(sorted(KNOWN_KEYS))}.")
    missing = [key for key in REQUIRED_KEYS if entry.get(key) in (None, "")]
    if missing:
        raise SourceError(f"{where} is missing {', '.join(map(repr, missing))}", "E010",
                          hint=f"Every source needs {', '.join(REQUIRED_KEYS)}.")
    model = _model(entry["model"], where)
    where = origin or f"the source on {model._meta.label}"
    event = entry["event"]
    events = recs_settings.EVENTS
    if not isinstance(events, dict) or event not in events:
        known = ", ".join(sorted(events)) if isinstance(events, dict) else "-"
        raise SourceError(f"{where}: unknown event {event!r}", "E013",
                          hint=f"Use an event of DJANGO_RECS['EVENTS'] ({known}) or add it there.")
    user = _path(model, entry["user"], where, "user")
    user_model = get_user_model()
    if user.target_model is not None and user.target_model._meta.concrete_model is not user_model:
        raise SourceError(
            f"{where}: user path {user.text!r} leads to {user.target_model._meta.label}, "
            f"not the user model {user_model._meta.label}", "E012",
            hint="Point the path at a ForeignKey to AUTH_USER_MODEL.")
    when = _when(entry.get("when", "created"), where)
    if when == "user_set":
        _check_user_set(model, user, where)
    return Source(
        model=model,
        event=event,
        user=user,
        item=_item(model, entry["item"], where),
        weight=_weight(model, entry.get("weight"), where),
        value=_value(model, entry.get("value"), where),
        when=when,
        timestamp=_optional_path(model, entry.get("timestamp"), where, "timestamp"),
        session_key=_optional_path(model, entry.get("session_key"), where, "session_key"),
        origin=origin,
        extra_select_related=_select_related(model, entry.get("select_related"), where),
    )


def _model(value, where: str) -> type[models.Model]:
    if isinstance(value, type) and issubclass(value, models.Model):
        return value
    try:
        return apps.get_model(value)
    except (LookupError, ValueError, TypeError, AttributeError):
        raise SourceError(f"{where} names the model {value!r}, which is not an installed model",
                          "E011", hint='Use "app_label.ModelName" of a model in INSTALLED_APPS.'
                          ) from None


def _path(model, text, where: str, key: str) -> AttributePath:
    try:
        return resolve_path(model, text)
    except SourceError as error:
        raise SourceError(f"{where}: {key} {error}", error.code, error.hint) from None


def _optional_path(model, text, where: str, key: str) -> AttributePath | None:
    return None if text in (None, "") else _path(model, text, where, key)


def _item(model, value, where: str) -> AttributePath | Callable:
    """The item path or function of an entry; SourceError E012/E017/E018 naming the problem."""
    if callable(value):
        return value
    if isinstance(value, str) and "." in value and not _has_attribute(model, value.split(".")[0]):
        return _import_callable(value, where, "item", "E018")
    item = _path(model, value, where, "item")
    if item.target_model is not None:

        try:
            ok = is_item_model(item.target_model)
        except (LookupError, ValueError):
            ok = False  # ITEM_MODELS itself is broken: reported by E001/E002
        if not ok:
            raise SourceError(
                f"{where}: item path {item.text!r} leads to {item.target_model._meta.label}, "
                "which is not in DJANGO_RECS['ITEM_MODELS']", "E017",
                hint=f'Add "{item.target_model._meta.label}" to ITEM_MODELS or fix the path.')
    return item


def _check_user_set(model, user: AttributePath, where: str) -> None:
    """"user_set" watches a ForeignKey of the row itself (E015 otherwise)."""
    if len(user.steps) == 1 and user.ends_in_relation:
        return
    raise SourceError(
        f"{where}: when 'user_set' needs a user path that is a ForeignKey of "
        f"{model._meta.label} itself, got {user.text!r}", "E015",
        hint="The row's own *_id is watched from save to save; a user reached through "
        "another model changes without a save of this row. Use 'created' or 'saved' there.")


def _select_related(model, value, where: str) -> tuple[str, ...]:
    """The extra select_related() lookups of an entry (E010 malformed, E012 unresolvable)."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise SourceError(f"{where}: select_related {value!r} must be a list of lookups",
                          "E010", hint='e.g. "select_related": ["variant__product"]')
    for lookup in value:
        path = _path(model, lookup.replace("__", "."), where, "select_related")
        step = next((s for s in path.steps if s.related_model is None or s.field is None), None)
        if step is not None:
            raise SourceError(
                f"{where}: select_related {lookup!r} goes through {step.name!r}, which is not "
                "a ForeignKey or OneToOneField", "E012",
                hint="select_related() follows relations to one object only.")
    return tuple(lookup.replace(".", "__") for lookup in value)


def _weight(model, value, where: str):
    if value is None:
        return None
    if callable(value):
        return value
    if isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer no float holds
            number = math.inf
        if not math.isfinite(number) or not 0 <= number <= max_weight():
            raise SourceError(
                f"{where}: weight {value!r} must be a finite number >= 0 and <= MAX_WEIGHT "
                f"({max_weight():g})"[:300], "E014",
                hint="Use a positive number, an attribute path or 'module.func'.")
        return number
    if not isinstance(value, str):
        raise SourceError(f"{where}: weight {value!r} is not a number, a path or a function",
                          "E014", hint="Use a positive number, an attribute path or 'module.func'.")
    first = value.split(".")[0]
    if _has_attribute(model, first):
        path = _path(model, value, where, "weight")
        last = path.steps[-1].field
        if last is not None and (last.is_relation or not isinstance(last, NUMERIC_FIELD_TYPES)):
            raise SourceError(
                f"{where}: weight path {value!r} is a {type(last).__name__}, not a number",
                "E014", hint="Point the weight at a numeric field or property.")
        return path
    return _import_callable(value, where, "weight", "E016")


def _value(model, value, where: str):
    """An entry's ``value``: None, a number, a product of paths and numbers, or a function.

    SourceError E019 naming the problem.
    """
    hint = CALLABLE_HINTS["value"]
    if value is None:
        return None
    if callable(value):
        return value
    if isinstance(value, (numbers.Real, Decimal)) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise SourceError(f"{where}: value {value!r} must be a finite number >= 0", "E019",
                              hint=hint)
        return number
    if not isinstance(value, str) or not value.strip():
        raise SourceError(f"{where}: value {value!r} is not a number, a path or a function",
                          "E019", hint=hint)
    parts = [part.strip() for part in value.split("*")]
    if len(parts) == 1 and not _has_attribute(model, parts[0].split(".")[0]):
        return _import_callable(parts[0], where, "value", "E019")
    factors = []
    for part in parts:
        try:
            factors.append(float(part))
            continue
        except ValueError:
            pass
        try:
            path = resolve_path(model, part)
        except SourceError as error:
            raise SourceError(f"{where}: value {value!r}: {error}", "E019", hint=hint) from None
        last = path.steps[-1].field
        if last is not None and (last.is_relation or not isinstance(last, NUMERIC_FIELD_TYPES)):
            raise SourceError(
                f"{where}: value {value!r}: {part!r} is a {type(last).__name__}, not a number",
                "E019", hint=hint)
        factors.append(path)
    return Product(value, tuple(factors))


def _when(value, where: str):
    if callable(value):
        return value
    if value in WHEN_CHOICES:
        return value
    if isinstance(value, str) and "." in value:
        return _import_callable(value, where, "when", "E015")
    raise SourceError(f"{where}: when {value!r} must be 'created', 'saved', 'user_set' or "
                      "'module.func'",
                      "E015", hint="A predicate is called as func(instance, created) -> bool.")


def _has_attribute(model, name: str) -> bool:
    try:
        model._meta.get_field(name)
        return True
    except FieldDoesNotExist:
        return hasattr(model, name)


def _import_callable(path: str, where: str, key: str, code: str):
    try:
        function = import_string(path)
    except ImportError as error:
        if key == "when":
            raise SourceError(
                f"{where}: when {path!r} is not an importable function ({error})", code,
                hint="Use 'created', 'saved', 'user_set' or 'package.module.predicate'.",
            ) from None
        raise SourceError(
            f"{where}: {key} {path!r} is neither an attribute path on the model nor an "
            f"importable function ({error})", code, hint=CALLABLE_HINTS[key],
        ) from None
    if not callable(function):
        raise SourceError(f"{where}: {key} {path!r} is not callable", code,
                          hint=CALLABLE_HINTS.get(key, ""))
    return function


def callable_name(function) -> str:
    """"module.qualname" of a function, for messages."""
    qualname = getattr(function, "__qualname__", None)
    return f"{function.__module__}.{qualname}" if qualname else repr(function)


# --- user_set: the row's user as it was at its previous save ---------------------------


def saved_user_ids(instance) -> dict[str, Any]:
    """{attname: user id} of ``instance`` as loaded or last saved (what is known of it)."""
    return instance.__dict__.get(SAVED_USER_IDS, {})


def remember_user_ids(instance, attnames: Iterable[str],
                      update_fields: Iterable[str] | None = None) -> None:
    """Note the user ``*_id`` values of ``instance`` now, as its previous ones for the next save.

    A deferred field (not in the instance's __dict__) is not read: that would
    be a query per loaded row. After a save with ``update_fields`` (field
    names or attnames) only the fields it wrote are noted.
    """
    values = instance.__dict__
    written = None if update_fields is None else set(update_fields)
    noted = {
        attname: values[attname] for attname in attnames
        if attname in values and (
            written is None or attname in written or attname.removesuffix("_id") in written)
    }
    # A new dict rather than an update: a copy.copy() of the instance must not share it.
    values[SAVED_USER_IDS] = {**values.get(SAVED_USER_IDS, {}), **noted}


# --- Registry: SOURCES from settings plus register_source() calls --------------

_registered: list[dict] = []


def add_registered_source(model, *, event: str, user, item, weight=None, when="created",
                          timestamp=None, session_key=None, select_related=None,
                          value=None) -> None:
    """Keep a register_source() entry (:func:`django_recs.capture.register_source` connects it)."""
    entry = {"model": model, "event": event, "user": user, "item": item, "weight": weight,
             "when": when, "timestamp": timestamp, "session_key": session_key,
             "select_related": select_related, "value": value}
    _registered.append({key: value for key, value in entry.items() if value is not None})


def remove_registered_source(model, *, event: str) -> None:
    """Forget the register_source() entries of ``model`` and ``event``."""
    label = model if isinstance(model, str) else model._meta.label
    _registered[:] = [
        entry for entry in _registered
        if not (entry["event"] == event and (
            entry["model"] if isinstance(entry["model"], str) else entry["model"]._meta.label
        ).lower() == label.lower())
    ]


def configured_entries() -> list[tuple[str, Any]]:
    """(origin, entry) of every SOURCES entry and register_source() call."""
    configured = recs_settings.SOURCES
    entries = []
    if isinstance(configured, (list, tuple)):
        entries += [(f"DJANGO_RECS['SOURCES'][{i}]", entry) for i, entry in enumerate(configured)]
    entries += [(f"register_source({_model_label(entry['model'])!r}, event={entry['event']!r})",
                 entry) for entry in _registered]
    return entries


def _model_label(model) -> str:
    return model if isinstance(model, str) else model._meta.label


def active_sources() -> list[Source]:
    """Every source that parses (a broken one is reported by the checks, not here)."""
    sources = []
    for origin, entry in configured_entries():
        try:
            sources.append(parse_source(entry, origin=origin))
        except SourceError:
            continue
    return sources


def source_errors() -> list[SourceError]:
    """The problems of every configured source (for the system checks)."""
    configured = recs_settings.SOURCES
    errors = []
    if not isinstance(configured, (list, tuple)):
        errors.append(SourceError(
            f"DJANGO_RECS['SOURCES'] must be a list of dicts, got {type(configured).__name__}",
            "E010", hint='e.g. "SOURCES": [{"model": "shop.OrderLine", "event": "purchase", '
                         '"user": "order.customer", "item": "product"}]'))
    for origin, entry in configured_entries():
        try:
            parse_source(entry, origin=origin)
        except SourceError as error:
            errors.append(error)
    return errors


def source_values(source, instance, *, now: datetime.datetime | None = None) -> dict | None:
    """The Interaction field values ``source`` gives ``instance``; None when skipped.

    A row without a user or session key (a guest checkout), or without an
    item (an item function returning None), records nothing and is counted
    in a debug log. ValueError for a bad weight or an item outside
    ITEM_MODELS (an item function returning anything else).
    """
    user_id = source.user_id_of(instance)
    session_key = checked_session_key(source.session_key_of(instance))
    if user_id is None and not session_key:
        source.skipped_without_visitor += 1
        logger.debug(
            "django_recs: %s: %s #%s has no user (%d such rows so far); not recorded",
            source.label, instance._meta.label, instance.pk, source.skipped_without_visitor,
        )
        return None
    item = source.item_of(instance)
    if item is None:
        logger.debug("django_recs: %s: %s #%s has no item; not recorded",
                     source.label, instance._meta.label, instance.pk)
        return None
    item_model, item_pk = item
    if not is_item_model(item_model):
        raise ValueError(f"{item_model._meta.label} is not in DJANGO_RECS['ITEM_MODELS']")
    timestamp = source.timestamp_of(instance)
    if isinstance(timestamp, datetime.date) and not isinstance(timestamp, datetime.datetime):
        timestamp = datetime.datetime.combine(timestamp, datetime.time())
    return {
        "user_id": user_id,
        "session_key": session_key,
        "item_type_id": item_content_type(item_model).pk,
        "item_key": key_for_pk(item_model, item_pk),
        "event": source.event,
        "weight": checked_weight(source.weight_of(instance), source.event),
        "value": checked_value(source.value_of(instance)),
        "timestamp": checked_timestamp(timestamp) if timestamp is not None
        else (now or timezone.now()),
        "source_type_id": source_content_type(type(instance)).pk,
        "source_key": source_key(instance.pk),
    }


def source_content_type(model: type[models.Model]) -> ContentType:
    """The content type a source row is stored under: its own concrete model's.

    Not the item rule (:func:`~django_recs.items.item_root`): a source row is
    named to find it again in its own table (the backfill's "already recorded").
    """
    return ContentType.objects.get_for_model(model, for_concrete_model=True)


def source_key(pk) -> str:
    """How a source row's primary key is stored (UUIDs as hex, like item keys)."""
    return pk.hex if isinstance(pk, uuid.UUID) else str(pk)
