"""The recompute pipeline on the configured database (SQLite by default, PostgreSQL
with DATABASE_URL): load, matrix, runs, atomic swap, failure, bad data."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

import django_recs
from django_recs import pipeline
from django_recs.models import Interaction, PopularItem, Recommendation, Run, SimilarItem
from django_recs.storage.read import load_interactions
from tests.pipeline import pipeline_fixtures
from tests.pipeline.pipeline_fixtures import RECS, interact, served_similar

# These tests read the rows layout's Recommendation rows (the lists layout: test_lists_layout.py).
pytestmark = pytest.mark.usefixtures("rows_layout")

shop = pipeline_fixtures.shop  # fixture


# -- load and matrix -----------------------------------------------------------------


def test_load_reads_users_items_weights_and_seen_flags(shop):
    loaded = load_interactions(with_timestamps=True)
    assert len(loaded) == shop.n_interactions  # no anonymous row, no deleted item
    catalog = loaded.catalog
    items = [(int(ct), key) for ct, key in zip(catalog.content_type_ids, catalog.keys)]
    product_ct = django_recs.items.item_content_type(shop.products[0]).pk
    gadget_ct = django_recs.items.item_content_type(shop.gadgets[0]).pk
    assert (gadget_ct, shop.gadgets[0].pk.hex) in items
    assert {(product_ct, str(p.pk)) for p in shop.products[:6]} <= set(items)
    by_row = {
        (int(u), items[i]): (w, s)
        for u, i, w, s in zip(loaded.users, loaded.items, loaded.weights, loaded.seen)
    }
    assert by_row[(shop.users[0].pk, (product_ct, str(shop.products[0].pk)))] == (5.0, True)
    assert by_row[(shop.users[0].pk, (product_ct, str(shop.products[1].pk)))] == (1.0, False)
    assert by_row[(shop.users[0].pk, (gadget_ct, shop.gadgets[0].pk.hex))] == (1.0, False)
    now = timezone.now().timestamp()
    assert np.all(np.abs(loaded.timestamps - now) < 600)
    assert loaded.users.dtype == np.int64 and loaded.weights.dtype == np.float64


def test_load_skips_deleted_items_and_restricts_to_users(shop):
    shop.products[3].delete()
    loaded = load_interactions()
    keys = set(loaded.catalog.keys)
    assert str(shop.products[3].pk or "") not in keys and len(loaded) == shop.n_interactions - 3
    one = load_interactions(user_ids=[shop.users[7].pk])
    assert len(one) == 2 and set(one.users) == {shop.users[7].pk}
    assert one.timestamps is None


def test_build_matrix_sums_duplicates_and_applies_decay(shop, settings):
    loaded = load_interactions(with_timestamps=True)
    matrix, ignored = pipeline.build_matrix(loaded)
    assert ignored == 0
    assert matrix.n_users == 8 and matrix.n_items == 7  # products 0-5 and gadget 0
    row = int(np.flatnonzero(matrix.user_ids == shop.users[7].pk)[0])
    assert matrix.weights[row].nnz == 1 and matrix.weights[row].data[0] == pytest.approx(2.0)
    # Half-life decay: shift every interaction 10 days back with a 10 day half-life.
    decayed, _ = pipeline.build_matrix(loaded, half_life_days=10,
                                       now=timezone.now().timestamp() + 10 * 86_400)
    np.testing.assert_allclose(decayed.weights.data, matrix.weights.data / 2, rtol=1e-3)


# -- a run from start to end -----------------------------------------------------------


def test_sync_recompute_stores_similar_items_and_personal_lists(shop):
    [run] = django_recs.recompute("similar", sync=True, triggered_by="test")
    assert run.status == "succeeded", run.error
    assert run.is_active and run.progress == 1.0 and run.triggered_by == "test"
    assert set(run.timings) == {*pipeline.STAGES, "cleanup"}
    assert run.rows_read == shop.n_interactions
    stored_similar = SimilarItem.objects.filter(run=run).count()
    stored_recs = Recommendation.objects.filter(run=run).count()
    assert run.rows_written == stored_similar + stored_recs > 0
    assert run.metrics["users"] == 8 and run.metrics["rows_similar"] == stored_similar
    assert run.params["k"] == 5 and run.params["class"] == "django_recs.algorithms.ItemKNN"
    p = shop.products
    neighbours = list(SimilarItem.objects.for_item(p[0]).values_list("neighbour_key", flat=True))
    assert set(neighbours[:2]) == {str(p[1].pk), str(p[2].pk)}
    assert str(p[3].pk) not in neighbours  # never bought together
    # user 7 viewed product 0: recommended its neighbours, with product 0 as the reason.
    recs = list(Recommendation.objects.for_user(shop.users[7], "similar"))
    assert {r.item_key for r in recs[:2]} == {str(p[1].pk), str(p[2].pk)}
    assert all(r.reason_key == str(p[0].pk) for r in recs)
    # Purchases are never recommended back (EXCLUDE_SEEN).
    bought = str(p[0].pk)
    assert not Recommendation.objects.filter(run=run, user=shop.users[0], item_key=bought).exists()


def test_all_configured_algorithms_run(shop):
    runs = django_recs.recompute(sync=True)
    # Popular first (the fallback of every list), then the others as configured.
    assert [r.algorithm for r in runs] == ["popular", "similar", "personal", "broken"]
    assert [r.pk for r in runs] == sorted(r.pk for r in runs)
    status = {r.algorithm: r.status for r in runs}
    assert status == {"similar": "succeeded", "personal": "succeeded", "popular": "succeeded",
                      "broken": "failed"}
    popular = runs[0]
    top = list(PopularItem.objects.filter(run=popular).order_by("rank")
               .values_list("item_key", flat=True))
    assert top[0] == str(shop.products[0].pk)  # 4 purchases (5) + 2 views
    assert not Recommendation.objects.filter(run=popular).exists()  # same list for everyone
    personal = runs[2]
    assert Recommendation.objects.filter(run=personal).exists()
    assert personal.artifacts.get("item_factors")


def test_unknown_algorithm_is_a_value_error_and_writes_nothing(shop):
    with pytest.raises(ValueError, match="Unknown algorithm 'nope'"):
        django_recs.recompute("similar", "nope", sync=True)
    assert not Run.objects.exists()


# -- atomic swap --------------------------------------------------------------------------


def test_readers_see_the_old_rows_until_the_swap_then_only_the_new(shop, monkeypatch):
    [first] = django_recs.recompute("similar", sync=True)
    before = served_similar()
    Interaction.objects.bulk_create(
        [interact(u, shop.products[6], "purchase", 5) for u in shop.users[:4]]
    )
    seen_at_swap = {}
    real_swap = pipeline.swap_active_run

    def swap_and_look(run, **kwargs):
        # Everything is written; the old run is still the one served.
        seen_at_swap["served"] = served_similar()
        seen_at_swap["new_rows"] = SimilarItem.objects.filter(run=run).count()
        seen_at_swap["active"] = pipeline.active_run("similar").pk
        real_swap(run, **kwargs)
        seen_at_swap["after"] = served_similar()

    monkeypatch.setattr(pipeline.runs, "swap_active_run", swap_and_look)
    [second] = django_recs.recompute("similar", sync=True)
    assert second.status == "succeeded"
    assert seen_at_swap["served"] == before and seen_at_swap["active"] == first.pk
    assert seen_at_swap["new_rows"] > 0
    assert seen_at_swap["after"] != before
    assert str(shop.products[6].pk) in {row[0] for row in seen_at_swap["after"]}
    # The old rows are gone, the old run's metadata kept.
    assert not SimilarItem.objects.filter(run=first).exists()
    first.refresh_from_db()
    assert first.status == "succeeded" and not first.is_active


def test_only_the_newest_keep_runs_are_kept(shop, settings):
    settings.DJANGO_RECS = {**RECS, "KEEP_RUNS": 2}
    runs = [django_recs.recompute("popular", sync=True)[0] for _ in range(4)]
    kept = list(Run.objects.filter(algorithm="popular").values_list("pk", flat=True))
    assert sorted(kept) == sorted([runs[-1].pk, runs[-2].pk, runs[-3].pk])  # active + 2
    assert set(PopularItem.objects.values_list("run_id", flat=True)) == {runs[-1].pk}


# -- failure -------------------------------------------------------------------------------


def test_failure_keeps_previous_results_and_removes_partial_rows(shop, monkeypatch):
    [good] = django_recs.recompute("similar", sync=True)
    before = served_similar()
    real_store = pipeline.store_rows
    calls = []

    def store_then_fail(model, chunks, **kwargs):
        calls.append(model)
        if len(calls) == 2:  # similar items are written, then recommendations fail
            raise RuntimeError("disk full")
        return real_store(model, chunks, **kwargs)

    monkeypatch.setattr(pipeline.writing, "store_rows", store_then_fail)
    [bad] = django_recs.recompute("similar", sync=True)
    assert bad.status == "failed" and bad.stage == "write"
    assert "disk full" in bad.error and "RuntimeError" in bad.error
    assert bad.finished_at is not None and not bad.is_active
    assert not SimilarItem.objects.filter(run=bad).exists()  # partial rows removed
    assert not Recommendation.objects.filter(run=bad).exists()
    assert served_similar() == before and pipeline.active_run("similar").pk == good.pk
    # And the next run succeeds.
    monkeypatch.setattr(pipeline.writing, "store_rows", real_store)
    [again] = django_recs.recompute("similar", sync=True)
    assert again.status == "succeeded"


def test_an_algorithm_that_raises_fails_its_run_in_compute(shop):
    [run] = django_recs.recompute("broken", sync=True)
    assert run.status == "failed" and run.stage == "compute"
    assert "ZeroDivisionError: boom in fit" in run.error
    assert set(run.timings) == {"load", "matrix"}


# -- single flight and stale runs ----------------------------------------------------------


def test_a_trigger_while_a_run_is_in_flight_returns_that_run(shop):
    run, created = pipeline.start_run("similar", triggered_by="first")
    assert created and run.status == "pending"
    again, created_again = pipeline.start_run("similar", triggered_by="second")
    assert again.pk == run.pk and not created_again
    assert [r.pk for r in django_recs.recompute("similar", sync=True)] == [run.pk]
    Run.objects.filter(pk=run.pk).update(status="running")
    assert pipeline.start_run("similar")[0].pk == run.pk
    # Another algorithm is independent.
    assert pipeline.start_run("popular")[1] is True


def test_a_run_with_a_stale_heartbeat_is_failed_and_a_new_one_starts(shop, settings):
    settings.DJANGO_RECS = {**RECS, "RUN_HEARTBEAT_TIMEOUT": 60}
    [good] = django_recs.recompute("similar", sync=True)
    before = served_similar()
    dead = Run.objects.create(algorithm="similar", status="running", stage="compute",
                              started_at=timezone.now() - timedelta(minutes=5),
                              heartbeat_at=timezone.now() - timedelta(minutes=2))
    SimilarItem.objects.create(run=dead, item_type_id=1, item_key="x", neighbour_type_id=1,
                               neighbour_key="y", score=1, rank=0)
    [fresh] = django_recs.recompute("similar", sync=True)
    assert fresh.pk != dead.pk and fresh.status == "succeeded"
    dead.refresh_from_db()
    assert dead.status == "failed" and "heartbeat" in dead.error and "'compute'" in dead.error
    assert not SimilarItem.objects.filter(run=dead).exists()
    assert served_similar() == before  # same data, same results
    # A live run (fresh heartbeat) is not touched.
    live = Run.objects.create(algorithm="similar", status="running", heartbeat_at=timezone.now())
    assert pipeline.start_run("similar")[0].pk == live.pk
    assert good.pk != fresh.pk


def test_a_pending_run_executes_once(shop):
    run, _ = pipeline.start_run("similar")
    assert pipeline.execute_run(run.pk).status == "succeeded"
    # A redelivered task finds the run no longer pending and leaves it alone.
    again = pipeline.execute_run(run.pk)
    assert again.status == "succeeded" and again.finished_at == Run.objects.get(pk=run.pk).finished_at


# -- bad data ------------------------------------------------------------------------------


def _all_succeed():
    runs = django_recs.recompute("similar", "personal", "popular", sync=True)
    assert [r.status for r in runs] == ["succeeded"] * 3, [r.error for r in runs]
    return runs


@pytest.mark.django_db
def test_an_empty_interaction_table_gives_succeeded_empty_runs(settings):
    settings.DJANGO_RECS = RECS
    runs = _all_succeed()
    assert all(r.rows_written == 0 and r.rows_read == 0 for r in runs)


@pytest.mark.parametrize("case", ["one user", "one item", "zero weights"])
def test_degenerate_data_gives_succeeded_runs(case, settings, db):
    from .pipeline_fixtures import Shop  # noqa: F401

    settings.DJANGO_RECS = RECS
    from tests.testapp.models import Product

    User = get_user_model()
    users = [User.objects.create(username=f"u{i}") for i in range(3)]
    products = [Product.objects.create(name=f"p{i}") for i in range(3)]
    if case == "one user":
        rows = [interact(users[0], p, "view") for p in products]
    elif case == "one item":
        rows = [interact(u, products[0], "purchase", 5) for u in users]
    else:
        rows = [interact(u, p, "view", 0.0) for u in users for p in products]
    Interaction.objects.bulk_create(rows)
    similar, personal, popular = _all_succeed()
    assert similar.rows_read == len(rows)
    if case == "one item":
        assert not SimilarItem.objects.filter(run=similar).exists()  # no neighbours
        assert PopularItem.objects.filter(run=popular).count() == 1
    if case == "zero weights":
        assert similar.rows_written == personal.rows_written == popular.rows_written == 0


def test_negative_weights_written_around_record_are_ignored(shop):
    Interaction.objects.bulk_create([interact(shop.users[0], shop.products[5], "view", -3.0)])
    [run] = django_recs.recompute("popular", sync=True)
    assert run.status == "succeeded" and run.metrics["ignored_interactions"] == 1


# -- Celery (eager in the unit tests) and the command ---------------------------------------


def test_recompute_enqueues_after_commit_and_returns_pending_runs(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [run] = django_recs.recompute("similar")
    assert run.status == "pending" and len(callbacks) == 1
    assert not SimilarItem.objects.exists()  # nothing ran before the commit
    for callback in callbacks:
        callback()  # the commit: the (eager) task runs
    run.refresh_from_db()
    assert run.status == "succeeded" and run.task_id


def test_recompute_task_starts_a_run_when_called_by_name(shop):
    from django_recs import tasks

    result = tasks.recompute.delay("popular", triggered_by="beat").get()
    run = Run.objects.get(pk=result["run"])
    assert result["status"] == "succeeded" and run.triggered_by == "beat"
    # A second delivery of the same message is a no-op.
    again = tasks.recompute.delay("popular", run_id=run.pk).get()
    assert again == {"run": run.pk, "status": "succeeded"}
    assert Run.objects.filter(algorithm="popular").count() == 1


def test_task_options_are_declared():
    from django.db import OperationalError

    from django_recs import tasks

    for task in (tasks.recompute, tasks.refresh_user):
        assert task.acks_late is True
        assert task.autoretry_for == (OperationalError,)
        assert task.retry_backoff
    assert tasks.recompute.name == "django_recs.recompute"
    assert tasks.refresh_user.name == "django_recs.refresh_user"


def test_soft_time_limit_is_read_from_settings_at_run_time(settings):
    from django_recs import tasks

    settings.DJANGO_RECS = {**RECS, "TASK_SOFT_TIME_LIMIT": 123}
    assert tasks.recompute.soft_time_limit == 123
    settings.DJANGO_RECS = {**RECS, "TASK_SOFT_TIME_LIMIT": None}
    assert tasks.recompute.soft_time_limit is None


def test_command_runs_synchronously_with_a_summary_table(shop, capsys):
    call_command("recs_recompute", "similar", "popular", "--sync")
    out = capsys.readouterr().out
    assert "algorithm" in out and "status" in out and "rows" in out
    assert "[" + "#" * 30 + "]" in out  # the progress bar reached the end
    table = out.split("\n")[out.split("\n").index(next(
        line for line in out.split("\n") if line.startswith("algorithm"))) + 1:]
    lines = [line for line in table if line.strip()]
    assert [line.split()[0] for line in lines] == ["similar", "popular"]
    assert all(line.split()[2] == "succeeded" for line in lines)


def test_command_without_sync_enqueues(shop, capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("recs_recompute", "popular")
    out = capsys.readouterr().out
    assert "popular" in out and "pending" in out
    assert Run.objects.get(algorithm="popular").status == "succeeded"  # eager worker


def test_command_rejects_unknown_algorithm(shop):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Unknown algorithm 'nope'"):
        call_command("recs_recompute", "nope", "--sync")


# -- refresh_user (ALS fold-in) ---------------------------------------------------------------


def test_refresh_user_folds_in_new_history_against_stored_factors(shop):
    [run] = django_recs.recompute("personal", sync=True)
    user = shop.users[7]  # viewed product 0 only
    old = list(Recommendation.objects.for_user(user).values_list("item_key", flat=True))
    assert old
    newly_bought = shop.products[3]
    Interaction.objects.bulk_create([interact(user, newly_bought, "purchase", 5),
                                     interact(user, shop.products[4], "purchase", 5)])
    from django_recs import tasks

    written = tasks.refresh_user.delay(user.pk).get()
    rows = list(Recommendation.objects.for_user(user))
    assert written == len(rows) > 0
    keys = [r.item_key for r in rows]
    assert str(newly_bought.pk) not in keys  # purchases are now excluded
    assert all(r.run_id == run.pk for r in rows)
    assert {r.reason_key for r in rows} <= {str(shop.products[0].pk), str(newly_bought.pk),
                                             str(shop.products[4].pk), ""}
    # Other users' rows are untouched; a second call is idempotent.
    others = Recommendation.objects.filter(run=run).exclude(user=user).count()
    assert tasks.refresh_user.delay(user.pk).get() == written
    assert Recommendation.objects.filter(run=run).exclude(user=user).count() == others


def test_refresh_user_without_factors_does_nothing(shop):
    from django_recs.pipeline.foldin import refresh_user

    assert refresh_user(shop.users[0].pk, "personal") == 0  # never ran
    django_recs.recompute("similar", sync=True)
    assert refresh_user(shop.users[0].pk, "similar") == 0  # not a factorisation


# -- system checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recs", "code", "text"),
    [
        ({"ALGORITHMS": {"x": {"class": "shop.algorithms.Missing"}}}, "E031", "cannot import"),
        ({"ALGORITHMS": {"x": {"class": "django_recs.models.Run"}}}, "E031", "not a subclass"),
        ({"ALGORITHMS": {"x": {"class": "django_recs.algorithms.ItemKNN", "kk": 3}}}, "E032",
         "unknown parameter"),
        ({"ALGORITHMS": {"x": {"class": "django_recs.algorithms.ALS", "factors": 0}}}, "E032",
         "factors"),
        ({"ALGORITHMS": {"x": "django_recs.algorithms.ALS"}}, "E030", "must be a dict"),
        ({"ALGORITHMS": ["similar"]}, "E030", "must be a dict"),
        ({"RECOMMENDATIONS_PER_USER": 0}, "E033", "RECOMMENDATIONS_PER_USER"),
        ({"RUN_HEARTBEAT_TIMEOUT": "5"}, "E034", "RUN_HEARTBEAT_TIMEOUT"),
        ({"KEEP_RUNS": -1}, "E035", "KEEP_RUNS"),
        ({"TASK_SOFT_TIME_LIMIT": 0}, "E036", "TASK_SOFT_TIME_LIMIT"),
        ({"HALF_LIFE_DAYS": 0}, "E037", "HALF_LIFE_DAYS"),
    ],
)
def test_checks_report_bad_pipeline_configuration(settings, recs, code, text):
    from django.core import checks

    settings.DJANGO_RECS = {**RECS, **recs}
    messages = [m for m in checks.run_checks() if m.id == f"django_recs.{code}"]
    assert messages and text in messages[0].msg and messages[0].hint


def test_default_configuration_passes_the_pipeline_checks(settings):
    from django.core import checks

    settings.DJANGO_RECS = RECS
    assert not [m for m in checks.run_checks() if m.id.startswith("django_recs.E03")]


def test_progress_follows_the_stages_in_order(shop):
    seen = []
    [run] = django_recs.recompute("similar", sync=True,
                                  on_progress=lambda name, stage, f: seen.append((name, stage, f)))
    stages = [stage for _, stage, _ in seen]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == list(
        pipeline.STAGES)
    assert {name for name, _, _ in seen} == {"similar"}
    compute = [f for _, stage, f in seen if stage == "compute"]
    assert compute == sorted(compute) and compute[-1] == 1.0
    tracker = pipeline.RunTracker(run, using="default")
    tracker.current_stage, tracker.fraction = "compute", 0.5
    assert tracker.overall == pytest.approx(0.1 + 0.05 + 0.55 / 2)
