"""Celery: a Redis worker when CELERY_BROKER_URL is set, else tasks run in-process.

    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 .venv/bin/celery -A shop_site --workdir example_project worker -l info

(from the repository root; see example_project/README.md).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")

app = Celery("shop_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
