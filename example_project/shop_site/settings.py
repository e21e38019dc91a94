"""Settings of the example shop (development only: DEBUG, a fixed secret key).

The database is SQLite (example_project/db.sqlite3, or EXAMPLE_DB_PATH), or
DATABASE_URL=postgres://... . Celery uses Redis when CELERY_BROKER_URL is
set; otherwise tasks run in the web process, so ``make demo`` needs no
service.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-recs-example-shop-not-secret"
DEBUG = os.environ.get("EXAMPLE_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_recs",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Records the click a recommended item's link carries (?recs_click=...).
    "django_recs.feedback.middleware.ClickMiddleware",
]

ROOT_URLCONF = "shop_site.urls"
WSGI_APPLICATION = "shop_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project templates first: templates/django_recs/item_list.html overrides the app's.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.basket",
            ]
        },
    }
]


def _database() -> dict:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parsed = urlparse(url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            # As docs/serving.md recommends: persistent connections and the
            # recommendation lists' statements prepared, with generic plans.
            "CONN_MAX_AGE": 600,
            "OPTIONS": {
                "prepare_threshold": 5,
                "options": "-c plan_cache_mode=force_generic_plan",
            },
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB_PATH", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"timeout": 30},
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_TZ = True
STATIC_URL = "/static/"
# Files of runs (ALS item factors for fold-in) are kept in the media storage.
MEDIA_ROOT = os.environ.get("EXAMPLE_MEDIA_ROOT", str(BASE_DIR / "media"))
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "product-list"
LOGOUT_REDIRECT_URL = "product-list"

# Celery: a real worker on Redis when a broker is configured, else in-process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# With a worker and beat: recommendations every night, the lists' daily numbers every
# 10 minutes (without them, manage.py recs_rollup does the roll-up).
CELERY_BEAT_SCHEDULE = {
    "recompute-recommendations": {"task": "django_recs.recompute",
                                  "schedule": crontab(hour=3, minute=0)},
    "roll-up-feedback": {"task": "django_recs.roll_up_feedback",
                         "schedule": crontab(minute="*/10")},
}

DJANGO_RECS = {
    "ITEM_MODELS": ["shop.Product"],
    "EVENTS": {"view": 1.0, "cart": 3.0, "purchase": 5.0, "click": 0.5},
    # Every order line is a purchase of its product by the order's customer, worth
    # its price times its quantity to the list it is attributed to.
    "SOURCES": [
        {
            "model": "shop.OrderLine",
            "event": "purchase",
            "user": "order.customer",
            "item": "product",
            "timestamp": "order.created",
            "value": "price * quantity",
        }
    ],
    # Every list shown is logged at its placement; clicks on its items (also "click"
    # interactions) and the purchases they lead to are counted per list (docs/feedback.md).
    "IMPRESSIONS": True,
    "CLICK_EVENT": "click",
    "CONVERSION_EVENTS": ["purchase"],
    "EXCLUDE_SEEN": ["purchase"],
    "ALGORITHMS": {
        "similar": {"class": "django_recs.algorithms.ItemKNN", "k": 30, "metric": "cosine"},
        "personal": {
            "class": "django_recs.algorithms.ALS",
            "factors": 32,
            "iterations": 12,
            "regularization": 0.05,
            "alpha": 5.0,
        },
        "popular": {"class": "django_recs.algorithms.Popular"},
    },
    # "Customers who bought this also bought" shows at most 2 of one kind.
    "CATEGORY": {"shop.Product": "category"},
    "MAX_PER_CATEGORY": 2,
    "NUM_THREADS": 0,
}
