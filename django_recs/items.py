"""Items: the models named in ITEM_MODELS, and how their keys are stored.

django_recs stores an item as (content type, key), the key being the text
form of its primary key: ``str(pk)`` for integer keys and ``uuid.hex`` for
UUID keys. The hex form is what Django stores for a UUIDField on SQLite and
MySQL and what PostgreSQL's uuid type accepts, so a stored key can be cast
back to the model's primary key inside SQL (see :func:`key_as_pk`).

ITEM_QUERYSETS names, per item model, the items a shop shows (its
availability rule, e.g. published products): the default candidates of
every list (see :func:`default_item_queryset`).
"""

from __future__ import annotations

import numbers
import operator
import re
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import lru_cache

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.signals import setting_changed
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models.functions import Cast
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .conf import recs_settings

SUPPORTED_PK_TYPES = (models.AutoField, models.BigAutoField, models.SmallAutoField,
                      models.IntegerField, models.UUIDField)


def item_models() -> list[type[models.Model]]:
    """The model classes of ITEM_MODELS (LookupError for an unknown label)."""
    return [apps.get_model(label) for label in recs_settings.ITEM_MODELS]


def is_item_model(model: type[models.Model]) -> bool:
    """True when ``model`` (or its concrete parent for a proxy) is in ITEM_MODELS."""
    concrete = model._meta.concrete_model
    return any(concrete is m._meta.concrete_model for m in item_models())


def item_content_type(model_or_obj) -> ContentType:
    """The ContentType of an item model (cached by Django)."""
    return ContentType.objects.get_for_model(model_or_obj, for_concrete_model=True)


def key_for_pk(model: type[models.Model], pk) -> str:
    """The stored key of primary key ``pk`` of ``model``.

    Raises ValueError (naming the value) for anything that is not one of the
    model's primary keys: a float with a fraction (``2.7`` is not ``2``), a
    bool, an integer outside the column's range, text that is no UUID.
    """
    if isinstance(model._meta.pk, models.UUIDField):
        if isinstance(pk, uuid.UUID):
            return pk.hex
        if not isinstance(pk, str | bytes):
            raise ValueError(f"{pk!r} is not a UUID")
        return uuid.UUID(pk if isinstance(pk, str) else pk.decode("ascii", "replace")).hex
    return str(integer_pk(model, pk))


def integer_pk(model: type[models.Model], value) -> int:
    """``value`` as an integer primary key of ``model``, or ValueError saying why not.

    Integers (and integral floats, as a DataFrame's column gives them) and
    their text pass; a fraction is refused rather than truncated to another
    object's key, and so is a value outside the column's range, which the
    database would refuse with an error that breaks the transaction.
    """
    low, high = _integer_range(model)
    if type(value) is int:
        number = value
    elif isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an integer primary key")
    elif isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.fullmatch(text):
            raise ValueError(f"{value[:50]!r} is not an integer primary key")
        number = int(text)
    elif isinstance(value, numbers.Integral):
        number = operator.index(value)
    elif isinstance(value, numbers.Real | Decimal):  # floats, Decimals, numpy floats
        try:
            number = int(value)
        except (OverflowError, ValueError, ArithmeticError):  # inf, nan
            raise ValueError(f"{value!r} is not an integer primary key") from None
        if number != value:
            raise ValueError(f"{value!r} is not an integer primary key (it has a fraction)")
    else:
        raise ValueError(f"{type(value).__name__} {value!r} is not an integer primary key")
    if not low <= number <= high:
        shown = str(number) if number.bit_length() < 128 else "a number"
        raise ValueError(
            f"{shown} is outside the range of {model._meta.label}'s primary key ({low}..{high})"
        )
    return number


#: Text of an integer key: digits, with a sign; 30 at most (bigint has 19).
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,30}")


@lru_cache(maxsize=64)
def _integer_range(model: type[models.Model]) -> tuple[int, int]:
    # The column's range as Django knows it for every database (SQLite stores
    # 64 bits whatever the type; a stored key is cast to bigint in SQL anyway).
    internal = model._meta.pk.get_internal_type()
    return BaseDatabaseOperations.integer_field_ranges.get(internal, (-(2**63), 2**63 - 1))


def item_key(obj: models.Model) -> str:
    """The stored key of a saved item instance."""
    return key_for_pk(type(obj), obj.pk)


def pk_for_key(model: type[models.Model], key: str):
    """The primary key value a stored key stands for."""
    if isinstance(model._meta.pk, models.UUIDField):
        return uuid.UUID(hex=key)
    return int(key)


def key_as_pk(model: type[models.Model], expression):
    """An SQL expression turning a stored key column into ``model``'s pk type."""
    pk_field = model._meta.pk
    if isinstance(pk_field, models.UUIDField):
        return Cast(expression, output_field=models.UUIDField())
    return Cast(expression, output_field=models.BigIntegerField())


# --- ITEM_QUERYSETS: the items a shop shows ---------------------------------------------


class ItemQuerysetError(ValueError):
    """An ITEM_QUERYSETS entry that cannot work; ``code`` is the check id suffix (E070...)."""

    def __init__(self, message: str, code: str, hint: str = ""):
        super().__init__(message)
        self.code = code
        self.hint = hint


_PATH_HINT = ('A dotted path to a callable returning a QuerySet of the model, e.g. '
              '"shop.queries.visible", or to a manager method: "shop.Product.objects.browsable".')

#: Concrete item model -> (its ITEM_QUERYSETS key, the callable), or None without an
#: entry. Paths are resolved once per settings change; the callable runs for every list.
_resolved: dict[type[models.Model], tuple[str, Callable[[], models.QuerySet]] | None] = {}


@receiver(setting_changed)
def _forget_item_querysets(*, setting: str, **kwargs) -> None:
    if setting == "DJANGO_RECS":
        _resolved.clear()


def default_item_queryset(model: type[models.Model]) -> models.QuerySet:
    """The default candidates of ``model``'s lists: its ITEM_QUERYSETS callable, called now.

    Without an entry, ``model._default_manager.all()``.

    Raises
    ------
    ItemQuerysetError
        The entry does not import, or its callable returns something else
        than an unsliced QuerySet of ``model`` (``manage.py check`` reports
        the same as django_recs.E070-E073).
    """
    model = model._meta.concrete_model
    if model not in _resolved:
        _resolved[model] = _configured_callable(model)
    entry = _resolved[model]
    if entry is None:
        return model._default_manager.all()
    label, function = entry
    return _checked_result(model, label, function)


def _configured_callable(model: type[models.Model]):
    """(key, callable) of ``model``'s ITEM_QUERYSETS entry, or None when it has none."""
    for label, path in _entries():
        if _installed_model(label) is model:
            return label, _resolve_path(label, path)
    return None


def _entries() -> list[tuple[object, object]]:
    configured = recs_settings.ITEM_QUERYSETS
    if not isinstance(configured, dict):
        raise ItemQuerysetError(
            "DJANGO_RECS['ITEM_QUERYSETS'] must be a dict of \"app_label.Model\" -> dotted "
            f"path, got {type(configured).__name__}",
            "E070", 'e.g. "ITEM_QUERYSETS": {"shop.Product": "shop.queries.visible"}',
        )
    return list(configured.items())


def _installed_model(label) -> type[models.Model] | None:
    """The concrete model of an "app_label.Model" label, or None."""
    if not isinstance(label, str):
        return None
    try:
        return apps.get_model(label)._meta.concrete_model
    except (LookupError, ValueError):
        return None


def _resolve_path(label: str, path) -> Callable[[], models.QuerySet]:
    """The callable at ``path``: ``"module.function"`` or ``"app_label.Model.manager.method"``.

    Raises
    ------
    ItemQuerysetError
        ``path`` is not a string, does not import or is not callable (E072).
    """
    where = f"DJANGO_RECS['ITEM_QUERYSETS'][{label!r}]"
    if not isinstance(path, str) or not path:
        raise ItemQuerysetError(f"{where} is {path!r}, not a dotted path", "E072", _PATH_HINT)
    try:
        target = _model_attribute(path)
        if target is None:
            target = import_string(path)
    except (ImportError, AttributeError) as error:
        raise ItemQuerysetError(f"{where}: cannot resolve {path!r} ({error})", "E072",
                                _PATH_HINT) from error
    if not callable(target):
        raise ItemQuerysetError(f"{where}: {path!r} is not callable", "E072", _PATH_HINT)
    return target


def _model_attribute(path: str):
    """``Model.objects.browsable`` for ``"app_label.Model.objects.browsable"``, else None.

    Model paths use the app label, as ITEM_MODELS does, so they work whatever
    the app's module is called (AttributeError for a missing attribute).
    """
    app_label, _, rest = path.partition(".")
    model_name, _, attributes = rest.partition(".")
    if not attributes:
        return None
    try:
        target = apps.get_model(app_label, model_name)
    except LookupError:
        return None
    for name in attributes.split("."):
        target = getattr(target, name)
    return target


def _checked_result(model, label: str, function: Callable[[], models.QuerySet]) -> models.QuerySet:
    """``function()``, which must be an unsliced QuerySet of ``model`` (E073 otherwise)."""
    where = f"DJANGO_RECS['ITEM_QUERYSETS'][{label!r}]"
    result = function()
    if not isinstance(result, models.QuerySet):
        raise ItemQuerysetError(
            f"{where} returned a {type(result).__name__}, not a QuerySet of {model._meta.label}",
            "E073", "Return a queryset, e.g. Product.objects.filter(published=True)"
            + (" (a manager is not one: .all() is)." if isinstance(result, models.Manager) else "."),
        )
    if result.model._meta.concrete_model is not model:
        raise ItemQuerysetError(
            f"{where} returned a QuerySet of {result.model._meta.label}, not of {model._meta.label}",
            "E073", "Map each model to a callable returning a queryset of that model.",
        )
    if result.query.is_sliced:
        raise ItemQuerysetError(
            f"{where} returned a sliced QuerySet; lists need to filter it",
            "E073", "Leave out the slice ([:n]); the lists choose their own length.",
        )
    return result


def item_queryset_errors() -> Iterator[ItemQuerysetError]:
    """What is wrong with ITEM_QUERYSETS, for the system checks (E070-E073).

    Calls each entry's callable once: building a queryset runs no query.
    """
    try:
        entries = _entries()
    except ItemQuerysetError as error:
        yield error
        return
    listed = {_installed_model(label) for label in recs_settings.ITEM_MODELS} - {None}
    for label, path in entries:
        model = _installed_model(label)
        if model is None or model not in listed:
            yield ItemQuerysetError(
                f"DJANGO_RECS['ITEM_QUERYSETS'] names {label!r}, which is not a model "
                "in ITEM_MODELS",
                "E071", 'Use "app_label.ModelName" of a model listed in ITEM_MODELS.',
            )
            continue
        try:
            _checked_result(model, label, _resolve_path(label, path))
        except ItemQuerysetError as error:
            yield error
        except Exception as error:  # the shop's callable failed: report, don't crash check
            yield ItemQuerysetError(
                f"DJANGO_RECS['ITEM_QUERYSETS'][{label!r}] raised {type(error).__name__}: {error}",
                "E073", "The callable is called with no arguments and must return a queryset.",
            )
