"""ClickMiddleware: the click a recommended item's link carries, recorded on the item's page.

Add it after Django's session and authentication middleware::

    MIDDLEWARE = [
        ...,
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django_recs.feedback.middleware.ClickMiddleware",
    ]

A request whose query string has ``recs_click=<token>`` (the links of the
``recs_click_url`` filter) records that click once the view has answered
with a success (below 400: a 404 for an item gone is no click). Anything
wrong with the token records nothing; the page is never affected.
"""

from __future__ import annotations

from .clicks import CLICK_PARAMETER, record_click

__all__ = ["ClickMiddleware"]


class ClickMiddleware:
    """Records ``?recs_click=<token>`` clicks after the view (see the module's docs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "GET" and CLICK_PARAMETER in request.GET \
                and response.status_code < 400:
            record_click(request, request.GET[CLICK_PARAMETER])
        return response
