"""Feedback tests: a settings dict with impressions on, and a clean impression buffer."""

from __future__ import annotations

import pytest

from django_recs.feedback.buffer import buffer

EVENTS = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "click": 0.5}
FEEDBACK = {
    "ITEM_MODELS": ["testapp.Product", "testapp.Gadget"],
    "EVENTS": EVENTS,
    "NUM_THREADS": 1,
    "IMPRESSIONS": True,
    # Written by the test's own thread (flush_impressions(), or the end of a request),
    # inside its transaction: no writer thread.
    "IMPRESSION_FLUSH_SECONDS": 0,
}


@pytest.fixture(autouse=True)
def empty_buffer():
    """No test sees another's buffered impressions."""
    buffer.take()
    yield
    buffer.take()
