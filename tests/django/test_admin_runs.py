"""The admin of runs and results: Recompute now, the run page, read-only browsing."""

from __future__ import annotations

import re

import pytest
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

import django_recs
from django_recs.admin import _triggered_message
from django_recs.models import Interaction, Run
from tests.pipeline import pipeline_fixtures
from tests.pipeline.pipeline_fixtures import interact

shop = pipeline_fixtures.shop  # fixture

RECOMPUTE_URL = "admin:django_recs_run_recompute"


def staff(username, *, can_recompute):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    codenames = ["view_run", "view_similaritem", "view_recommendation", "view_popularitem"]
    if can_recompute:
        codenames.append("run_recompute")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="django_recs",
                                                        codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_staff_with_permission_recomputes_and_sees_the_pending_run(shop):
    client = staff("manager", can_recompute=True)
    changelist = client.get(reverse("admin:django_recs_run_changelist"))
    assert changelist.status_code == 200
    assert b"Recompute now" in changelist.content
    response = client.post(reverse(RECOMPUTE_URL), {"algorithm": "similar"})
    run = Run.objects.get()
    assert run.status == "pending" and run.triggered_by == "admin:manager"
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:django_recs_run_change", args=[run.pk])
    page = client.get(response["Location"])
    assert f"run <a href=\"{response['Location']}\">#{run.pk}</a> is pending".encode() in page.content
    assert b"data-recs-refresh" in page.content  # follows the run while in flight
    # A second click while it is pending returns the same run.
    client.post(reverse(RECOMPUTE_URL), {"algorithm": "similar"})
    assert Run.objects.count() == 1


@pytest.mark.parametrize(("algorithm", "message"), [
    # The admin's message list capitalises the first letter.
    ("popular", '<li class="success">Popular run <a href="{url}">#{pk}</a> succeeded.</li>'),
    ("broken", '<li class="error">Broken run <a href="{url}">#{pk}</a> failed: '
               "ZeroDivisionError: boom in fit</li>"),
])
def test_recompute_now_says_how_an_in_process_run_ended(algorithm, message, transactional_db,
                                                         shop):
    client = staff("manager", can_recompute=True)
    response = client.post(reverse(RECOMPUTE_URL), {"algorithm": algorithm}, follow=True)
    run = Run.objects.get()
    url = reverse("admin:django_recs_run_change", args=[run.pk])
    assert message.format(url=url, pk=run.pk) in response.content.decode()


@pytest.mark.parametrize(("status", "error", "text", "level"), [
    ("pending", "", "similar run <a href=\"{url}\">#{pk}</a> is pending.", messages.SUCCESS),
    ("running", "", "similar run <a href=\"{url}\">#{pk}</a> is running.", messages.SUCCESS),
    ("succeeded", "", "similar run <a href=\"{url}\">#{pk}</a> succeeded.", messages.SUCCESS),
    ("failed", "ValueError: no data\n\nStage: load\n\nTraceback ...",
     "similar run <a href=\"{url}\">#{pk}</a> failed: ValueError: no data", messages.ERROR),
])
def test_run_messages_read_naturally(db, status, error, text, level):
    run = Run.objects.create(algorithm="similar", status=status, error=error)
    url = reverse("admin:django_recs_run_change", args=[run.pk])
    assert _triggered_message(run) == (text.format(url=url, pk=run.pk), level)


def test_recompute_now_enqueues_the_task_on_commit(shop, django_capture_on_commit_callbacks):
    client = staff("manager", can_recompute=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(reverse(RECOMPUTE_URL), {"algorithm": "popular"})
    assert len(callbacks) == 1
    run = Run.objects.get()
    assert run.status == "succeeded"  # the eager task ran on commit


def test_all_algorithms_when_none_is_chosen(shop):
    client = staff("manager", can_recompute=True)
    response = client.post(reverse(RECOMPUTE_URL), {"algorithm": ""})
    assert response["Location"] == reverse("admin:django_recs_run_changelist")
    assert Run.objects.count() == len(django_recs.conf.recs_settings.ALGORITHMS)


def test_staff_without_the_permission_get_403_and_no_button(shop):
    client = staff("clerk", can_recompute=False)
    changelist = client.get(reverse("admin:django_recs_run_changelist"))
    assert changelist.status_code == 200 and b"Recompute now" not in changelist.content
    assert client.post(reverse(RECOMPUTE_URL), {"algorithm": "similar"}).status_code == 403
    assert not Run.objects.exists()


def test_recompute_needs_post_and_csrf(shop):
    client = staff("manager", can_recompute=True)
    assert client.get(reverse(RECOMPUTE_URL)).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.get(username="manager"))
    assert strict.post(reverse(RECOMPUTE_URL), {"algorithm": "similar"}).status_code == 403
    page = strict.get(reverse("admin:django_recs_run_changelist"))
    token = page.cookies["csrftoken"].value
    response = strict.post(reverse(RECOMPUTE_URL), {"algorithm": "similar",
                                                    "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and Run.objects.count() == 1


def test_unknown_algorithm_is_reported_not_raised(shop):
    client = staff("manager", can_recompute=True)
    response = client.post(reverse(RECOMPUTE_URL), {"algorithm": "nope"}, follow=True)
    assert b"Unknown algorithm" in response.content and not Run.objects.exists()


def test_anonymous_visitors_are_sent_to_login(shop):
    response = Client().post(reverse(RECOMPUTE_URL), {"algorithm": "similar"})
    assert response.status_code == 302 and "login" in response["Location"]
    assert not Run.objects.exists()


def test_run_page_shows_timings_metrics_and_progress(shop):
    [run] = django_recs.recompute("similar", sync=True)
    client = staff("manager", can_recompute=False)
    page = client.get(reverse("admin:django_recs_run_change", args=[run.pk]))
    content = page.content.decode()
    for stage in ("load", "matrix", "compute", "write", "swap"):
        assert f"<th>{stage}</th>" in content
    assert "<th>users</th>" in content and "<th>rows_similar</th>" in content
    assert '<progress class="recs-progress" value="1.000"' in content
    assert "data-recs-refresh" not in content  # finished: no reloading
    changelist = client.get(reverse("admin:django_recs_run_changelist")).content.decode()
    assert "succeeded" in changelist and str(run.rows_written) in changelist


def test_run_page_of_a_failed_run_shows_the_error(shop):
    [run] = django_recs.recompute("broken", sync=True)
    client = staff("manager", can_recompute=False)
    content = client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
    assert "ZeroDivisionError: boom in fit" in content


def test_results_are_read_only(shop):
    django_recs.recompute("similar", sync=True)
    client = staff("manager", can_recompute=True)
    for model in ("similaritem", "recommendation", "popularitem", "run"):
        assert client.get(reverse(f"admin:django_recs_{model}_add")).status_code == 403


@pytest.mark.parametrize("model", ["similaritem", "recommendation"])
def test_results_show_item_names_without_a_query_per_row(model, shop, django_assert_max_num_queries,
                                                          monkeypatch,
                                                          settings):
    # The Recommendation admin browses the rows layout's rows.
    monkeypatch.setattr("django_recs.pipeline.writing.recommendation_layout", lambda: "rows")
    django_recs.recompute("similar", sync=True)
    client = staff("manager", can_recompute=False)
    url = reverse(f"admin:django_recs_{model}_changelist")
    with django_assert_max_num_queries(15) as small:
        page = client.get(url)
    content = page.content.decode()
    assert "product 1" in content and "product 0" in content
    # Ten times more rows: the same number of queries.
    Interaction.objects.bulk_create(
        [interact(user, product, "view") for user in shop.users for product in shop.products]
        + [interact(user, shop.gadgets[1], "view") for user in shop.users[:3]]
    )
    django_recs.recompute("similar", sync=True)
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get(url)
    assert "gadget 1" in page.content.decode()


def test_results_list_only_active_runs_by_default(shop):
    [first] = django_recs.recompute("popular", sync=True)
    [second] = django_recs.recompute("popular", sync=True)
    client = staff("manager", can_recompute=False)
    content = client.get(reverse("admin:django_recs_popularitem_changelist")).content.decode()
    assert f"popular #{second.pk}" in content and f"popular #{first.pk}<" not in content


def test_an_inactive_run_does_not_look_like_an_error(shop):
    [old] = django_recs.recompute("popular", sync=True)
    [new] = django_recs.recompute("popular", sync=True)
    client = staff("manager", can_recompute=False)
    changelist = client.get(reverse("admin:django_recs_run_changelist")).content.decode()
    assert "icon-no.svg" not in changelist
    assert changelist.count('src="/static/admin/img/icon-yes.svg" alt="active"') == 1
    for run, served in ((old, "no"), (new, "yes: its rows are the ones served")):
        page = client.get(reverse("admin:django_recs_run_change", args=[run.pk])).content.decode()
        assert "icon-no.svg" not in page
        field = re.search(r'field-served_display.*?<div class="readonly">(.*?)</div>', page, re.S)
        assert field.group(1).strip().endswith(served)
    # Still sortable and filterable by activity.
    by_active = client.get(reverse("admin:django_recs_run_changelist") + "?o=-3").content.decode()
    assert by_active.index(f"popular #{new.pk}<") < by_active.index(f"popular #{old.pk}<")
    active_only = client.get(reverse("admin:django_recs_run_changelist") + "?is_active__exact=0")
    assert f"popular #{old.pk}<" in active_only.content.decode()
    assert f"popular #{new.pk}<" not in active_only.content.decode()
