"""A small gift shop: products, and customers' orders (each line a purchase)."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Product(models.Model):
    stock_code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    # A kind of product read from its name ("Bag", "Mug" ...). NULL, not "", when
    # unknown: MAX_PER_CATEGORY caps each category and leaves NULL uncapped.
    category = models.CharField(max_length=40, null=True, blank=True, db_index=True)  # noqa: DJ001

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("product-detail", args=[self.pk])


class Order(models.Model):
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="orders")
    created = models.DateTimeField(default=timezone.now)
    invoice = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"Order {self.invoice or self.pk}"

    @property
    def total(self):
        return sum(line.price * line.quantity for line in self.lines.all())


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=8, decimal_places=2)

    def __str__(self):
        return f"{self.quantity} x {self.product}"
