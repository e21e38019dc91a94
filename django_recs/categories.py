"""Item categories (the CATEGORY setting), as text the database and the runs agree on.

A category is whatever a dotted path of the item's fields gives (a foreign
key, a text field); it is compared as the database's own text form of that
value (``CAST(... AS varchar(64))``; ``LEFT(..., 64)`` on MySQL), so the popular run can store it beside
each popular item and serving can match it in SQL.

An item has at most one category: every step of the path leads to one
object. A to-many path (a ManyToManyField, a reverse foreign key) would give
an item several rows where SQL expects one, so it is refused by ``manage.py
check`` (E066) and, should the check be silenced, never used: the item model
then has no category.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import F

from .casts import Text
from .conf import recs_settings
from .items import item_content_type, item_families, key_for_pk, listed_item_model, pk_chain

__all__ = [
    "CategoryError",
    "catalog_categories",
    "category_errors",
    "category_lookup",
    "category_text",
    "ranks_within",
    "resolve_category_path",
]

logger = logging.getLogger("django_recs.categories")

TO_ONE_HINT = (
    'Use a path that gives each item one category, e.g. a "main category" ForeignKey: '
    '"CATEGORY": {{"{label}": "main_category"}}.'
)


class CategoryError(ValueError):
    """A CATEGORY entry that cannot work; ``code`` is the system check id suffix."""

    def __init__(self, message: str, code: str, hint: str = ""):
        super().__init__(message)
        self.code = code
        self.hint = hint


def category_lookup(model: type[models.Model]) -> str | None:
    """The ORM lookup of ``model``'s category from the CATEGORY setting, or None.

    CATEGORY maps ``"app_label.Model"`` to a dotted path of fields
    (``"category"``, ``"brand.category"``). A proxy uses its concrete
    model's entry, a multi-table child without an entry of its own its
    nearest parent's (:func:`~django_recs.items.pk_chain`). A path that does
    not resolve to one value per item (see :func:`resolve_category_path`)
    gives None and a warning in the log, once: serving then runs without a
    category rather than failing in SQL. ``manage.py check`` reports it
    (E065, E066).
    """
    configured = recs_settings.CATEGORY
    if not isinstance(configured, Mapping):
        return None  # E064
    by_label = {label.lower(): path for label, path in configured.items()
                if isinstance(label, str)}
    for owner in [model, *pk_chain(model)]:
        path = by_label.get(owner._meta.label_lower)
        if path:
            return _usable_lookup(model, path) if isinstance(path, str) else None
    return None


@lru_cache(maxsize=128)
def _usable_lookup(model: type[models.Model], path: str) -> str | None:
    # Cached per model and path: resolved once, and the warning logged once.
    try:
        return resolve_category_path(model, path)
    except CategoryError as error:
        logger.warning(
            "django_recs: CATEGORY of %s is not used: %s (manage.py check: django_recs.%s)",
            model._meta.label, error, error.code,
        )
        return None


def resolve_category_path(model: type[models.Model], path: str) -> str:
    """The ORM lookup (``"brand__category"``) of a CATEGORY path on ``model``.

    Steps are separated by ``.`` (or ``__``). Each is a field of the model
    reached so far (``pk`` included); every step but the last is a relation
    to one object (ForeignKey or OneToOneField, either direction).

    Raises
    ------
    CategoryError
        ``code`` "E065" when a step is not a field, or a step follows a field
        that is not a relation; "E066" when a step is a to-many relation
        (ManyToManyField, reverse ForeignKey, GenericRelation).
    """
    names = re.split(r"\.|__", path) if isinstance(path, str) else []
    if not names or not all(names):
        raise CategoryError(f"{path!r} is not a dotted path of fields", "E065",
                            hint='e.g. "category" or "brand.category".')
    current: type[models.Model] | None = model
    for position, name in enumerate(names):
        if current is None:
            previous = names[position - 1]
            raise CategoryError(
                f"{path!r} on {model._meta.label} goes on past {previous!r}, "
                "which is not a relation",
                "E065", hint="Only the last step may be a field that is not a ForeignKey "
                "or OneToOneField.")
        field = _category_step(model, current, path, name)
        if field.is_relation and (field.many_to_many or field.one_to_many):
            kind = "a many-to-many relation" if field.many_to_many else "a reverse relation"
            raise CategoryError(
                f"{path!r} on {model._meta.label} goes through {name!r}, {kind}: an item "
                "may have several categories that way, while django_recs keeps one per "
                f"item, so {model._meta.label} is served without categories",
                "E066", hint=TO_ONE_HINT.format(label=model._meta.label))
        current = field.related_model if field.is_relation else None
    return "__".join(names)


def _category_step(model, current: type[models.Model], path: str, name: str) -> models.Field:
    """The field ``name`` of ``current``; CategoryError (E065) when it is none a query can follow."""
    try:
        field = current._meta.pk if name == "pk" else current._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    if field is None or (field.is_relation and field.related_model is None):
        what = "a generic foreign key" if field is not None else (
            "an attribute, not a database field" if hasattr(current, name) else "not a field")
        fields = sorted(f.name for f in current._meta.get_fields() if _is_to_one(f))
        close = difflib.get_close_matches(name, fields, n=1)
        raise CategoryError(
            f"{path!r} does not resolve on {model._meta.label}: {name!r} of "
            f"{current._meta.label} is {what}",
            "E065", hint=(f"Did you mean {close[0]!r}? " if close else "")
            + f"CATEGORY is read in SQL, so each step is a field. Fields of "
            f"{current._meta.label}: {', '.join(fields)}.")
    return field


def _is_to_one(field) -> bool:
    """True for a field a category path may name: a value or a relation to one object."""
    if not field.is_relation:
        return True
    return field.related_model is not None and not (field.many_to_many or field.one_to_many)


def category_errors() -> list[CategoryError]:
    """The problems of the CATEGORY setting (for the system checks).

    E064: CATEGORY is not a dict, or names a model that is not installed or
    not in ITEM_MODELS; E065 and E066 as :func:`resolve_category_path`.
    """
    configured = recs_settings.CATEGORY
    if configured is None:
        return []
    if not isinstance(configured, Mapping):
        return [CategoryError(
            "DJANGO_RECS['CATEGORY'] must be a dict of \"app_label.Model\" -> path, got "
            f"{type(configured).__name__}", "E064",
            hint='e.g. "CATEGORY": {"shop.Product": "category"}')]
    errors = []
    for label, path in configured.items():
        where = f"DJANGO_RECS['CATEGORY'][{label!r}]"
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError, TypeError, AttributeError):
            errors.append(CategoryError(
                f"{where} names {label!r}, which is not an installed model", "E064",
                hint='Use "app_label.ModelName" of a model in ITEM_MODELS.'))
            continue
        try:
            in_item_models = listed_item_model(model) is model._meta.concrete_model
        except (LookupError, ValueError):
            in_item_models = True  # ITEM_MODELS itself is broken: E002
        if not in_item_models:
            errors.append(CategoryError(
                f"{where}: {model._meta.label} is not in DJANGO_RECS['ITEM_MODELS']", "E064",
                hint=f'Add "{model._meta.label}" to ITEM_MODELS, or remove it from CATEGORY.'))
            continue
        if path is None or path == "":
            continue  # no category for this model
        try:
            resolve_category_path(model, path)
        except CategoryError as error:
            errors.append(CategoryError(f"{where}: {error}", error.code, error.hint))
    return errors


def category_text(lookup: str) -> Text:
    """The category at ``lookup`` as the text stored and compared."""
    return Text(F(lookup), 64)


def catalog_categories(catalog, *, using: str) -> np.ndarray | None:
    """Each catalog column's category text (None: none), or None without any CATEGORY.

    One query per item model that has a category. Within a family (a
    parent listed with its children) each item gets the category of the
    most specific listed model it is an instance of.
    """
    categories = np.full(len(catalog), None, dtype=object)
    found = False
    for family in item_families():
        columns = np.flatnonzero(catalog.content_type_ids == item_content_type(family.root).pk)
        if not len(columns):
            continue
        by_key: dict[str, object] = {}
        applied: dict[type[models.Model], str] = {}
        for model in reversed(family.most_specific_first()):  # the specific override
            lookup = category_lookup(model) if model in family.models else None
            if lookup is None or any(applied.get(parent) == lookup
                                     for parent in pk_chain(model)[1:]):
                continue  # none, or the same path as a parent's, already read
            applied[model] = lookup
            found = True
            rows = (model._base_manager.using(using).order_by()
                    .annotate(recs_cat=category_text(lookup)).values_list("pk", "recs_cat"))
            by_key.update((key_for_pk(model, pk), category)
                          for pk, category in rows.iterator(10_000))
        if by_key:
            categories[columns] = [by_key.get(str(key)) for key in catalog.keys[columns]]
    return categories if found else None


def ranks_within(categories: np.ndarray) -> np.ndarray:
    """For a list in rank order, each entry's rank among those of its category (-1: none)."""
    ranks = np.full(len(categories), -1, dtype=np.int64)
    known = np.flatnonzero([category is not None for category in categories])
    if not len(known):
        return ranks
    _, codes = np.unique(np.asarray(categories[known], dtype=str), return_inverse=True)
    order = np.argsort(codes, kind="stable")  # by category, list order kept inside each
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks[known[order]] = np.arange(len(order)) - group_start
    return ranks
