"""Views of the test shop: a product page that records a view, and a login."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404

import django_recs

from .models import Product


def product_detail(request, pk):
    product = get_object_or_404(Product, pk=pk)
    if request.session.session_key is None:
        request.session.save()  # an anonymous visitor gets a key to record under
    django_recs.record(request.user, product, "view", session_key=request.session.session_key)
    return HttpResponse(product.name)
