"""manage.py load_shop_data: load the Online Retail sample into an empty shop."""

from django.core.management.base import BaseCommand, CommandError

from shop.catalog import load_sample
from shop.models import Product


class Command(BaseCommand):
    help = "Load the Online Retail sample (products, customers, orders)."

    def handle(self, *args, **options):
        if Product.objects.exists():
            raise CommandError("The shop already has products.")
        counts = load_sample()
        self.stdout.write(", ".join(f"{v:,} {k}" for k, v in counts.items()))
