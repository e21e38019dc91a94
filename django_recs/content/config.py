"""The ITEM_FEATURES setting: which fields of an item describe it, and how much.

::

    DJANGO_RECS = {
        "ITEM_FEATURES": {
            "shop.Product": {
                "text": {"name": 2.0, "description": 1.0},
                "categorical": {"category": 1.0, "brand": 1.0, "tags": 0.5},
                "min_df": 1,          # optional TF-IDF vocabulary pruning
                "max_df": 1.0,
                "stop_words": [],     # optional words left out of the vocabulary
            },
        },
    }

A path is a field of the model or a dotted path through relations
(``"brand.name"``, ``"tags"``; ``__`` works as well as ``.``). A text path
ends on a field holding text; a categorical path ends on any field or on a
relation (a foreign key counts by the related object's primary key, a
many-to-many as the set of related objects). Paths through a many-to-many or
a reverse relation are multi-valued. This module parses and validates the
setting (for the system checks, django_recs.E040-E046) and resolves paths to
ORM lookups; it reads model metadata but runs no query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from ..conf import recs_settings

__all__ = [
    "FEATURE_KINDS",
    "FeatureConfigError",
    "FieldPath",
    "FieldSpec",
    "ModelFeatures",
    "TextOptions",
    "configured_features",
    "content_fallback_algorithm",
    "content_setting_errors",
    "feature_algorithm_names",
    "by_specificity",
    "family_features",
    "feature_config_errors",
    "features_of_model",
    "resolve_path",
]

#: The kinds of features an entry declares, in the order their blocks are built.
FEATURE_KINDS = ("text", "categorical")
#: Options of an entry besides the feature kinds.
TEXT_OPTION_KEYS = ("min_df", "max_df", "stop_words")
KNOWN_KEYS = (*FEATURE_KINDS, *TEXT_OPTION_KEYS)

TEXT_FIELD_TYPES = (models.CharField, models.TextField)


class FeatureConfigError(ValueError):
    """An ITEM_FEATURES entry that cannot work; ``code`` is the check id suffix (E040...)."""

    def __init__(self, message: str, code: str, hint: str = ""):
        super().__init__(message)
        self.code = code
        self.hint = hint


@dataclass(frozen=True)
class FieldPath:
    """A configured path resolved against a model.

    Attributes
    ----------
    text : str
        The path as configured, e.g. ``"brand.name"``.
    lookup : str
        The ORM lookup, e.g. ``"brand__name"``.
    multi_valued : bool
        The path crosses a many-to-many or reverse relation: an item may
        have any number of values.
    """

    text: str
    lookup: str
    multi_valued: bool


@dataclass(frozen=True)
class FieldSpec:
    """One feature block: a text or categorical path and its weight."""

    kind: str
    path: FieldPath
    weight: float


@dataclass(frozen=True)
class TextOptions:
    """TF-IDF vocabulary pruning of one model's text fields (scikit-learn's meaning).

    ``min_df``/``max_df``: an int is a number of items, a float a fraction of
    the items; a word is kept when ``min_df <= df <= max_df``.
    """

    min_df: int | float = 1
    max_df: int | float = 1.0
    stop_words: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ModelFeatures:
    """The features declared for one item model."""

    model: type[models.Model]
    label: str
    fields: tuple[FieldSpec, ...]
    text_options: TextOptions

    def of_kind(self, kind: str) -> tuple[FieldSpec, ...]:
        return tuple(spec for spec in self.fields if spec.kind == kind)


def resolve_path(model: type[models.Model], path: str, *, kind: str) -> FieldPath:
    """Resolve a dotted ``path`` of ``model`` for a feature of ``kind``.

    Raises
    ------
    FeatureConfigError
        A step that is not a field or relation, a step after a plain field,
        or a text path that does not end on a text field (E043 for text,
        E044 for categorical).
    """
    code = "E043" if kind == "text" else "E044"
    label = model._meta.label
    if not isinstance(path, str) or not path.strip():
        raise FeatureConfigError(
            f"ITEM_FEATURES[{label!r}][{kind!r}] has the path {path!r}; a path is a non-empty text",
            code, 'Name a field, e.g. "name", or a dotted path such as "brand.name".',
        )
    parts = path.replace("__", ".").split(".")
    current = model
    multi = False
    field = None
    for position, part in enumerate(parts):
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            choices = ", ".join(sorted(
                f.name for f in current._meta.get_fields() if not f.auto_created or f.concrete
            ))
            raise FeatureConfigError(
                f"ITEM_FEATURES[{label!r}][{kind!r}]: {path!r} does not resolve: "
                f"{current._meta.label} has no field {part!r}",
                code, f"Fields of {current._meta.label}: {choices}.",
            ) from None
        last = position == len(parts) - 1
        if field.is_relation:
            multi = multi or bool(field.many_to_many or field.one_to_many)
            if field.related_model is None:  # a generic foreign key
                raise FeatureConfigError(
                    f"ITEM_FEATURES[{label!r}][{kind!r}]: {path!r} crosses the generic relation "
                    f"{part!r}, which a query cannot follow",
                    code, "Use a field or a foreign key / many-to-many path.",
                )
            if not last:
                current = field.related_model
        elif not last:
            raise FeatureConfigError(
                f"ITEM_FEATURES[{label!r}][{kind!r}]: {path!r} does not resolve: "
                f"{part!r} is a plain field of {current._meta.label}, not a relation",
                code, "Only relations (foreign keys, many-to-many) can be followed with a dot.",
            )
    if kind == "text" and (field.is_relation or not isinstance(field, TEXT_FIELD_TYPES)):
        raise FeatureConfigError(
            f"ITEM_FEATURES[{label!r}]['text']: {path!r} ends on {type(field).__name__} "
            f"{field.name!r}, not on a text field",
            code, "Text paths end on a CharField or TextField, e.g. \"brand.name\"; "
            "put relations and codes under 'categorical'.",
        )
    return FieldPath(text=path, lookup="__".join(parts), multi_valued=multi)


def _weight(label: str, kind: str, path, weight) -> float:
    numeric = isinstance(weight, (int, float)) and not isinstance(weight, bool)
    if not numeric or not math.isfinite(weight) or weight <= 0:
        raise FeatureConfigError(
            f"ITEM_FEATURES[{label!r}][{kind!r}][{path!r}] is {weight!r}; a weight is a "
            "finite number > 0",
            "E045", "Give each field a weight such as 1.0 (remove a field to switch it off).",
        )
    return float(weight)


def _text_options(label: str, entry: dict) -> TextOptions:
    def bad(option: str, expected: str):
        return FeatureConfigError(
            f"ITEM_FEATURES[{label!r}][{option!r}] is {entry[option]!r}; expected {expected}",
            "E046", "min_df and max_df: an item count (int) or a fraction in (0, 1]; "
            "stop_words: a list of words.",
        )

    values = {}
    for option in ("min_df", "max_df"):
        if option not in entry:
            continue
        value = entry[option]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(option, "an int >= 1 or a float in (0, 1]")
        if isinstance(value, int) and value < 1:
            raise bad(option, "an int >= 1 or a float in (0, 1]")
        if isinstance(value, float) and not 0.0 < value <= 1.0:
            raise bad(option, "an int >= 1 or a float in (0, 1]")
        values[option] = value
    stop_words = entry.get("stop_words", ())
    if isinstance(stop_words, str) or not all(isinstance(w, str) for w in stop_words or ()):
        raise bad("stop_words", "a list of words")
    return TextOptions(
        min_df=values.get("min_df", 1),
        max_df=values.get("max_df", 1.0),
        stop_words=frozenset(word.lower() for word in stop_words or ()),
    )


def _parse_entry(label: str, entry) -> ModelFeatures:
    from ..items import item_models

    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        raise FeatureConfigError(
            f"DJANGO_RECS['ITEM_FEATURES'] names {label!r}, which is not an installed model",
            "E041", 'Use "app_label.ModelName" of a model listed in ITEM_MODELS.',
        ) from None
    concrete = model._meta.concrete_model
    try:
        known = [m._meta.concrete_model for m in item_models()]
    except (LookupError, ValueError):
        known = []  # reported by django_recs.E002
    if concrete not in known:
        raise FeatureConfigError(
            f"DJANGO_RECS['ITEM_FEATURES'] names {label!r}, which is not in ITEM_MODELS",
            "E041", f"Add {label!r} to ITEM_MODELS, or remove its ITEM_FEATURES entry.",
        )
    if not isinstance(entry, dict):
        raise FeatureConfigError(
            f"DJANGO_RECS['ITEM_FEATURES'][{label!r}] must be a dict, got {type(entry).__name__}",
            "E040", 'e.g. {"text": {"name": 1.0}, "categorical": {"category": 1.0}}',
        )
    unknown = sorted(set(entry) - set(KNOWN_KEYS))
    if unknown:
        raise FeatureConfigError(
            f"DJANGO_RECS['ITEM_FEATURES'][{label!r}] has unknown key(s) {', '.join(unknown)}",
            "E042", f"Known keys: {', '.join(KNOWN_KEYS)}.",
        )
    fields = []
    for kind in FEATURE_KINDS:
        declared = entry.get(kind, {})
        if not isinstance(declared, dict):
            raise FeatureConfigError(
                f"DJANGO_RECS['ITEM_FEATURES'][{label!r}][{kind!r}] must be a dict of "
                f"path -> weight, got {type(declared).__name__}",
                "E040", f'e.g. "{kind}": {{"name": 1.0}}',
            )
        for path, weight in declared.items():
            resolved = resolve_path(concrete, path, kind=kind)
            fields.append(FieldSpec(kind, resolved, _weight(label, kind, path, weight)))
    if not fields:
        raise FeatureConfigError(
            f"DJANGO_RECS['ITEM_FEATURES'][{label!r}] declares no text or categorical field",
            "E040", 'Declare at least one, e.g. "text": {"name": 1.0}.',
        )
    return ModelFeatures(
        model=concrete,
        label=concrete._meta.label,
        fields=tuple(fields),
        text_options=_text_options(label, entry),
    )


def _entries() -> dict:
    configured = recs_settings.ITEM_FEATURES
    if configured is None:
        return {}
    if not isinstance(configured, dict):
        raise FeatureConfigError(
            "DJANGO_RECS['ITEM_FEATURES'] must be a dict of model label -> features, got "
            f"{type(configured).__name__}",
            "E040", 'e.g. {"shop.Product": {"text": {"name": 1.0}}}',
        )
    return configured


def feature_config_errors() -> list[FeatureConfigError]:
    """Every problem of the ITEM_FEATURES setting (empty when it is usable)."""
    try:
        entries = _entries()
    except FeatureConfigError as error:
        return [error]
    errors = []
    for label, entry in entries.items():
        try:
            _parse_entry(label, entry)
        except FeatureConfigError as error:
            errors.append(error)
    return errors


def configured_features() -> list[ModelFeatures]:
    """The parsed ITEM_FEATURES entries, in ITEM_MODELS order.

    Raises
    ------
    FeatureConfigError
        The first problem of the setting (``manage.py check`` lists them all).
    """
    from ..items import item_models

    parsed = {}
    for label, entry in _entries().items():
        features = _parse_entry(label, entry)
        parsed[features.model] = features
    order = [m._meta.concrete_model for m in item_models()]
    return [parsed[model] for model in order if model in parsed]


def features_of_model(model: type[models.Model]) -> ModelFeatures | None:
    """The features declared for ``model`` (or its concrete model), or None.

    A multi-table child without an entry of its own has its nearest
    parent's (:func:`~django_recs.items.pk_chain`): a Book is described as
    the Product it is.
    """
    from ..items import pk_chain

    by_label = {label.lower(): (label, entry) for label, entry in _entries().items()
                if isinstance(label, str)}
    for owner in pk_chain(model):
        if owner._meta.label_lower in by_label:
            return _parse_entry(*by_label[owner._meta.label_lower])
    return None


def family_features(model: type[models.Model]) -> list[ModelFeatures]:
    """The entries of every featured model keyed like ``model``, the most specific first.

    ``model``'s items share their content type with the other models of its
    family (a parent and its children in ITEM_MODELS, see
    :class:`~django_recs.items.ItemFamily`); each item is described by the
    first of these it is an instance of (a Book by Book's entry, another
    Product by Product's). Empty when none is featured.
    """
    from ..items import item_root

    root = item_root(model)
    return by_specificity([f for f in configured_features() if item_root(f.model) is root])


def by_specificity(features: list[ModelFeatures]) -> list[ModelFeatures]:
    """``features`` with children before their parents (stable otherwise)."""
    from ..items import pk_chain

    return sorted(features, key=lambda f: -len(pk_chain(f.model)))


def feature_algorithm_names() -> list[str]:
    """The ALGORITHMS names whose class uses item features (ContentKNN, Hybrid, subclasses)."""
    from ..registry import AlgorithmConfigError, algorithm_class, algorithm_names

    names = []
    for name in algorithm_names():  # none while ALGORITHMS is no dict (E030)
        try:
            cls = algorithm_class(name)
        except AlgorithmConfigError:  # reported by django_recs.E030-E031
            continue
        if getattr(cls, "uses_item_features", False):
            names.append(name)
    return names


def content_fallback_algorithm(*, exclude: str | None = None) -> str | None:
    """The algorithm whose content neighbours the serving fallbacks use, or None.

    CONTENT_FALLBACK names it; None picks the first configured algorithm
    that uses item features; False switches the fallback off. ``exclude``
    (the algorithm a list is already served from) is never returned.
    """
    setting = recs_settings.CONTENT_FALLBACK
    if setting is False or not recs_settings.ITEM_FEATURES:
        return None
    if setting is None:
        candidates = feature_algorithm_names()
    else:
        from ..registry import algorithm_names

        candidates = [setting] if isinstance(setting, str) and setting in algorithm_names() \
            else []
    for name in candidates:
        if name != exclude:
            return name
    return None


def content_setting_errors() -> list[FeatureConfigError]:
    """E047: a content algorithm without ITEM_FEATURES; E048: a bad CONTENT_FALLBACK."""
    errors = []
    users = feature_algorithm_names()
    if users and not recs_settings.ITEM_FEATURES:
        errors.append(FeatureConfigError(
            f"DJANGO_RECS['ALGORITHMS'] configures {', '.join(map(repr, users))}, which use item "
            "features, but ITEM_FEATURES is empty: they would find no neighbours",
            "E047", 'Declare ITEM_FEATURES, e.g. {"shop.Product": {"text": {"name": 1.0}}}.',
        ))
    setting = recs_settings.CONTENT_FALLBACK
    if setting is not None and setting is not False and (
            not isinstance(setting, str) or setting not in users):
        errors.append(FeatureConfigError(
            f"DJANGO_RECS['CONTENT_FALLBACK'] is {setting!r}, which is not a configured "
            "algorithm using item features",
            "E048", "Name an ALGORITHMS entry of ContentKNN or Hybrid, None (the first one) "
            "or False (no content fallback).",
        ))
    return errors
