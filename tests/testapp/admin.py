from django.contrib import admin

from .models import Article, Gadget, Product

admin.site.register(Product)
admin.site.register(Gadget)
admin.site.register(Article)
