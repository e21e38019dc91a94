"""Serving: the lists a shop shows, as querysets of its own item model.

- :mod:`.lists` — ``similar_to()`` and ``recommended_for()``: the chain of
  sources of a list, its scope, and the queryset it is returned as;
- :mod:`.fallbacks` — each source of the cold-start chain as SQL;
- :mod:`.candidates` — the statement that reads a list's candidates with
  their item rows, and the pick of the best;
- :mod:`.ordering` — the order of the returned queryset;
- :mod:`.diversity` — the per-category cap;
- :mod:`.visitors` — whose history a list is for.

Serving reads results and interactions; it never imports the pipeline or
capture.
"""

from __future__ import annotations

from .lists import recommended_for, similar_to

__all__ = ["recommended_for", "similar_to"]
