"""The test shop's URLs with django_recs's mounted at recs/ (the API tests)."""

from django.urls import include, path

from tests.testapp.urls import urlpatterns as shop_urlpatterns

urlpatterns = [
    *shop_urlpatterns,
    path("recs/", include("django_recs.urls")),
]
