"""Views of the test shop: a product page that records a view, and a login."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404

import django_recs

from .models import Product


def product_detail(request, pk):
    product = get_object_or_404(Product, pk=pk)
    django_recs.record_view(request, product)
    return HttpResponse(product.name)
