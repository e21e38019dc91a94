"""Bulk I/O of the pipeline: binary COPY on PostgreSQL, batches elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from django_recs import pipeline
from django_recs.models import Recommendation, RecommendationList, Run, SimilarItem
from django_recs.storage import copy_binary as binary
from django_recs.storage import read
from django_recs.storage.read import ItemCatalog, load_interactions
from tests.pipeline import pipeline_fixtures

shop = pipeline_fixtures.shop  # fixture


def recommendation_chunks(run, user, n=7, chunks=2):
    """Chunks of rows with NULL reasons, empty keys, non-ASCII and long keys."""
    keys = np.array(["1", "22", "ünï", "", "x" * 64, "7", "é"], dtype=str)[:n]
    for part in range(chunks):
        yield {
            "run_id": np.full(n, run.pk),
            "user_id": np.full(n, user.pk),
            "item_type_id": np.full(n, 1),
            "item_key": keys if part == 0 else np.char.encode(keys, "utf-8"),
            "score": np.linspace(1, 0, n),
            "rank": np.arange(n) + part * n,
            "reason_type_id": np.array([1, None, 1, None, 1, None, 1], dtype=object)[:n],
            "reason_key": ["a", "", "ß", "", "b", "", "c"][:n],
        }


@pytest.mark.django_db
def test_store_rows_round_trip_on_any_database():
    user = get_user_model().objects.create(username="u")
    run = Run.objects.create(algorithm="x", status="running")
    assert pipeline.store_rows(Recommendation, recommendation_chunks(run, user)) == 14
    rows = list(Recommendation.objects.filter(run=run).order_by("rank")
                .values_list("item_key", "rank", "reason_type_id", "reason_key", "score"))
    assert [r[0] for r in rows] == ["1", "22", "ünï", "", "x" * 64, "7", "é"] * 2
    assert [r[1] for r in rows] == list(range(14))
    assert [r[2] for r in rows[:7]] == [1, None, 1, None, 1, None, 1]
    assert [r[3] for r in rows[:3]] == ["a", "", "ß"]
    assert rows[0][4] == pytest.approx(1.0) and rows[6][4] == pytest.approx(0.0)
    assert pipeline.store_rows(Recommendation, iter([])) == 0


@pytest.mark.postgres
@pytest.mark.django_db
def test_binary_copy_is_used_on_postgresql_and_checks_its_input():
    assert binary.supports_binary_copy(Recommendation, ["run_id", "item_key", "score"], "default")
    assert not binary.supports_binary_copy(Run, ["params"], "default")  # JSON: not encoded here
    run = Run.objects.create(algorithm="x", status="running")
    columns = {"run_id": np.full(3, run.pk), "item_type_id": np.ones(3, int),
               "item_key": np.array(["a", "b", "c"]), "neighbour_type_id": np.ones(3, int),
               "neighbour_key": np.array(["d", "e", "f"]), "score": np.ones(3),
               "rank": np.arange(3)}
    assert binary.copy_binary(SimilarItem, [columns]) == 3
    with pytest.raises(ValueError, match="columns differ in length"):
        binary.copy_binary(SimilarItem, [{**columns, "rank": np.arange(2)}])
    with pytest.raises(ValueError, match="has no column"):
        binary.copy_binary(SimilarItem, [{"nope": np.arange(2)}])
    with pytest.raises(ValueError, match="non-integer"):
        binary.copy_binary(SimilarItem, [{**columns, "rank": np.array([0.5, 1, 2])}])
    assert SimilarItem.objects.filter(run=run).count() == 3  # failed writes left nothing


@pytest.mark.django_db
def test_binary_copy_refuses_other_databases():
    if connection.vendor == "postgresql":
        pytest.skip("checks the refusal on a database without COPY")
    assert not binary.supports_binary_copy(SimilarItem, ["run_id"], "default")
    with pytest.raises(ValueError, match="PostgreSQL"):
        binary.copy_binary(SimilarItem, [{"run_id": np.arange(2)}])


def test_encoder_groups_rows_by_text_lengths():
    # Decoding the encoded tuples by hand gives the values back, in group order.
    n_rows, data = binary._encode(
        {"a": np.array([1, 2, 3]), "b": np.array(["x", "yy", "z"], dtype=str)},
        ["a", "b"], [">i4", "text"],
    )
    assert n_rows == 3
    decoded, offset = [], 0
    while offset < len(data):
        assert int.from_bytes(data[offset:offset + 2], "big") == 2
        offset += 2
        row = []
        for kind in ("int", "text"):
            length = int.from_bytes(data[offset:offset + 4], "big", signed=True)
            value = data[offset + 4:offset + 4 + length]
            row.append(int.from_bytes(value, "big") if kind == "int" else value.decode())
            offset += 4 + length
        decoded.append(tuple(row))
    assert sorted(decoded) == [(1, "x"), (2, "yy"), (3, "z")]


def packed_lists(run, users):
    """RecommendationList columns whose texts are packed, in a buffer with gaps between them."""
    texts = ['[["1",0.5]]', "", '[["ünï",0.25,3,"é"],["2",0.125]]', "[]"][:len(users)]
    data, starts, ends = b"", [], []
    for text in texts:
        data += b"--"  # bytes of no value: only the bounds count
        starts.append(len(data))
        data += text.encode()
        ends.append(len(data))
    return texts, {
        "run_id": np.full(len(users), run.pk), "user_id": np.array([u.pk for u in users]),
        "item_type_id": np.ones(len(users), dtype=np.int64),
        "items": binary.PackedText(data, np.array(starts), np.array(ends)),
        "length": np.arange(len(users)),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("pieces", [1, 2])
def test_packed_texts_are_stored_as_given_on_any_database(pieces, monkeypatch):
    users = [get_user_model().objects.create(username=f"u{i}") for i in range(4)]
    run = Run.objects.create(algorithm="x", status="running")
    texts, columns = packed_lists(run, users)
    monkeypatch.setattr(binary, "CHUNK_ROWS", 4 // pieces)  # a packed column is sliced too
    assert pipeline.store_rows(RecommendationList, [columns]) == 4
    stored = dict(RecommendationList.objects.filter(run=run).values_list("user_id", "items"))
    assert [stored[user.pk] for user in users] == texts


def test_packed_texts_are_encoded_after_the_fixed_values_or_padded_in_a_mix():
    texts = ["ab", "", "ünï"]
    packed = binary.PackedText(b"ab" + "ünï".encode(), np.array([0, 2, 2]), np.array([2, 2, 7]))
    assert packed.tolist() == texts and packed[1:].tolist() == texts[1:]
    fast = binary._encode({"a": np.array([1, 2, 3]), "t": packed}, ["a", "t"], [">i4", "text"])
    padded = binary._encode({"a": np.array([1, 2, 3]), "t": np.array(texts)}, ["a", "t"],
                            [">i4", "text"])
    row = lambda a, t: (b"\x00\x02" + (4).to_bytes(4, "big") + a.to_bytes(4, "big")  # noqa: E731
                        + len(t.encode()).to_bytes(4, "big") + t.encode())
    assert fast == (3, b"".join(row(a, t) for a, t in zip([1, 2, 3], texts, strict=True)))
    assert padded[0] == 3 and len(padded[1]) == len(fast[1])  # the same rows, grouped
    # With a NULL among the other values, the packed texts are padded like any text.
    mixed = binary._encode({"a": np.array([1, None, 3], dtype=object), "t": packed},
                           ["a", "t"], [">i4", "text"])
    assert mixed[0] == 3 and all(t.encode() in mixed[1] for t in texts)
    with pytest.raises(ValueError, match="within data"):
        binary.PackedText(b"ab", np.array([0]), np.array([3]))


def test_byte_lengths_of_padded_strings():
    array = np.array([b"", b"a", b"abc", "é".encode()], dtype="S3")
    np.testing.assert_array_equal(binary._byte_lengths(array), [0, 1, 3, 2])


def test_binary_copy_stream_must_be_well_formed():
    with pytest.raises(ValueError, match="signature"):
        read._binary_payload(bytearray(b"garbage-garbage-garbage"))
    assert bytes(read._binary_payload(bytearray())) == b""


def test_load_in_small_batches_gives_the_same_arrays(shop, monkeypatch):
    expected = load_interactions(with_timestamps=True)
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL reads with COPY, not batches")
    monkeypatch.setattr(read, "FETCH_BATCH", 2)
    batched = load_interactions(with_timestamps=True)
    for name in ("users", "items", "weights", "seen", "timestamps"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(expected, name))
    np.testing.assert_array_equal(batched.catalog.keys, expected.catalog.keys)


def test_catalog_key_bytes_and_lookup():
    catalog = ItemCatalog(np.array([3, 3, 4]), np.array(["1", "10", "ab"]))
    assert catalog.key_bytes.tolist() == [b"1", b"10", b"ab"]
    assert catalog.column_lookup() == {(3, "1"): 0, (3, "10"): 1, (4, "ab"): 2}
    assert len(ItemCatalog.empty()) == 0 and len(ItemCatalog.empty().key_bytes) == 0


def _sorted_rows(loaded):
    """The loaded rows in a canonical order (parts may come back in any order)."""
    keys = loaded.catalog.keys[loaded.items]
    order = np.lexsort((loaded.timestamps, loaded.weights, keys, loaded.users))
    return (loaded.users[order], keys[order], loaded.weights[order], loaded.seen[order],
            loaded.timestamps[order])


@pytest.mark.postgres
def test_postgresql_reads_in_parallel_parts_give_the_same_rows(transactional_db, settings,
                                                               monkeypatch):
    settings.DJANGO_RECS = pipeline_fixtures.RECS
    shop = pipeline_fixtures.Shop()
    shop.products[3].delete()  # its interactions stay in the table but are not loaded
    whole = load_interactions(with_timestamps=True)
    monkeypatch.setattr(read, "COPY_PART_IDS", 3)  # many parts, two connections at once
    parted = load_interactions(with_timestamps=True)
    assert len(parted) == len(whole) > 0
    for expected, got in zip(_sorted_rows(whole), _sorted_rows(parted)):
        np.testing.assert_array_equal(got, expected)
    assert str(shop.products[3].pk) not in set(whole.catalog.keys.tolist())
    gadget_keys = {gadget.pk.hex for gadget in shop.gadgets}
    assert gadget_keys & set(whole.catalog.keys.tolist())  # UUID keys read too


def test_aggregated_copy_rows_are_checked():
    def array(values, dtype, width):
        header = (1).to_bytes(4, "big") + (0).to_bytes(4, "big") + (20).to_bytes(4, "big")
        header += len(values).to_bytes(4, "big") + (1).to_bytes(4, "big")
        body = b"".join(width.to_bytes(4, "big") + np.array(v, dtype).tobytes() for v in values)
        return len(header + body).to_bytes(4, "big") + header + body

    row = (2).to_bytes(2, "big") + array([1, 2, 3], ">i8", 8) + (-1).to_bytes(4, "big", signed=True)
    users, empty = read._aggregated_arrays(memoryview(row), [">i8", ">f8"])
    assert users.tolist() == [1, 2, 3] and len(empty) == 0
    with pytest.raises(ValueError, match="expected arrays"):
        read._aggregated_arrays(memoryview(row), [">i8"])
    wrong_width = (1).to_bytes(2, "big") + array([1, 2], ">i4", 4)
    with pytest.raises(ValueError, match="wrong"):
        read._aggregated_arrays(memoryview(wrong_width), [">i8"])
