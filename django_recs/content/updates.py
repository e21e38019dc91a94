"""One item's content neighbours, computed after it is saved, without a full run.

When an item of a featured model is saved, the task
``django_recs.content_neighbours`` calls :func:`update_content_neighbours`:
for each configured algorithm that uses item features (ContentKNN, Hybrid)
whose active run stored its feature matrix, the item's vector is built from
its current values against that run's vocabulary, scored against every item
of the run, and its SimilarItem rows in that run are replaced. Its product
page shows similar items seconds after it was created.

A Hybrid run blends collaborative scores the task cannot recompute, so there
only items without interactions — whose blend is pure content — are
updated; the others keep their rows until the next run. Other items' lists
are not changed (they gain the new item at the next run).

Only an item the shop shows (its model's ITEM_QUERYSETS entry admits it)
is given neighbours: saving a draft computes nothing, and the save that
publishes it gives it its neighbours.
"""

from __future__ import annotations

import logging

import numpy as np
from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, transaction

from ..algorithms.content_index import nearest_items
from ..items import item_content_type, key_for_pk
from ..models import Interaction, Run, SimilarItem
from ..storage import bulk_insert
from .artifacts import ARTIFACT_NAME, load_content_index
from .config import family_features, feature_algorithm_names
from .loading import read_item_values

logger = logging.getLogger(__name__)

__all__ = ["update_content_neighbours"]


def update_content_neighbours(
    model_label: str, pk, *, using: str = DEFAULT_DB_ALIAS
) -> dict[str, int]:
    """Recompute the content neighbours of one item in the active content runs.

    Parameters
    ----------
    model_label : str
        ``"app_label.Model"`` of an ITEM_MODELS model with ITEM_FEATURES.
    pk : the item's primary key (or its text form).

    Returns
    -------
    dict
        Algorithm name -> rows written for the item, for each run updated.
        Empty when the model has no features, the item no longer exists, the
        shop does not show it (it is outside its model's ITEM_QUERYSETS
        entry: a draft gets its neighbours on the save that publishes it) or
        no content run is active. Idempotent.
    """
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError):
        logger.warning("django_recs: content_neighbours for unknown model %r", model_label)
        return {}
    found = _described_item(model, pk, using)
    if found is None:
        return {}  # no features, deleted meanwhile or not shown: the next run drops it
    features, key, item_values = found
    model = features.model
    content_type_id = item_content_type(model).pk
    written = {}
    for algorithm in feature_algorithm_names():
        run = Run.objects.using(using).filter(algorithm=algorithm, is_active=True).first()
        path = (run.artifacts or {}).get(ARTIFACT_NAME) if run else None
        if not path:
            continue
        stored = load_content_index(path)
        if stored.index.blended and _has_interactions(content_type_id, key, using):
            continue
        vector = stored.index.features.vector_of(features.label, item_values)
        columns, scores = nearest_items(
            stored.index, vector, exclude=stored.column_of(content_type_id, key)
        )
        written[algorithm] = _replace_rows(run, content_type_id, key, stored, columns, scores,
                                           using=using)
    return written


def _described_item(model, pk, using: str):
    """(features, key, values) of the item ``pk`` of ``model``, or None when none describes it.

    As in a full run, the item is described by the most specific featured
    model of its family it is an instance of, and only while that model's
    ITEM_QUERYSETS entry admits it: one query per featured model tried.
    """
    for features in family_features(model):
        key = key_for_pk(features.model, pk)
        values = read_item_values(features, pks=[pk], using=using)
        if key in values.keys:
            return features, key, values.of_key(key)
    return None


def _has_interactions(content_type_id: int, key: str, using: str) -> bool:
    """A Hybrid run's collaborative weight is 0 only for items nobody interacted with."""
    return Interaction.objects.using(using).filter(
        item_type_id=content_type_id, item_key=key, user__isnull=False
    ).exists()


def _replace_rows(run, content_type_id, key, stored, columns, scores, *, using) -> int:
    catalog = stored.catalog
    rows = {
        "run_id": np.full(len(columns), run.pk, dtype=np.int64),
        "item_type_id": np.full(len(columns), content_type_id, dtype=np.int64),
        "item_key": np.full(len(columns), key, dtype=object),
        "neighbour_type_id": catalog.content_type_ids[columns].astype(np.int64),
        "neighbour_key": np.asarray(catalog.keys, dtype=object)[columns],
        "score": scores.astype(np.float64),
        "rank": np.arange(len(columns), dtype=np.int64),
    }
    with transaction.atomic(using=using):
        # Lock the run: a swap meanwhile waits, then deletes these rows with the run's others.
        if not Run.objects.using(using).select_for_update().filter(pk=run.pk,
                                                                   is_active=True).exists():
            return 0
        SimilarItem.objects.using(using).filter(
            run=run, item_type_id=content_type_id, item_key=key
        ).delete()
        return bulk_insert(SimilarItem, rows, using=using) if len(columns) else 0
