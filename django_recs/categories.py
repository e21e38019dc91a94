"""Item categories (the CATEGORY setting), as text the database and the runs agree on.

A category is whatever a dotted attribute path of the item gives (a foreign
key, a text field); it is compared as the database's own text form of that
value (``CAST(... AS varchar(64))``), so the popular run can store it beside
each popular item and serving can match it in SQL.
"""

from __future__ import annotations

import numpy as np
from django.db import models
from django.db.models import F
from django.db.models.functions import Cast

from .conf import recs_settings
from .items import item_content_type, item_models, key_for_pk

__all__ = ["catalog_categories", "category_lookup", "category_text", "ranks_within"]


def category_lookup(model: type[models.Model]) -> str | None:
    """The ORM lookup of ``model``'s category from the CATEGORY setting, or None.

    CATEGORY maps ``"app_label.Model"`` to a dotted attribute path
    (``"category"``, ``"brand.category"``).
    """
    wanted = {model._meta.label_lower, model._meta.concrete_model._meta.label_lower}
    for label, path in (recs_settings.CATEGORY or {}).items():
        if label.lower() in wanted and path:
            return path.replace(".", "__")
    return None


def category_text(lookup: str) -> Cast:
    """The category at ``lookup`` as the text stored and compared."""
    return Cast(F(lookup), models.CharField(max_length=64))


def catalog_categories(catalog, *, using: str) -> np.ndarray | None:
    """Each catalog column's category text (None: none), or None without any CATEGORY.

    One query per item model that has a category.
    """
    categories = np.full(len(catalog), None, dtype=object)
    found = False
    for model in item_models():
        lookup = category_lookup(model)
        columns = np.flatnonzero(catalog.content_type_ids == item_content_type(model).pk)
        if lookup is None or not len(columns):
            continue
        found = True
        rows = (model._base_manager.using(using).order_by()
                .annotate(recs_cat=category_text(lookup)).values_list("pk", "recs_cat"))
        by_key = {key_for_pk(model, pk): category for pk, category in rows.iterator(10_000)}
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
