"""Errors as JSON: an ``application/problem+json`` body (RFC 9457) with the right status.

``{"title": "Bad Request", "status": 400, "detail": "n must be ...", "parameter": "n"}``
"""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpResponse

__all__ = ["PROBLEM_CONTENT_TYPE", "ApiError", "problem_response"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApiError(Exception):
    """A request the API answers with an error: its status, what is wrong, which parameter."""

    def __init__(self, status: int, detail: str, *, parameter: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.parameter = parameter


def problem_response(status: int, detail: str, *, parameter: str | None = None,
                     headers: dict | None = None) -> HttpResponse:
    """An ``application/problem+json`` response of ``status`` saying ``detail``."""
    body = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    if parameter is not None:
        body["parameter"] = parameter
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE,
                            headers=headers)
    # An error is about this request: no cache keeps it (a 404 of an item added later).
    response["Cache-Control"] = "no-store"
    return response
