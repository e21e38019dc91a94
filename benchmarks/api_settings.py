"""Settings of benchmarks/bench_api.py's server: the test shop, its API and two tag pages."""

from tests.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "benchmarks.api_urls"
DJANGO_RECS = {"ITEM_MODELS": ["testapp.Product"], "NUM_THREADS": 1,
               "EVENTS": {"view": 1.0, "purchase": 5.0, "click": 0.5},
               "IMPRESSIONS": True, "IMPRESSION_FLUSH_SECONDS": 1.0}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "loggers": {"django_recs": {"level": "ERROR"}}}
# Connections kept across requests, as in production.
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
