"""Items: the models named in ITEM_MODELS, and how their keys are stored.

django_recs stores an item as (content type, key), the key being the text
form of its primary key: ``str(pk)`` for integer keys and ``uuid.hex`` for
UUID keys. The hex form is what Django stores for a UUIDField on SQLite and
MySQL and what PostgreSQL's uuid type accepts, so a stored key can be cast
back to the model's primary key inside SQL (see :func:`key_as_pk`).

The content type is that of the item's *root* model (:func:`item_root`): a
proxy's concrete model, and for multi-table inheritance (``class
Article(Page)``, primary key ``page_ptr``) the parent at the end of the
chain of parent links, whose primary key value the child shares. So one
item has one identity whether it is recorded or listed as a Page or as an
Article; ITEM_MODELS listing a parent and its children form one
:class:`ItemFamily`, and a list of a child keeps to its own table.

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
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache, reduce

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.signals import setting_changed
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .casts import KeyAsPk
from .conf import recs_settings

SUPPORTED_PK_TYPES = (models.AutoField, models.BigAutoField, models.SmallAutoField,
                      models.IntegerField, models.UUIDField)


def item_models() -> list[type[models.Model]]:
    """The model classes of ITEM_MODELS (LookupError for an unknown label)."""
    return [apps.get_model(label) for label in recs_settings.ITEM_MODELS]


# --- identity: one item, one (content type, key) ----------------------------------------


def _parent_link(model: type[models.Model]) -> models.Field | None:
    """``model``'s primary key when it is a parent link (multi-table inheritance), else None."""
    pk = model._meta.pk
    if pk.is_relation and pk.remote_field.parent_link:
        return pk
    return None


@lru_cache(maxsize=512)
def pk_chain(model: type[models.Model]) -> tuple[type[models.Model], ...]:
    """``model`` (its concrete model for a proxy) and the parents its primary key links to.

    ``(Feature, Article, Page)`` for ``class Feature(Article)`` and
    ``class Article(Page)``: each primary key (``article_ptr``, ``page_ptr``)
    is a one-to-one link to the next model's, so the three share one
    primary key value. The last model, whose primary key is its own, is the
    :func:`item_root`. A second parent of a model with several (``class
    C(A, B)``) is not on the chain: its rows have other primary keys.
    """
    chain = [model._meta.concrete_model]
    while (link := _parent_link(chain[-1])) is not None:
        chain.append(link.related_model._meta.concrete_model)
    return tuple(chain)  # cached: the model classes do not change once loaded


def item_root(model: type[models.Model]) -> type[models.Model]:
    """The model whose content type keys ``model``'s items: the end of its :func:`pk_chain`.

    A proxy is keyed as its concrete model, a multi-table child
    (``class Book(Product)``) as its root parent, so a Book recorded as a
    Book and the same Book recorded as a Product are one item.
    """
    return pk_chain(model)[-1]


def key_field(model: type[models.Model]) -> models.Field:
    """The field whose type ``model``'s stored keys have: the root's primary key."""
    field = item_root(model)._meta.pk
    while field.is_relation:  # a one-to-one primary key that is no parent link (E003)
        field = field.target_field
    return field


def is_uuid_key(model: type[models.Model]) -> bool:
    """True when ``model``'s items are keyed by a UUID (stored as 32 hex digits)."""
    return isinstance(key_field(model), models.UUIDField)


def primary_key_problem(model: type[models.Model]) -> str | None:
    """Why ``model``'s primary key cannot key items (for django_recs.E003), or None.

    Supported: an integer or UUID primary key, or a parent link (at any
    depth of multi-table inheritance) to a model with one.
    """
    current = model._meta.concrete_model
    while True:
        pk = current._meta.pk
        if not pk.is_relation:
            break
        parent = pk.related_model._meta.concrete_model
        if not pk.remote_field.parent_link:
            return (f"{current._meta.label}'s primary key is a {type(pk).__name__} to "
                    f"{parent._meta.label} that is not a parent link (multi-table inheritance)")
        if pk.target_field is not parent._meta.pk:
            return (f"{current._meta.label}'s parent link {pk.name!r} points to "
                    f"{parent._meta.label}.{pk.target_field.name}, not to its primary key")
        current = parent
    if not isinstance(pk, SUPPORTED_PK_TYPES):
        owner = "" if current is model._meta.concrete_model else \
            f" (inherited from {current._meta.label})"
        return f"{model._meta.label}'s primary key is a {type(pk).__name__}{owner}"
    return None


def listed_item_model(model: type[models.Model]) -> type[models.Model] | None:
    """The ITEM_MODELS model (concrete) whose items ``model``'s instances are, or None.

    The first of ``model``'s :func:`pk_chain` that is listed: the model
    itself, its concrete model for a proxy, or, for a multi-table child that
    is not listed itself, its nearest listed parent (a Book is a Product).
    """
    listed = {m._meta.concrete_model for m in item_models()}
    return next((m for m in pk_chain(model) if m in listed), None)


def is_item_model(model: type[models.Model]) -> bool:
    """True when instances of ``model`` are items (see :func:`listed_item_model`)."""
    return listed_item_model(model) is not None


def item_content_type(model_or_obj) -> ContentType:
    """The ContentType items of a model are stored under: its :func:`item_root`'s (cached)."""
    model = model_or_obj if isinstance(model_or_obj, type) else type(model_or_obj)
    return ContentType.objects.get_for_model(item_root(model), for_concrete_model=True)


def key_for_pk(model: type[models.Model], pk) -> str:
    """The stored key of primary key ``pk`` of ``model``.

    Raises ValueError (naming the value) for anything that is not one of the
    model's primary keys: a float with a fraction (``2.7`` is not ``2``), a
    bool, an integer outside the column's range, text that is no UUID.
    """
    if is_uuid_key(model):
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
    # 64 bits whatever the type; a stored key is cast to bigint in SQL anyway):
    # the root's primary key for a multi-table child, whose own is a parent link.
    internal = key_field(model).get_internal_type()
    return BaseDatabaseOperations.integer_field_ranges.get(internal, (-(2**63), 2**63 - 1))


def item_key(obj: models.Model) -> str:
    """The stored key of a saved item instance."""
    return key_for_pk(type(obj), obj.pk)


def pk_for_key(model: type[models.Model], key: str):
    """The primary key value a stored key stands for."""
    if is_uuid_key(model):
        return uuid.UUID(hex=key)
    return int(key)


def key_as_pk(model: type[models.Model], expression):
    """An SQL expression turning a stored key column into ``model``'s pk type."""
    if is_uuid_key(model):
        return KeyAsPk(expression, output_field=models.UUIDField())
    return KeyAsPk(expression, output_field=models.BigIntegerField())


@dataclass(frozen=True)
class ItemFamily:
    """The ITEM_MODELS models whose items share one content type: their :func:`item_root`'s.

    A plain model is a family of its own. ``shop.Product`` and its child
    ``shop.Book`` both listed are one family: a Book is one item, keyed
    under Product's content type, whichever list it is recorded or served in.
    """

    root: type[models.Model]
    #: The listed concrete models keyed under ``root``, in ITEM_MODELS order.
    models: tuple[type[models.Model], ...]

    @property
    def covering(self) -> tuple[type[models.Model], ...]:
        """The listed models without a listed parent on their chain: their rows are every item."""
        listed = set(self.models)
        return tuple(m for m in self.models if not listed & set(pk_chain(m)[1:]))

    def existing(self, using: str) -> models.QuerySet:
        """The family's items that exist, through the covering models' default managers."""
        covering = self.covering
        if len(covering) == 1:
            return covering[0]._default_manager.using(using).all()
        return self.root._base_manager.using(using).filter(reduce(operator.or_, (
            models.Q(pk__in=m._default_manager.using(using).values("pk")) for m in covering
        )))

    def most_specific_first(self) -> list[type[models.Model]]:
        """The listed models, deepest in the inheritance first, then the root (listed or not)."""
        ordered = sorted(self.models, key=lambda m: -len(pk_chain(m)))
        return [*(m for m in ordered if m is not self.root), self.root]


def item_families() -> list[ItemFamily]:
    """ITEM_MODELS grouped by :func:`item_root`, in the order the roots first appear."""
    grouped: dict[type[models.Model], list[type[models.Model]]] = {}
    for model in item_models():
        members = grouped.setdefault(item_root(model), [])
        if model._meta.concrete_model not in members:
            members.append(model._meta.concrete_model)
    return [ItemFamily(root, tuple(members)) for root, members in grouped.items()]


def family_of(root: type[models.Model]) -> ItemFamily | None:
    """The family keyed under ``root``'s content type, or None (no item model now)."""
    return next((family for family in item_families() if family.root is root), None)


def items_by_key(content_type_id: int, keys, *, using: str | None = None,
                 manager: str = "_default_manager",
                 known_not: type[models.Model] | None = None) -> dict[str, models.Model]:
    """Stored key -> instance of the items ``keys`` of one content type.

    Each item comes as the most specific listed model it is an instance of
    (a Book as a Book, a Product that is no Book as a Product), else as the
    content type's own model: one query per model while keys remain. None
    is tried that is, or inherits from, ``known_not`` (a model the caller
    already looked the keys up in).
    """
    model = ContentType.objects.db_manager(using).get_for_id(content_type_id).model_class()
    if model is None:  # the model was removed from the project
        return {}
    family = family_of(model)
    candidates = family.most_specific_first() if family is not None else [model]
    wanted, found = set(keys), {}
    for candidate in candidates:
        if not wanted:
            break
        if known_not is not None and known_not in pk_chain(candidate):
            continue
        rows = getattr(candidate, manager).db_manager(using).filter(
            pk__in=[pk_for_key(candidate, key) for key in wanted])
        for obj in rows:
            found[item_key(obj)] = obj
        wanted -= found.keys()
    return found


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

    A multi-table child without an entry of its own follows its nearest
    parent's on its :func:`pk_chain` (an unpublished Book is an unpublished
    Product): ``model``'s rows whose primary key that queryset admits.
    Without any entry, ``model._default_manager.all()``.

    Raises
    ------
    ItemQuerysetError
        The entry does not import, or its callable returns something else
        than an unsliced QuerySet of its model (``manage.py check`` reports
        the same as django_recs.E070-E073).
    """
    model = model._meta.concrete_model
    for owner in pk_chain(model):
        if owner not in _resolved:
            _resolved[owner] = _configured_callable(owner)
        entry = _resolved[owner]
        if entry is None:
            continue
        label, function = entry
        admitted = _checked_result(owner, label, function)
        if owner is model:
            return admitted
        return model._default_manager.filter(pk__in=admitted.values("pk"))
    return model._default_manager.all()


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
