"""Writing a run's rows: the FitResult's tables under the run's id, in bulk.

Binary COPY on PostgreSQL (into a partition of the run's own where the table
is partitioned), batched inserts elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connections

from ..algorithms.base import Algorithm, FitResult
from ..categories import catalog_categories
from ..conf import recommendation_layout
from ..matrix import InteractionMatrix
from ..models import PopularItem, Recommendation, RecommendationList, Run, SimilarItem
from ..storage.copy_binary import PackedText, copy_binary, supports_binary_copy
from ..storage.partitions import is_partitioned, write_run_partition
from ..storage.read import ItemCatalog
from ..storage.write import bulk_insert_chunks
from .results import (
    popular_item_columns,
    recommendation_columns,
    recommendation_list_columns,
    similar_item_columns,
)

__all__ = ["recommendation_chunks", "store_rows", "write_results"]


def write_results(
    run: Run,
    algorithm: Algorithm,
    result: FitResult,
    matrix: InteractionMatrix,
    catalog: ItemCatalog,
    *,
    using: str = DEFAULT_DB_ALIAS,
    progress: Callable[[float], None] | None = None,
) -> dict[str, int]:
    """Store a FitResult's rows under ``run`` and return the rows written per table.

    Per-user lists are stored only for personal algorithms (Popular's are
    the same list for everyone, served from PopularItem).
    """
    written = {"similar": 0, "recommendations": 0, "popular": 0}
    recommended = result.recommended if algorithm.personal else None
    total = (result.similar.nnz if result.similar is not None else 0) + (
        int((recommended >= 0).sum()) if recommended is not None else 0
    ) + (len(result.popular) if result.popular is not None else 0)
    done = 0
    lock = threading.Lock()

    def advance(rows: int) -> None:
        nonlocal done
        with lock:
            done += rows
            fraction = done / total if total else 1.0
        if progress is not None and total:
            progress(fraction)

    def counted(chunks):
        for columns in chunks:
            yield columns
            advance(len(columns["run_id"]))

    def write_similar() -> None:
        columns = similar_item_columns(run.pk, result.similar, catalog)
        written["similar"] = store_rows(SimilarItem, counted([columns]), using=using)

    def write_recommendations() -> None:
        model, chunks = recommendation_chunks(
            run.pk, matrix.user_ids, recommended, result.recommended_scores, result.reasons,
            catalog,
        )
        if model is RecommendationList:
            written["recommendations"] = store_rows(model, _counted_lists(chunks, advance),
                                                    using=using)
        else:
            written["recommendations"] = store_rows(model, counted(chunks), using=using)

    writes = []
    if result.similar is not None and result.similar.nnz:
        writes.append(write_similar)
    if recommended is not None:
        writes.append(write_recommendations)
    if len(writes) > 1 and _writes_side_by_side(using):
        _side_by_side(writes, using)
    else:
        for write in writes:
            write()
    if result.popular is not None and len(result.popular):
        columns = popular_item_columns(run.pk, result.popular, result.popular_scores, catalog,
                                       catalog_categories(catalog, using=using))
        written["popular"] = store_rows(PopularItem, counted([columns]), using=using)
    return written


def _writes_side_by_side(using: str) -> bool:
    """Whether a run's tables can be written at once, each on a connection of its own.

    On PostgreSQL each table goes into a new partition in its own
    transaction, so two COPYs on two connections share nothing: the
    neighbours' encoding and storing overlap the lists' (both sides of a
    COPY are single-threaded). Not inside a transaction (another connection
    would not see the run), and not on SQLite (one writer at a time).
    """
    connection = connections[using]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _side_by_side(writes: list[Callable[[], None]], using: str) -> None:
    """Run the first write in a thread (its own connection) and the others here; re-raise.

    Both finish before an error is raised, so a failed run's cleanup finds
    every partition it has to drop.
    """
    def in_thread() -> None:
        try:
            writes[0]()
        finally:
            connections[using].close()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recs-write") as pool:
        first = pool.submit(in_thread)
        try:
            for write in writes[1:]:
                write()
        finally:
            error = first.exception()
    if error is not None:
        raise error


def recommendation_chunks(run_id: int, user_ids, recommended, scores, reasons, catalog,
                          *, layout: str | None = None):
    """``(model, column chunks)`` of per-user lists in RECOMMENDATION_LAYOUT (or ``layout``)."""
    if (layout or recommendation_layout()) == "lists":
        return RecommendationList, recommendation_list_columns(
            run_id, user_ids, recommended, scores, reasons, catalog)
    return Recommendation, recommendation_columns(
        run_id, user_ids, recommended, scores, reasons, catalog)


def _counted_lists(chunks, advance):
    """List chunks, progress advanced by the recommendations they hold."""
    for columns in chunks:
        yield columns
        advance(int(np.sum(columns["length"])))


def store_rows(model, chunks, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Write column chunks in one transaction: binary COPY on PostgreSQL, else bulk_insert."""
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return 0
    if supports_binary_copy(model, first, using):
        run_id = _single_run_id(first)
        if run_id is not None and is_partitioned(model, using):
            # A partition of its own, indexed once filled; None when the run
            # already has rows elsewhere (then they are appended below).
            written = write_run_partition(model, run_id, chain([first], chunks), using=using)
            if written is not None:
                return written
        return copy_binary(model, chain([first], chunks), using=using)
    as_text = (_decoded(columns) for columns in chain([first], chunks))
    return bulk_insert_chunks(model, as_text, using=using, batch_size=50_000)


def _single_run_id(columns: dict) -> int | None:
    """The run of a chunk's rows when they all belong to one run."""
    run_ids = np.asarray(columns.get("run_id", ()))
    if run_ids.size == 0 or run_ids.dtype.kind not in "iu" or (run_ids != run_ids[0]).any():
        return None
    return int(run_ids[0])


def _decoded(columns: dict) -> dict:
    """UTF-8 ``S`` columns and packed texts as str, for bulk_insert."""
    return {name: values.tolist() if isinstance(values, PackedText)
            else np.char.decode(values, "utf-8")
            if isinstance(values, np.ndarray) and values.dtype.kind == "S" else values
            for name, values in columns.items()}

