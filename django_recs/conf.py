"""The DJANGO_RECS settings namespace, read at call time.

``recs_settings.EVENTS`` returns the project's value or the default. Values
are cached and the cache is dropped on Django's ``setting_changed`` signal,
so ``override_settings(DJANGO_RECS={...})`` works in tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # What can be recommended: "app_label.ModelName" strings (int or UUID pks).
    "ITEM_MODELS": [],
    # Event name -> default weight.
    "EVENTS": {"view": 1.0, "cart": 3.0, "purchase": 5.0},
    # The largest weight an interaction may have: capture refuses larger ones, and a
    # run skips (and counts) rows above it, so one absurd number cannot overflow the
    # kernels' float32 arithmetic (at most 1e12; see docs/capture.md).
    "MAX_WEIGHT": 1_000_000.0,
    # Model signals recorded automatically (see docs/settings.md).
    "SOURCES": [],
    # Half-life of an interaction's weight, in days; None = no time decay.
    "HALF_LIFE_DAYS": None,
    # Events whose items are never recommended again to the same user.
    "EXCLUDE_SEEN": ["purchase"],
    # Algorithm name -> {"class": dotted path, **parameters}.
    "ALGORITHMS": {
        "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 50, "metric": "cosine"},
        "personal": {
            "class": "django_recs.algorithms.ALS",
            "factors": 64,
            "iterations": 15,
            "regularization": 0.01,
            "alpha": 10.0,
        },
        "popular": {"class": "django_recs.algorithms.Popular"},
    },
    # Kernel threads; 0 = all cores available to the process.
    "NUM_THREADS": 0,
    # Recommendations stored per user and neighbours per item by a run.
    "RECOMMENDATIONS_PER_USER": 50,
    # How a run stores per-user lists: "lists" = one row per user holding the list
    # (RecommendationList, docs/scaling.md); "rows" = one row per recommendation.
    "RECOMMENDATION_LAYOUT": "lists",
    # Soft time limit of the recompute task, in seconds (None = no limit).
    "TASK_SOFT_TIME_LIMIT": None,
    # A running run whose heartbeat is older than this, in seconds, is declared dead:
    # its worker beats every 2 s, and the sweep task (docs/pipeline.md) fails it.
    "RUN_HEARTBEAT_TIMEOUT": 30,
    # Seconds a run may wait for a worker before it is failed as never taken: a
    # pending run, or a sharded run whose shard tasks no worker has taken yet.
    "QUEUE_TIMEOUT": 300,
    # Seconds a run may wait for a worker before the admin and the triggers
    # report it as waiting for one (a worker is down, or busy with other runs).
    "PENDING_TIMEOUT": 60,
    # Finished runs kept per algorithm (their metadata, for the admin).
    "KEEP_RUNS": 10,
    # Shards of a run executed through Celery (docs/scaling.md): 1 = the whole run
    # in one worker; N > 1 = ItemKNN, ALS and UserKNN runs split into N shards spread over
    # the workers; 0 = automatic, one shard per 250,000 stored pairs (at most 64).
    "SHARDS": 1,
    # The items a shop shows, per item model: the default candidates of every list.
    # "app_label.Model" -> dotted path to a callable returning a queryset of that model
    # ("shop.queries.visible") or to a manager method ("shop.Product.objects.browsable").
    "ITEM_QUERYSETS": {},
    # Attribute path to an item's category, per item model (serving fallbacks).
    "CATEGORY": {},
    # At most this many items of one category in one list; None = no cap.
    "MAX_PER_CATEGORY": None,
    # Enqueue django_recs.refresh_user after record() commits.
    "REFRESH_ON_RECORD": False,
    # Item features for content-based similarity, per item model (see docs/content.md):
    # {"shop.Product": {"text": {"name": 2.0}, "categorical": {"category": 1.0, "tags": 0.5}}}
    "ITEM_FEATURES": {},
    # The algorithm whose content neighbours fill a list before popular items:
    # None = the first configured algorithm that uses ITEM_FEATURES, False = none.
    "CONTENT_FALLBACK": None,
    # Online feedback (docs/feedback.md). Log every list the template tags show (and
    # the functions' lists given placement=) as an impression, with signed click links.
    "IMPRESSIONS": False,
    # Clicks on recommended items are also interactions of this event (None: they are not).
    "CLICK_EVENT": "click",
    # Events attributed to the list whose item the same visitor clicked before.
    "CONVERSION_EVENTS": ["purchase"],
    # A click counts for a list shown at most this long before it, and a conversion
    # for a click at most this long before it.
    "ATTRIBUTION_WINDOW_DAYS": 7,
    # Raw impressions, clicks and conversions are deleted after this many days; the
    # daily roll-ups are kept.
    "IMPRESSION_RETENTION_DAYS": 90,
    # Seconds between writes of a process's buffered impressions by a background
    # thread; 0 = no thread, the buffer is written at the end of each request.
    "IMPRESSION_FLUSH_SECONDS": 1.0,
    # The JSON endpoints (docs/api.md). Dotted path to a function item -> dict of JSON
    # values: what each listed item says of itself (default: pk, name, url).
    "API_SERIALIZER": "django_recs.api.serialisation.default_serializer",
    # Seconds a shared cache (a CDN) or a browser may keep a public list (similar, popular).
    "API_MAX_AGE": 300,
    # The longest list a request may ask for (its n).
    "API_MAX_N": 100,
    # --- A/B experiments (docs/experiments.md) ---
    # Seconds a process serves its copy of the running experiments and promoted
    # algorithms before reading them again (a change saved in this process applies at once).
    "EXPERIMENT_REFRESH_SECONDS": 10.0,
}


class RecsSettings:
    """Attribute access to DJANGO_RECS with defaults, read at call time."""

    def __init__(self, defaults: dict[str, Any]):
        self.defaults = defaults
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Unknown django_recs setting: {name!r}")
        if name not in self._cache:
            self._cache[name] = self.user_settings().get(name, self.defaults[name])
        return self._cache[name]

    def user_settings(self) -> dict[str, Any]:
        """The project's DJANGO_RECS as a dict.

        {} when it is unset or not a mapping: the defaults then apply, so the
        other checks and the shop keep working while check E060 reports it.
        """
        from django.conf import settings

        user = getattr(settings, "DJANGO_RECS", None)
        return dict(user) if isinstance(user, Mapping) else {}

    def reload(self) -> None:
        self._cache.clear()


recs_settings = RecsSettings(DEFAULTS)

#: The largest MAX_WEIGHT accepted (django_recs.E090): squares and sums of weights
#: up to it stay far inside float32, which the kernels compute in.
MAX_WEIGHT_CEILING = 1e12


def max_weight() -> float:
    """The MAX_WEIGHT setting, or its default while it is invalid (reported as E090).

    Capture and the pipeline both read it, so a broken value never lets a
    weight through that the kernels cannot handle.
    """
    value = recs_settings.MAX_WEIGHT
    if (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 < value <= MAX_WEIGHT_CEILING):
        return float(value)
    return float(DEFAULTS["MAX_WEIGHT"])


def seconds(name: str) -> float:
    """A timeout setting in seconds (RUN_HEARTBEAT_TIMEOUT, QUEUE_TIMEOUT, PENDING_TIMEOUT).

    Its default while the value is not a finite number from 1 to 1e9 (the
    checks report it): triggers and the admin's pages read these, and must
    not fail on a typo.
    """
    value = getattr(recs_settings, name)
    if (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 1 <= value <= 1e9):
        return float(value)
    return float(DEFAULTS[name])


def exclude_seen_events() -> list[str]:
    """The event names of EXCLUDE_SEEN, as a list, whatever the setting's shape.

    A single name (``"purchase"`` without its brackets, reported as E062)
    means that name: read as a list of characters it would exclude nothing,
    and items bought would be recommended again. Another shape excludes
    nothing (E062 too).
    """
    value = recs_settings.EXCLUDE_SEEN
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [name for name in value if isinstance(name, str)]
    return []


def max_per_category() -> int | None:
    """MAX_PER_CATEGORY, or None (no cap) while it is not a positive integer (E092).

    A broken value is reported by ``manage.py check``; a page must not fail on it.
    """
    value = recs_settings.MAX_PER_CATEGORY
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


@receiver(setting_changed)
def _reload_recs_settings(*, setting: str, **kwargs) -> None:
    if setting == "DJANGO_RECS":
        recs_settings.reload()


#: The layouts of RECOMMENDATION_LAYOUT.
RECOMMENDATION_LAYOUTS = ("lists", "rows")


def recommendation_layout() -> str:
    """RECOMMENDATION_LAYOUT, or "lists" when it names no layout (check E140 reports that)."""
    value = recs_settings.RECOMMENDATION_LAYOUT
    return value if isinstance(value, str) and value in RECOMMENDATION_LAYOUTS else "lists"
