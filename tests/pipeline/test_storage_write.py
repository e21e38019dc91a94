"""storage.bulk_insert: columns in, rows out, on SQLite (executemany) and PostgreSQL (COPY)."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from django_recs.models import Interaction, Run, SimilarItem
from django_recs.storage import bulk_insert, bulk_insert_chunks
from tests.testapp.models import Gadget, Product

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc


@pytest.fixture
def product_type():
    return ContentType.objects.get_for_model(Product).pk


def test_numpy_columns_round_trip(product_type):
    users = [User.objects.create(username=f"u{i}").pk for i in range(3)]
    n = 2_500
    rng = np.random.default_rng(0)
    user_ids = np.array(users)[rng.integers(0, 3, n)]
    weights = rng.random(n) * 10
    times = np.datetime64("2011-01-01T00:00:00") + rng.integers(0, 10**8, n).astype(
        "timedelta64[us]"
    )
    keys = rng.integers(0, 10**6, n)
    written = bulk_insert(Interaction, {
        "user_id": user_ids, "item_type_id": np.full(n, product_type), "item_key": keys,
        "event": ["purchase"] * n, "weight": weights, "timestamp": times,
    }, batch_size=1000)
    assert written == n
    stored = list(Interaction.objects.order_by("pk").values_list(
        "user_id", "item_key", "weight", "timestamp", "session_key", "event"))
    assert [row[0] for row in stored] == user_ids.tolist()
    assert [row[1] for row in stored] == [str(k) for k in keys.tolist()]
    assert [row[2] for row in stored] == weights.tolist()  # float64 exactly
    expected_times = [t.replace(tzinfo=UTC) for t in times.astype("datetime64[us]").tolist()]
    assert [row[3] for row in stored] == expected_times
    assert {row[4] for row in stored} == {""}  # the field default
    assert {row[5] for row in stored} == {"purchase"}


def test_python_sequences_nulls_escapes_and_defaults(product_type):
    awkward = ["tab\there", "new\nline", "back\\slash", "carriage\rreturn", "plain", "ünï"]
    before = timezone.now()
    written = bulk_insert(Interaction, {
        "user_id": [None] * 6,
        "session_key": [f"session-{i}" for i in range(6)],
        "item_type_id": [product_type] * 6,
        "item_key": awkward,
        "event": ["view"] * 6,
        "weight": [1, 2.5, Decimal("3.25"), 4, 5, 6],
    })
    assert written == 6
    stored = list(Interaction.objects.order_by("pk").values_list(
        "user_id", "item_key", "weight", "timestamp"))
    assert [row[1] for row in stored] == awkward
    assert [row[2] for row in stored] == [1.0, 2.5, 3.25, 4.0, 5.0, 6.0]
    assert all(row[0] is None for row in stored)
    assert all(before <= row[3] <= timezone.now() for row in stored)  # timezone.now default


def test_aware_and_naive_datetimes(product_type):
    aware = datetime.datetime(2011, 12, 9, 12, 50, tzinfo=datetime.timezone(
        datetime.timedelta(hours=2)))
    naive = datetime.datetime(2011, 12, 9, 12, 50)  # current time zone (UTC here)
    bulk_insert(Interaction, {
        "session_key": ["a", "b"], "item_type_id": [product_type] * 2, "item_key": ["1", "2"],
        "event": ["view"] * 2, "weight": [1.0, 1.0], "timestamp": [aware, naive],
    })
    stored = list(Interaction.objects.order_by("pk").values_list("timestamp", flat=True))
    assert stored == [aware, timezone.make_aware(naive)]


def test_other_models_uuid_bool_decimal_and_foreign_keys():
    ids = [uuid.uuid4() for _ in range(4)]
    assert bulk_insert(Gadget, {"id": ids, "name": ["a", "b", "c", "d"]}) == 4
    assert sorted(Gadget.objects.values_list("id", flat=True)) == sorted(ids)
    assert bulk_insert(Product, {
        "name": ["x", "y", "z"], "in_stock": np.array([True, False, True]),
        "price": [Decimal("1.50"), Decimal("2"), Decimal("0.99")],
    }) == 3
    assert list(Product.objects.order_by("pk").values_list("in_stock", "price")) == [
        (True, Decimal("1.50")), (False, Decimal("2.00")), (True, Decimal("0.99"))]
    run = Run.objects.create(algorithm="similar")
    product_type = ContentType.objects.get_for_model(Product).pk
    n = 100
    assert bulk_insert(SimilarItem, {
        "run_id": np.full(n, run.pk, dtype=np.int64),
        "item_type_id": np.full(n, product_type, dtype=np.int32),
        "item_key": np.arange(n).astype(str),
        "neighbour_type_id": np.full(n, product_type, dtype=np.int32),
        "neighbour_key": np.arange(n)[::-1].astype(str),
        "score": np.linspace(0, 1, n, dtype=np.float32),
        "rank": np.zeros(n, dtype=np.int16),
    }) == n
    stored = list(SimilarItem.objects.order_by("pk").values_list("item_key", "neighbour_key",
                                                                 "score"))
    assert stored[3] == ("3", "96", pytest.approx(float(np.float32(3 / 99)), rel=1e-6))


def test_chunks_stream_into_one_write(product_type):
    def chunks():
        for start in (0, 10, 25):
            n = {0: 10, 10: 15, 25: 5}[start]
            yield {"session_key": [f"s{start + i}" for i in range(n)],
                   "item_type_id": [product_type] * n, "item_key": ["1"] * n,
                   "event": ["view"] * n, "weight": np.ones(n)}
        yield {"session_key": [], "item_type_id": [], "item_key": [], "event": [], "weight": []}

    assert bulk_insert_chunks(Interaction, chunks(), batch_size=7) == 30
    assert Interaction.objects.count() == 30


def test_a_failing_chunk_stream_writes_nothing(product_type):
    def chunks():
        yield {"session_key": ["s1"], "item_type_id": [product_type], "item_key": ["1"],
               "event": ["view"], "weight": [1.0]}
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        bulk_insert_chunks(Interaction, chunks())
    assert Interaction.objects.count() == 0


@pytest.mark.parametrize(("columns", "message"), [
    ({"colour": [1]}, "has no column 'colour'"),
    ({"user": [1]}, "has no column 'user'"),  # attribute names: user_id
    ({"session_key": ["a", "b"], "item_type_id": [1], "item_key": ["1"], "event": ["v"],
      "weight": [1.0]}, "differ in length"),
    ({"session_key": ["a"], "item_type_id": [1], "item_key": ["1"], "event": ["v"]},
     "'weight' of django_recs.Interaction is required"),
    ({"weight": np.ones((2, 2))}, "one-dimensional"),
])
def test_bad_columns_raise_value_error(columns, message):
    with pytest.raises(ValueError, match=message):
        bulk_insert(Interaction, columns)
    assert Interaction.objects.count() == 0


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        bulk_insert(Interaction, {"weight": [1.0]}, batch_size=0)


def test_non_integer_floats_for_an_integer_column_are_refused(product_type):
    with pytest.raises(ValueError, match="non-integer"):
        bulk_insert(Interaction, {"session_key": ["a"], "item_type_id": np.array([1.5]),
                                  "item_key": ["1"], "event": ["v"], "weight": [1.0]})


def test_a_database_error_rolls_the_whole_write_back(product_type):
    # The second batch breaks the check constraint (no user and no session key).
    n = 20
    sessions = ["s"] * 15 + [""] * 5
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(Interaction, {
            "session_key": sessions, "item_type_id": [product_type] * n, "item_key": ["1"] * n,
            "event": ["view"] * n, "weight": [1.0] * n,
        }, batch_size=10)
    assert Interaction.objects.count() == 0


def test_empty_columns_write_nothing():
    assert bulk_insert(Interaction, {"weight": []}) == 0
    assert bulk_insert(Interaction, {}) == 0


@pytest.mark.postgres
def test_postgres_uses_copy(product_type, monkeypatch):
    from django_recs.storage import write

    used = []
    real = write._copy_in
    monkeypatch.setattr(write, "_copy_in", lambda *a: used.append(1) or real(*a))
    assert connection.vendor == "postgresql"
    bulk_insert(Interaction, {"session_key": ["a"], "item_type_id": [product_type],
                              "item_key": ["1"], "event": ["view"], "weight": [1.0]})
    assert used == [1]


def test_a_query_from_the_chunk_iterator_fails_instead_of_hanging(product_type):
    def chunks():
        yield {"session_key": ["s1"], "item_type_id": [product_type], "item_key": ["1"],
               "event": ["view"], "weight": [1.0]}
        Run.objects.filter(pk=0).update(progress=0.5)  # e.g. progress written mid-stream
        yield {"session_key": ["s2"], "item_type_id": [product_type], "item_key": ["1"],
               "event": ["view"], "weight": [1.0]}

    if connection.vendor in {"postgresql", "mysql"}:  # COPY, LOAD DATA: the connection is busy
        with pytest.raises(RuntimeError, match="while bulk_insert_chunks"):
            bulk_insert_chunks(Interaction, chunks())
        assert Interaction.objects.count() == 0
    else:  # batched INSERTs: the connection is free between batches
        assert bulk_insert_chunks(Interaction, chunks()) == 2


def test_repeated_default_behaves_as_a_sequence():
    from django_recs.storage.write import _Repeat

    repeated = _Repeat("", 3)
    assert list(repeated) == ["", "", ""] and len(repeated) == 3
    assert "" in repeated and None not in repeated
    assert repeated[1:] == ["", ""] and repeated[-1] == ""
    with pytest.raises(IndexError):
        repeated[3]


@pytest.mark.mysql
def test_mysql_loads_data_and_falls_back_to_inserts_when_local_infile_is_off(
        product_type, monkeypatch):
    from django_recs.storage import write

    used = []
    real = write.load_data
    monkeypatch.setattr(write, "load_data", lambda *a: used.append(1) or real(*a))
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
    columns = {"session_key": ["a\tb\\c", "d\ne"], "item_type_id": [product_type] * 2,
               "item_key": ["1", "2"], "event": ["view"] * 2, "weight": [1.5, 2.0],
               "timestamp": [when, when]}
    assert bulk_insert(Interaction, columns) == 2
    assert used == [1]
    # Without local_infile in the connection's OPTIONS: multi-row INSERTs, same rows.
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"charset": "utf8mb4"})
    assert bulk_insert(Interaction, columns) == 2
    assert used == [1]
    rows = list(Interaction.objects.order_by("pk").values_list("session_key", "weight",
                                                               "timestamp"))
    assert rows[:2] == rows[2:] == [("a\tb\\c", 1.5, when), ("d\ne", 2.0, when)]
