"""The example shop's A/B experiment in a real headless Chromium.

``manage.py demo`` starts an experiment on the basket page's "Complete your
basket" list (placement ``basket-for-you``): a third of the visitors each see
their recommendations ("personal", the control), the bestsellers
("popular") or no list ("hold-out"). Here:

1. new visitors (fresh browsers) put a product in their basket until one of
   each variant is found; each sees its variant's list (the hold-out none),
   and the impression records the experiment, the variant and the unit;
2. reloading the page keeps each visitor's variant and list;
3. each logs in as a customer and keeps their variant (their account takes
   the visitor's unit); on a second device, logged in, the same variant;
4. a click on an item of the list is recorded against its experiment and
   variant;
5. staff open the experiment's results in the admin: each variant's
   visitors as the impressions count them.

And the worked example of docs/experiments.md holds on the demo shop.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from .conftest import ARTIFACTS, DEMO_OUTPUT, MANAGE, ROOT, log_in, shop_json

pytestmark = pytest.mark.browser

PLACEMENT = "basket-for-you"
VIEWPORT = {"width": 1280, "height": 1000}


def _basket_list(page) -> list[dict] | None:
    """The items of the basket page's list (name, href, source, reason); None: no list shown."""
    section = page.locator("#recs-recommended")
    if not section.count():
        return None
    items = section.locator(".recs-item")
    return [{"name": items.nth(i).locator("a").inner_text(),
             "href": items.nth(i).locator("a").get_attribute("href"),
             "source": items.nth(i).get_attribute("data-recs-source"),
             "reason": " ".join(items.nth(i).locator(".reason").all_inner_texts())}
            for i in range(items.count())]


def _names(shown: list[dict] | None) -> list[str] | None:
    return None if shown is None else [item["name"] for item in shown]


def _session_key(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")


def _impressions(env, *, sessions=(), users=(), at_least: int = 1) -> list[dict]:
    """The basket list's impressions of these sessions or users, oldest first.

    Waits for ``at_least`` of them: the shop writes its impressions every second.
    """
    code = f"""
import json
from django.db.models import Q
from django_recs.models import Impression
rows = (Impression.objects.filter(placement={PLACEMENT!r})
        .filter(Q(session_key__in={list(sessions)!r}) | Q(user__username__in={list(users)!r}))
        .order_by("id"))
print(json.dumps([dict(id=str(r.id), session=r.session_key, user=r.user_id, algorithm=r.algorithm,
                       experiment=r.experiment_id, variant=r.variant, unit=r.visitor_unit,
                       items=len(r.items.split(",")) if r.items else 0) for r in rows]))
"""
    for _ in range(60):
        rows = shop_json(env, code)
        if len(rows) >= at_least:
            return rows
        time.sleep(0.5)
    pytest.fail(f"fewer than {at_least} impressions of {sessions or users} were written: {rows}")


def _basket(page, base: str) -> list[dict] | None:
    page.goto(base + "/basket/")
    page.wait_for_selector("h1")
    return _basket_list(page)


def test_the_basket_experiment_splits_visitors_sticky_across_login(shop, browser):
    base, demo_customer, env = shop
    ARTIFACTS.mkdir(exist_ok=True)
    setup = shop_json(env, f"""
import json
from django.contrib.auth import get_user_model
from django_recs.models import Experiment, ExperimentVisitor, Recommendation, RecommendationList
experiment = Experiment.objects.get(status="running", placement_rows__running_placement={PLACEMENT!r})
# Customers with a stored personal list, in either result layout.
with_recs = {{*Recommendation.objects.filter(run__algorithm="personal").values_list("user_id", flat=True),
             *RecommendationList.objects.filter(run__algorithm="personal").values_list("user_id", flat=True)}}
fresh = (get_user_model().objects.filter(username__startswith="customer", pk__in=with_recs)
         .exclude(pk__in=ExperimentVisitor.objects.values("user_id"))
         .exclude(username={demo_customer!r}).order_by("-pk"))
print(json.dumps(dict(id=experiment.pk, name=experiment.name,
                      variants={{v.name: v.algorithm for v in experiment.variants.all()}},
                      customers=list(fresh.values_list("username", flat=True)[:3]))))
""")
    assert setup["variants"] == {"personal": "personal", "popular": "popular", "hold-out": "none"}
    customers = setup["customers"]

    # 1. New visitors put a product in their basket until each variant has one.
    first = browser.new_context(viewport=VIEWPORT).new_page()
    first.goto(base + "/")
    product = first.locator("#products a").first.get_attribute("href")
    first.context.close()
    visitors: dict[str, dict] = {}
    for _ in range(40):
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(base + product)
        page.click("#add-to-basket")
        page.wait_for_selector("#basket")
        shown = _basket_list(page)
        [impression] = _impressions(env, sessions=[_session_key(page)])
        assert impression["experiment"] == setup["id"]
        assert impression["variant"] in setup["variants"] and impression["unit"]
        assert impression["algorithm"] == setup["variants"][impression["variant"]]
        if impression["variant"] in visitors:
            page.context.close()
            continue
        visitors[impression["variant"]] = {"page": page, "shown": shown, "unit": impression["unit"],
                                           "impression": impression}
        if len(visitors) == len(setup["variants"]):
            break
    assert set(visitors) == set(setup["variants"]), "40 visitors, not one in each variant"

    # Each sees its variant's list: none for the hold-out (its impression still logged,
    # empty), the bestsellers for "popular", lists from their basket for "personal".
    assert visitors["hold-out"]["shown"] is None
    assert visitors["hold-out"]["impression"]["items"] == 0
    popular, personal = visitors["popular"]["shown"], visitors["personal"]["shown"]
    assert popular and {item["source"] for item in popular} == {"popular"}, popular
    assert personal and any(item["reason"].startswith("because you looked at")
                            for item in personal), personal
    assert [i["name"] for i in personal] != [i["name"] for i in popular]
    for name in ("popular", "personal"):
        assert visitors[name]["impression"]["items"] == len(visitors[name]["shown"])
        assert product not in [item["href"].split("?")[0] for item in visitors[name]["shown"]]

    # 2. Sticky across page loads: the same list (or none), the same variant and unit.
    for name, visitor in visitors.items():
        page = visitor["page"]
        for _ in range(2):
            assert _names(_basket(page, base)) == _names(visitor["shown"]), name
        rows = _impressions(env, sessions=[_session_key(page)], at_least=3)
        assert {(row["variant"], row["unit"]) for row in rows} == {(name, visitor["unit"])}

    # 3. Sticky across login: each visitor logs in as a customer who has no unit yet,
    # and keeps their variant; the account keeps it on another device.
    assert len(customers) == 3, customers
    for (name, visitor), customer in zip(sorted(visitors.items()), customers, strict=True):
        visitor["customer"] = customer
        page = visitor["page"]
        log_in(page, base, customer)
        shown = _basket(page, base)
        [row] = _impressions(env, users=[customer])
        assert (row["variant"], row["unit"]) == (name, visitor["unit"]), (name, row)
        assert (shown is None) == (name == "hold-out")
        if name == "personal":  # now the customer's own recommendations, from their orders
            assert any(item["source"] == "personal" for item in shown), shown
        if name == "popular":
            assert {item["source"] for item in shown} == {"popular"}
            visitor["logged_in"] = shown
        other = browser.new_context(viewport=VIEWPORT).new_page()
        log_in(other, base, customer)
        assert (_basket(other, base) is None) == (name == "hold-out")
        rows = _impressions(env, users=[customer], at_least=2)
        assert len(rows) == 2
        assert {(row["variant"], row["unit"]) for row in rows} == {(name, visitor["unit"])}
        other.context.close()

    # 4. A click on an item of the list is recorded with its experiment and variant.
    page = visitors["popular"]["page"]
    _basket(page, base)
    link = page.locator("#recs-recommended .recs-item a").first
    assert "recs_click=" in link.get_attribute("href")
    link.click()
    page.wait_for_selector("#product")
    click_code = f"""
import json
from django_recs.models import Click, Impression
clicks = Click.objects.filter(user__username={visitors["popular"]["customer"]!r})
shown = Impression.objects.filter(id__in=clicks.values("impression_id"))
print(json.dumps([[r.placement, r.experiment_id, r.variant] for r in shown]))
"""
    for _ in range(60):
        clicked = shop_json(env, click_code)
        if clicked:
            break
        time.sleep(0.5)
    assert clicked == [[PLACEMENT, setup["id"], "popular"]]

    # 5. Staff read the experiment's results: each variant's visitors as its impressions
    # count them (a visitor in the variant of their first list).
    counted = shop_json(env, f"""
import json
from django_recs.models import Impression
first = {{}}
for unit, variant in (Impression.objects.filter(experiment_id={setup["id"]})
                      .order_by("id").values_list("visitor_unit", "variant")):
    first.setdefault(unit, variant)
print(json.dumps({{name: list(first.values()).count(name) for name in set(first.values())}}))
""")
    staff = browser.new_context(viewport=VIEWPORT).new_page()
    log_in(staff, base, "staff")
    staff.goto(base + "/admin/django_recs/experiment/")
    staff.click(f"text={setup['name']}")
    staff.click("a:text-is('Results')")
    staff.wait_for_selector("#recs-variants")
    staff.screenshot(path=str(ARTIFACTS / "admin_experiment_results.png"), full_page=True)
    assert PLACEMENT in staff.locator("#content-main p").first.inner_text()
    for name in setup["variants"]:
        row = staff.locator(f"#recs-variants tr[data-variant='{name}']")
        visitors_cell = row.locator("td").nth(3).inner_text().strip()
        assert int(visitors_cell) == counted[name] >= 1, (name, visitors_cell, counted)
    clicked_cell = staff.locator("#recs-variants tr[data-variant='popular'] td").nth(6)
    assert not clicked_cell.inner_text().startswith("0.00%")
    assert staff.locator("#recs-verdict").inner_text().strip()


def test_the_worked_example_of_the_docs_holds_on_the_demo_shop(shop):
    base, _, env = shop
    doc = (ROOT / "docs" / "experiments.md").read_text()
    example = doc[doc.index("## A worked example: the example shop"):
                  doc.index("## Who gets which variant")]
    blocks = re.findall(r"```(\w*)\n(.*?)```", example, re.DOTALL)
    # The template tag is the basket page's; the demo prints the line shown.
    tag = next(text for kind, text in blocks if kind == "django").strip()
    basket = ROOT / "example_project" / "shop" / "templates" / "shop" / "basket.html"
    assert tag in basket.read_text()
    printed = next(text for kind, text in blocks if "A/B experiment:" in text).strip()
    assert printed in DEMO_OUTPUT["stdout"]
    # The shell snippet prints a line per variant, then the verdict, as shown.
    snippet = next(text for kind, text in blocks if kind == "python")
    run = subprocess.run([sys.executable, str(MANAGE), "shell", "-c", snippet], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    shown = next(text for kind, text in blocks if "visitors," in text and kind == "")
    pattern = re.compile(r"^ *(personal|popular|hold-out): \d+ visitors, \d+ lists$")
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    lines = lines[next(i for i, line in enumerate(lines) if pattern.match(line)):]  # after the
    # shell's own "objects imported" line
    assert [pattern.match(line)[1] for line in lines[:3]] == ["personal", "popular", "hold-out"]
    assert [pattern.match(line)[1] for line in shown.splitlines()[:3]] == [
        "personal", "popular", "hold-out"]
    assert len(lines) > 3 and lines[3].startswith(("Not enough data yet", "No visitors yet"))
