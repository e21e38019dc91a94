"""A fitted algorithm's arrays as columns of the result tables. No queries here.

Each function returns ``{attribute name: array}`` ready for
:func:`django_recs.storage.bulk_insert`, built with whole-array numpy
operations; item keys come from the run's :class:`ItemCatalog`, encoded once
per item and gathered by index (text columns are UTF-8 ``S`` arrays).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..algorithms.ranking import row_then_descending_key
from ..categories import ranks_within
from ..storage.copy_binary import PackedText
from ..storage.read import ItemCatalog

Columns = dict[str, np.ndarray]


def ranked_entries(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries of each row ranked by descending value (ties: storage order).

    Returns ``(rows, columns, values, ranks)``, 1-D arrays in row order.
    """
    matrix = sp.csr_matrix(matrix)
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    order = np.argsort(row_then_descending_key(rows, matrix.data), kind="stable")
    ranks = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], lengths)
    return rows[order], matrix.indices[order], matrix.data[order], ranks


def similar_item_columns(run_id: int, similar: sp.csr_matrix, catalog: ItemCatalog) -> Columns:
    """SimilarItem rows: each item's neighbours with rank 0 = most similar.

    Rows come in the order of the lookup index (content type, key text, rank),
    so the database appends to its index instead of inserting all over it.
    """
    items, neighbours, scores, ranks = ranked_entries(similar)
    if len(items):
        text_order = np.lexsort((catalog.key_bytes, catalog.content_type_ids))
        position = np.empty(len(text_order), dtype=np.int64)
        position[text_order] = np.arange(len(text_order))
        order = np.argsort(position[items] * (int(ranks.max()) + 1) + ranks, kind="stable")
        items, neighbours, scores, ranks = items[order], neighbours[order], scores[order], ranks[order]
    return {
        "run_id": np.full(len(items), run_id, dtype=np.int64),
        "item_type_id": catalog.content_type_ids[items],
        "item_key": catalog.key_bytes[items],
        "neighbour_type_id": catalog.content_type_ids[neighbours],
        "neighbour_key": catalog.key_bytes[neighbours],
        "score": scores.astype(np.float64),
        "rank": ranks.astype(np.int64),
    }


def recommendation_columns(
    run_id: int,
    user_ids: np.ndarray,
    recommended: np.ndarray,
    scores: np.ndarray,
    reasons: np.ndarray | None,
    catalog: ItemCatalog,
    *,
    rows_per_chunk: int = 250_000,
) -> Iterator[Columns]:
    """Recommendation rows in chunks of about ``rows_per_chunk``.

    ``recommended`` (n_users x n) is best first with -1 padding; the rank of
    a row is its position among the user's valid entries.
    """
    n_users, width = recommended.shape
    if width == 0:
        return
    users_per_chunk = max(1, rows_per_chunk // width)
    for start in range(0, n_users, users_per_chunk):
        block = recommended[start:start + users_per_chunk]
        valid = block >= 0
        row, slot = np.nonzero(valid)
        if row.size == 0:
            continue
        items = block[row, slot]
        ranks = np.cumsum(valid, axis=1)[row, slot] - 1
        columns = {
            "run_id": np.full(len(items), run_id, dtype=np.int64),
            "user_id": np.asarray(user_ids[start + row], dtype=np.int64),
            "item_type_id": catalog.content_type_ids[items],
            "item_key": catalog.key_bytes[items],
            "score": scores[start:start + users_per_chunk][row, slot].astype(np.float64),
            "rank": ranks.astype(np.int64),
        }
        columns.update(reason_columns(
            None if reasons is None else reasons[start:start + users_per_chunk][row, slot],
            catalog,
        ))
        yield columns


def reason_columns(reasons: np.ndarray | None, catalog: ItemCatalog) -> Columns:
    """``reason_type_id`` (None where unknown) and ``reason_key`` ("" where unknown)."""
    if reasons is None:
        return {}
    known = reasons >= 0
    safe = np.where(known, reasons, 0)
    if len(catalog) == 0:
        known[:] = False
        types = np.zeros(len(reasons), dtype=np.int64)
        keys = np.full(len(reasons), b"", dtype="S1")
    else:
        types = catalog.content_type_ids[safe]
        keys = catalog.key_bytes[safe]
    reason_types = types.astype(object)
    reason_types[~known] = None
    return {
        "reason_type_id": reason_types,
        "reason_key": np.where(known, keys, b""),
    }


def popular_item_columns(
    run_id: int, popular: np.ndarray, scores: np.ndarray, catalog: ItemCatalog,
    categories: np.ndarray | None = None,
) -> Columns:
    """PopularItem rows, rank 0 = most popular.

    ``categories`` (text or None per catalog column, see
    :func:`django_recs.categories.catalog_categories`) adds each item's
    category and its rank among the popular items of that category.
    """
    popular = np.asarray(popular, dtype=np.int64)
    columns = {
        "run_id": np.full(len(popular), run_id, dtype=np.int64),
        "item_type_id": catalog.content_type_ids[popular],
        "item_key": catalog.key_bytes[popular],
        "score": np.asarray(scores, dtype=np.float64),
        "rank": np.arange(len(popular), dtype=np.int64),
    }
    if categories is not None:
        listed = categories[popular]
        ranks = ranks_within(listed)
        columns["category"] = listed
        columns["category_rank"] = np.where(ranks >= 0, ranks, None).astype(object)
    return columns




def recommendation_list_columns(
    run_id: int,
    user_ids: np.ndarray,
    recommended: np.ndarray,
    scores: np.ndarray,
    reasons: np.ndarray | None,
    catalog: ItemCatalog,
    *,
    users_per_chunk: int = 50_000,
    num_threads: int = 0,
) -> Iterator[Columns]:
    """RecommendationList rows (one per user and item content type) in chunks of users.

    ``recommended`` (n_users x n) is best first with -1 padding; a user with
    no entry of a content type has no row of it. ``items`` is the JSON text
    of :func:`django_recs.kernels.encode_lists` (a :class:`PackedText` over
    its buffer), each catalog item's fragments encoded once here.
    """
    recommended = np.asarray(recommended)
    if recommended.ndim != 2 or 0 in recommended.shape or len(catalog) == 0:
        return
    item_fragments, reason_fragments = list_fragments(catalog)
    types = np.asarray(catalog.content_type_ids)
    distinct_types = np.unique(types)
    for start in range(0, recommended.shape[0], users_per_chunk):
        stop = min(recommended.shape[0], start + users_per_chunk)
        for type_id in distinct_types:
            keep = None if len(distinct_types) == 1 else types == type_id
            buffer, offsets, lengths = kernels.encode_lists(
                recommended[start:stop], scores[start:stop], item_fragments, reason_fragments,
                reasons=None if reasons is None else reasons[start:stop], keep=keep,
                num_threads=num_threads,
            )
            listed = np.flatnonzero(lengths)
            if not len(listed):
                continue
            yield {
                "run_id": np.full(len(listed), run_id, dtype=np.int64),
                "user_id": np.asarray(user_ids[start:stop], dtype=np.int64)[listed],
                "item_type_id": np.full(len(listed), int(type_id), dtype=np.int64),
                "items": PackedText(buffer.tobytes(), offsets[listed], offsets[listed + 1]),
                "length": lengths[listed],
            }


def list_fragments(catalog: ItemCatalog) -> tuple[list[bytes], list[bytes]]:
    """Per catalog item: ``,["key",`` and ``,type,"key"]``; then ``]`` (no reason)."""
    keys = [json.dumps(key.decode("utf-8")) for key in catalog.key_bytes.tolist()]
    types = np.asarray(catalog.content_type_ids).tolist()
    items = [f",[{key},".encode() for key in keys]
    reasons = [f",{int(t)},{key}]".encode() for t, key in zip(types, keys, strict=True)]
    return items, [*reasons, b"]"]
