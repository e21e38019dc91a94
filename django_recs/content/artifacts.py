"""A content run's feature matrix in Django's storage (``Run.artifacts["item_features"]``).

One ``.npz`` file (no pickles) per run: the features x items matrix, its
vocabulary and blocks, the run's catalog (the item of each column) and the
similarity settings. Files never change once written, so loading is cached.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ..algorithms.content_index import ContentIndex
from ..algorithms.features import ItemFeatures
from ..storage.read import ItemCatalog

__all__ = ["StoredContentIndex", "load_content_index", "save_content_index"]

ARTIFACT_NAME = "item_features"


class StoredContentIndex:
    """A :class:`ContentIndex` with the catalog of its columns."""

    def __init__(self, index: ContentIndex, catalog: ItemCatalog):
        self.index = index
        self.catalog = catalog
        self._columns = {
            (int(ct), str(key)): column
            for column, (ct, key) in enumerate(zip(catalog.content_type_ids, catalog.keys))
        }

    def column_of(self, content_type_id: int, key: str) -> int | None:
        """The column of an item, or None when the run did not know it."""
        return self._columns.get((int(content_type_id), str(key)))


def save_content_index(run_id: int, index: ContentIndex, catalog: ItemCatalog) -> str:
    """Save a run's content index in the default storage; returns the stored name."""
    features = index.features
    matrix = features.matrix.tocsr()
    settings = {"k": int(index.k), "shrink": float(index.shrink), "blended": bool(index.blended)}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        data=matrix.data.astype(np.float32),
        indices=matrix.indices,
        indptr=matrix.indptr,
        shape=np.asarray(matrix.shape, dtype=np.int64),
        labels=features.labels.astype(str),
        kinds=features.kinds.astype(str),
        paths=features.paths.astype(str),
        weights=features.weights.astype(np.float64),
        block_starts=features.block_starts.astype(np.int64),
        tokens=features.tokens.astype(str),
        idf=features.idf.astype(np.float64),
        content_type_ids=catalog.content_type_ids.astype(np.int64),
        keys=np.asarray(catalog.keys, dtype=str),
        settings=np.asarray(json.dumps(settings)),
    )
    return default_storage.save(
        f"django_recs/runs/{run_id}/{ARTIFACT_NAME}.npz", ContentFile(buffer.getvalue())
    )


@lru_cache(maxsize=4)
def load_content_index(path: str) -> StoredContentIndex:
    """The content index stored at ``path`` (cached: a run's files never change)."""
    with default_storage.open(path, "rb") as handle:
        data = np.load(io.BytesIO(handle.read()), allow_pickle=False)
        shape = tuple(int(n) for n in data["shape"])
        features = ItemFeatures(
            matrix=sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=shape),
            labels=data["labels"],
            kinds=data["kinds"],
            paths=data["paths"],
            weights=data["weights"],
            block_starts=data["block_starts"],
            tokens=data["tokens"],
            idf=data["idf"],
        )
        settings = json.loads(str(data["settings"]))
        catalog = ItemCatalog(data["content_type_ids"], data["keys"])
    index = ContentIndex(features=features, k=settings["k"], shrink=settings["shrink"],
                         blended=settings["blended"])
    return StoredContentIndex(index, catalog)
