"""A/B experiments: which algorithm a placement serves to which visitor, and what it earned.

- :mod:`.assignment` — a visitor's variant: a hash of (experiment, visitor),
  by weight; :mod:`.units` — the visitor as experiments know them (the same
  before and after a login, on every device of an account);
- :mod:`.routing` — what a placement serves (a running experiment's
  variant, a promoted algorithm), from a per-process copy of the
  experiments, so a page asks the database nothing;
- :mod:`.stats` — the statistics (numpy and scipy, no ORM);
  :mod:`.results` — an experiment's numbers read from the feedback logs;
- :mod:`.lifecycle` — start, stop, promote.

Experiments sit between the feedback (whose lists ask :func:`route` which
algorithm to serve, and log the experiment and variant with the impression)
and serving: every list of a placement — the template tags, the public
functions, the JSON API — goes through them.
"""

from __future__ import annotations

from .lifecycle import connect, promote, start, stop
from .routing import NONE, Route, invalidate, route

__all__ = ["NONE", "Route", "connect", "invalidate", "promote", "route", "start", "stop"]
