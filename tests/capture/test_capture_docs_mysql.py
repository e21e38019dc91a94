"""docs/capture.md's MySQL/MariaDB settings: the snippet a shop pastes is what the suite runs with.

The snippet is executed as written; on MySQL/MariaDB its OPTIONS let the bulk
writes use LOAD DATA (tests/pipeline/test_storage_write.py shows the INSERT
fallback when ``local_infile`` is off).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection

from django_recs.storage.mysql_bulk import load_data_allowed
from tests.settings import database_from_url

DOC = Path(__file__).resolve().parents[2] / "docs" / "capture.md"


def documented_databases() -> dict:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    [block] = [b for b in blocks if "local_infile" in b]
    namespace: dict = {}
    exec(block, namespace)  # the snippet as a shop pastes it into settings.py
    return namespace["DATABASES"]


def test_the_documented_options_are_the_ones_the_suite_runs_mysql_with():
    documented = documented_databases()["default"]
    assert documented["ENGINE"] == "django.db.backends.mysql"
    assert documented["OPTIONS"] == database_from_url("mysql://root@127.0.0.1:3306/x")["OPTIONS"]


@pytest.mark.mysql
def test_with_the_documented_options_the_bulk_writes_use_load_data(db):
    assert connection.settings_dict["OPTIONS"]["local_infile"] == 1
    assert load_data_allowed(connection)
