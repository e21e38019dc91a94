"""django_recs's URLs: ``path("recs/", include("django_recs.urls"))`` in the project's urls.py.

- ``click/`` (name ``django_recs:click``): the click beacon (docs/feedback.md).
"""

from django.urls import path

from .feedback.views import click_beacon

app_name = "django_recs"

urlpatterns = [
    path("click/", click_beacon, name="click"),
]
