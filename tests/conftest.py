"""Service markers: tests that need PostgreSQL, MySQL/MariaDB or Redis.

On a developer's machine without the service they skip with a message that
names it; with CI=true they fail instead, so a CI run can never pass by
skipping what it was meant to test.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(reason)


def _port_open(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), 2):
            return True
    except OSError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            _missing(
                "needs PostgreSQL: run with DATABASE_URL=postgres://127.0.0.1:5432/test "
                f"(the configured database is {connection.vendor})"
            )
    if item.get_closest_marker("mysql"):
        from django.db import connection

        if connection.vendor != "mysql":
            _missing(
                "needs MySQL/MariaDB: run with DATABASE_URL=mysql://root@127.0.0.1:3306/test "
                f"(the configured database is {connection.vendor})"
            )
    if item.get_closest_marker("server_db"):
        from django.db import connection

        if connection.vendor not in {"postgresql", "mysql"}:
            _missing(
                "needs PostgreSQL or MySQL/MariaDB: run with DATABASE_URL=postgres://... or "
                f"mysql://... (the configured database is {connection.vendor})"
            )
    if item.get_closest_marker("redis"):
        from django.conf import settings

        if not _port_open(settings.REDIS_URL, 6379):
            _missing(f"needs Redis at {settings.REDIS_URL} (set REDIS_URL)")
