"""System checks: misconfiguration is reported by ``manage.py check``.

Ids are stable; each error carries a hint. E0NN are errors, W0NN warnings.
"""

from __future__ import annotations

from django.core import checks

from .conf import recs_settings


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

    from .items import SUPPORTED_PK_TYPES

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
        if not isinstance(model._meta.pk, SUPPORTED_PK_TYPES):
            errors.append(
                checks.Error(
                    f"{label}'s primary key is a {type(model._meta.pk).__name__}; "
                    "django_recs supports integer and UUID primary keys.",
                    hint="Recommend a model with an integer or UUID primary key.",
                    id="django_recs.E003",
                )
            )
    return errors
