"""The roll-up: incremental daily counts equal a brute-force count of the raw rows."""

from __future__ import annotations

import datetime
import random
from collections import defaultdict

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from django_recs import tasks
from django_recs.feedback import roll_up
from django_recs.feedback import rollup as rollup_module
from django_recs.models import (
    Click,
    Conversion,
    DailyFeedback,
    FeedbackRollup,
    Impression,
    Interaction,
    Run,
)
from tests.feedback.conftest import FEEDBACK
from tests.feedback.feedback_data import bought, clicked, later, shown
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db

NOW = datetime.timedelta(0)
WINDOW = datetime.timedelta(days=7)
SUMS = ("impressions", "clicked", "clicks", "conversions", "revenue", "revenue_squares")


@pytest.fixture
def products():
    return [Product.objects.create(name=f"p{i}") for i in range(6)]


def day_key(impression) -> tuple:
    return (timezone.localdate(impression.shown_at), impression.placement, impression.algorithm,
            impression.run_id)


def brute_force() -> dict[tuple, dict]:
    """The daily numbers, counted from every raw row by their definitions."""
    impressions = {i.id: i for i in Impression.objects.all()}
    clicks = list(Click.objects.order_by("pk"))
    expected = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    for impression in impressions.values():
        expected[day_key(impression)]["impressions"] += 1
    first_clicks = set()
    for click in clicks:
        impression = impressions.get(click.impression_id)
        if impression is None:
            continue
        expected[day_key(impression)]["clicks"] += 1
        if click.impression_id not in first_clicks:
            first_clicks.add(click.impression_id)
            expected[day_key(impression)]["clicked"] += 1
    converted, revenue = set(), defaultdict(float)
    for purchase in Interaction.objects.filter(event="purchase").order_by("pk"):
        candidates = [
            c for c in clicks
            if (c.item_type_id, c.item_key) == (purchase.item_type_id, purchase.item_key)
            and ((purchase.user_id is not None and c.user_id == purchase.user_id)
                 or (c.user_id is None and purchase.session_key
                     and c.session_key == purchase.session_key))
            and purchase.timestamp - WINDOW <= c.clicked_at <= purchase.timestamp
        ]
        if not candidates:
            continue
        best = max(candidates, key=lambda c: (c.clicked_at, c.pk))
        impression = impressions.get(best.impression_id)
        if impression is None:
            continue
        row = expected[day_key(impression)]
        if best.pk not in converted:
            converted.add(best.pk)
            row["conversions"] += 1
        row["revenue"] += purchase.value or 0.0
        revenue[impression.id] += purchase.value or 0.0
    for impression_id, total in revenue.items():
        expected[day_key(impressions[impression_id])]["revenue_squares"] += total * total
    return dict(expected)


def rolled_up() -> dict[tuple, dict]:
    return {
        (row.day, row.placement, row.algorithm, row.run_id): {name: getattr(row, name)
                                                             for name in SUMS}
        for row in DailyFeedback.objects.all()
    }


def assert_same(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, numbers in expected.items():
        for name in SUMS:
            assert actual[key][name] == pytest.approx(numbers[name]), (key, name)


def make_traffic(products, *, start: float, end: float, seed: int, earlier=()):
    """Impressions shown in [start, end) days, clicks (also on ``earlier`` impressions) and purchases.

    Every click, purchase and impression of this call is timestamped in [start, end).
    Returns the impressions made.
    """
    rng = random.Random(seed)
    users = list(User.objects.order_by("pk"))
    runs = list(Run.objects.order_by("pk"))
    sessions = [f"{c}" * 32 for c in "abc"]

    def moment(low: float, high: float) -> datetime.datetime:
        return later(days=rng.uniform(low, high))

    made = []
    for _ in range(120):
        visitor = rng.choice([{"user": rng.choice(users)}, {"session_key": rng.choice(sessions)}])
        items = rng.sample(products, 4)
        impression = shown(moment(start, end - 0.2), items,
                           placement=rng.choice(["home", "product", "basket"]),
                           algorithm=rng.choice(["personal", "similar"]),
                           run=rng.choice(runs + [None]), **visitor)
        made.append((impression, items, visitor))
    pool = list(earlier) + made
    clicks = []
    for impression, items, visitor in rng.sample(pool, len(pool) // 3):
        taken = set(Click.objects.filter(impression_id=impression.id)
                    .values_list("position", flat=True))
        free = [position for position in range(4) if position not in taken]
        for position in rng.sample(free, min(len(free), rng.choice([1, 1, 2]))):
            who = visitor if rng.random() < 0.9 else {"user": rng.choice(users)}
            at = max(moment(start, end - 0.1), impression.shown_at)
            clicks.append((clicked(impression, position, items[position], at, **who), who))
    # A click whose impression was never written (lost with its process).
    lost = shown(moment(start, end - 0.2), products[:2], placement="lost")
    clicked(lost, 0, products[0], moment(start, end - 0.1), user=users[0])
    lost.delete()
    for click, who in clicks:
        if rng.random() < 0.6:
            item = Product.objects.get(pk=int(click.item_key))
            at = min(click.clicked_at + datetime.timedelta(days=rng.choice([0.01, 0.5, 3, 9])),
                     later(days=end - 0.01))
            bought(item, at, value=rng.choice([None, 2.5, 10.0, 99.0]), **who)
    for _ in range(15):  # purchases nobody clicked for
        bought(rng.choice(products), moment(start, end - 0.01), user=rng.choice(users))
    return made


@pytest.fixture
def shop(products):
    for name in ("u1", "u2", "u3", "u4"):
        User.objects.create_user(name)
    Run.objects.create(algorithm="personal", status="succeeded")
    Run.objects.create(algorithm="similar", status="succeeded")
    return products


@override_settings(DJANGO_RECS=FEEDBACK)
def test_the_roll_up_equals_a_brute_force_count(shop, monkeypatch):
    monkeypatch.setattr(rollup_module, "CHUNK_ROWS", 7)  # many chunks, and their seams
    make_traffic(shop, start=0, end=4, seed=1)
    result = roll_up(settle=NOW, now=later(days=40), retention=False)
    assert result.impressions == Impression.objects.count()
    assert result.clicks_without_impression == 1
    assert_same(rolled_up(), brute_force())
    assert sum(row.clicked for row in DailyFeedback.objects.all()) > 10
    assert sum(row.conversions for row in DailyFeedback.objects.all()) > 5


@override_settings(DJANGO_RECS=FEEDBACK)
def test_rolling_up_in_steps_equals_rolling_up_once(shop, monkeypatch):
    monkeypatch.setattr(rollup_module, "CHUNK_ROWS", 11)
    first = make_traffic(shop, start=0, end=3, seed=2)
    roll_up(settle=NOW, now=later(days=3), retention=False)
    # Clicks on the lists of the first part, and purchases of what was clicked then.
    make_traffic(shop, start=3, end=6, seed=3, earlier=[
        (impression, [Product.objects.get(pk=int(k)) for k in impression.item_keys], visitor)
        for impression, _, visitor in first
    ])
    roll_up(settle=NOW, now=later(days=40), retention=False)
    assert_same(rolled_up(), brute_force())
    before = rolled_up()
    assert roll_up(settle=NOW, now=later(days=41), retention=False).impressions == 0
    assert rolled_up() == before


@override_settings(DJANGO_RECS=FEEDBACK)
def test_a_roll_up_that_fails_midway_counts_every_chunk_once(shop, monkeypatch):
    monkeypatch.setattr(rollup_module, "CHUNK_ROWS", 5)
    make_traffic(shop, start=0, end=4, seed=4)
    add = rollup_module.add_to_days
    calls = {"n": 0}

    def failing(deltas, using):
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("the worker was killed")
        add(deltas, using)

    monkeypatch.setattr(rollup_module, "add_to_days", failing)
    with pytest.raises(RuntimeError):
        roll_up(settle=NOW, now=later(days=40), retention=False)
    assert 0 < sum(row.impressions for row in DailyFeedback.objects.all()) \
        < Impression.objects.count()
    monkeypatch.setattr(rollup_module, "add_to_days", add)
    roll_up(settle=NOW, now=later(days=40), retention=False)
    assert_same(rolled_up(), brute_force())


@override_settings(DJANGO_RECS=FEEDBACK, TIME_ZONE="America/New_York")
def test_days_are_the_shops_time_zone_in_sql_and_in_python(shop):
    # Shown at 04:00 UTC on 3 March: 23:00 on the 2nd in New York; clicked an hour later.
    impression = shown(later(hours=19), shop[:3])
    clicked(impression, 0, shop[0], later(hours=20))
    roll_up(settle=NOW, now=later(days=2), retention=False)
    row = DailyFeedback.objects.get()
    assert row.day == datetime.date(2026, 3, 2)
    assert (row.impressions, row.clicks) == (1, 1)
    assert_same(rolled_up(), brute_force())


@override_settings(DJANGO_RECS=FEEDBACK)
def test_rows_younger_than_settle_wait_for_the_next_roll_up(shop):
    alice = User.objects.get(username="u1")
    old = shown(later(), shop[:3], user=alice)
    new = shown(later(minutes=58), shop[:3], user=alice)
    clicked(old, 0, shop[0], later(minutes=30), user=alice)
    clicked(new, 0, shop[0], later(minutes=59), user=alice)
    result = roll_up(settle=datetime.timedelta(minutes=5), now=later(hours=1), retention=False)
    assert (result.impressions, result.clicks) == (1, 1)
    result = roll_up(settle=datetime.timedelta(minutes=5), now=later(hours=2), retention=False)
    assert (result.impressions, result.clicks) == (1, 1)
    assert DailyFeedback.objects.get().clicked == 2


@override_settings(DJANGO_RECS=FEEDBACK)
def test_impressions_of_deleted_runs_and_items_are_counted_not_crashed_on(shop):
    run = Run.objects.create(algorithm="personal", status="succeeded")
    alice = User.objects.get(username="u1")
    impression = shown(later(), shop[:3], run=run, user=alice)
    clicked(impression, 1, shop[1], later(minutes=1), user=alice)
    bought(shop[1], later(minutes=2), user=alice, value=3.0)
    run_id = run.pk
    run.delete()
    shop[0].delete()  # shown in the list; its own interactions go with it
    roll_up(settle=NOW, now=later(days=1), retention=False)
    row = DailyFeedback.objects.get()
    assert (row.run_id, row.impressions, row.clicks, row.conversions) == (run_id, 1, 1, 1)
    assert not Run.objects.filter(pk=run_id).exists()


@override_settings(DJANGO_RECS={**FEEDBACK, "IMPRESSION_RETENTION_DAYS": 30})
def test_retention_deletes_rolled_up_raw_rows_and_keeps_the_roll_ups(shop):
    alice = User.objects.get(username="u1")
    old = shown(later(), shop[:3], user=alice)
    clicked(old, 0, shop[0], later(minutes=1), user=alice)
    bought(shop[0], later(minutes=2), user=alice, value=5.0)
    recent = shown(later(days=25), shop[:3], user=alice)
    clicked(recent, 0, shop[0], later(days=25, minutes=1), user=alice)
    result = roll_up(settle=NOW, now=later(days=31))
    assert result.deleted == {"django_recs.Conversion": 1, "django_recs.Click": 1,
                              "django_recs.Impression": 1}
    assert list(Impression.objects.values_list("id", flat=True)) == [recent.id]
    assert Click.objects.get().impression_id == recent.id and not Conversion.objects.exists()
    assert sum(row.impressions for row in DailyFeedback.objects.all()) == 2
    assert DailyFeedback.objects.get(day=later().date()).revenue == 5.0


@override_settings(DJANGO_RECS={**FEEDBACK, "IMPRESSION_RETENTION_DAYS": 30})
def test_retention_never_deletes_what_is_not_rolled_up(shop):
    shown(later(), shop[:3])
    roll_up(settle=NOW, now=later(minutes=-1))  # nothing settled yet
    assert FeedbackRollup.objects.get().impressions_until is not None
    roll_up(settle=datetime.timedelta(days=40), now=later(days=35))
    assert Impression.objects.count() == 1
    assert not DailyFeedback.objects.exists()


@override_settings(DJANGO_RECS=FEEDBACK)
def test_the_task_and_the_command_roll_up(shop):
    alice = User.objects.get(username="u1")
    shown(timezone.now() - datetime.timedelta(minutes=1), shop[:3], user=alice)
    outcome = tasks.roll_up_feedback.delay().get()
    assert outcome["impressions"] == 0  # younger than the 5 minutes to settle
    outcome = tasks.roll_up_feedback.delay(settle_seconds=0).get()
    assert outcome["impressions"] == 1
    shown(timezone.now(), shop[:3], user=alice)
    from io import StringIO

    out = StringIO()
    call_command("recs_rollup", "--settle", "0", stdout=out)
    assert "Rolled up 1 impressions, 0 clicks and 0 conversions." in out.getvalue()


def test_the_command_refuses_a_negative_settle():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="settle"):
        call_command("recs_rollup", "--settle", "-1")
