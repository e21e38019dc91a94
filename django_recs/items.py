"""Items: the models named in ITEM_MODELS, and how their keys are stored.

django_recs stores an item as (content type, key), the key being the text
form of its primary key: ``str(pk)`` for integer keys and ``uuid.hex`` for
UUID keys. The hex form is what Django stores for a UUIDField on SQLite and
MySQL and what PostgreSQL's uuid type accepts, so a stored key can be cast
back to the model's primary key inside SQL (see :func:`key_as_pk`).
"""

from __future__ import annotations

import uuid

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Cast

from .conf import recs_settings

SUPPORTED_PK_TYPES = (models.AutoField, models.BigAutoField, models.SmallAutoField,
                      models.IntegerField, models.UUIDField)


def item_models() -> list[type[models.Model]]:
    """The model classes of ITEM_MODELS (LookupError for an unknown label)."""
    return [apps.get_model(label) for label in recs_settings.ITEM_MODELS]


def is_item_model(model: type[models.Model]) -> bool:
    """True when ``model`` (or its concrete parent for a proxy) is in ITEM_MODELS."""
    concrete = model._meta.concrete_model
    return any(concrete is m._meta.concrete_model for m in item_models())


def item_content_type(model_or_obj) -> ContentType:
    """The ContentType of an item model (cached by Django)."""
    return ContentType.objects.get_for_model(model_or_obj, for_concrete_model=True)


def key_for_pk(model: type[models.Model], pk) -> str:
    """The stored key of primary key ``pk`` of ``model``."""
    if isinstance(model._meta.pk, models.UUIDField):
        return (pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk))).hex
    return str(int(pk))


def item_key(obj: models.Model) -> str:
    """The stored key of a saved item instance."""
    return key_for_pk(type(obj), obj.pk)


def pk_for_key(model: type[models.Model], key: str):
    """The primary key value a stored key stands for."""
    if isinstance(model._meta.pk, models.UUIDField):
        return uuid.UUID(hex=key)
    return int(key)


def key_as_pk(model: type[models.Model], expression):
    """An SQL expression turning a stored key column into ``model``'s pk type."""
    pk_field = model._meta.pk
    if isinstance(pk_field, models.UUIDField):
        return Cast(expression, output_field=models.UUIDField())
    return Cast(expression, output_field=models.BigIntegerField())
