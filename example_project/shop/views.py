"""The shop's pages. Recommendations come from the templates' {% load recs %} tags;
the views only record what visitors do (django_recs.record_view) and take orders,
whose lines become purchases through the SOURCES setting."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_page
from django.views.decorators.http import require_POST

import django_recs

from .basket import Basket
from .models import Order, OrderLine, Product


def product_list(request):
    products = Product.objects.all()
    query = request.GET.get("q", "").strip()
    if query:
        products = products.filter(name__icontains=query)
    page = Paginator(products, 24).get_page(request.GET.get("page"))
    return render(request, "shop/product_list.html", {"page": page, "query": query})


def product_detail(request, pk):
    product = get_object_or_404(Product, pk=pk)
    django_recs.record_view(request, product)
    return render(request, "shop/product_detail.html", {"product": product})


@cache_page(60 * 15)
def product_cached(request, pk):
    """The product page as a full-page cache keeps it: one copy for every visitor.

    The page reads neither the session nor the user, so the copy is shared;
    its lists are filled in the browser by django_recs/recs.js from the JSON
    endpoints, each for the visitor who sees it.
    """
    product = get_object_or_404(Product, pk=pk)
    return render(request, "shop/product_cached.html", {"product": product})


@require_POST
def add_to_basket(request, pk):
    product = get_object_or_404(Product, pk=pk)
    Basket(request).add(product)
    django_recs.record_view(request, product, "cart")
    messages.success(request, f"{product} is in your basket.")
    return redirect("basket")


def basket(request):
    lines = Basket(request).items()
    total = sum(product.price * quantity for product, quantity in lines)
    return render(request, "shop/basket.html", {"lines": lines, "total": total,
                                                "products": [product for product, _ in lines]})


@login_required
@require_POST
def checkout(request):
    basket = Basket(request)
    lines = basket.items()
    if not lines:
        return redirect("basket")
    with transaction.atomic():
        order = Order.objects.create(customer=request.user)
        for product, quantity in lines:
            # Each saved line is recorded as a purchase (DJANGO_RECS["SOURCES"]).
            OrderLine.objects.create(order=order, product=product, quantity=quantity,
                                     price=product.price)
    basket.clear()
    return redirect("order-detail", pk=order.pk)


@login_required
def order_detail(request, pk):
    order = get_object_or_404(Order, pk=pk, customer=request.user)
    return render(request, "shop/order_detail.html", {"order": order})
