from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoRecsConfig(AppConfig):
    name = "django_recs"
    label = "django_recs"
    verbose_name = _("Recommendations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import capture, checks, dispatch, experiments, feedback  # noqa: F401  (registers checks)
        from .content import signals as content_signals

        capture.connect_sources()
        content_signals.connect()
        dispatch.connect()
        feedback.connect()
        experiments.connect()
