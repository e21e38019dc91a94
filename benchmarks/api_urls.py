"""bench_api.py's URLs: the API, and pages rendering the same lists with the template tags."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template import RequestContext, Template
from django.urls import include, path

from tests.testapp.models import Product

SIMILAR = Template(
    "{% load recs %}{% similar_items product 10 placement='bench' as items %}"
    "<ul>{% for p in items %}<li><a href='{{ p|recs_click_url:'/p/' }}'>{{ p }}</a></li>"
    "{% endfor %}</ul>")
RECOMMENDED = Template(
    "{% load recs %}{% recommended_for request.user 10 placement='bench' as items %}"
    "<ul>{% for p in items %}<li><a href='{{ p|recs_click_url:'/p/' }}'>{{ p }}</a></li>"
    "{% endfor %}</ul>")


def similar_page(request, pk):
    product = get_object_or_404(Product, pk=pk)
    return HttpResponse(SIMILAR.render(RequestContext(request, {"product": product})))


def recommended_page(request):
    return HttpResponse(RECOMMENDED.render(RequestContext(request, {})))


urlpatterns = [
    path("recs/", include("django_recs.urls")),
    path("tag/similar/<int:pk>/", similar_page),
    path("tag/recommended/", recommended_page),
]
