"""Files a run stores through Django's storage API: ALS item factors, content features.

They let a user's recommendations be refreshed (fold-in) and a new item's
content neighbours be computed without a run. Paths are kept in
``Run.artifacts`` ({name: storage path}).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS

from ..algorithms.base import FitResult
from ..models import Run
from ..storage.read import ItemCatalog

__all__ = [
    "ItemFactors",
    "delete_artifact_files",
    "delete_artifacts",
    "load_item_factors",
    "save_artifacts",
    "save_item_factors",
]


def save_artifacts(run: Run, result: FitResult, catalog: ItemCatalog) -> dict[str, str]:
    """Store the item factors of a factorisation run through Django's storage API.

    They let :func:`refresh_user` fold in one user's new history later. A
    content run's item features are stored too, so a new item's neighbours
    can be computed without a run (:mod:`django_recs.content.updates`).
    Returns the run's ``artifacts`` ({name: storage path}), also saved on the run.
    """
    artifacts = {}
    if result.item_factors is not None:
        artifacts["item_factors"] = save_item_factors(run.pk, result.item_factors, catalog)
    if getattr(result, "content_index", None) is not None:
        from ..content.artifacts import save_content_index

        artifacts["item_features"] = save_content_index(run.pk, result.content_index, catalog)
    if not artifacts:
        return {}
    Run.objects.using(run._state.db or DEFAULT_DB_ALIAS).filter(pk=run.pk).update(
        artifacts=artifacts
    )
    return artifacts


def delete_artifacts(run: Run) -> None:
    """Delete the files a run stored (missing files are fine)."""
    if not run.artifacts:
        return
    delete_artifact_files(run.artifacts)


@dataclass(frozen=True)
class ItemFactors:
    """Item factors of a run and the item of each row."""

    factors: np.ndarray  # (n_items, f) float32
    catalog: ItemCatalog

    def columns_of(self, catalog: ItemCatalog) -> np.ndarray:
        """For each item of ``catalog``, its row in these factors (-1 when unknown)."""
        lookup = self.catalog.column_lookup()
        return np.array(
            [lookup.get((int(ct), str(key)), -1)
             for ct, key in zip(catalog.content_type_ids, catalog.keys)],
            dtype=np.int64,
        )


def save_item_factors(run_id: int, factors: np.ndarray, catalog: ItemCatalog) -> str:
    """Save a run's item factors in the default storage; returns the stored name."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        factors=np.asarray(factors, dtype=np.float32),
        content_type_ids=catalog.content_type_ids.astype(np.int64),
        keys=np.asarray(catalog.keys, dtype=str),
    )
    return default_storage.save(
        f"django_recs/runs/{run_id}/item_factors.npz", ContentFile(buffer.getvalue())
    )


@lru_cache(maxsize=4)
def load_item_factors(path: str) -> ItemFactors:
    """The item factors stored at ``path`` (cached: a run's files never change)."""
    with default_storage.open(path, "rb") as handle:
        data = np.load(io.BytesIO(handle.read()), allow_pickle=False)
        return ItemFactors(
            factors=data["factors"],
            catalog=ItemCatalog(data["content_type_ids"], data["keys"]),
        )


def delete_artifact_files(artifacts: dict[str, str]) -> None:
    """Delete a run's stored files; a file already gone is fine.

    Entries named ``<file>_sha256`` are the checksums of files (see
    :mod:`django_recs.pipeline.snapshot`), not paths.
    """
    for name, path in artifacts.items():
        if name.endswith("_sha256"):
            continue
        if path and default_storage.exists(path):
            default_storage.delete(path)
