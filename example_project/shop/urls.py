from django.urls import path

from . import views

urlpatterns = [
    path("", views.product_list, name="product-list"),
    path("products/<int:pk>/", views.product_detail, name="product-detail"),
    path("products/<int:pk>/cached/", views.product_cached, name="product-cached"),
    path("basket/", views.basket, name="basket"),
    path("basket/add/<int:pk>/", views.add_to_basket, name="basket-add"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
]
