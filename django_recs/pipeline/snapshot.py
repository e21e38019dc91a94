"""A run's arrays in Django's storage: compressed ``.npz`` files with a SHA-256 checksum.

A sharded run (:mod:`django_recs.sharding`) writes its interaction matrix
once — the CSR weights, the seen mask, the user and item ids and the
catalog that maps columns back to items — and every worker that computes a
shard reads it from the same storage (``default_storage``: the file system
under MEDIA_ROOT by default, any django-storages backend otherwise). The
shards' neighbour rows and the ALS factors travel the same way.

Each file is recorded on the run as two ``Run.artifacts`` entries:
``artifacts[name]`` (the storage path) and ``artifacts[name + "_sha256"]``
(the hex SHA-256 of the file's bytes). A reader verifies the checksum before
using a file and refuses a corrupt or replaced one with :class:`CorruptFile`.
The files are deleted with the run's other artifacts when the run is pruned
or fails (:func:`django_recs.foldin.delete_artifact_files`).

Files never change once written, so what a worker has loaded and verified
is cached in the process (a few entries, keyed by path and checksum).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ..matrix import InteractionMatrix
from ..storage.read import ItemCatalog

__all__ = [
    "CHECKSUM_SUFFIX",
    "CorruptFile",
    "MatrixSnapshot",
    "MissingFile",
    "StoredFile",
    "add_artifacts",
    "load_arrays",
    "load_csr",
    "load_matrix",
    "locked_run",
    "remove_artifacts",
    "run_path",
    "save_arrays",
    "save_csr",
    "save_matrix",
    "stored_artifact",
]

#: ``artifacts[name + CHECKSUM_SUFFIX]`` holds the checksum of ``artifacts[name]``.
CHECKSUM_SUFFIX = "_sha256"

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class SnapshotError(ValueError):
    """A stored file of a run cannot be used."""


class CorruptFile(SnapshotError):
    """The file's SHA-256 differs from the one recorded when it was written."""


class MissingFile(SnapshotError):
    """The file (or its record on the run) is not there."""


@dataclass(frozen=True)
class StoredFile:
    """Where a file is in the storage, and the SHA-256 of its bytes."""

    path: str
    sha256: str

    def artifacts(self, name: str) -> dict[str, str]:
        """The two ``Run.artifacts`` entries recording this file as ``name``."""
        return {name: self.path, name + CHECKSUM_SUFFIX: self.sha256}


@dataclass(frozen=True)
class MatrixSnapshot:
    """A run's interaction matrix and the item of each column."""

    matrix: InteractionMatrix
    catalog: ItemCatalog


def run_path(run_id: int, filename: str) -> str:
    """The storage name of one file of a run."""
    return f"django_recs/runs/{int(run_id)}/{filename}"


# -- arrays ---------------------------------------------------------------------------


def save_arrays(name: str, arrays: dict[str, np.ndarray]) -> StoredFile:
    """Write ``arrays`` with ``np.savez_compressed`` to the default storage.

    Returns the stored path (the storage may alter ``name`` to keep it
    unique) and the SHA-256 of the bytes written.
    """
    if not arrays:
        raise ValueError("nothing to save: arrays is empty")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    content = buffer.getvalue()
    path = default_storage.save(name, ContentFile(content))
    return StoredFile(path, hashlib.sha256(content).hexdigest())


def load_arrays(path: str, sha256: str) -> dict[str, np.ndarray]:
    """The arrays of the file at ``path``, after checking its SHA-256.

    Raises
    ------
    MissingFile
        No such file in the storage.
    CorruptFile
        The file's bytes do not have the checksum ``sha256`` (truncated,
        damaged, or replaced since the run wrote it): it is not used.
    ValueError
        ``sha256`` is not a hex SHA-256 digest.
    """
    if not isinstance(sha256, str) or not _HEX_DIGEST.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 lower-case hex digits, got {sha256!r}")
    try:
        with default_storage.open(path, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        raise MissingFile(f"{path}: no such file in the storage") from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != sha256:
        raise CorruptFile(
            f"{path}: SHA-256 {actual} does not match {sha256} recorded when it was written; "
            "the file is corrupt or was replaced, refusing to use it"
        )
    with np.load(io.BytesIO(content), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


# -- sparse matrices ---------------------------------------------------------------------


def _csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def _csr_from(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    shape = tuple(int(n) for n in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=shape,
    )


def save_csr(name: str, matrix: sp.csr_matrix) -> StoredFile:
    """Save a CSR matrix exactly as it is (row order, dtypes)."""
    if not sp.issparse(matrix):
        raise ValueError(f"expected a sparse matrix, got {type(matrix).__name__}")
    return save_arrays(name, _csr_arrays("matrix", sp.csr_matrix(matrix)))


def load_csr(path: str, sha256: str) -> sp.csr_matrix:
    """The CSR matrix saved by :func:`save_csr` (checksum verified)."""
    return _cached_csr(path, sha256)


@lru_cache(maxsize=2)
def _cached_csr(path: str, sha256: str) -> sp.csr_matrix:
    return _csr_from("matrix", load_arrays(path, sha256))


# -- the interaction matrix -----------------------------------------------------------------


def save_matrix(run_id: int, matrix: InteractionMatrix, catalog: ItemCatalog) -> StoredFile:
    """Write a run's interaction matrix and catalog once, as ``snapshot.npz``."""
    if len(catalog) != matrix.n_items:
        raise ValueError(f"the catalog has {len(catalog)} items for {matrix.n_items} columns")
    arrays = {
        **_csr_arrays("weights", matrix.weights),
        **_csr_arrays("seen", matrix.seen),
        "user_ids": matrix.user_ids,
        "item_ids": matrix.item_ids,
        "content_type_ids": np.asarray(catalog.content_type_ids, dtype=np.int64),
        "keys": np.asarray(catalog.keys, dtype=str),
    }
    if matrix.item_categories is not None:
        arrays["item_categories"] = matrix.item_categories
    return save_arrays(run_path(run_id, "snapshot.npz"), arrays)


def load_matrix(path: str, sha256: str) -> MatrixSnapshot:
    """The snapshot saved by :func:`save_matrix` (checksum verified, cached per process)."""
    return _cached_matrix(path, sha256)


@lru_cache(maxsize=2)
def _cached_matrix(path: str, sha256: str) -> MatrixSnapshot:
    arrays = load_arrays(path, sha256)
    try:
        matrix = InteractionMatrix(
            weights=_csr_from("weights", arrays),
            seen=_csr_from("seen", arrays),
            user_ids=arrays["user_ids"],
            item_ids=arrays["item_ids"],
            item_categories=arrays.get("item_categories"),
        )
        catalog = ItemCatalog(arrays["content_type_ids"], arrays["keys"])
    except KeyError as missing:
        raise SnapshotError(f"{path}: not a matrix snapshot (no {missing} array)") from None
    return MatrixSnapshot(matrix, catalog)


# -- the run's record of its files ---------------------------------------------------------


def stored_artifact(artifacts: dict, name: str) -> StoredFile:
    """The file recorded on a run as ``name``, with its checksum.

    Raises
    ------
    MissingFile
        The run records no such file, or no checksum for it.
    """
    artifacts = artifacts or {}
    path, digest = artifacts.get(name), artifacts.get(name + CHECKSUM_SUFFIX)
    if not path or not digest:
        raise MissingFile(f"the run records no file {name!r} with a checksum")
    return StoredFile(path, digest)


def add_artifacts(run_id: int, entries: dict[str, str], *, using: str = DEFAULT_DB_ALIAS) -> dict:
    """Add entries to ``Run.artifacts`` without losing another worker's.

    Several shards record their files at once: the run's row is locked for
    the read-modify-write. Returns the run's artifacts after the change
    (empty when the run is gone).
    """
    from ..models import Run

    with transaction.atomic(using=using):
        run = locked_run(run_id, using)
        if run is None:
            return {}
        artifacts = {**(run.artifacts or {}), **entries}
        Run.objects.using(using).filter(pk=run_id).update(artifacts=artifacts)
    return artifacts


def locked_run(run_id: int, using: str):
    """The run, its row locked until the transaction ends.

    FOR NO KEY UPDATE where the database has it: it does not wait for the
    shards whose write transactions hold the run's key (their RunShard rows
    reference it).
    """
    from ..models import Run

    no_key = connections[using].features.has_select_for_no_key_update
    return Run.objects.using(using).select_for_update(no_key=no_key).filter(pk=run_id).first()


def remove_artifacts(run_id: int, names, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Delete the files recorded as ``names`` and their entries (checksums included)."""
    from ..models import Run
    from .artifacts import delete_artifact_files

    names = set(names)
    with transaction.atomic(using=using):
        run = locked_run(run_id, using)
        if run is None:
            return
        artifacts = dict(run.artifacts or {})
        dropped = {name: artifacts.pop(name) for name in list(artifacts)
                   if name in names or name.removesuffix(CHECKSUM_SUFFIX) in names}
        Run.objects.using(using).filter(pk=run_id).update(artifacts=artifacts)
    delete_artifact_files(dropped)
