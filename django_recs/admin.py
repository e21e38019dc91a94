"""Admin: interactions, runs (with "Recompute now") and the stored results.

Every changelist is read-only where it shows computed or captured data, and
resolves item and user names in bulk (no query per row).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format, number_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .models import (
    DailyFeedback,
    Experiment,
    Interaction,
    PlacementAlgorithm,
    PopularItem,
    Recommendation,
    RecommendationList,
    Run,
    SimilarItem,
    Variant,
)

# --- Interactions (capture) ---------------------------------------------------


class _EventFilter(admin.SimpleListFilter):
    """Events from the EVENTS setting (no SELECT DISTINCT over the whole table)."""

    title = _("event")
    parameter_name = "event"

    def lookups(self, request, model_admin):
        from .conf import recs_settings

        return [(name, name) for name in recs_settings.EVENTS]

    def queryset(self, request, queryset):
        return queryset.filter(event=self.value()) if self.value() else queryset


class _ReadOnlyItemsAdmin(admin.ModelAdmin):
    """Read-only rows naming their items: names and links resolved per page in bulk.

    ``item_fields`` lists the (content type, key) attribute pairs of a row
    whose items are named (see :class:`_NamedItemsChangeList`).
    """

    item_fields: tuple[tuple[str, str], ...] = (("item_type_id", "item_key"),)

    def item_pairs(self, row):
        """The (content type id, key) pairs of ``row`` whose names the page shows."""
        for type_field, key_field in self.item_fields:
            yield getattr(row, type_field), getattr(row, key_field)

    def get_changelist(self, request, **kwargs):
        return _NamedItemsChangeList

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @staticmethod
    def _label(row, type_id, key):
        name, url = getattr(row, "recs_labels", {}).get((type_id, key), (None, None))
        if name is None:
            return format_html("<i>{}</i>", f"{key} (deleted)") if key else "-"
        return format_html('<a href="{}">{}</a>', url, name) if url else name

    @admin.display(description=_("item"))
    def item_display(self, row):
        return self._label(row, row.item_type_id, row.item_key)


@admin.register(Interaction)
class InteractionAdmin(_ReadOnlyItemsAdmin):
    """Captured interactions, read-only, with item names and links (no query per row)."""

    # Short formats and headers: the table fits beside the admin's two sidebars at 1280 px.
    list_display = ("timestamp_display", "user", "session_display", "event", "weight",
                    "item_display", "source_display")
    list_filter = (_EventFilter, "timestamp")
    search_fields = ("user__username", "user__email", "=session_key")
    list_select_related = ("user",)
    ordering = ("-pk",)  # the primary key index: no sort of the whole table
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description=_("time"), ordering="timestamp")
    def timestamp_display(self, row):
        return _short_datetime(row.timestamp)

    @admin.display(description=_("session"))
    def session_display(self, row):
        return f"{row.session_key[:8]}…" if row.session_key else "-"

    @admin.display(description=_("source"))
    def source_display(self, row):
        if row.source_type_id is None:
            return "-"
        model = ContentType.objects.get_for_id(row.source_type_id).model_class()
        label = model._meta.verbose_name if model is not None else f"type {row.source_type_id}"
        return f"{label} #{row.source_key}"


# --- Runs and results (pipeline) ----------------------------------------------

#: Seconds between reloads of a run's page while it is pending or running.
RUN_PAGE_REFRESH_SECONDS = 2


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Runs, read-only, with "Recompute now" (POST, permission django_recs.run_recompute)."""

    # Short formats and headers: the table fits beside the admin's two sidebars at 1280 px
    # (the algorithm is in the run's name; rows read are on the run's page).
    list_display = ("run_display", "status", "active_display", "started_display",
                    "duration_display", "rows_written_display", "triggered_by")
    list_filter = ("algorithm", "status", "is_active")
    date_hierarchy = "created_at"
    change_list_template = "admin/django_recs/run/change_list.html"
    change_form_template = "admin/django_recs/run/change_form.html"
    fieldsets = (
        (None, {"fields": ("algorithm", "status", "served_display", "progress_display",
                           "triggered_by", "task_id")}),
        (_("Times"), {"fields": ("created_at", "started_at", "finished_at", "heartbeat_at",
                                 "duration_display", "timings_display")}),
        (_("Data"), {"fields": ("rows_read", "rows_written", "metrics_display",
                                "params_display", "artifacts")}),
        (_("Error"), {"fields": ("error_display",)}),
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    def get_urls(self):
        urls = [
            path("recompute/", self.admin_site.admin_view(self.recompute_view),
                 name="django_recs_run_recompute"),
        ]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        from .pipeline import fail_stale_runs
        from .registry import algorithm_names

        fail_stale_runs()  # a dead run shows failed, with its cause, even without the sweep
        extra_context = {
            **(extra_context or {}),
            "can_recompute": request.user.has_perm("django_recs.run_recompute"),
            "algorithm_names": algorithm_names(),
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from .feedback.admin_report import run_panel_context
        from .pipeline import fail_stale_runs

        run = self.get_object(request, object_id)
        in_flight = run is not None and run.status in (Run.Status.PENDING, Run.Status.RUNNING)
        if in_flight and fail_stale_runs(run.algorithm):
            # Its worker is gone: the page shows it failed and stops reloading.
            run = self.get_object(request, object_id)
            in_flight = run.status in (Run.Status.PENDING, Run.Status.RUNNING)
        extra_context = {
            **(extra_context or {}),
            "refresh_seconds": RUN_PAGE_REFRESH_SECONDS if in_flight else None,
            "feedback": run_panel_context(run) if run is not None else None,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def recompute_view(self, request):
        """POST: enqueue the recompute task and show the pending run(s)."""
        return require_POST(self._recompute)(request)

    def _recompute(self, request):
        from .dispatch import recompute

        if not request.user.has_perm("django_recs.run_recompute"):
            raise PermissionDenied
        names = [name for name in request.POST.getlist("algorithm") if name]
        try:
            runs = recompute(*names, triggered_by=f"admin:{request.user.get_username()}")
        except ValueError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:django_recs_run_changelist"))
        for run in runs:
            # An in-process (eager) task has already finished by now; a send that
            # failed has failed the run.
            run.refresh_from_db(fields=["status", "error", "created_at"])
            self.message_user(request, *_triggered_message(run))
        if len(runs) == 1:
            return HttpResponseRedirect(reverse("admin:django_recs_run_change", args=[runs[0].pk]))
        return HttpResponseRedirect(reverse("admin:django_recs_run_changelist"))

    @admin.display(description=_("run"), ordering="pk")
    def run_display(self, run):
        return f"{run.algorithm} #{run.pk}"

    @admin.display(description=_("active"), ordering="is_active")
    def active_display(self, run):
        # A tick for the served run only: an inactive run is no error (None shows "-").
        return _active_icon() if run.is_active else None

    @admin.display(description=_("served"))
    def served_display(self, run):
        if run.is_active:
            return format_html("{} {}", _active_icon(), _("yes: its rows are the ones served"))
        return _("no")

    @admin.display(description=_("started"), ordering="started_at")
    def started_display(self, run):
        return _short_datetime(run.started_at)

    @admin.display(description=_("rows"), ordering="rows_written")
    def rows_written_display(self, run):
        return number_format(run.rows_written, force_grouping=True)

    @admin.display(description=_("duration"))
    def duration_display(self, run):
        duration = run.duration
        return "-" if duration is None else f"{duration.total_seconds():.1f} s"

    @admin.display(description=_("progress"))
    def progress_display(self, run):
        bar = format_html(
            '<progress class="recs-progress" value="{}" max="1"></progress> {} {}%',
            f"{run.progress:.3f}", run.stage or "-", int(run.progress * 100),
        )
        if not run.waiting_for_worker:
            return bar
        message, _level = _triggered_message(run)
        return format_html('{} <strong class="recs-waiting">{}</strong>', bar, message)

    @admin.display(description=_("seconds per stage"))
    def timings_display(self, run):
        return _key_value_table(run.timings, lambda seconds: f"{seconds:.3f}")

    @admin.display(description=_("metrics"))
    def metrics_display(self, run):
        # Nested values (an evaluation's curves, baselines, grid) have their own panel.
        flat = {k: v for k, v in (run.metrics or {}).items() if not isinstance(v, dict | list)}
        return _key_value_table(flat)

    @admin.display(description=_("parameters"))
    def params_display(self, run):
        return _key_value_table(run.params)

    @admin.display(description=_("error"))
    def error_display(self, run):
        return format_html('<pre class="recs-error">{}</pre>', run.error) if run.error else "-"


def _triggered_message(run: Run) -> tuple[str, int]:
    """What staff read after "Recompute now" for one run, and the message level.

    "similar run #4 succeeded.", "… is pending.", "… is running.",
    "… failed: <the error's first line>", "… has been waiting 75 s for a
    Celery worker: is one running?".
    """
    link = format_html('{} run <a href="{}">#{}</a>', run.algorithm,
                       reverse("admin:django_recs_run_change", args=[run.pk]), run.pk)
    if run.status == Run.Status.FAILED:
        first_line = (run.error or "").splitlines()[0] if run.error else ""
        return format_html("{} failed: {}", link, first_line), messages.ERROR
    if run.waiting_for_worker:
        return format_html(
            "{} has been waiting {} s for a Celery worker: is one running?", link,
            int((timezone.now() - run.created_at).total_seconds()),
        ), messages.WARNING
    states = {Run.Status.PENDING: "is pending", Run.Status.RUNNING: "is running",
              Run.Status.SUCCEEDED: "succeeded"}
    return format_html("{} {}.", link, states[run.status]), messages.SUCCESS


def _active_icon():
    return format_html('<img src="{}" alt="{}">', static("admin/img/icon-yes.svg"), _("active"))


def _short_datetime(value) -> str:
    """``value`` as the locale's short date and time ("05/12/2026 6:35 a.m."), "-" for None.

    The line may break between the date and the time, nowhere else.
    """
    if value is None:
        return "-"
    local = timezone.localtime(value)
    return format_html('<span class="nowrap">{}</span> <span class="nowrap">{}</span>',
                       date_format(local, "SHORT_DATE_FORMAT"), date_format(local, "TIME_FORMAT"))


def _key_value_table(values: dict, formatter=str):
    if not values:
        return "-"
    return format_html(
        '<table class="recs-table"><tbody>{}</tbody></table>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>",
                         ((key, formatter(value)) for key, value in values.items())),
    )


def _item_labels(pairs) -> dict[tuple[int, str], tuple[str, str | None]]:
    """(content type id, key) -> (name, admin url): one query per item model on the page.

    An item of a family (a parent listed with its children) is named and
    linked as the most specific listed model it is (an Article, not its Page).
    """
    from .items import items_by_key

    wanted: dict[int, set[str]] = {}
    for type_id, key in pairs:
        if type_id is not None and key:
            wanted.setdefault(type_id, set()).add(key)
    labels = {}
    for type_id, keys in wanted.items():
        for key, obj in items_by_key(type_id, keys).items():
            opts = obj._meta
            try:
                url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            except NoReverseMatch:
                url = None
            labels[(type_id, key)] = (str(obj), url)
    return labels


class _NamedItemsChangeList(ChangeList):
    """Resolves the names of the page's items in bulk after the page is fetched."""

    def get_results(self, request):
        super().get_results(request)
        pairs = set()
        for row in self.result_list:
            pairs.update(self.model_admin.item_pairs(row))
        labels = _item_labels(pairs)
        for row in self.result_list:
            row.recs_labels = labels


class _ActiveRunFilter(admin.SimpleListFilter):
    """Rows of the active runs by default; any kept run on request."""

    title = _("run")
    parameter_name = "run"

    def lookups(self, request, model_admin):
        runs = Run.objects.filter(Q(is_active=True) | Q(status=Run.Status.RUNNING))
        choices = [("all", _("All runs"))]
        for run in runs.order_by("algorithm", "-pk"):
            suffix = _("active") if run.is_active else run.status
            choices.append((str(run.pk), f"{run.algorithm} #{run.pk} ({suffix})"))
        return choices

    def choices(self, changelist):
        # "Active runs" is the default (no parameter) instead of Django's "All".
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("Active runs"),
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset.filter(run__is_active=True)
        if value == "all":
            return queryset
        return queryset.filter(run_id=value) if value.isdigit() else queryset.none()


class _ResultAdmin(_ReadOnlyItemsAdmin):
    """Read-only browsing of a result table with item names (no query per row)."""

    list_filter = (_ActiveRunFilter, "run__algorithm")
    list_select_related = ("run",)
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description=_("run"), ordering="run")
    def run_display(self, row):
        return f"{row.run.algorithm} #{row.run_id}"

    @admin.display(description=_("score"), ordering="score")
    def score_display(self, row):
        return f"{row.score:.4f}"


@admin.register(SimilarItem)
class SimilarItemAdmin(_ResultAdmin):
    item_fields = (("item_type_id", "item_key"), ("neighbour_type_id", "neighbour_key"))
    list_display = ("item_display", "rank", "neighbour_display", "score_display", "run_display")
    search_fields = ("=item_key", "=neighbour_key")
    ordering = ("item_type_id", "item_key", "rank")

    @admin.display(description=_("neighbour"))
    def neighbour_display(self, row):
        return self._label(row, row.neighbour_type_id, row.neighbour_key)


@admin.register(Recommendation)
class RecommendationAdmin(_ResultAdmin):
    item_fields = (("item_type_id", "item_key"), ("reason_type_id", "reason_key"))
    list_display = ("user", "rank", "item_display", "score_display", "reason_display",
                    "run_display")
    list_select_related = ("run", "user")
    search_fields = ("=user__username", "=item_key")
    ordering = ("user_id", "rank")

    @admin.display(description=_("because of"))
    def reason_display(self, row):
        return self._label(row, row.reason_type_id, row.reason_key)


#: Entries of each stored list named on the changelist of lists (its page shows them all).
LIST_PREVIEW_LENGTH = 3


@admin.register(RecommendationList)
class RecommendationListAdmin(_ResultAdmin):
    """Each user's stored list (the "lists" layout): its first items on the changelist,
    every entry with item name, link, score and reason on its page.

    Names are resolved in bulk: one query per item model on a page, whatever
    the number of lists or entries.
    """

    list_display = ("user", "item_model_display", "length", "top_display", "run_display")
    list_select_related = ("run", "user")
    search_fields = ("=user__username",)
    ordering = ("user_id", "item_type_id")
    fields = ("run_display", "user", "item_model_display", "length", "entries_display")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def item_pairs(self, row):
        for key, _score, reason_type, reason_key in self._entries(row)[:LIST_PREVIEW_LENGTH]:
            yield row.item_type_id, key
            yield reason_type, reason_key

    @staticmethod
    def _entries(row):
        entries = getattr(row, "recs_entries", None)
        if entries is None:
            entries = row.recs_entries = row.entries
        return entries

    @admin.display(description=_("item model"), ordering="item_type")
    def item_model_display(self, row):
        model = ContentType.objects.get_for_id(row.item_type_id).model_class()
        return model._meta.verbose_name if model is not None else f"type {row.item_type_id}"

    @admin.display(description=_("first items"))
    def top_display(self, row):
        shown = self._entries(row)[:LIST_PREVIEW_LENGTH]
        names = format_html_join(", ", "{}", ((self._label(row, row.item_type_id, key),)
                                              for key, *_rest in shown))
        return format_html("{}, …", names) if row.length > len(shown) else names

    @admin.display(description=_("entries"))
    def entries_display(self, row):
        entries = self._entries(row)
        pairs = {(row.item_type_id, key) for key, *_rest in entries}
        pairs.update((reason_type, reason_key) for _k, _s, reason_type, reason_key in entries)
        row.recs_labels = _item_labels(pairs)
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (rank, self._label(row, row.item_type_id, key), f"{score:.4f}",
             self._label(row, reason_type, reason_key) if reason_type is not None else "-")
            for rank, (key, score, reason_type, reason_key) in enumerate(entries)
        ))
        return format_html(
            '<table class="recs-table recs-list"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("rank"), _("item"), _("score"), _("because of"), body,
        )


@admin.register(PopularItem)
class PopularItemAdmin(_ResultAdmin):
    list_display = ("rank", "item_display", "score_display", "run_display")
    search_fields = ("=item_key",)
    ordering = ("item_type_id", "rank")


# --- Online feedback ----------------------------------------------------------


@admin.register(DailyFeedback)
class DailyFeedbackAdmin(admin.ModelAdmin):
    """What the lists earn: the report over the daily roll-ups (``recs_rollup``), read-only.

    Per placement, algorithm, run or placement and algorithm, over a period:
    impressions, clicks, CTR, conversions, conversion rate and revenue per
    thousand impressions with 95% intervals, and the daily charts.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        from .feedback.admin_report import report_context

        if not self.has_view_permission(request):
            raise PermissionDenied
        report = report_context(request.GET)
        for problem in report["problems"]:
            self.message_user(request, problem, messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("What the recommendation lists earn"),
            **report,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/django_recs/dailyfeedback/report.html", context)


# --- A/B experiments ----------------------------------------------------------


class _VariantFormSet(BaseInlineFormSet):
    """Two or more variants, exactly one of them the control."""

    def clean(self):
        super().clean()
        from django.core.exceptions import ValidationError

        kept = [form.cleaned_data for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if len(kept) < 2:
            raise ValidationError(_("An experiment needs at least two variants."))
        if sum(1 for data in kept if data.get("is_control")) != 1:
            raise ValidationError(_("Exactly one variant must be the control."))


class VariantInline(admin.TabularInline):
    model = Variant
    formset = _VariantFormSet
    extra = 2
    fields = ("name", "algorithm", "weight", "is_control")

    def _editable(self, obj) -> bool:
        return obj is None or obj.status == Experiment.Status.DRAFT

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """A/B experiments: variants edited while a draft; start, stop, promote and the results."""

    inlines = [VariantInline]
    list_display = ("name", "placements", "status", "started_at", "stopped_at", "promoted_variant",
                    "results_link")
    list_filter = ("status",)
    search_fields = ("name", "placements")
    readonly_fields = ("status", "started_at", "stopped_at", "promoted_variant", "results_link")
    fields = ("name", "placements", "minimum_effect", "status", "started_at", "stopped_at",
              "promoted_variant", "results_link")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            return (*self.readonly_fields, "placements", "minimum_effect")
        return self.readonly_fields

    @admin.display(description=_("results"))
    def results_link(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:django_recs_experiment_results", args=[obj.pk]),
                           _("Results"))

    def get_urls(self):
        return [
            path("<int:pk>/results/", self.admin_site.admin_view(self.results_view),
                 name="django_recs_experiment_results"),
            path("<int:pk>/status/", self.admin_site.admin_view(self.status_view),
                 name="django_recs_experiment_status"),
            *super().get_urls(),
        ]

    def results_view(self, request, pk):
        from .experiments.results import experiment_results

        experiment = self.get_object(request, str(pk))
        if experiment is None or not self.has_view_permission(request, experiment):
            raise PermissionDenied
        stored = experiment.status == Experiment.Status.STOPPED and experiment.results
        results = experiment.results if stored else experiment_results(experiment).as_dict()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Results of %(name)s") % {"name": experiment.name},
            "experiment": experiment,
            "results": results,
            "rows": _result_rows(results),
            "can_change": self.has_change_permission(request, experiment),
        }
        return TemplateResponse(request, "admin/django_recs/experiment/results.html", context)

    @method_decorator(require_POST)
    def status_view(self, request, pk):
        from django.core.exceptions import ValidationError

        from .experiments import start, stop

        experiment = self.get_object(request, str(pk))
        if experiment is None or not self.has_change_permission(request, experiment):
            raise PermissionDenied
        action = request.POST.get("action")
        try:
            if action == "start":
                start(experiment)
                self.message_user(request, _("The experiment runs."), messages.SUCCESS)
            elif action == "stop":
                promote = request.POST.get("promote") or None
                stop(experiment, promote_variant=promote)
                self.message_user(request, _("Stopped.") if promote is None else _(
                    "Stopped; %(placement)s now serves variant %(variant)s to everyone.")
                    % {"placement": experiment.placements, "variant": promote}, messages.SUCCESS)
            elif action == "promote":
                from .experiments import promote as promote_variant

                promote_variant(experiment, request.POST.get("promote", ""))
                self.message_user(request, _("%(placement)s now serves variant %(variant)s to "
                                             "everyone.") % {"placement": experiment.placements,
                                                             "variant": request.POST.get("promote")},
                                  messages.SUCCESS)
            else:
                self.message_user(request, _("Unknown action."), messages.ERROR)
        except (ValidationError, ValueError) as error:
            text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            self.message_user(request, text, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:django_recs_experiment_results", args=[pk]))


@admin.register(PlacementAlgorithm)
class PlacementAlgorithmAdmin(admin.ModelAdmin):
    """The algorithm each placement serves to everyone (promoted winners); delete to undo."""

    list_display = ("placement", "algorithm", "experiment", "updated_at")
    readonly_fields = ("experiment", "updated_at")


def _percent(value, digits=2):
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _interval(interval, percent=True):
    if not interval:
        return ""
    low, high = interval
    if percent:
        return f"{low * 100:.2f}% – {high * 100:.2f}%"
    return f"{low:,.2f} – {high:,.2f}"


def _difference(diff, percent=True):
    if not diff:
        return None
    if percent:
        text = f"{diff['difference'] * 100:+.2f} pts"
        span = f"{diff['low'] * 100:+.2f} to {diff['high'] * 100:+.2f}"
    else:
        text = f"{diff['difference']:+,.2f}"
        span = f"{diff['low']:+,.2f} to {diff['high']:+,.2f}"
    return {"text": text, "interval": span, "p_value": f"{diff['p_value']:.3g}",
            "significant": diff["p_value"] < 0.05}


def _result_rows(results: dict) -> list[dict]:
    """The variants as the results page prints them."""
    rows = []
    for variant in results.get("variants", []):
        lift = variant.get("conversion_lift")
        rows.append({
            "name": variant["name"],
            "algorithm": variant["algorithm"],
            "weight": variant["weight"],
            "is_control": variant["is_control"],
            "visitors": number_format(variant["visitors"], force_grouping=True),
            "impressions": number_format(variant["impressions"], force_grouping=True),
            "ctr": _percent(variant["ctr"]),
            "ctr_interval": _interval(variant["ctr_interval"]),
            "click_through": _percent(variant["click_through"]),
            "click_through_interval": _interval(variant["click_through_interval"]),
            "conversion_rate": _percent(variant["conversion_rate"]),
            "conversion_interval": _interval(variant["conversion_interval"]),
            "revenue_per_visitor": ("—" if variant["revenue_per_visitor"] is None
                                    else f"{variant['revenue_per_visitor']:,.2f}"),
            "revenue_interval": _interval(variant["revenue_interval"], percent=False),
            "click_through_difference": _difference(variant["click_through_difference"]),
            "conversion_difference": _difference(variant["conversion_difference"]),
            "lift": (None if not lift else
                     f"{lift['lift'] * 100:+.1f}% ({lift['low'] * 100:+.1f}% to "
                     f"{lift['high'] * 100:+.1f}%)"),
            "revenue_difference": _difference(variant["revenue_difference"], percent=False),
        })
    return rows
