"""Writing interactions: record(), model-signal sources, session merge."""

from __future__ import annotations


def connect_sources() -> None:
    """Connect the post_save receivers of SOURCES (filled in by the capture layer)."""
