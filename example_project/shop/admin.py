from django.contrib import admin

from .models import Order, OrderLine, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "stock_code", "category", "price"]
    list_filter = ["category"]
    search_fields = ["name", "stock_code"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    raw_id_fields = ["product"]
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "created"]
    raw_id_fields = ["customer"]
    inlines = [OrderLineInline]
