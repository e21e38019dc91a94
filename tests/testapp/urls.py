from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("products/<int:pk>/", views.product_detail, name="product-detail"),
    path("login/", LoginView.as_view(template_name="admin/login.html"), name="login"),
]
