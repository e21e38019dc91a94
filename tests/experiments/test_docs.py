"""docs/experiments.md: the Python set-up a user would paste runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import override_settings

from django_recs.models import Experiment, PlacementAlgorithm
from tests.experiments.conftest import EXPERIMENTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "experiments.md"


@pytest.mark.django_db
@override_settings(DJANGO_RECS=EXPERIMENTS)
def test_the_setup_snippet_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    snippet = next(block for block in blocks if "start(test)" in block)
    exec(compile(snippet, str(DOC), "exec"), {})
    assert "No visitors yet." in capsys.readouterr().out
    made = Experiment.objects.get()
    assert (made.status, made.promoted_variant) == ("stopped", "als")
    assert made.variants.count() == 3
    assert PlacementAlgorithm.objects.get(placement="home-for-you").algorithm == "personal"
