import pytest


@pytest.fixture
def rows_layout(monkeypatch):
    """Runs store one row per recommendation (RECOMMENDATION_LAYOUT "rows"), whatever the
    test's DJANGO_RECS: for tests that read Recommendation rows."""
    monkeypatch.setattr("django_recs.pipeline.writing.recommendation_layout", lambda: "rows")
