"""The example shop served from a fresh SQLite file, and a headless Chromium to visit it.

``manage.py demo --no-serve`` builds the shop once per test session (data,
backfilled purchases, recommendations, the running A/B experiment),
``runserver`` serves it, and Playwright drives Debian's chromium
(/usr/bin/chromium; CHROMIUM overrides).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "example_project" / "manage.py"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
#: What ``manage.py demo --no-serve`` printed when the ``shop`` fixture built the shop.
DEMO_OUTPUT: dict[str, str] = {}


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing browser is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sync_playwright():
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        _missing(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("needs playwright (pip install playwright)")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def shop(tmp_path_factory, sync_playwright):
    """The demo shop served on a free port: (base URL, demo customer username, environment)."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
    directory = tmp_path_factory.mktemp("shop")
    env["EXAMPLE_DB_PATH"] = str(directory / "shop.sqlite3")
    env["EXAMPLE_MEDIA_ROOT"] = str(directory / "media")
    env["EXAMPLE_DEBUG"] = "0"
    setup = subprocess.run(
        [sys.executable, str(MANAGE), "demo", "--no-serve"],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    DEMO_OUTPUT["stdout"] = setup.stdout
    customer = re.search(r"Log in as a customer: (\S+) / demo", setup.stdout)
    assert customer, setup.stdout
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{port}", "--noreload",
         "--insecure"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/", timeout=5)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("runserver exited: " + (server.stdout.read() or ""))
                time.sleep(0.5)
        yield base, customer.group(1), env
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def browser(sync_playwright):
    """A headless Chromium; ``browser.new_context()`` is a new visitor (no cookies)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    return context.new_page()


def log_in(page, base: str, username: str, password: str = "demo") -> None:
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login")
    page.wait_for_selector("#who")


def log_out(page) -> None:
    page.click("header form button")
    page.wait_for_selector("text=Log in")


def shop_json(env, code: str):
    """What ``code`` (Python run by the shop's ``manage.py shell``) prints as JSON, read back."""
    run = subprocess.run([sys.executable, str(MANAGE), "shell", "-c", code],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])
