from django.contrib import admin

from .models import Gadget, Product

admin.site.register(Product)
admin.site.register(Gadget)
