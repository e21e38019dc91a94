from django.apps import AppConfig


class ContentShopConfig(AppConfig):
    name = "tests.content_shop"
    label = "content_shop"
    default_auto_field = "django.db.models.BigAutoField"
