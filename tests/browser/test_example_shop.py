"""The example shop in a real headless Chromium, as a visitor and as staff.

The shop of ``manage.py demo`` in a fresh SQLite file (conftest.py), driven
by Playwright in Debian's chromium:

1. a product page shows its similar items;
2. a demo customer logs in and sees personal recommendations with reasons;
3. the customer follows the link of the first recommended item (a click on
   the home page's list) and buys it;
4. staff press "Recompute now" in the admin and wait for the run; the runs
   and interactions changelists fit a 1280 px window;
5. the feedback is rolled up (``manage.py recs_rollup``) and the admin's
   report shows the click and the conversion on the home page's placement;
6. the bought item is no longer among that customer's recommendations;
7. on the pages of the products recommended to them, no list shows the
   page's own product;
8. the cached product page (one copy for every visitor, cache_page) gets its
   lists from the JSON endpoints through django_recs/recs.js, for an
   anonymous visitor and a customer alike, and a click on a listed item is
   recorded through the beacon.

Screenshots of the product page and the admin run page go to
test-artifacts/ (beside the repository's README).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from .conftest import ARTIFACTS, MANAGE
from .conftest import log_in as _log_in
from .conftest import log_out as _log_out

pytestmark = pytest.mark.browser


def _recommended(page) -> list[tuple[str, str]]:
    """(name, reason) of the "Recommended for you" items on the current page."""
    items = page.locator("#recs-recommended .recs-item")
    return [
        (
            items.nth(i).locator("a").inner_text(),
            items.nth(i).locator(".reason").all_inner_texts()[0]
            if items.nth(i).locator(".reason").count() else "",
        )
        for i in range(items.count())
    ]


def _changelist_fits(page) -> bool:
    """Whether the changelist's table shows whole: not cut by its box nor the window."""
    return page.evaluate("""() => {
        const table = document.querySelector('#result_list');
        const box = table.closest('.results') || document.body;
        const visible = Math.min(window.innerWidth, box.getBoundingClientRect().right);
        return table.getBoundingClientRect().right <= visible + 1;
    }""")


def _list_links(page, kind: str) -> list[str]:
    """The paths the items of a list (#recs-similar, #recs-recommended) link to."""
    links = page.locator(f"#recs-{kind} .recs-item a")
    return [links.nth(i).get_attribute("href") for i in range(links.count())]


def _report_cells(page, placement: str) -> dict[str, str]:
    """The clicks and conversions of ``placement``'s row of the admin's feedback report."""
    row = page.locator("#recs-report .recs-report-row", has=page.locator(f"th:text-is('{placement}')"))
    return {"clicks": row.locator(".recs-clicks").inner_text().strip(),
            "conversions": row.locator(".recs-conversions").inner_text().strip()}


def test_visitor_buys_a_recommendation_and_recompute_drops_it(shop, page):
    base, customer, env = shop
    ARTIFACTS.mkdir(exist_ok=True)

    # 1. A product page shows its similar items.
    page.goto(base + "/")
    page.locator("#products a").first.click()
    page.wait_for_selector("#product")
    similar = page.locator("#recs-similar .recs-item")
    assert page.locator("#recs-similar h2").inner_text() == "Customers who bought this also bought"
    assert similar.count() >= 3
    product_name = page.locator("#product h1").inner_text()
    assert product_name not in similar.all_inner_texts()
    page.screenshot(path=str(ARTIFACTS / "product_page.png"), full_page=True)

    # 2. A demo customer sees personal recommendations, with reasons.
    _log_in(page, base, customer)
    page.goto(base + "/")
    recommended = _recommended(page)
    assert len(recommended) == 8, recommended
    assert all(reason.startswith("because you bought ") for _, reason in recommended[:3])
    bought = recommended[0][0]

    # 3. They follow its link (a click on the home page's list) and buy it.
    link = page.locator("#recs-recommended .recs-item a").first
    assert "recs_click=" in link.get_attribute("href")
    link.click()
    page.wait_for_selector("#product")
    assert page.locator("#product h1").inner_text() == bought
    page.click("#add-to-basket")
    page.wait_for_selector("#basket")
    page.click("#checkout")
    page.wait_for_selector("#thanks")
    assert bought in page.locator("#order-lines").inner_text()
    _log_out(page)

    # 4. Staff recompute the personal recommendations from the admin.
    _log_in(page, base, "staff")
    page.goto(base + "/admin/django_recs/run/")
    page.select_option("select[name=algorithm]", "personal")
    page.click("text=Recompute now")
    page.wait_for_url(re.compile(r"/admin/django_recs/run/\d+/change/"))
    for _ in range(240):  # the run page refreshes itself while the run is in flight
        status = page.locator(".field-status .readonly").inner_text().strip()
        if status in {"succeeded", "failed"}:
            break
        time.sleep(0.5)
        page.reload()
    assert status == "succeeded", page.locator(".field-error_display").inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin_run_page.png"), full_page=True)
    assert page.viewport_size["width"] == 1280
    for changelist in ("run", "interaction"):
        page.goto(f"{base}/admin/django_recs/{changelist}/")
        page.screenshot(path=str(ARTIFACTS / f"admin_{changelist}_changelist.png"))
        assert _changelist_fits(page), f"the {changelist} changelist is cut at 1280 px"

    # 5. The roll-up counts the click and the purchase it led to, on the home page's list.
    rollup = subprocess.run(
        [sys.executable, str(MANAGE), "recs_rollup", "--settle", "0"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert rollup.returncode == 0, rollup.stdout + rollup.stderr
    assert "and 1 conversions." in rollup.stdout, rollup.stdout
    page.goto(base + "/admin/django_recs/dailyfeedback/?period=7&by=placement")
    page.wait_for_selector("#recs-report")
    assert _report_cells(page, "home-for-you") == {"clicks": "1", "conversions": "1"}
    page.screenshot(path=str(ARTIFACTS / "admin_feedback_report.png"), full_page=True)
    _log_out(page)

    # 6. The bought item is gone from the customer's recommendations.
    _log_in(page, base, customer)
    page.goto(base + "/")
    after = [name for name, _ in _recommended(page)]
    assert len(after) == 8
    assert bought not in after

    # 7. Their recommended products' pages: the customer's stored recommendations
    # hold each page's product, yet no list on that page shows it.
    for path in _list_links(page, "recommended"):
        page.goto(base + path)
        page.wait_for_selector("#product")
        similar, recommended = _list_links(page, "similar"), _list_links(page, "recommended")
        assert len(similar) >= 3 and len(recommended) == 6, (path, similar, recommended)
        assert path not in similar + recommended, (path, similar, recommended)
        assert not set(similar) & set(recommended)


def _filled(page, box: str) -> list[tuple[str, str, str]]:
    """(name, href, reason) of the items recs.js put into ``box`` once it is filled."""
    page.wait_for_selector(f"{box}[data-recs-state=filled]", timeout=15_000)
    items = page.locator(f"{box} .recs-item")
    return [
        (items.nth(i).locator("a").inner_text(), items.nth(i).locator("a").get_attribute("href"),
         items.nth(i).locator(".reason").inner_text() if items.nth(i).locator(".reason").count()
         else "")
        for i in range(items.count())
    ]


def _clicks_on(env, impression: str) -> int:
    """Clicks recorded on ``impression`` (read by the shop's own manage.py)."""
    count = subprocess.run(
        [sys.executable, str(MANAGE), "shell", "-c",
         "from django_recs.models import Click; "
         f"print(Click.objects.filter(impression_id='{impression}').count())"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert count.returncode == 0, count.stdout + count.stderr
    return int(count.stdout.split()[-1])


def test_a_cached_page_gets_its_lists_from_the_api_and_records_a_click(shop, page):
    base, customer, env = shop
    page.goto(base + "/")
    product_path = page.locator("#products a").first.get_attribute("href")
    cached = base + product_path + "cached/"

    # An anonymous visitor: both lists, the page's product in neither.
    first = page.goto(cached)
    similar = _filled(page, "#recs-js-similar")
    anonymous = _filled(page, "#recs-js-recommended")
    assert len(similar) >= 3 and len(anonymous) == 6, (similar, anonymous)
    assert product_path not in [href for _, href, _ in similar + anonymous]
    assert not any(reason for _, _, reason in anonymous)  # popular items: no reasons

    # A customer gets the same cached page, and their own recommendations in it.
    _log_in(page, base, customer)
    again = page.goto(cached)
    assert again.headers.get("expires") == first.headers.get("expires")  # one cached copy
    personal = _filled(page, "#recs-js-recommended")
    assert len(personal) == 6
    assert any(reason for _, _, reason in personal), personal  # "because of" their purchases
    assert [name for name, _, _ in personal] != [name for name, _, _ in anonymous]

    # Following an item of a logged list sends its click token to the beacon.
    impression = page.get_attribute("#recs-js-recommended", "data-recs-impression")
    assert impression
    link = page.locator("#recs-js-recommended .recs-item a").first
    assert link.get_attribute("data-recs-click")
    target = link.get_attribute("href")
    link.click()
    page.wait_for_url(base + target)
    for _ in range(60):
        if _clicks_on(env, impression):
            break
        time.sleep(0.5)
    assert _clicks_on(env, impression) == 1
