"""The "lists" layout: one RecommendationList row per user, written, served, erased, migrated."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.checks import run_checks

import django_recs
from django_recs import kernels
from django_recs.kernels._reference import lists as reference
from django_recs.models import Recommendation, RecommendationList, Run
from tests.pipeline import pipeline_fixtures
from tests.pipeline.pipeline_fixtures import RECS, interact

shop = pipeline_fixtures.shop  # fixture


# -- the encoder ------------------------------------------------------------------------------


def fragments(n_items, type_id=7):
    items = [f',["{i}",'.encode() for i in range(n_items)]
    reasons = [f',{type_id},"{i}"]'.encode() for i in range(n_items)] + [b"]"]
    return items, reasons


def decoded(buffer, offsets):
    return [json.loads(buffer[offsets[u]:offsets[u + 1]].tobytes()) for u in range(len(offsets) - 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encoded_lists_hold_the_entries_in_order_with_their_reasons(dtype):
    rng = np.random.default_rng(3)
    recommended = rng.integers(0, 40, (60, 9))
    recommended[0] = -1  # nobody
    recommended[1, 4:] = -1  # padding
    scores = (rng.standard_normal((60, 9)) * 10.0 ** rng.integers(-30, 30, (60, 9))).astype(dtype)
    scores[2, 0] = 0.0
    reasons = rng.integers(-1, 40, (60, 9))
    items, why = fragments(40)
    buffer, offsets, lengths = kernels.encode_lists(recommended, scores, items, why,
                                                    reasons=reasons, num_threads=2)
    lists = decoded(buffer, offsets)
    assert lists[0] == [] and lengths[0] == 0 and lengths[1] == 4
    for u, entries in enumerate(lists):
        valid = np.flatnonzero(recommended[u] >= 0)
        assert [int(e[0]) for e in entries] == recommended[u, valid].tolist()
        np.testing.assert_allclose([e[1] for e in entries], scores[u, valid].astype(np.float64),
                                   rtol=5e-7, atol=1e-99)
        for entry, k in zip(entries, valid, strict=True):
            if reasons[u, k] >= 0:
                assert entry[2:] == [7, str(reasons[u, k])]
            else:
                assert len(entry) == 2
    # The compiled kernel writes the reference's bytes.
    expected = reference.encode_lists(recommended, scores, reasons, np.ones(40, np.uint8),
                                      items, why)
    assert buffer.tobytes() == expected[0].tobytes()
    np.testing.assert_array_equal(offsets, expected[1])


def test_encoded_lists_keep_only_the_kept_items_and_edge_scores():
    recommended = np.array([[0, 1, 2], [2, -1, 1]])
    scores = np.array([[np.nan, -1e-120, 9.9999999e99], [1e300, 0.5, -0.25]])
    items, why = fragments(3)
    buffer, offsets, lengths = kernels.encode_lists(recommended, scores, items, why,
                                                    keep=np.array([True, False, True]))
    assert decoded(buffer, offsets) == [[["0", 0.0], ["2", 9.999999e99]], [["2", 9.999999e99]]]
    assert lengths.tolist() == [2, 1]


def test_encode_lists_refuses_mismatched_input():
    items, why = fragments(3)
    with pytest.raises(ValueError, match="scores has shape"):
        kernels.encode_lists(np.zeros((2, 3)), np.zeros((2, 2)), items, why)
    with pytest.raises(ValueError, match="reason_fragments needs 4"):
        kernels.encode_lists(np.zeros((2, 3)), np.zeros((2, 3)), items, why[:-1])
    with pytest.raises(ValueError, match="starts with the comma"):
        kernels.encode_lists(np.zeros((2, 3)), np.zeros((2, 3)), [b"x"] * 3, why)
    with pytest.raises(ValueError, match="one flag per item"):
        kernels.encode_lists(np.zeros((2, 3)), np.zeros((2, 3)), items, why, keep=[1])


def test_interleaved_rows_are_each_head_then_its_text():
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
    starts = np.sort(rng.integers(0, 500, 40))
    ends = np.minimum(starts + rng.integers(0, 30, 40), 500)
    ends[3] = starts[3]  # an empty text
    heads = rng.integers(0, 256, (40, 6), dtype=np.uint8)
    joined = kernels.interleave_rows(heads, data, starts, ends)
    expected = b"".join(heads[i].tobytes() + data[starts[i]:ends[i]] for i in range(40))
    assert joined == expected
    assert reference.interleave_rows(heads, np.frombuffer(data, np.uint8), starts, ends) == expected
    assert kernels.interleave_rows(np.zeros((0, 6), np.uint8), b"", [], []) == b""


def test_interleave_rows_refuses_texts_outside_the_data():
    heads = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="must lie within data"):
        kernels.interleave_rows(heads, b"abc", [0, 2], [1, 4])
    with pytest.raises(ValueError, match="must lie within data"):
        kernels.interleave_rows(heads, b"abc", [2, 0], [1, 1])
    with pytest.raises(ValueError, match="one entry per row"):
        kernels.interleave_rows(heads, b"abc", [0], [1])
    with pytest.raises(ValueError, match="must be 2-D"):
        kernels.interleave_rows(np.zeros(3, np.uint8), b"abc", [0], [1])


# -- a run, in both layouts -------------------------------------------------------------------


def with_layout(settings, layout, **extra):
    settings.DJANGO_RECS = {**RECS, "RECOMMENDATION_LAYOUT": layout, **extra}


def stored_lists(run):
    return {(row.user_id, row.item_type_id): row.entries
            for row in RecommendationList.objects.filter(run=run)}


def stored_rows(run):
    lists = {}
    for row in Recommendation.objects.filter(run=run).order_by("user_id", "item_type_id", "rank"):
        lists.setdefault((row.user_id, row.item_type_id), []).append(
            (row.item_key, row.score, row.reason_type_id, row.reason_key or None))
    return lists


def same_lists(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert [(e[0], e[2], e[3]) for e in a[key]] == [(e[0], e[2], e[3]) for e in b[key]]
        np.testing.assert_allclose([e[1] for e in a[key]], [e[1] for e in b[key]], rtol=1e-6)


@pytest.mark.parametrize("algorithm", ["similar", "personal"])
def test_a_run_stores_one_list_per_user_equal_to_the_rows_layout(shop, settings, algorithm):
    with_layout(settings, "rows")
    [rows_run] = django_recs.recompute(algorithm, sync=True)
    as_rows = stored_rows(rows_run)
    with_layout(settings, "lists")
    [run] = django_recs.recompute(algorithm, sync=True)
    assert run.status == "succeeded", run.error
    as_lists = stored_lists(run)
    same_lists(as_lists, as_rows)
    assert not Recommendation.objects.exists()  # the rows run's rows went with its swap
    # One row per user and item model, counted as such.
    assert run.metrics["rows_recommendations"] == RecommendationList.objects.filter(run=run).count()
    assert run.metrics["rows_recommendations"] == len(as_lists) < sum(map(len, as_lists.values()))
    if algorithm == "similar":  # ItemKNN explains: user 7 viewed product 0
        p = shop.products
        from django.contrib.contenttypes.models import ContentType

        products = ContentType.objects.get_for_model(type(p[0])).pk
        entries = as_lists[(shop.users[7].pk, products)]
        assert entries and all(e[3] == str(p[0].pk) for e in entries)


def test_serving_reads_a_list_in_one_statement_as_from_rows(shop, settings,
                                                            django_assert_num_queries):
    user = shop.users[7]
    served = {}
    for layout in ("rows", "lists"):
        with_layout(settings, layout)
        django_recs.recompute("similar", sync=True)
        with django_assert_num_queries(1):
            items = list(django_recs.recommended_for(user, 2, algorithm="similar"))
        served[layout] = [(p.pk, round(p.recs_score, 5), getattr(p.recs_reason, "pk", None))
                          for p in items]
    assert served["lists"] == served["rows"] and served["lists"]
    # Exclusions and the queryset= scope apply to the list's entries in SQL.
    first = served["lists"][0][0]
    from tests.testapp.models import Product

    excluded = django_recs.recommended_for(user, 3, algorithm="similar", exclude=[first])
    assert first not in [p.pk for p in excluded]
    scoped = django_recs.recommended_for(user, 3, algorithm="similar",
                                         queryset=Product.objects.exclude(pk=first))
    assert first not in [p.pk for p in scoped]


def test_refresh_user_replaces_the_user_s_list(shop, settings):
    with_layout(settings, "lists")
    [run] = django_recs.recompute("personal", sync=True)
    user = shop.users[7]
    others = {k: v for k, v in stored_lists(run).items() if k[0] != user.pk}
    from django_recs.models import Interaction

    Interaction.objects.bulk_create([interact(user, shop.products[3], "purchase", 5)])
    from django_recs.pipeline.foldin import refresh_user

    written = refresh_user(user.pk)
    [row] = RecommendationList.objects.filter(run=run, user=user)
    assert written == row.length == len(row.entries) > 0
    assert str(shop.products[3].pk) not in [e[0] for e in row.entries]
    assert {k: v for k, v in stored_lists(run).items() if k[0] != user.pk} == others


def test_forgetting_a_user_or_an_item_rewrites_the_lists(shop, settings):
    with_layout(settings, "lists")
    [run] = django_recs.recompute("similar", sync=True)
    p, u = shop.products, shop.users
    assert RecommendationList.objects.filter(user=u[7]).exists()
    django_recs.forget_user(u[7])
    assert not RecommendationList.objects.filter(user=u[7]).exists()
    # Product 0 explains others' lists and is in some: it leaves them all.
    named = str(p[0].pk)
    assert any(e[0] == named or e[3] == named for v in stored_lists(run).values() for e in v)
    p[0].delete()
    lists = stored_lists(run)
    assert lists and not any(e[0] == named or e[3] == named for v in lists.values() for e in v)
    assert all(row.length == len(row.entries) for row in RecommendationList.objects.all())


def test_a_forgotten_user_s_list_goes_with_the_swap(shop, settings):
    from django_recs.models import ForgottenUser
    from django_recs.pipeline.erasure import purge_forgotten_users

    with_layout(settings, "lists")
    [run] = django_recs.recompute("similar", sync=True)
    ForgottenUser.objects.create(user=shop.users[0])
    assert purge_forgotten_users(run) == 2  # their products and their gadgets
    assert not RecommendationList.objects.filter(user=shop.users[0]).exists()
    assert RecommendationList.objects.filter(run=run).exists()


def test_a_layout_that_does_not_exist_is_a_system_check_error(settings):
    settings.DJANGO_RECS = {**RECS, "RECOMMENDATION_LAYOUT": "columns"}
    errors = [e for e in run_checks() if e.id == "django_recs.E140"]
    assert len(errors) == 1 and "'columns'" in errors[0].msg


# -- the migration ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_stored_rows_to_lists_and_back(settings):
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    settings.DJANGO_RECS = RECS
    before = [("django_recs", "0012_experiments")]
    after = [("django_recs", "0013_compact_lists")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        OldRun = apps.get_model("django_recs", "Run")
        OldRecommendation = apps.get_model("django_recs", "Recommendation")
        user = get_user_model().objects.create(username="migrated")
        type_id = ContentType.objects.get(app_label="testapp", model="product").pk
        run = OldRun.objects.create(algorithm="personal", status="succeeded", is_active=True)
        rows = [("12", 0.9, type_id, "3"), ("7", 0.5, None, ""), ("30", 0.25, type_id, "3")]
        OldRecommendation.objects.bulk_create([
            OldRecommendation(run_id=run.pk, user_id=user.pk, item_type_id=type_id, item_key=key,
                              score=score, rank=rank, reason_type_id=why_type, reason_key=why)
            for rank, (key, score, why_type, why) in enumerate(rows)
        ])
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        [row] = RecommendationList.objects.all()
        assert (row.run_id, row.user_id, row.item_type_id, row.length) == (run.pk, user.pk,
                                                                             type_id, 3)
        assert row.entries == [("12", 0.9, type_id, "3"), ("7", 0.5, None, None),
                               ("30", 0.25, type_id, "3")]
        assert not Recommendation.objects.exists()
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        apps = executor.loader.project_state(before).apps
        back = apps.get_model("django_recs", "Recommendation").objects.order_by("rank")
        assert [(r.item_key, r.score, r.reason_type_id, r.reason_key) for r in back] == rows
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        Run.objects.all().delete()
        Recommendation.objects.all().delete()
        RecommendationList.objects.all().delete()
        get_user_model().objects.filter(username="migrated").delete()
