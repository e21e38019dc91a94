"""System checks: misconfiguration is reported by ``manage.py check``.

Ids are stable; each error carries a hint. E0NN are errors, W0NN warnings.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping

from django.core import checks

from .conf import recs_settings

#: The largest number of seconds (or days) a numeric setting may hold.
MAX_SECONDS = 1e9


def did_you_mean(word: str, known: Iterable[str], *, case_insensitive: bool = False) -> str:
    """'Did you mean "X"?' naming the closest of ``known`` to ``word``, or "" if none is close."""
    known = [name for name in known if isinstance(name, str)]
    if case_insensitive:
        by_upper = {name.upper(): name for name in known}
        matches = difflib.get_close_matches(word.upper(), by_upper, n=1)
        matches = [by_upper[match] for match in matches]
    else:
        matches = difflib.get_close_matches(word, known, n=1)
    return f"Did you mean {matches[0]!r}? " if matches else ""


@checks.register("django_recs")
def check_settings_namespace(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E060: DJANGO_RECS is not a dict; E061: a key of it that is no django_recs setting.

    Known keys are those of ``conf.DEFAULTS``, read when the check runs. An
    unknown key is an error, not a warning: it is silently ignored, so a
    typo (EXCLUDE_SEEM) leaves the shop on a default it meant to change.
    """
    from django.conf import settings

    if not hasattr(settings, "DJANGO_RECS"):
        return []
    configured = settings.DJANGO_RECS
    if not isinstance(configured, Mapping):
        return [checks.Error(
            f"DJANGO_RECS must be a dict of setting name -> value, got "
            f"{type(configured).__name__}; every django_recs setting has its default.",
            hint='e.g. DJANGO_RECS = {"ITEM_MODELS": ["shop.Product"], '
                 '"EXCLUDE_SEEN": ["purchase"]}',
            id="django_recs.E060",
        )]
    known = recs_settings.defaults
    errors = []
    for key in configured:
        if key in known:
            continue
        close = did_you_mean(key, known, case_insensitive=True) if isinstance(key, str) else ""
        errors.append(checks.Error(
            f"DJANGO_RECS has the key {key!r}, which is not a django_recs setting: "
            "it is ignored.",
            hint=close + f"The settings are {', '.join(sorted(known))}.",
            id="django_recs.E061",
        ))
    return errors


@checks.register("django_recs")
def check_exclude_seen(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E062: EXCLUDE_SEEN is not a list of names; E063: it names an event not in EVENTS.

    Both leave items the visitor bought recommended again, with no error anywhere else.
    """
    value = recs_settings.EXCLUDE_SEEN
    if not isinstance(value, (list, tuple)):
        example = [value] if isinstance(value, str) else ["purchase"]
        return [checks.Error(
            f"DJANGO_RECS['EXCLUDE_SEEN'] must be a list of event names, got "
            f"{type(value).__name__} {value!r}.",
            hint=f'e.g. "EXCLUDE_SEEN": {example!r} (an empty list excludes nothing).',
            id="django_recs.E062",
        )]
    events = recs_settings.EVENTS
    if not isinstance(events, Mapping):
        return []  # E020
    errors = []
    for name in value:
        if isinstance(name, str) and name in events:
            continue
        close = did_you_mean(name, events) if isinstance(name, str) else ""
        errors.append(checks.Error(
            f"DJANGO_RECS['EXCLUDE_SEEN'] names the event {name!r}, which is not in "
            f"DJANGO_RECS['EVENTS'] ({', '.join(map(str, events))}): no item is "
            "excluded for it, so items of that event are recommended again.",
            hint=close + "Name events of EVENTS whose items are not to be recommended "
            "again to the same visitor.",
            id="django_recs.E063",
        ))
    return errors


@checks.register("django_recs")
def check_native_kernels(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W001: the compiled kernels are missing and the numpy reference runs."""
    from .kernels import missing_modules

    missing = missing_modules()
    if not missing:
        return []
    return [
        checks.Warning(
            "django_recs's compiled kernels are not available "
            f"({', '.join(missing)}); the pure numpy reference is used and is much slower.",
            hint="Reinstall django-recs where a C compiler is present "
            "(pip install --force-reinstall --no-binary django-recs django-recs).",
            id="django_recs.W001",
        )
    ]


@checks.register("django_recs")
def check_item_models(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E001: ITEM_MODELS empty; E002: unknown model; E003: unsupported pk type."""
    from django.apps import apps

    from .items import primary_key_problem

    labels = recs_settings.ITEM_MODELS
    if not labels:
        return [
            checks.Error(
                "DJANGO_RECS['ITEM_MODELS'] is empty: nothing can be recommended.",
                hint='List the models to recommend, e.g. "ITEM_MODELS": ["shop.Product"].',
                id="django_recs.E001",
            )
        ]
    errors = []
    for label in labels:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(
                checks.Error(
                    f"DJANGO_RECS['ITEM_MODELS'] names {label!r}, which is not an installed model.",
                    hint='Use "app_label.ModelName" of a model in INSTALLED_APPS.',
                    id="django_recs.E002",
                )
            )
            continue
        problem = primary_key_problem(model)
        if problem is not None:
            errors.append(
                checks.Error(
                    f"{problem}; django_recs supports integer and UUID primary keys, and "
                    "parent links of multi-table inheritance to a model with one.",
                    hint="Recommend a model with an integer or UUID primary key, or a child "
                    "of one (class Article(Page)).",
                    id="django_recs.E003",
                )
            )
    return errors


@checks.register("django_recs")
def check_algorithms(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E030-E032: ALGORITHMS entries; E033-E039, E091-E093: the numeric settings.

    Each such setting passes only as a finite number in its range: a value
    that passed here used to fail every run (NUM_THREADS=-1) or every list of
    every page (MAX_PER_CATEGORY='2').
    """
    from .registry import AlgorithmConfigError, build_algorithm

    hints = {
        "E030": 'Each entry is "name": {"class": "dotted.path.To.Algorithm", **parameters}.',
        "E031": "Use django_recs.algorithms.ItemKNN, ALS, Popular, or a subclass of "
                "django_recs.algorithms.Algorithm importable from the project.",
        "E032": "Remove or correct the parameter; the class's docstring lists what it accepts.",
    }
    configured = recs_settings.ALGORITHMS
    if not isinstance(configured, dict):
        return [checks.Error(
            f"DJANGO_RECS['ALGORITHMS'] must be a dict of name -> config, got "
            f"{type(configured).__name__}.",
            hint=hints["E030"], id="django_recs.E030",
        )]
    errors = []
    for name in configured:
        try:
            build_algorithm(name)
        except AlgorithmConfigError as error:
            errors.append(checks.Error(str(error), hint=hints[error.code],
                                       id=f"django_recs.{error.code}"))
    numeric = [
        ("RECOMMENDATIONS_PER_USER", 1, 32767, False, "E033",
         "Stored list length per user and per item, e.g. 50."),
        ("RUN_HEARTBEAT_TIMEOUT", 1, None, False, "E034",
         "Seconds without a heartbeat before a run is declared dead, e.g. 30 (runs beat "
         "every 2 s)."),
        ("QUEUE_TIMEOUT", 1, None, False, "E093",
         "Seconds a run may wait for a worker to take it before it is failed, e.g. 300."),
        ("PENDING_TIMEOUT", 1, None, False, "E039",
         "Seconds a run may wait for a worker before it is reported, e.g. 60."),
        ("KEEP_RUNS", 0, None, False, "E035", "Finished runs kept per algorithm, e.g. 10."),
        ("TASK_SOFT_TIME_LIMIT", 1, None, True, "E036",
         "Seconds, or None for no limit."),
        ("HALF_LIFE_DAYS", 0, None, True, "E037",
         "A positive number of days, or None for no time decay."),
        ("SHARDS", 0, None, False, "E038",
         "1 = one worker per run, N = split a run into N shards, 0 = automatic."),
        ("NUM_THREADS", 0, 4096, False, "E091",
         "Kernel threads per run: 0 = every core the worker may use, or a count such as 4."),
        ("MAX_PER_CATEGORY", 1, None, True, "E092",
         "At most this many items of one category in a list, e.g. 2, or None for no cap."),
    ]
    integers = {"RECOMMENDATIONS_PER_USER", "KEEP_RUNS", "SHARDS", "NUM_THREADS",
                "MAX_PER_CATEGORY"}
    for setting, low, high, allow_none, code, hint in numeric:
        value = getattr(recs_settings, setting)
        if value is None and allow_none:
            continue
        # Finite and below a billion: a timedelta of more seconds overflows.
        high_or_huge = high if high is not None else MAX_SECONDS
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value) and low <= value <= high_or_huge
              and (setting != "HALF_LIFE_DAYS" or value > 0))
        if setting in integers:
            ok = ok and isinstance(value, int)
        if not ok:
            kind = "an integer" if setting in integers else "a number"
            bound = f">= {low} and <= {high_or_huge:g}"
            if setting == "HALF_LIFE_DAYS":
                bound = f"> 0 and <= {high_or_huge:g}"
            errors.append(checks.Error(
                f"DJANGO_RECS['{setting}'] must be {kind} {bound}"
                f"{' or None' if allow_none else ''}, got {value!r}."[:300],
                hint=hint, id=f"django_recs.{code}",
            ))
    return errors


TUNE_HINTS = {
    "E130": 'TUNE is a dict: {"l2": [50, 200, 500], "budget_s": 600}.',
    "E131": "TUNE searches the class's own parameters; its docstring lists them.",
    "E132": "Give each searched parameter a non-empty list of values the class accepts, or a "
            'range {"min": a, "max": b} (with "log": True for a log scale, min > 0).',
    "E133": "budget_s: seconds > 0; max_trials: an integer >= 1; validation_fraction in "
            "(0, 1); metric: ndcg, recall, precision, map, hit_rate, mrr, coverage ..., "
            'optionally at a list length ("ndcg@20"); seed: an integer.',
    "E134": "Tune collaborative algorithms (EASE, RP3beta, ItemKNN, ALS, UserKNN); content "
            "algorithms need the shop's item features, which the search does not load.",
}


@checks.register("django_recs")
def check_tune(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E130-E134: the TUNE entries of ALGORITHMS (searched on ``recs_recompute --tune``)."""
    from .evaluation.evaluator import METRIC_ORDER
    from .evaluation.tune import check_budget, check_space
    from .registry import (
        TUNE_KEY,
        AlgorithmConfigError,
        algorithm_class,
        algorithm_params,
        tune_settings,
    )

    configured = recs_settings.ALGORITHMS
    if not isinstance(configured, dict):
        return []  # E030
    errors = []

    def error(name, message, code):
        errors.append(checks.Error(f"DJANGO_RECS['ALGORITHMS'][{name!r}]['TUNE']: {message}"[:400],
                                   hint=TUNE_HINTS[code], id=f"django_recs.{code}"))

    for name, config in configured.items():
        if not isinstance(config, dict) or TUNE_KEY not in config:
            continue
        try:
            cls = algorithm_class(name)
            settings = tune_settings(name)
        except AlgorithmConfigError as problem:
            if problem.code == "E130":
                error(name, "must be a dict of parameter -> values and options", "E130")
            continue  # E030/E031 report the entry itself
        space, options = settings
        if getattr(cls, "uses_item_features", False):
            error(name, f"{cls.__name__} cannot be tuned", "E134")
            continue
        unknown = sorted(set(space) - set(cls.defaults))
        if unknown or not space:
            error(name, f"{', '.join(unknown)} not parameter(s) of {cls.__name__}" if unknown
                  else "names no parameter to search", "E131")
            continue
        try:
            space = check_space(space)
            base = algorithm_params(name)
            for key, values in space.items():
                tried = values if isinstance(values, list) else [values["min"], values["max"]]
                for value in tried:
                    cls(**{**base, key: value})
        except (TypeError, ValueError) as problem:
            error(name, str(problem), "E132")
        problems = []
        budget = options.get("budget_s")
        try:
            check_budget(budget)
        except ValueError as problem:
            problems.append(str(problem))
        for key, label in (("max_trials", "max_trials"), ("k", "the metric's list length")):
            value = options.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{label} must be an integer >= 1, got {value!r}")
        fraction = options.get("validation_fraction", 0.1)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
                or not 0 < fraction < 1:
            problems.append(f"validation_fraction must be in (0, 1), got {fraction!r}")
        metric = options.get("metric", "ndcg")
        if metric not in METRIC_ORDER or metric == "fit_seconds":
            problems.append(f"unknown metric {metric!r}")
        seed = options.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            problems.append(f"seed must be an integer, got {seed!r}")
        if problems:
            error(name, "; ".join(problems), "E133")
    return errors


@checks.register("django_recs")
def check_recommendation_layout(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """RECOMMENDATION_LAYOUT names one of the layouts (E140)."""
    from .conf import RECOMMENDATION_LAYOUTS

    value = recs_settings.RECOMMENDATION_LAYOUT
    if isinstance(value, str) and value in RECOMMENDATION_LAYOUTS:
        return []
    return [checks.Error(
        f"RECOMMENDATION_LAYOUT is {value!r}; it must be one of "
        f"{', '.join(map(repr, RECOMMENDATION_LAYOUTS))}",
        hint='"lists" (one row per user holding the list, the default) or "rows" (one row '
             "per recommendation).",
        id="django_recs.E140",
    )]


@checks.register("django_recs")
def check_capture(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E010-E017: SOURCES entries; E020-E021: EVENTS; E090: MAX_WEIGHT.

    E010 malformed entry, E011 unknown model, E012 unresolvable path, E013
    unknown event, E014 negative or non-numeric weight, E015 bad ``when``
    (or "user_set" without a user ForeignKey on the row), E016 weight
    function not importable, E017 item path outside ITEM_MODELS, E018 item
    function not importable, E019 a ``value`` that is no number, numeric path,
    product of them or importable function;
    E020 an EVENTS weight that is negative, above MAX_WEIGHT or not a number, E021 a
    bad event name; E090 MAX_WEIGHT not a number in (0, 1e12].
    """
    from .capture.sources import source_errors
    from .conf import MAX_WEIGHT_CEILING, max_weight

    errors = []
    limit = recs_settings.MAX_WEIGHT
    if not (isinstance(limit, int | float) and not isinstance(limit, bool)
            and math.isfinite(limit) and 0 < limit <= MAX_WEIGHT_CEILING):
        errors.append(checks.Error(
            f"DJANGO_RECS['MAX_WEIGHT'] must be a number > 0 and <= {MAX_WEIGHT_CEILING:g}, "
            f"got {limit!r}; the default {max_weight():g} applies meanwhile.",
            hint="The largest weight one interaction may have, e.g. 1000000.0; above "
                 f"{MAX_WEIGHT_CEILING:g} the kernels' float32 arithmetic could overflow.",
            id="django_recs.E090",
        ))
    events = recs_settings.EVENTS
    if not isinstance(events, dict) or not events:
        errors.append(checks.Error(
            "DJANGO_RECS['EVENTS'] must be a non-empty dict of event name -> default weight.",
            hint='e.g. "EVENTS": {"view": 1.0, "cart": 3.0, "purchase": 5.0}',
            id="django_recs.E020",
        ))
        events = {}
    for name, weight in events.items():
        if not isinstance(name, str) or not name or len(name) > 32:
            errors.append(checks.Error(
                f"DJANGO_RECS['EVENTS'] has the event name {name!r}; names are 1-32 characters.",
                hint="Use a short text name such as 'purchase'.",
                id="django_recs.E021",
            ))
        numeric = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not numeric or not math.isfinite(weight) or not 0 <= weight <= max_weight():
            errors.append(checks.Error(
                f"DJANGO_RECS['EVENTS'][{name!r}] is {weight!r}; a weight is a finite number "
                f">= 0 and <= MAX_WEIGHT ({max_weight():g}).",
                hint="Give every event a default weight such as 1.0.",
                id="django_recs.E020",
            ))
    for error in source_errors():
        errors.append(checks.Error(
            f"{error}.", hint=error.hint or None, id=f"django_recs.{error.code}",
        ))
    return errors


@checks.register("django_recs")
def check_item_features(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E040-E046: ITEM_FEATURES entries; E047-E048: content algorithms and fallback.

    E040 malformed setting or entry, E041 model not installed or not in
    ITEM_MODELS, E042 unknown key, E043 text path that does not resolve to a
    text field, E044 categorical path that does not resolve, E045 bad
    weight, E046 bad min_df/max_df/stop_words; E047 ContentKNN or Hybrid
    configured without ITEM_FEATURES, E048 CONTENT_FALLBACK not a content algorithm.
    """
    from .content.config import content_setting_errors, feature_config_errors

    return [
        checks.Error(f"{error}.", hint=error.hint or None, id=f"django_recs.{error.code}")
        for error in [*feature_config_errors(), *content_setting_errors()]
    ]


@checks.register("django_recs")
def check_celery_app(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """W002: tasks would be sent by Celery's unconfigured default app."""
    from .dispatch import UNCONFIGURED_APP, broker_url, unconfigured_celery_app

    if not unconfigured_celery_app():
        return []
    return [
        checks.Warning(
            UNCONFIGURED_APP.format(broker=broker_url()).split("; ")[0] + ": \"Recompute now\" "
            "and recompute() would send their runs there, not to CELERY_BROKER_URL.",
            hint="Make the project package's __init__.py import its Celery app: "
            "from .celery import app as celery_app (README: Celery).",
            id="django_recs.W002",
        )
    ]


@checks.register("django_recs")
def check_categories(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E064-E066: the CATEGORY setting.

    E064 not a dict, or a model that is not installed or not in ITEM_MODELS;
    E065 a path that does not resolve to fields; E066 a to-many path (a
    ManyToManyField or reverse relation), which serving ignores.
    """
    from .categories import category_errors

    return [
        checks.Error(f"{error}.", hint=error.hint or None, id=f"django_recs.{error.code}")
        for error in category_errors()
    ]


@checks.register("django_recs")
def check_item_querysets(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E070-E073: ITEM_QUERYSETS, the items a shop shows.

    E070 not a dict, E071 a model not in ITEM_MODELS, E072 a path that does
    not resolve to a callable, E073 a callable that raises or returns
    something else than an unsliced QuerySet of its model.
    """
    from .items import item_queryset_errors

    return [
        checks.Error(f"{error}.", hint=error.hint or None, id=f"django_recs.{error.code}")
        for error in item_queryset_errors()
    ]


@checks.register("django_recs")
def check_feedback(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E080-E085: the online feedback settings; W003: clicks of links not recorded.

    E080 IMPRESSIONS not a boolean; E081 CLICK_EVENT neither None nor an event
    of EVENTS; E082 CONVERSION_EVENTS not a list of events of EVENTS (or one
    that is CLICK_EVENT); E083 ATTRIBUTION_WINDOW_DAYS not a number > 0; E084
    IMPRESSION_RETENTION_DAYS not a number of at least twice the window (a
    click comes within the window of its list, a purchase within the window
    of its click: both rows must still be there); E085
    IMPRESSION_FLUSH_SECONDS not a number >= 0. Events are checked while
    IMPRESSIONS is on. W003: IMPRESSIONS is on and ClickMiddleware is not in
    MIDDLEWARE, so ``?recs_click=`` links record nothing (the beacon still does).
    """
    from django.conf import settings

    errors = []
    enabled = recs_settings.IMPRESSIONS
    if not isinstance(enabled, bool):
        errors.append(checks.Error(
            f"DJANGO_RECS['IMPRESSIONS'] must be True or False, got {enabled!r}.",
            hint="True logs every list the template tags show (docs/feedback.md).",
            id="django_recs.E080",
        ))
    events = recs_settings.EVENTS if isinstance(recs_settings.EVENTS, Mapping) else {}
    click = recs_settings.CLICK_EVENT
    if click is not None and not isinstance(click, str):
        errors.append(checks.Error(
            f"DJANGO_RECS['CLICK_EVENT'] must be an event name or None, got {click!r}.",
            hint='e.g. "CLICK_EVENT": "click" with "click": 0.5 in EVENTS.',
            id="django_recs.E081",
        ))
    elif enabled is True and click is not None and click not in events:
        errors.append(checks.Error(
            f"DJANGO_RECS['CLICK_EVENT'] is {click!r}, which is not in DJANGO_RECS['EVENTS']: "
            "clicks would not be recorded as interactions.",
            hint=did_you_mean(click, events) + f'Add "{click}": 0.5 (its weight) to EVENTS, or '
                 'set "CLICK_EVENT": None if clicks are not to feed training.',
            id="django_recs.E081",
        ))
    conversions = recs_settings.CONVERSION_EVENTS
    if not isinstance(conversions, (list, tuple)) or not all(
            isinstance(name, str) for name in conversions):
        errors.append(checks.Error(
            f"DJANGO_RECS['CONVERSION_EVENTS'] must be a list of event names, got {conversions!r}.",
            hint='e.g. "CONVERSION_EVENTS": ["purchase"]', id="django_recs.E082",
        ))
    elif enabled is True:
        for name in conversions:
            if name not in events or name == click:
                problem = ("is CLICK_EVENT: a click cannot be its own conversion" if name == click
                           else "is not in DJANGO_RECS['EVENTS']")
                errors.append(checks.Error(
                    f"DJANGO_RECS['CONVERSION_EVENTS'] names {name!r}, which {problem}.",
                    hint=did_you_mean(name, [e for e in events if e != click])
                    + "Name the events whose interactions are attributed to a clicked list.",
                    id="django_recs.E082",
                ))
    window = recs_settings.ATTRIBUTION_WINDOW_DAYS
    window_ok = _positive_number(window)
    if not window_ok:
        errors.append(checks.Error(
            f"DJANGO_RECS['ATTRIBUTION_WINDOW_DAYS'] must be a number of days > 0, got {window!r}.",
            hint="e.g. 7: a click counts for a list shown up to 7 days before it, a purchase "
                 "for a click up to 7 days before it.",
            id="django_recs.E083",
        ))
    retention = recs_settings.IMPRESSION_RETENTION_DAYS
    if not _positive_number(retention) or (window_ok and retention < 2 * window):
        bound = f">= {2 * window} (twice ATTRIBUTION_WINDOW_DAYS)" if window_ok else "> 0"
        errors.append(checks.Error(
            f"DJANGO_RECS['IMPRESSION_RETENTION_DAYS'] must be a number of days {bound}, got "
            f"{retention!r}.",
            hint="Raw impressions, clicks and conversions are kept this long; a click comes up "
                 "to a window after its list and a purchase up to a window after the click.",
            id="django_recs.E084",
        ))
    flush = recs_settings.IMPRESSION_FLUSH_SECONDS
    if not (_positive_number(flush) or flush == 0):
        errors.append(checks.Error(
            f"DJANGO_RECS['IMPRESSION_FLUSH_SECONDS'] must be a number >= 0, got {flush!r}.",
            hint="Seconds between writes of the buffered impressions (1.0); 0 writes them at "
                 "the end of each request.",
            id="django_recs.E085",
        ))
    middleware = "django_recs.feedback.middleware.ClickMiddleware"
    if enabled is True and middleware not in getattr(settings, "MIDDLEWARE", ()):
        errors.append(checks.Warning(
            f"DJANGO_RECS['IMPRESSIONS'] is on but {middleware} is not in MIDDLEWARE: clicks "
            "on ?recs_click= links are not recorded.",
            hint="Add it after AuthenticationMiddleware, or silence django_recs.W003 if clicks "
                 "come only through the beacon (django_recs/clicks.js).",
            id="django_recs.W003",
        ))
    return errors


@checks.register("django_recs")
def check_experiments(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E110: EXPERIMENT_REFRESH_SECONDS is not a number >= 0."""
    import math

    value = recs_settings.EXPERIMENT_REFRESH_SECONDS
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or value < 0):
        return [checks.Error(
            f"DJANGO_RECS['EXPERIMENT_REFRESH_SECONDS'] must be a number >= 0, got {value!r}.",
            hint="Seconds a process serves its copy of the running experiments before reading "
                 "them again (10.0).",
            id="django_recs.E110",
        )]
    return []


def _positive_number(value) -> bool:
    import math

    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


@checks.register("django_recs")
def check_api(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """E120-E122: the JSON endpoints' settings (docs/api.md).

    E120 API_SERIALIZER is not the dotted path of a callable (it is imported
    now); E121 API_MAX_AGE is not an integer number of seconds from 0 to a
    year; E122 API_MAX_N is not an integer from 1 to 10,000. The endpoints
    use the default while a value is wrong.
    """
    from django.utils.module_loading import import_string

    from .api.caching import MAX_AGE_CEILING

    errors = []
    path = recs_settings.API_SERIALIZER
    problem = None
    if not isinstance(path, str) or "." not in path:
        problem = f"must be the dotted path of a function, got {path!r}"
    else:
        try:
            function = import_string(path)
        except ImportError as error:
            problem = f"is {path!r}, which does not import ({error})"
        else:
            if not callable(function):
                problem = f"is {path!r}, which is not callable"
    if problem:
        errors.append(checks.Error(
            f"DJANGO_RECS['API_SERIALIZER'] {problem}.",
            hint='A function item -> dict of JSON values, e.g. "shop.api.product_json"; the '
                 "default is django_recs.api.serialisation.default_serializer (pk, name, url).",
            id="django_recs.E120",
        ))
    max_age = recs_settings.API_MAX_AGE
    if not (isinstance(max_age, int) and not isinstance(max_age, bool)
            and 0 <= max_age <= MAX_AGE_CEILING):
        errors.append(checks.Error(
            f"DJANGO_RECS['API_MAX_AGE'] must be an integer number of seconds from 0 to "
            f"{MAX_AGE_CEILING}, got {max_age!r}.",
            hint="How long a CDN or a browser may keep a public list, e.g. 300; 0 makes them "
                 "revalidate every time (with the ETag).",
            id="django_recs.E121",
        ))
    max_n = recs_settings.API_MAX_N
    if not (isinstance(max_n, int) and not isinstance(max_n, bool) and 1 <= max_n <= 10_000):
        errors.append(checks.Error(
            f"DJANGO_RECS['API_MAX_N'] must be an integer from 1 to 10000, got {max_n!r}.",
            hint="The longest list a request may ask for, e.g. 100.",
            id="django_recs.E122",
        ))
    return errors
