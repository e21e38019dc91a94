"""The click beacon: ``POST recs/click/`` with ``token=<token>`` records that click.

For links that must keep their URL clean (a page cached for everyone, links
built in JavaScript): render the token in a ``data-recs-click`` attribute
(the ``recs_click_token`` filter) and include ``django_recs/clicks.js``,
which sends it with ``navigator.sendBeacon`` when the link is followed. The
answer is always 204 No Content, whatever the token: a page never waits for
it and learns nothing from it.

The view is exempt from CSRF protection: the token is signed and bound to
the visitor it was shown to, so a forged request can count no click that the
visitor did not get a link for, and a replay counts nothing more.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .clicks import record_click

__all__ = ["click_beacon"]


@csrf_exempt
@require_POST
def click_beacon(request) -> HttpResponse:
    """Record the click of the posted ``token``; always 204 (405 for another method)."""
    token = request.POST.get("token", "")
    if token:
        record_click(request, token)
    return HttpResponse(status=204)
