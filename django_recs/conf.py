"""The DJANGO_RECS settings namespace, read at call time.

``recs_settings.EVENTS`` returns the project's value or the default. Values
are cached and the cache is dropped on Django's ``setting_changed`` signal,
so ``override_settings(DJANGO_RECS={...})`` works in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # What can be recommended: "app_label.ModelName" strings (int or UUID pks).
    "ITEM_MODELS": [],
    # Event name -> default weight.
    "EVENTS": {"view": 1.0, "cart": 3.0, "purchase": 5.0},
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
    # Soft time limit of the recompute task, in seconds (None = no limit).
    "TASK_SOFT_TIME_LIMIT": None,
    # A running run whose heartbeat is older than this is declared dead (and a
    # pending run that no worker took in this time is failed as such).
    "RUN_HEARTBEAT_TIMEOUT": 300,
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


@receiver(setting_changed)
def _reload_recs_settings(*, setting: str, **kwargs) -> None:
    if setting == "DJANGO_RECS":
        recs_settings.reload()
