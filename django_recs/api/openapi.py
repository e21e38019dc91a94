"""The OpenAPI 3 document of the endpoints, served at ``openapi.json``.

Built from the settings when asked (the largest ``n``, the item models as
examples) and from the prefix the shop mounts the URLs under, so a client
generator or a tester (schemathesis) reads exactly what this server does.
The items' own fields are the shop's (API_SERIALIZER): the document shows
the default serializer's, and allows more.
"""

from __future__ import annotations

from .. import __version__
from ..feedback.impressions import PLACEMENT_MAX_LENGTH
from ..items import item_models
from .caching import api_max_age
from .errors import PROBLEM_CONTENT_TYPE
from .parameters import (
    DEFAULT_N,
    EXCLUDE_PATTERN,
    MAX_EXCLUDED,
    PLACEMENT_PATTERN,
    api_max_n,
    model_label,
)

__all__ = ["openapi_document"]

OPENAPI_VERSION = "3.0.3"


def openapi_document(prefix: str) -> dict:
    """The OpenAPI document of the endpoints mounted at ``prefix`` (``"/recs"``)."""
    labels = [model_label(model) for model in item_models()]
    example_model = labels[0] if labels else "shop.product"
    public = (
        "A public list: `Cache-Control: public, max-age=" f"{api_max_age()}` and an ETag; "
        "with `placement` it is logged as shown to this visitor and is private "
        "(`Cache-Control: private, no-store`, `Vary: Cookie`)."
    )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "django-recs",
            "version": __version__,
            "description": "Recommendation lists of the shop's items (docs/api.md).",
        },
        "servers": [{"url": prefix.rstrip("/") or "/"}],
        "paths": {
            "/similar/{model}/{pk}/": {
                "get": {
                    "operationId": "similar",
                    "summary": "Items similar to an item (customers who bought it also bought)",
                    "description": public,
                    "parameters": [
                        {"name": "model", "in": "path", "required": True,
                         "description": "The item's model, `app_label.model` (one of ITEM_MODELS: "
                                        f"{', '.join(labels) or 'none'})",
                         "schema": {"type": "string", "example": example_model}},
                        {"name": "pk", "in": "path", "required": True,
                         "description": "The item's primary key",
                         "schema": {"type": "string", "example": "1"}},
                        *_list_parameters(),
                    ],
                    "responses": _list_responses(public=True),
                },
            },
            "/recommended/": {
                "get": {
                    "operationId": "recommended",
                    "summary": "Items recommended to the visitor of the request (account or session)",
                    "description": "A personal list: `Cache-Control: private, no-store`, "
                                   "`Vary: Cookie`.",
                    "parameters": [_model_parameter(example_model), *_list_parameters()],
                    "responses": _list_responses(public=False),
                },
            },
            "/popular/": {
                "get": {
                    "operationId": "popular",
                    "summary": "The most popular items",
                    "description": public,
                    "parameters": [_model_parameter(example_model), *_list_parameters()],
                    "responses": _list_responses(public=True),
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "The OpenAPI document",
                                          "content": {"application/json": {
                                              "schema": {"type": "object"}}}}},
                },
            },
        },
        "components": {"schemas": _schemas()},
    }


def _model_parameter(example: str) -> dict:
    return {"name": "model", "in": "query", "required": False,
            "description": "The item model of the list, `app_label.model`; default the first of "
                           "ITEM_MODELS",
            "schema": {"type": "string", "example": example}}


def _list_parameters() -> list[dict]:
    return [
        {"name": "n", "in": "query", "required": False, "description": "How many items",
         "schema": {"type": "integer", "minimum": 1, "maximum": api_max_n(),
                    "default": DEFAULT_N}},
        {"name": "exclude", "in": "query", "required": False,
         "description": "Primary keys of items never to list (the page's own, another "
                        "list's): integers or UUIDs, repeated or comma-separated; a key that "
                        "no item of the list's model has excludes nothing",
         "style": "form", "explode": True,
         "schema": {"type": "array", "maxItems": MAX_EXCLUDED,
                    "items": {"type": "string", "pattern": EXCLUDE_PATTERN}}},
        {"name": "placement", "in": "query", "required": False,
         "description": "Where the page shows the list: it is logged there as an impression "
                        "(IMPRESSIONS) and its items carry click tokens",
         "schema": {"type": "string", "minLength": 1, "maxLength": PLACEMENT_MAX_LENGTH,
                    "pattern": PLACEMENT_PATTERN}},
    ]


def _list_responses(*, public: bool) -> dict:
    problem = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    headers = {"Cache-Control": {"schema": {"type": "string"}}}
    if public:
        headers["ETag"] = {"description": "Present on a public list", "schema": {"type": "string"}}
    responses = {
        "200": {"description": "The list, best first", "headers": headers,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/List"}}}},
        "400": {"description": "A bad `n`, `exclude` or `placement`", "content": problem},
        "404": {"description": "An unknown item model or item", "content": problem},
    }
    if public:
        responses["304"] = {"description": "Not modified: the list of the If-None-Match ETag",
                            "headers": headers}
    return responses


def _schemas() -> dict:
    pk = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
    return {
        "List": {
            "type": "object",
            "required": ["model", "placement", "impression", "items"],
            "properties": {
                "model": {"type": "string", "description": "`app_label.model` of the items"},
                "placement": {"type": "string", "nullable": True},
                "impression": {"type": "string", "nullable": True,
                               "description": "The id of the list's impression when it was "
                                              "logged"},
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Entry"}},
            },
        },
        "Entry": {
            "type": "object",
            "required": ["item", "score", "source", "reason", "token"],
            "properties": {
                "item": {"$ref": "#/components/schemas/Item"},
                "score": {"type": "number"},
                "source": {"type": "string", "nullable": True,
                           "description": "Which source of the list proposed the item "
                                          "(`similar`, `personal`, `popular`, …)"},
                "reason": {"type": "object", "nullable": True,
                           "description": "The item of the visitor's history that led to it",
                           "required": ["pk", "name"],
                           "properties": {"pk": pk, "name": {"type": "string"}}},
                "token": {"type": "string", "nullable": True,
                          "description": "The click token: POST it to `click/` as `token` "
                                         "when the item is followed"},
            },
        },
        "Item": {
            "type": "object",
            "description": "What API_SERIALIZER returns; by default these fields",
            "properties": {"pk": pk, "name": {"type": "string"},
                           "url": {"type": "string", "nullable": True}},
            "additionalProperties": True,
        },
        "Problem": {
            "type": "object",
            "required": ["title", "status", "detail"],
            "properties": {
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "parameter": {"type": "string"},
            },
        },
    }
