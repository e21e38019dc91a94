"""The admin's report: numbers with 95% intervals per placement, algorithm and run, and charts."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pytest
from django.utils import timezone

from django_recs.feedback.intervals import mean_interval, wilson_interval
from django_recs.feedback.report import Performance, ReportQuery, grouped, run_performance
from django_recs.models import DailyFeedback, Run

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
REPORT = "/admin/django_recs/dailyfeedback/"


# --- intervals ------------------------------------------------------------------------------


@pytest.mark.parametrize("successes, trials, low, high", [
    # Newcombe (1998), Statistics in Medicine 17: 857-872, table I (Wilson score method).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
@pytest.mark.django_db(False)
def test_wilson_matches_the_published_values(successes, trials, low, high):
    interval = wilson_interval(successes, trials)
    assert interval == pytest.approx((low, high), abs=1e-4)


@pytest.mark.django_db(False)
def test_wilson_of_nothing_and_of_nonsense():
    assert wilson_interval(0, 0) is None
    assert wilson_interval(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


@pytest.mark.django_db(False)
def test_the_mean_interval_is_the_normal_approximation():
    values = np.array([0.0] * 97 + [10.0, 20.0, 35.0])
    low, high = mean_interval(values.sum(), (values ** 2).sum(), len(values))
    half = 1.959963984540054 * values.std(ddof=1) / math.sqrt(len(values))
    assert (low, high) == pytest.approx((max(0.0, values.mean() - half), values.mean() + half))
    assert mean_interval(0.0, 0.0, 0) is None
    assert mean_interval(0.0, 0.0, 50) == (0.0, 0.0)


# --- numbers --------------------------------------------------------------------------------


def day(offset: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=offset)


@pytest.fixture
def runs():
    return (Run.objects.create(algorithm="personal", status="succeeded", is_active=True),
            Run.objects.create(algorithm="similar", status="succeeded", is_active=True))


@pytest.fixture
def rows(runs):
    personal, similar = runs
    make = DailyFeedback.objects.create
    make(day=day(0), placement="home", algorithm="personal", run=personal, impressions=1000,
         clicked=50, clicks=60, conversions=6, revenue=120.0, revenue_squares=4000.0)
    make(day=day(1), placement="home", algorithm="personal", run=personal, impressions=800,
         clicked=30, clicks=30, conversions=3, revenue=30.0, revenue_squares=500.0)
    make(day=day(1), placement="product", algorithm="similar", run=similar, impressions=500,
         clicked=10, clicks=12, conversions=0)
    make(day=day(40), placement="product", algorithm="similar", run=similar, impressions=9999,
         clicked=1, clicks=1)
    make(day=day(2), placement="product", algorithm="similar", run_id=987654, impressions=100,
         clicked=1, clicks=1)


def test_grouped_sums_the_period_per_group(rows):
    query, problems = ReportQuery.from_params({"period": "30", "by": "placement"}, TODAY)
    assert problems == []
    result = {values["placement"]: p for values, p in grouped(query)}
    assert result["home"] == Performance(1800, 80, 90, 9, 150.0, 4500.0)
    assert result["product"].impressions == 600  # the day 40 days ago is outside
    home = result["home"]
    assert home.ctr == pytest.approx(80 / 1800)
    assert home.ctr_interval == wilson_interval(80, 1800)
    assert home.conversion_rate == pytest.approx(9 / 90)
    assert home.rpm == pytest.approx(1000 * 150 / 1800)
    low, high = home.rpm_interval
    assert low < home.rpm < high


def test_a_runs_numbers_over_all_its_days(rows, runs):
    total, per_placement = run_performance(runs[1].pk)
    assert total.impressions == 500 + 9999
    assert [placement for placement, _ in per_placement] == ["product"]
    empty, none = run_performance(424242)
    assert empty.impressions == 0 and empty.ctr is None and none == []


@pytest.mark.parametrize("params, problem", [
    ({"period": "8"}, "Unknown period"),
    ({"period": "-1"}, "Unknown period"),
    ({"by": "colour"}, "Unknown grouping"),
    ({"start": "yesterday"}, "not a date"),
    ({"start": "2026-03-10", "end": "2026-03-01"}, "swapped"),
])
def test_bad_query_strings_fall_back_with_a_message(params, problem):
    query, problems = ReportQuery.from_params(params, TODAY)
    assert any(problem in text for text in problems)
    assert query.start <= query.end


# --- the admin pages ------------------------------------------------------------------------


def test_the_report_page_shows_each_placement_with_its_intervals(admin_client, rows):
    html = admin_client.get(REPORT + "?period=30&by=placement").content.decode()
    assert 'id="recs-report"' in html
    assert "home" in html and "1,800" in html and "4.44%" in html  # 80 / 1800
    low, high = wilson_interval(80, 1800)
    assert f"{100 * low:.2f}–{100 * high:.2f}%" in html
    assert "10.00%" in html  # conversion rate 9 / 90
    assert "83.33" in html   # revenue per 1,000 impressions
    assert html.count("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\"") == 3


def test_the_report_per_run_links_runs_and_marks_deleted_ones(admin_client, rows, runs):
    html = admin_client.get(REPORT + "?by=run").content.decode()
    assert f'/admin/django_recs/run/{runs[0].pk}/change/' in html
    assert "#987654 (deleted)" in html


def test_a_bad_query_string_renders_with_a_warning(admin_client, rows):
    response = admin_client.get(REPORT + "?period=banana&by=<script>&start=x")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Unknown period" in html and "<script>" not in html


def test_the_report_without_roll_ups_says_how_to_get_them(admin_client):
    html = admin_client.get(REPORT).content.decode()
    assert 'id="recs-report-empty"' in html and "recs_rollup" in html


def test_the_report_needs_the_view_permission(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(REPORT).status_code == 403


def test_a_runs_page_shows_its_online_numbers_beside_its_offline_metrics(admin_client, rows, runs):
    personal = runs[0]
    personal.metrics = {"ndcg": 0.1234, "precision": 0.05, "k": 10, "split": "time"}
    personal.save()
    html = admin_client.get(f"/admin/django_recs/run/{personal.pk}/change/").content.decode()
    assert 'id="recs-run-online"' in html
    assert "1,800" in html and "4.44%" in html
    assert "0.1234" in html and "Offline" in html
