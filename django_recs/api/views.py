"""The endpoints: parse the request, call the public list functions, answer JSON.

Each list is read by ``django_recs.similar_to`` / ``django_recs.recommended_for``
(feedback's: given ``placement=`` and ``request=``, the list is logged as an
impression and its items get their click tokens) with the algorithms'
defaults; these views only validate, serialise and set the caching headers.
Only GET and HEAD are answered (405 otherwise); nothing is written but the
impression of a list asked with a placement.
"""

from __future__ import annotations

import functools

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from .. import feedback
from ..registry import algorithm_names
from .caching import etag_of, make_private, make_public, not_modified, not_modified_response
from .errors import ApiError, problem_response
from .openapi import openapi_document
from .parameters import ListRequest, item_model, item_of, list_request, model_label
from .serialisation import list_body, list_document

__all__ = ["openapi", "popular", "recommended", "similar"]

ALLOWED_METHODS = ("GET", "HEAD")


def endpoint(view):
    """Answer only GET and HEAD (405 with Allow), and an :class:`ApiError` as its problem.

    CSRF protection is off: nothing a GET does needs it, and any other
    method gets its 405 rather than a 403 page.
    """

    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in ALLOWED_METHODS:
            return problem_response(405, f"{request.method[:20]} is not allowed: use GET",
                                    headers={"Allow": ", ".join(ALLOWED_METHODS)})
        try:
            return view(request, *args, **kwargs)
        except ApiError as error:
            return problem_response(error.status, error.detail, parameter=error.parameter)

    return wrapped


@endpoint
def similar(request, model: str, pk: str) -> HttpResponse:
    """``similar/<app_label>.<model>/<pk>/``: items similar to that item."""
    item_class = item_model(model)
    item = item_of(item_class, pk)
    wanted = list_request(request.GET, item_class)
    items = feedback.similar_to(item, wanted.n, exclude=wanted.exclude,
                                placement=wanted.placement, request=request)
    return _list_response(request, items, wanted, public=wanted.placement is None,
                          identity=("similar", model_label(item_class), str(item.pk)))


@endpoint
def recommended(request) -> HttpResponse:
    """``recommended/``: items recommended to the request's visitor (account or session)."""
    wanted = list_request(request.GET, item_model(request.GET.get("model")))
    items = feedback.recommended_for(getattr(request, "user", None), wanted.n,
                                     model=wanted.model, exclude=wanted.exclude,
                                     placement=wanted.placement, request=request)
    return _list_response(request, items, wanted, public=False)


@endpoint
def popular(request) -> HttpResponse:
    """``popular/``: the most popular items, the same for every visitor."""
    wanted = list_request(request.GET, item_model(request.GET.get("model")))
    options = {}
    if "popular" in algorithm_names():
        options = {"algorithm": "popular", "popular_algorithm": "popular"}
    # No visitor (session_key=""): the list of nobody known is the popular items.
    items = feedback.recommended_for(None, wanted.n, model=wanted.model, exclude=wanted.exclude,
                                     placement=wanted.placement, request=request,
                                     session_key="", **options)
    return _list_response(request, items, wanted, public=wanted.placement is None,
                          identity=("popular", model_label(wanted.model)))


@endpoint
def openapi(request) -> HttpResponse:
    """``openapi.json``: the OpenAPI 3 document of these endpoints."""
    prefix = reverse(f"{request.resolver_match.namespace or 'django_recs'}:openapi")
    prefix = prefix.removesuffix("openapi.json")
    return JsonResponse(openapi_document(prefix))


def _list_response(request, items, wanted: ListRequest, *, public: bool,
                   identity: tuple = ()) -> HttpResponse:
    document = list_document(items, model_label=model_label(wanted.model),
                             placement=wanted.placement)
    body = list_body(document)
    if not public:
        return make_private(HttpResponse(body, content_type="application/json"))
    etag = etag_of((*identity, wanted.n, wanted.exclude_keys),
                   getattr(items, "recs_runs", None) or {}, body)
    if not_modified(request, etag):
        return not_modified_response(etag)
    return make_public(HttpResponse(body, content_type="application/json"), etag)
