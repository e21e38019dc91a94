"""PostgreSQL: each run's result rows live in a partition of their own."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

import django_recs
from django_recs import pipeline
from django_recs.models import PopularItem, Recommendation, RecommendationList, Run, SimilarItem
from django_recs.storage.partitions import (
    drop_run_partition,
    is_partitioned,
    partition_name,
    run_partition_exists,
    write_run_partition,
)
from tests.pipeline.pipeline_fixtures import RECS, Shop
from tests.pipeline.test_pipeline_concurrency import in_threads

pytestmark = [pytest.mark.postgres]

RESULT_MODELS = (SimilarItem, Recommendation, RecommendationList, PopularItem)


@pytest.fixture
def shop_committed(transactional_db, settings):
    settings.DJANGO_RECS = RECS
    return Shop()


def attached_partitions(model) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)", [model._meta.db_table])
        return {name for (name,) in cursor.fetchall()}


def similar_rows(run_id, n, start=0):
    ct = SimilarItem._meta.get_field("item_type").remote_field.model.objects.get_for_model(Run)
    return {
        "run_id": np.full(n, run_id, dtype=np.int64),
        "item_type_id": np.full(n, ct.pk, dtype=np.int64),
        "item_key": np.array([str(start + i) for i in range(n)]),
        "neighbour_type_id": np.full(n, ct.pk, dtype=np.int64),
        "neighbour_key": np.array([str(start + i + 1) for i in range(n)]),
        "score": np.linspace(1, 0, n),
        "rank": np.zeros(n, dtype=np.int64),
    }


@pytest.mark.django_db
def test_migration_partitions_every_result_table():
    assert connection.vendor == "postgresql"
    for model in RESULT_MODELS:
        assert is_partitioned(model, "default")
        assert f"{model._meta.db_table}_default" in attached_partitions(model)
    # Rows written through the ORM land in the default partition and read back.
    run = Run.objects.create(algorithm="orm", status="succeeded")
    similar = SimilarItem.objects.create(run=run, item_type_id=1, item_key="1",
                                         neighbour_type_id=1, neighbour_key="2", score=0.5, rank=0)
    assert SimilarItem.objects.get(pk=similar.pk).neighbour_key == "2"


@pytest.mark.usefixtures("rows_layout")  # Recommendation partitions: the rows layout's
def test_a_run_writes_its_own_partition_and_the_next_run_drops_it(shop_committed):
    [first] = django_recs.recompute("similar", sync=True)
    assert first.status == "succeeded"
    part = partition_name(SimilarItem, first.pk)
    assert part in attached_partitions(SimilarItem)
    assert partition_name(Recommendation, first.pk) in attached_partitions(Recommendation)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{part}"')
        in_partition = cursor.fetchone()[0]
        cursor.execute(f'SELECT count(*) FROM "{part}" WHERE run_id <> %s', [first.pk])
        assert cursor.fetchone()[0] == 0
    assert in_partition == SimilarItem.objects.filter(run=first).count() > 0
    assert in_partition == first.metrics["rows_similar"]
    # The partition has the parent's lookup index and its own primary key.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [part])
        definitions = " ".join(row[0] for row in cursor.fetchall())
    assert "(run_id, item_type_id, item_key, rank)" in definitions
    assert "PRIMARY KEY" in definitions.upper() or "_pkey" in definitions

    [second] = django_recs.recompute("similar", sync=True)
    assert second.status == "succeeded"
    assert not run_partition_exists(SimilarItem, first.pk, "default")
    assert not run_partition_exists(Recommendation, first.pk, "default")
    assert run_partition_exists(SimilarItem, second.pk, "default")
    assert SimilarItem.objects.filter(run=first).count() == 0
    assert SimilarItem.objects.filter(run=second).count() == second.metrics["rows_similar"]


def test_a_runs_lists_have_their_own_partition_and_the_next_run_drops_it(shop_committed):
    [first] = django_recs.recompute("similar", sync=True)
    part = partition_name(RecommendationList, first.pk)
    assert part in attached_partitions(RecommendationList)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{part}"')
        in_partition = cursor.fetchone()[0]
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [part])
        definitions = " ".join(row[0] for row in cursor.fetchall())
    assert in_partition == RecommendationList.objects.filter(run=first).count() > 0
    assert "(run_id, user_id, item_type_id)" in definitions
    user = shop_committed.users[0]
    served = [item.pk for item in django_recs.recommended_for(user, algorithm="similar")]
    assert served
    [second] = django_recs.recompute("similar", sync=True)
    assert not run_partition_exists(RecommendationList, first.pk, "default")
    assert run_partition_exists(RecommendationList, second.pk, "default")
    assert RecommendationList.objects.filter(run=first).count() == 0
    assert [item.pk for item in django_recs.recommended_for(user, algorithm="similar")] == served


def test_a_failed_run_leaves_no_partition_and_the_old_rows_served(shop_committed, monkeypatch):
    [good] = django_recs.recompute("similar", sync=True)
    served = list(SimilarItem.objects.filter(run=good).values_list("item_key", "neighbour_key"))

    def broken_swap(run, **kwargs):
        raise RuntimeError("swap failed")

    monkeypatch.setattr(pipeline.runs, "swap_active_run", broken_swap)
    [bad] = django_recs.recompute("similar", sync=True)
    assert bad.status == "failed" and "swap failed" in bad.error
    assert not run_partition_exists(SimilarItem, bad.pk, "default")
    assert not run_partition_exists(Recommendation, bad.pk, "default")
    assert not run_partition_exists(RecommendationList, bad.pk, "default")
    assert pipeline.active_run("similar").pk == good.pk
    assert list(SimilarItem.objects.filter(run=good).values_list(
        "item_key", "neighbour_key")) == served


def test_rows_already_in_the_default_partition_are_appended_to(shop_committed):
    run = Run.objects.create(algorithm="manual", status="running")
    SimilarItem.objects.create(run=run, item_type_id=1, item_key="a", neighbour_type_id=1,
                               neighbour_key="b", score=1.0, rank=0)
    assert write_run_partition(SimilarItem, run.pk, [similar_rows(run.pk, 10)],
                               using="default") is None
    assert pipeline.store_rows(SimilarItem, [similar_rows(run.pk, 10)]) == 10
    assert not run_partition_exists(SimilarItem, run.pk, "default")
    assert SimilarItem.objects.filter(run=run).count() == 11
    assert pipeline.delete_run_rows([run.pk]) == 11
    assert SimilarItem.objects.filter(run=run).count() == 0


def test_a_partition_refuses_rows_of_another_run(shop_committed):
    run = Run.objects.create(algorithm="manual", status="running")
    second = similar_rows(run.pk + 1000, 4)
    with pytest.raises(Exception, match="run"):
        pipeline.store_rows(SimilarItem, [similar_rows(run.pk, 4), second])
    assert not run_partition_exists(SimilarItem, run.pk, "default")
    assert SimilarItem.objects.filter(run_id__in=[run.pk, run.pk + 1000]).count() == 0


def test_concurrent_writers_of_one_run_share_its_partition(shop_committed):
    run = Run.objects.create(algorithm="manual", status="running")

    def write(i):
        return pipeline.store_rows(SimilarItem, [similar_rows(run.pk, 500, start=i * 1000)])

    results, errors = in_threads(write, 4)
    assert not errors
    assert results == [500] * 4
    assert run_partition_exists(SimilarItem, run.pk, "default")
    assert SimilarItem.objects.filter(run=run).count() == 2000
    assert SimilarItem.objects.filter(run=run).values("item_key").distinct().count() == 2000
    assert pipeline.delete_run_rows([run.pk]) == 2000
    assert not run_partition_exists(SimilarItem, run.pk, "default")


def test_a_partition_created_ahead_takes_writers_side_by_side(shop_committed):
    from django_recs.storage.partitions import create_run_partition

    run = Run.objects.create(algorithm="manual", status="running")
    assert create_run_partition(SimilarItem, run.pk, using="default") is True
    assert create_run_partition(SimilarItem, run.pk, using="default") is True  # idempotent
    assert partition_name(SimilarItem, run.pk) in attached_partitions(SimilarItem)
    results, errors = in_threads(
        lambda i: pipeline.store_rows(SimilarItem, [similar_rows(run.pk, 300, start=i * 1000)]), 3)
    assert not errors and results == [300] * 3
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{partition_name(SimilarItem, run.pk)}"')
        assert cursor.fetchone()[0] == 900
    # A run whose rows already sit in the default partition gets none.
    other = Run.objects.create(algorithm="manual-2", status="running")
    pipeline.store_rows(SimilarItem, [similar_rows(other.pk, 2)])  # the first writer: own partition
    third = Run.objects.create(algorithm="manual-3", status="running")
    SimilarItem.objects.create(run=third, item_type_id=1, item_key="a", neighbour_type_id=1,
                               neighbour_key="b", score=1.0, rank=0)
    assert create_run_partition(SimilarItem, third.pk, using="default") is False


def key_collations() -> dict[tuple[str, str], str | None]:
    """(table, column) -> collation name of the result tables' key columns (their partitions too)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attname, coll.collname FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "LEFT JOIN pg_collation coll ON coll.oid = a.attcollation "
            "WHERE c.relname LIKE 'django_recs_%%' AND a.attname LIKE '%%_key' "
            "AND a.attname <> 'session_key' AND a.attnum > 0 AND c.relkind IN ('r', 'p') "
            "AND (c.relname LIKE 'django_recs_similaritem%%' "
            "OR c.relname LIKE 'django_recs_recommendation%%' "
            "OR c.relname LIKE 'django_recs_popularitem%%')")
        return {(table, column): collation for table, column, collation in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_the_result_keys_compare_bytewise_and_the_migration_reverses_with_rows():
    from django.db.migrations.executor import MigrationExecutor

    before = [("django_recs", "0015_partition_recommendation_lists")]
    run = Run.objects.create(algorithm="similar", status="succeeded", is_active=True)
    write_run_partition(SimilarItem, run.pk, [similar_rows(run.pk, 50)], using="default")
    keys = key_collations()
    assert (f"django_recs_similaritem_run{run.pk}", "neighbour_key") in keys
    assert set(keys.values()) == {"C"}, keys
    try:
        MigrationExecutor(connection).migrate(before)
        assert set(key_collations().values()) == {"default"}
        assert SimilarItem.objects.filter(run=run).count() == 50
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert set(key_collations().values()) == {"C"}
    # A key still finds its rows, compared with a value of the default collation.
    assert list(SimilarItem.objects.filter(run=run, item_key="7").values_list(
        "neighbour_key", flat=True)) == ["8"]
    drop_run_partition(SimilarItem, run.pk, using="default")
    Run.objects.all().delete()


def test_a_runs_neighbours_and_lists_are_written_side_by_side(shop_committed, monkeypatch):
    import threading

    from django_recs.pipeline import writing

    writers = {}
    store_rows = writing.store_rows

    def recording(model, chunks, **kwargs):
        writers[model.__name__] = threading.current_thread().name
        return store_rows(model, chunks, **kwargs)

    monkeypatch.setattr(writing, "store_rows", recording)
    [run] = django_recs.recompute("similar", sync=True)
    assert run.status == "succeeded"
    assert writers["SimilarItem"].startswith("recs-write")
    assert writers["RecommendationList"] == threading.main_thread().name
    assert run_partition_exists(SimilarItem, run.pk, "default")
    assert run_partition_exists(RecommendationList, run.pk, "default")
    assert RecommendationList.objects.filter(run=run).count() == run.metrics["rows_recommendations"]


@pytest.mark.parametrize("broken", ["SimilarItem", "RecommendationList"])
def test_a_failed_write_on_either_side_fails_the_run_and_leaves_no_partition(
        shop_committed, monkeypatch, broken):
    from django_recs.pipeline import writing

    [good] = django_recs.recompute("similar", sync=True)
    store_rows = writing.store_rows

    def failing(model, chunks, **kwargs):
        if model.__name__ == broken:
            list(chunks)  # the other side is under way meanwhile
            raise RuntimeError(f"{broken} write failed")
        return store_rows(model, chunks, **kwargs)

    monkeypatch.setattr(writing, "store_rows", failing)
    [bad] = django_recs.recompute("similar", sync=True)
    assert bad.status == "failed" and f"{broken} write failed" in bad.error
    for model in (SimilarItem, RecommendationList):
        assert not run_partition_exists(model, bad.pk, "default")
        assert not model.objects.filter(run=bad).exists()
    assert pipeline.active_run("similar").pk == good.pk
