"""The README's "Adding django-recs to your project", followed literally in a new project.

``startproject``, the README's snippets pasted in, its commands run, the
product page rendered, then its Celery worker and beat run the nightly
recompute (every few seconds here) on Redis. See tests/readme_project.py.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests import readme_project

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_the_readme_names_every_file_and_command_of_the_first_hour():
    snippets = readme_project.readme_snippets()
    assert set(snippets.files) == {"yourproject/settings.py", "yourproject/celery.py",
                                   "yourproject/__init__.py",
                                   "shop/templates/shop/product_detail.html"}
    assert [argv[:3] for argv in snippets.commands] == [
        ["pip", "install", "django-recs[postgres,redis]"],
        ["python", "manage.py", "migrate"],
        ["python", "manage.py", "check"],
        ["python", "manage.py", "recs_import"],
        ["python", "manage.py", "recs_recompute"],
        ["celery", "-A", "yourproject"],
        ["celery", "-A", "yourproject"],
    ]
    beat = "".join(snippets.files["yourproject/settings.py"])
    assert '"task": "django_recs.recompute",' in beat and '"args"' not in beat


def _lists(page: str) -> dict[str, list[str]]:
    """Each <h2> list of the product page: its items' names."""
    sections = re.findall(r"<h2>(.*?)</h2>\s*<ul>(.*?)</ul>", page, flags=re.S)
    return {title: re.findall(r'<a href="/products/\d+/">(.*?)</a>', items)
            for title, items in sections}


def test_a_new_project_follows_the_readme_to_nightly_recommendations(tmp_path, settings):
    project = readme_project.make_project(
        tmp_path / "site", python=Path(sys.executable), broker=settings.REDIS_URL,
        extra_pythonpath=str(ROOT),
    )
    outputs = readme_project.first_run(project)
    assert "System check identified no issues" in outputs["check"], outputs["check"]
    assert "succeeded" in outputs["recs_recompute"]
    assert "failed" not in outputs["recs_recompute"]

    # Product 1 is "Garden 0": its buyers bought garden products only.
    lists = _lists(readme_project.product_page(project, 1))
    also_bought = lists["Customers who bought this also bought"]
    for_you = lists["Recommended for you"]
    assert len(also_bought) == 6 and all(name.startswith("Garden ") for name in also_bought)
    assert len(for_you) == 8  # an anonymous visitor: popular products
    assert "Garden 0" not in also_bought + for_you
    assert not set(also_bought) & set(for_you)  # the two lists do not repeat each other

    done = readme_project.nightly_runs(project, tmp_path)
    assert {entry.split("#")[0] for entry in done.split()} == {"similar", "personal", "popular"}
