"""Reading item features from the database, in bulk.

Per item model with ITEM_FEATURES: one query for every single-valued field
(``values_list("pk", "name", "description", "category", "brand__name")``)
and one per multi-valued path (``values_list("pk", "tags")``, a join), never
a query per item. The values become :class:`~.features.FeatureBlock` s and
the matrix is built by :func:`~.features.build_item_features`.

A content run also needs the items nobody has interacted with yet — those
are what content similarity is for — so :func:`prepare_item_features` adds
every item of the featured models to the run's catalog (as empty columns of
the interaction matrix) before the algorithm is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.db import DEFAULT_DB_ALIAS

from ..algorithms.features import FeatureBlock, ItemFeatures, build_item_features
from ..items import default_item_queryset, item_content_type, key_for_pk
from ..matrix import InteractionMatrix
from ..storage.read import ItemCatalog
from .config import ModelFeatures, by_specificity, configured_features

__all__ = [
    "ItemValues",
    "catalog_from_item_ids",
    "catalog_with_all_items",
    "load_item_features",
    "prepare_item_features",
    "read_item_values",
    "with_item_columns",
]

#: Rows fetched per round trip when reading item values.
CHUNK_SIZE = 10_000


@dataclass(frozen=True)
class ItemValues:
    """The raw values of one model's declared fields.

    Attributes
    ----------
    keys : list of str
        Stored keys of the items read (every item, with or without values).
    fields : dict
        ``(kind, path)`` -> ``(keys, values)``: parallel lists, one entry per
        value (text fields: one per item; multi-valued paths: any number).
    """

    keys: list[str]
    fields: dict[tuple[str, str], tuple[list[str], list[str]]]

    def of_key(self, key: str) -> dict[tuple[str, str], list[str]]:
        """The values of one item: ``(kind, path)`` -> its values."""
        return {
            name: [value for k, value in zip(keys, values) if k == key]
            for name, (keys, values) in self.fields.items()
        }


def read_item_values(
    features: ModelFeatures, *, pks=None, using: str = DEFAULT_DB_ALIAS
) -> ItemValues:
    """Read the declared fields of ``features.model``'s items (all, or those of ``pks``).

    Only the items the shop shows are read: those of the model's default
    candidates (its ITEM_QUERYSETS entry, see
    :func:`~django_recs.items.default_item_queryset`), so a draft has no
    features and is nobody's content neighbour.
    """
    model = features.model
    rows = default_item_queryset(model).using(using).order_by()
    if pks is not None:
        rows = rows.filter(pk__in=list(pks))

    def key(pk) -> str:
        return key_for_pk(model, pk)

    single = [spec for spec in features.fields if not spec.path.multi_valued]
    fields: dict[tuple[str, str], tuple[list[str], list[str]]] = {
        (spec.kind, spec.path.text): ([], []) for spec in features.fields
    }
    keys: list[str] = []
    lookups = [spec.path.lookup for spec in single]
    for row in rows.values_list("pk", *lookups).iterator(chunk_size=CHUNK_SIZE):
        item = key(row[0])
        keys.append(item)
        for spec, value in zip(single, row[1:]):
            if value is None or value == "":
                continue
            field_keys, values = fields[(spec.kind, spec.path.text)]
            field_keys.append(item)
            values.append(str(value))
    for spec in features.fields:
        if not spec.path.multi_valued:
            continue
        field_keys, values = fields[(spec.kind, spec.path.text)]
        lookup = spec.path.lookup
        related = rows.filter(**{f"{lookup}__isnull": False}).values_list("pk", lookup)
        for pk, value in related.iterator(chunk_size=CHUNK_SIZE):
            if value == "":
                continue
            field_keys.append(key(pk))
            values.append(str(value))
    return ItemValues(keys=keys, fields=fields)


def load_item_features(
    catalog: ItemCatalog, *, using: str = DEFAULT_DB_ALIAS
) -> ItemFeatures:
    """The features x items matrix of ``catalog``'s items (columns in catalog order).

    Items of models without ITEM_FEATURES, items that no longer exist and
    items the shop does not show (outside the model's ITEM_QUERYSETS entry)
    get empty columns. An item of a family (a parent and its children in
    ITEM_MODELS) is described by the most specific featured model it is an
    instance of. The idf of a text field counts the model's items in the
    catalog.

    Raises
    ------
    FeatureConfigError
        ITEM_FEATURES is invalid (``manage.py check`` reports it).
    """
    n_items = len(catalog)
    blocks: list[FeatureBlock] = []
    described = np.zeros(n_items, dtype=bool)
    for features in by_specificity(configured_features()):
        content_type_id = item_content_type(features.model).pk
        mine = np.flatnonzero((catalog.content_type_ids == content_type_id) & ~described)
        if mine.size == 0:
            continue
        column_of = {str(catalog.keys[column]): int(column) for column in mine}
        values = read_item_values(features, using=using)
        documents = np.asarray(
            [column_of[key] for key in values.keys if key in column_of], dtype=np.int64
        )
        described[documents] = True  # a parent's entry does not describe them again
        options = features.text_options
        for spec in features.fields:
            keys, texts = values.fields[(spec.kind, spec.path.text)]
            known = [(column_of[key], text) for key, text in zip(keys, texts) if key in column_of]
            blocks.append(FeatureBlock(
                label=features.label,
                kind=spec.kind,
                path=spec.path.text,
                weight=spec.weight,
                columns=np.asarray([column for column, _ in known], dtype=np.int64),
                values=[text for _, text in known],
                documents=documents if spec.kind == "text" else None,
                min_df=options.min_df,
                max_df=options.max_df,
                stop_words=options.stop_words,
            ))
    return build_item_features(blocks, n_items)


def catalog_with_all_items(
    catalog: ItemCatalog, *, using: str = DEFAULT_DB_ALIAS
) -> ItemCatalog:
    """``catalog`` followed by every shown item of the featured models it does not hold yet.

    Shown: in the model's default candidates (ITEM_QUERYSETS), so a draft
    nobody has interacted with is no column of a content run.
    """
    known = set(zip(catalog.content_type_ids.tolist(), [str(k) for k in catalog.keys]))
    extra_types: list[np.ndarray] = []
    extra_keys: list[np.ndarray] = []
    for features in configured_features():
        model = features.model
        content_type_id = item_content_type(model).pk
        pks = (default_item_queryset(model).using(using).order_by("pk")
               .values_list("pk", flat=True))
        keys = [key_for_pk(model, pk) for pk in pks.iterator(chunk_size=CHUNK_SIZE)]
        missing = [key for key in keys if (content_type_id, key) not in known]
        known.update((content_type_id, key) for key in missing)  # a parent lists its children
        extra_types.append(np.full(len(missing), content_type_id, dtype=np.int64))
        extra_keys.append(np.asarray(missing, dtype=str))
    if not any(len(keys) for keys in extra_keys):
        return catalog
    keys = np.concatenate([np.asarray(catalog.keys, dtype=str), *extra_keys])
    return ItemCatalog(
        content_type_ids=np.concatenate([catalog.content_type_ids.astype(np.int64), *extra_types]),
        keys=keys,
    )


def with_item_columns(matrix: InteractionMatrix, n_items: int) -> InteractionMatrix:
    """``matrix`` widened to ``n_items`` columns; the new columns are items without interactions."""
    if n_items < matrix.n_items:
        raise ValueError(f"cannot narrow a matrix of {matrix.n_items} items to {n_items}")
    if n_items == matrix.n_items:
        return matrix

    def widened(csr: sp.csr_matrix) -> sp.csr_matrix:
        csr = csr.tocsr()
        return sp.csr_matrix((csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], n_items))

    extra = n_items - matrix.n_items
    item_ids = np.concatenate([
        np.asarray(matrix.item_ids),
        np.arange(matrix.n_items, n_items).astype(np.asarray(matrix.item_ids).dtype),
    ])
    categories = matrix.item_categories
    if categories is not None:
        categories = np.concatenate([np.asarray(categories), np.full(extra, -1)])
    return InteractionMatrix(
        weights=widened(matrix.weights),
        seen=widened(matrix.seen),
        user_ids=matrix.user_ids,
        item_ids=item_ids,
        item_categories=categories,
    )


def prepare_item_features(
    algorithm, matrix: InteractionMatrix, catalog: ItemCatalog, *, using: str = DEFAULT_DB_ALIAS
) -> tuple[InteractionMatrix, ItemCatalog]:
    """Give a content algorithm its item features; the pipeline's hook.

    Adds the featured models' items without interactions to the catalog
    (empty columns of the matrix), loads the features of every column and
    hands them to ``algorithm.use_item_features``. Returns the widened
    ``(matrix, catalog)`` the run fits on and writes with.
    """
    catalog = catalog_with_all_items(catalog, using=using)
    matrix = with_item_columns(matrix, len(catalog))
    algorithm.use_item_features(load_item_features(catalog, using=using))
    return matrix, catalog


def catalog_from_item_ids(item_ids) -> ItemCatalog:
    """The catalog of ``"<content type id>:<key>"`` item ids (the evaluation's column ids).

    Raises ValueError for an id not of that form.
    """
    types, keys = [], []
    for item_id in item_ids:
        content_type_id, separator, key = str(item_id).partition(":")
        if not separator or not content_type_id.isdigit():
            raise ValueError(f"item id {item_id!r} is not '<content type id>:<key>'")
        types.append(int(content_type_id))
        keys.append(key)
    return ItemCatalog(np.asarray(types, dtype=np.int64), np.asarray(keys, dtype=str))
