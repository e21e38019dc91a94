"""Books with a description, a brand (publisher), a category and tags."""

import uuid

from django.db import models


class Brand(models.Model):
    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2, blank=True, default="")

    def __str__(self):
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self):
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.SET_NULL)
    category = models.ForeignKey(
        "testapp.Category", null=True, blank=True, on_delete=models.SET_NULL
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="books")
    pages = models.PositiveIntegerField(default=100)
    in_stock = models.BooleanField(default=True)

    def __str__(self):
        return self.title


class Poster(models.Model):
    """An item model with a UUID primary key and text only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    caption = models.CharField(max_length=200)

    def __str__(self):
        return self.caption
