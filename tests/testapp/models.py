"""A small shop for the tests: integer-keyed products, UUID-keyed gadgets,
orders with lines, reviews and wishlists (the kinds of SOURCES a shop has)."""

import uuid

from django.conf import settings
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    in_stock = models.BooleanField(default=True)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=1)

    def __str__(self):
        return self.name


class Gadget(models.Model):
    """An item model with a UUID primary key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)

    def __str__(self):
        return self.name


class NotAnItem(models.Model):
    name = models.CharField(max_length=200)


class Order(models.Model):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)
    paid = models.BooleanField(default=False)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, related_name="lines", on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.PositiveIntegerField(default=1)


class Review(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    stars = models.PositiveSmallIntegerField()


class Wishlist(models.Model):
    """Gadgets a customer keeps for later, through WishlistEntry (m2m .add() records too)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    gadgets = models.ManyToManyField(Gadget, through="WishlistEntry", related_name="wishlists")


class WishlistEntry(models.Model):
    wishlist = models.ForeignKey(Wishlist, on_delete=models.CASCADE, null=True)
    gadget = models.ForeignKey(Gadget, on_delete=models.CASCADE)
    added = models.DateTimeField(auto_now_add=True)


class CartLine(models.Model):
    """A basket line of a visitor, signed in or not (a source with a session key)."""

    session_key = models.CharField(max_length=40, blank=True, default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.PositiveIntegerField(default=1)


class Variant(models.Model):
    """A size or colour of a product: order lines name it, recommendations its product."""

    product = models.ForeignKey(Product, related_name="variants", on_delete=models.CASCADE)
    name = models.CharField(max_length=100)


class VariantLine(models.Model):
    """An order line of a shop selling variants (a source whose item is a function)."""

    order = models.ForeignKey(Order, related_name="variant_lines", on_delete=models.CASCADE)
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.SET_NULL)
    quantity = models.PositiveIntegerField(default=1)


class PosterQuerySet(models.QuerySet):
    def browsable(self):
        """What the shop shows: published posters."""
        return self.filter(published=True)


class Poster(models.Model):
    """An item model whose shop hides unpublished items (ITEM_QUERYSETS)."""

    name = models.CharField(max_length=200)
    published = models.BooleanField(default=True)

    objects = PosterQuerySet.as_manager()

    def __str__(self):
        return self.name


class Page(models.Model):
    """A CMS page: the integer-keyed root of multi-table inheritance (a news site's page types)."""

    title = models.CharField(max_length=200)
    published = models.BooleanField(default=True)

    def __str__(self):
        return self.title


class Article(Page):
    """A page type: a multi-table child of Page, primary key ``page_ptr``."""

    body = models.TextField(blank=True, default="")
    section = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="articles")


class LiveArticle(Article):
    """Two levels down: primary key ``article_ptr``, a link to Article's ``page_ptr``."""

    updates = models.PositiveIntegerField(default=0)


class Event(Page):
    """Another page type: a sibling of Article under Page."""

    venue = models.CharField(max_length=200, blank=True, default="")


class FrontPageArticle(Article):
    """A proxy of an inheritance child: keyed as Page, like the Article it is."""

    class Meta:
        proxy = True


class Asset(models.Model):
    """A media asset: the UUID-keyed root of multi-table inheritance."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)

    def __str__(self):
        return self.name


class Video(Asset):
    """A multi-table child of Asset, primary key ``asset_ptr`` (a UUID)."""

    minutes = models.PositiveIntegerField(default=1)


class Trailer(Video):
    """Two levels down from the UUID root."""

    film = models.CharField(max_length=200, blank=True, default="")


class ArticleRead(models.Model):
    """A reader finished an article (a source whose item is an inheritance child)."""

    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    article = models.ForeignKey(Article, on_delete=models.CASCADE)
