"""django_recs's URLs: ``path("recs/", include("django_recs.urls"))`` in the project's urls.py.

- ``click/`` (name ``django_recs:click``): the click beacon (docs/feedback.md);
- ``similar/<app_label>.<model>/<pk>/`` (``django_recs:similar``),
  ``recommended/`` (``django_recs:recommended``), ``popular/``
  (``django_recs:popular``): the lists as JSON; ``openapi.json``
  (``django_recs:openapi``): their OpenAPI document (docs/api.md).
"""

from django.urls import path

from .api import views as api
from .feedback.views import click_beacon

app_name = "django_recs"

urlpatterns = [
    path("click/", click_beacon, name="click"),
    path("similar/<str:model>/<str:pk>/", api.similar, name="similar"),
    path("recommended/", api.recommended, name="recommended"),
    path("popular/", api.popular, name="popular"),
    path("openapi.json", api.openapi, name="openapi"),
]
