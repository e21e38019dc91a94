"""A product page with a logged list, its links carrying click tokens (the feedback tests)."""

from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template import RequestContext, Template
from django.urls import include, path

import django_recs
from tests.testapp.models import Product

PAGE = Template(
    "{% load recs %}<h1>{{ product.name }}</h1>"
    "{% similar_items product 3 placement='product-also-bought' as also %}"
    "<ul id=also>{% for p in also %}{% url 'product-detail' p.pk as url %}"
    "<li><a href='{{ p|recs_click_url:url }}'>{{ p.name }}</a></li>{% endfor %}</ul>"
)


def product_page(request, pk):
    product = get_object_or_404(Product, pk=pk)
    if request.session.session_key is None:
        request.session.save()
    django_recs.record(request.user, product, "view", session_key=request.session.session_key)
    return HttpResponse(PAGE.render(RequestContext(request, {"product": product})))


urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", LoginView.as_view(template_name="admin/login.html"), name="login"),
    path("products/<int:pk>/", product_page, name="product-detail"),
    path("recs/", include("django_recs.urls")),
]
