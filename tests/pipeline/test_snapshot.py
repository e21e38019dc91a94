"""Arrays of a run in the storage: compressed .npz files whose SHA-256 is checked on load."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from django_recs.matrix import InteractionMatrix
from django_recs.models import Run
from django_recs.pipeline import snapshot
from django_recs.pipeline.artifacts import delete_artifact_files
from django_recs.storage.read import ItemCatalog
from tests.pipeline import sharding_fixtures

media = sharding_fixtures.media  # fixture


def a_matrix(categories=True) -> tuple[InteractionMatrix, ItemCatalog]:
    rng = np.random.default_rng(4)
    rows, cols = rng.integers(0, 30, 200), rng.integers(0, 12, 200)
    matrix = InteractionMatrix.from_arrays(
        rows, cols, rng.random(200) * 5, rng.random(200) < 0.3, shape=(30, 12),
        user_ids=np.arange(100, 130, dtype=np.int64),
        item_categories=rng.integers(-1, 3, 12) if categories else None,
    )
    catalog = ItemCatalog(np.r_[np.full(8, 7), np.full(4, 9)].astype(np.int64),
                          np.array([str(i) for i in range(8)] + ["ab" * 16] * 4))
    return matrix, catalog


def assert_same_csr(got: sp.csr_matrix, expected: sp.csr_matrix) -> None:
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)


@pytest.mark.parametrize("categories", [True, False])
def test_matrix_snapshot_round_trip(media, categories):
    matrix, catalog = a_matrix(categories)
    stored = snapshot.save_matrix(5, matrix, catalog)
    assert stored.path == "django_recs/runs/5/snapshot.npz"
    with default_storage.open(stored.path, "rb") as handle:
        content = handle.read()
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert content[:2] == b"PK"  # a zip: np.savez_compressed
    loaded = snapshot.load_matrix(stored.path, stored.sha256)
    assert_same_csr(loaded.matrix.weights, matrix.weights)
    assert_same_csr(loaded.matrix.seen, matrix.seen)
    np.testing.assert_array_equal(loaded.matrix.user_ids, matrix.user_ids)
    np.testing.assert_array_equal(loaded.matrix.item_ids, matrix.item_ids)
    if categories:
        np.testing.assert_array_equal(loaded.matrix.item_categories, matrix.item_categories)
    else:
        assert loaded.matrix.item_categories is None
    np.testing.assert_array_equal(loaded.catalog.content_type_ids, catalog.content_type_ids)
    np.testing.assert_array_equal(loaded.catalog.keys, catalog.keys)
    np.testing.assert_array_equal(loaded.catalog.key_bytes, catalog.key_bytes)


def test_a_corrupt_file_is_refused(media):
    matrix, catalog = a_matrix()
    stored = snapshot.save_matrix(6, matrix, catalog)
    with default_storage.open(stored.path, "rb") as handle:
        content = bytearray(handle.read())
    content[-10] ^= 0x01  # one bit
    default_storage.delete(stored.path)
    default_storage.save(stored.path, ContentFile(bytes(content)))
    with pytest.raises(snapshot.CorruptFile, match="django_recs/runs/6/snapshot.npz: SHA-256"):
        snapshot.load_matrix(stored.path, stored.sha256)
    with pytest.raises(snapshot.CorruptFile, match="refusing to use it"):
        snapshot.load_arrays(stored.path, stored.sha256)


def test_a_truncated_or_replaced_file_is_refused(media):
    stored = snapshot.save_arrays("django_recs/runs/7/a.npz", {"x": np.arange(10)})
    default_storage.delete(stored.path)
    default_storage.save(stored.path, ContentFile(b"PK"))
    with pytest.raises(snapshot.CorruptFile):
        snapshot.load_arrays(stored.path, stored.sha256)


def test_a_missing_file_or_record_is_a_clear_error(media):
    with pytest.raises(snapshot.MissingFile, match="no such file"):
        snapshot.load_arrays("django_recs/runs/404/snapshot.npz", "0" * 64)
    with pytest.raises(snapshot.MissingFile, match="records no file 'snapshot'"):
        snapshot.stored_artifact({"snapshot": "x.npz"}, "snapshot")  # no checksum
    with pytest.raises(snapshot.MissingFile):
        snapshot.stored_artifact({}, "snapshot")


@pytest.mark.parametrize("digest", ["", "abc", "G" * 64, "A" * 64, None, 12])
def test_a_malformed_checksum_is_refused(media, digest):
    stored = snapshot.save_arrays("django_recs/runs/8/a.npz", {"x": np.arange(3)})
    with pytest.raises(ValueError, match="sha256 must be 64"):
        snapshot.load_arrays(stored.path, digest)


def test_a_file_that_is_not_a_snapshot_is_refused(media):
    stored = snapshot.save_arrays("django_recs/runs/9/other.npz", {"x": np.arange(3)})
    with pytest.raises(snapshot.SnapshotError, match="not a matrix snapshot"):
        snapshot.load_matrix(stored.path, stored.sha256)


def test_csr_round_trip_keeps_row_order(media):
    rows = sp.csr_matrix((np.array([3.0, 1.0, 2.0], np.float32), np.array([4, 0, 2], np.int32),
                          np.array([0, 2, 2, 3], np.int32)), shape=(3, 5))  # unsorted indices
    stored = snapshot.save_csr("django_recs/runs/10/rows.npz", rows)
    assert_same_csr(snapshot.load_csr(stored.path, stored.sha256), rows)


def test_bad_input_to_the_writers(media):
    matrix, catalog = a_matrix()
    with pytest.raises(ValueError, match="nothing to save"):
        snapshot.save_arrays("django_recs/x.npz", {})
    with pytest.raises(ValueError, match="expected a sparse matrix"):
        snapshot.save_csr("django_recs/x.npz", np.eye(3))
    with pytest.raises(ValueError, match="catalog has 3 items for 12 columns"):
        snapshot.save_matrix(1, matrix, ItemCatalog(np.zeros(3, np.int64), np.array(["a"] * 3)))


def test_a_second_file_of_the_same_name_does_not_overwrite_the_first(media):
    first = snapshot.save_arrays("django_recs/runs/11/a.npz", {"x": np.arange(3)})
    second = snapshot.save_arrays("django_recs/runs/11/a.npz", {"x": np.arange(4)})
    assert first.path != second.path
    assert len(snapshot.load_arrays(first.path, first.sha256)["x"]) == 3


def test_artifacts_are_added_and_removed_with_their_checksums(db, media):
    run = Run.objects.create(algorithm="x", artifacts={"item_factors": "keep.npz"})
    stored = snapshot.save_arrays(snapshot.run_path(run.pk, "a.npz"), {"x": np.arange(3)})
    entries = stored.artifacts("a")
    assert entries == {"a": stored.path, "a_sha256": stored.sha256}
    assert snapshot.add_artifacts(run.pk, entries) == {"item_factors": "keep.npz", **entries}
    run.refresh_from_db()
    assert snapshot.stored_artifact(run.artifacts, "a") == stored
    snapshot.remove_artifacts(run.pk, ["a"])
    run.refresh_from_db()
    assert run.artifacts == {"item_factors": "keep.npz"}
    assert not default_storage.exists(stored.path)
    assert snapshot.add_artifacts(10**9, entries) == {}  # a run that is gone


def test_deleting_artifacts_skips_checksums(media, monkeypatch):
    stored = snapshot.save_arrays("django_recs/runs/12/a.npz", {"x": np.arange(3)})
    asked = []
    original = default_storage.exists
    monkeypatch.setattr(default_storage, "exists", lambda path: asked.append(path) or original(path))
    delete_artifact_files(stored.artifacts("a"))
    assert asked == [stored.path]
    assert not original(stored.path)


def test_user_range_of_a_matrix():
    matrix, _ = a_matrix()
    part = matrix.user_range(5, 17)
    assert part.n_users == 12 and part.n_items == matrix.n_items
    assert_same_csr(part.weights, matrix.weights[5:17])
    assert_same_csr(part.seen, matrix.seen[5:17])
    np.testing.assert_array_equal(part.user_ids, matrix.user_ids[5:17])
    assert matrix.user_range(30, 30).n_users == 0
    for bad in [(5, 3), (-1, 2), (0, 31), (1.0, 2), (True, 3)]:
        with pytest.raises(ValueError):
            matrix.user_range(*bad)
