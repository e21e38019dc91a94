"""Settings of the test suite.

The database comes from DATABASE_URL: SQLite when unset, postgres://... for
PostgreSQL, mysql://... for MySQL/MariaDB (optional). The Celery broker
comes from REDIS_URL (default redis://127.0.0.1:6379/15).
"""

import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "django-recs-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def database_from_url(url: str) -> dict:
    """A DATABASES entry from a URL (postgres://, mysql://, sqlite:///path)."""
    if not url:
        # A file, not :memory:, so a Celery worker process can share it.
        # Per process by default, so parallel test runs don't share a file;
        # a test that starts a worker passes its path on in the environment.
        default = Path(tempfile.gettempdir()) / f"django-recs-{os.getpid()}.sqlite3"
        name = os.environ.get("DJANGO_RECS_SQLITE_PATH", str(default))
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "TEST": {"NAME": name},
            "OPTIONS": {"timeout": 30},
        }
    parsed = urlparse(url)
    engines = {
        "postgres": "django.db.backends.postgresql",
        "postgresql": "django.db.backends.postgresql",
        "mysql": "django.db.backends.mysql",
        "sqlite": "django.db.backends.sqlite3",
    }
    if parsed.scheme not in engines:
        raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not one of {sorted(engines)}")
    if parsed.scheme == "sqlite":
        return {"ENGINE": engines["sqlite"], "NAME": parsed.path[1:] or ":memory:"}
    database = {
        "ENGINE": engines[parsed.scheme],
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # Lets runs in parallel use test databases of their own.
        "TEST": {"NAME": os.environ.get("DJANGO_RECS_TEST_DB_NAME") or None},
    }
    if parsed.scheme == "mysql":
        # What a shop on MySQL/MariaDB sets: 4-byte UTF-8 everywhere, and
        # local_infile so the bulk writes may use LOAD DATA LOCAL INFILE.
        database["OPTIONS"] = {"charset": "utf8mb4", "local_infile": 1}
        database["TEST"].update({"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"})
    return database


DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", ""))}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_recs",
    "tests.testapp",
    "tests.content_shop",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"
MEDIA_ROOT = os.environ.get("DJANGO_RECS_MEDIA_ROOT", str(BASE_DIR.parent / "build" / "test-media"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
# Unit tests run tasks in-process; tests/celery/ starts a real worker on Redis.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True

DJANGO_RECS = {
    "ITEM_MODELS": ["testapp.Product", "testapp.Gadget"],
    "EVENTS": {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0, "wishlist": 2.0},
    "NUM_THREADS": 1,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_recs": {"handlers": ["console"], "level": "WARNING"}},
}
