"""Storage: interactions, runs, and the results a run serves.

Items are stored as (content type, key); see :mod:`django_recs.items` for the
key format. Result rows belong to a Run; the serving side only reads rows of
the active run of each algorithm, so a run's rows can be written while the
previous run is still served and swapped in with one short transaction.
"""

from __future__ import annotations

import django
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .querysets import (
    PopularItemQuerySet,
    RecommendationListQuerySet,
    RecommendationQuerySet,
    SimilarItemQuerySet,
)

# CheckConstraint's argument is `condition` from Django 5.1 and `check` before.
_CHECK_KWARG = "condition" if django.VERSION >= (5, 1) else "check"

#: The longest session key stored (Django's own keys have 32 characters).
SESSION_KEY_MAX_LENGTH = 40


def checked_session_key(session_key) -> str:
    """``session_key`` as stored ("" for None); ValueError for what no column can hold.

    Checked before any SQL, for writes (capture) and reads (serving) alike: a
    NUL character or a lone surrogate would otherwise fail inside the
    database driver, which breaks the caller's transaction on PostgreSQL. A
    key that ends with a space is refused too: MySQL/MariaDB compare text
    with trailing spaces ignored, so there ``"k "`` would be the session
    ``"k"`` and ``" "`` no session at all (a row of it breaks the check that
    an interaction has a visitor). Django's session keys are letters and digits.
    """
    if session_key is None:
        return ""
    if not isinstance(session_key, str):
        raise ValueError(
            f"session_key must be a string, got {type(session_key).__name__} {session_key!r}"[:200]
        )
    if len(session_key) > SESSION_KEY_MAX_LENGTH:
        raise ValueError(
            f"session_key is {len(session_key)} characters long; at most "
            f"{SESSION_KEY_MAX_LENGTH} are stored"
        )
    if "\x00" in session_key:
        raise ValueError(f"session_key {session_key!r} contains a NUL character")
    if session_key.endswith(" "):
        raise ValueError(
            f"session_key {session_key!r} ends with a space, which MySQL/MariaDB ignore "
            "when they compare keys"
        )
    try:
        session_key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"session_key {session_key!r} is not valid text") from None
    return session_key


class Interaction(models.Model):
    """One weighted, time-stamped event between a visitor and an item."""

    # Interactions are an append-mostly log written in bulk (COPY): their
    # foreign keys are enforced by Django (on_delete cascades in the ORM, and
    # every write path checks that users and items exist), not by a per-row
    # database trigger, which would halve the bulk import speed.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # covered by the (user, timestamp) index
        db_constraint=False,
    )
    session_key = models.CharField(max_length=SESSION_KEY_MAX_LENGTH, blank=True, default="")
    item_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # covered by the (item_type, item_key) index
        db_constraint=False,
    )
    item_key = models.CharField(max_length=64)
    event = models.CharField(max_length=32)
    weight = models.FloatField()
    timestamp = models.DateTimeField(default=timezone.now)
    # The row of a SOURCES model this interaction was recorded from, so the
    # backfill (recs_import --from-sources) records each source row only once.
    source_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # history outlives a removed source model
        related_name="+",
        db_index=False,  # covered by the (source_type, source_key) index
        db_constraint=False,
    )
    source_key = models.CharField(max_length=64, blank=True, default="")
    # What the event was worth to the shop (a SOURCES entry's "value", record(value=)):
    # the revenue a conversion brings to the list it is attributed to. NULL: unknown.
    value = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        indexes = [
            models.Index(fields=["user", "timestamp"], name="recs_inter_user_time"),
            models.Index(
                fields=["session_key", "timestamp"],
                name="recs_inter_session_time",
                condition=Q(user__isnull=True),
            ),
            # Byte-wise key comparisons on PostgreSQL (equality is all it serves):
            # cheaper to maintain than the database collation during bulk imports.
            models.Index(
                fields=["item_type", "item_key"],
                name="recs_inter_item",
                opclasses=["int4_ops", "varchar_pattern_ops"],
            ),
            models.Index(
                fields=["source_type", "source_key"],
                name="recs_inter_source",
                condition=Q(source_type__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                **{_CHECK_KWARG: Q(user__isnull=False) | ~Q(session_key="")},
                name="recs_interaction_has_visitor",
            ),
        ]

    def __str__(self) -> str:
        who = self.user_id or f"session {self.session_key[:8]}"
        return f"{who} {self.event} {self.item_type_id}:{self.item_key}"


class ForgottenUser(models.Model):
    """A user erased by ``forget_user()``: nothing of theirs is recorded again until lifted.

    Capture (record(), the sources, record_many(), the import and the
    backfill) writes no interaction of a forgotten user, and the pipeline
    neither loads their rows nor keeps their recommendations: a run that
    loaded them before the erasure drops them when it is swapped in. The row
    outlives the user (no database constraint, DO_NOTHING): an erasure
    request often comes with the deletion of the account.
    ``django_recs.capture.unforget_user()`` lifts it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    forgotten_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("forgotten user")
        verbose_name_plural = _("forgotten users")

    def __str__(self) -> str:
        return f"user {self.user_id} (forgotten {self.forgotten_at:%Y-%m-%d})"


class Run(models.Model):
    """One computation of one algorithm, from pending to succeeded or failed."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    algorithm = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    is_active = models.BooleanField(
        default=False, help_text=_("This run's rows are the ones served.")
    )
    stage = models.CharField(max_length=32, blank=True, default="")
    progress = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    rows_read = models.BigIntegerField(default=0)
    rows_written = models.BigIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    artifacts = models.JSONField(
        default=dict, blank=True, help_text=_("Name -> path in the storage of files of this run.")
    )
    error = models.TextField(blank=True, default="")
    triggered_by = models.CharField(max_length=150, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        permissions = [("run_recompute", "Can trigger a recomputation")]
        constraints = [
            # Single flight: at most one pending or running run per algorithm,
            # guaranteed by the database rather than a check in Python.
            models.UniqueConstraint(
                fields=["algorithm"],
                condition=Q(status__in=["pending", "running"]),
                name="recs_run_single_flight",
            ),
            models.UniqueConstraint(
                fields=["algorithm"], condition=Q(is_active=True), name="recs_run_one_active"
            ),
        ]
        indexes = [models.Index(fields=["algorithm", "is_active"], name="recs_run_active")]

    def __str__(self) -> str:
        return f"{self.algorithm} #{self.pk} ({self.status})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def waiting_for_worker(self) -> bool:
        """Pending for longer than PENDING_TIMEOUT: no worker has taken its task yet."""
        from .conf import seconds

        if self.status != self.Status.PENDING or self.created_at is None:
            return False
        waited = (timezone.now() - self.created_at).total_seconds()
        return waited > seconds("PENDING_TIMEOUT")


# Result rows are written by the million with COPY and deleted with their run;
# their foreign keys have no database constraint (a constraint trigger per row
# and key would dominate the write) and no single-column index (the lookup
# indexes below cover the queries). Deletions still cascade through the ORM.
_RESULT_FK = {"on_delete": models.CASCADE, "related_name": "+", "db_index": False,
              "db_constraint": False}


class SimilarItem(models.Model):
    """Neighbour ``rank`` (0 = most similar) of an item, as computed by a run."""

    run = models.ForeignKey(Run, **_RESULT_FK)
    item_type = models.ForeignKey(ContentType, **_RESULT_FK)
    item_key = models.CharField(max_length=64)
    neighbour_type = models.ForeignKey(ContentType, **_RESULT_FK)
    neighbour_key = models.CharField(max_length=64)
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    objects = models.Manager.from_queryset(SimilarItemQuerySet)()

    class Meta:
        verbose_name = _("similar item")
        verbose_name_plural = _("similar items")
        indexes = [
            models.Index(fields=["run", "item_type", "item_key", "rank"], name="recs_similar_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.item_type_id}:{self.item_key} ~ {self.neighbour_type_id}:{self.neighbour_key}"


class Recommendation(models.Model):
    """Personal recommendation ``rank`` (0 = best) of a user, as computed by a run."""

    run = models.ForeignKey(Run, **_RESULT_FK)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, **_RESULT_FK)
    item_type = models.ForeignKey(ContentType, **_RESULT_FK)
    item_key = models.CharField(max_length=64)
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()
    # The item of the user's history that contributed most, where known.
    reason_type = models.ForeignKey(ContentType, null=True, blank=True, **_RESULT_FK)
    reason_key = models.CharField(max_length=64, blank=True, default="")

    objects = models.Manager.from_queryset(RecommendationQuerySet)()

    class Meta:
        verbose_name = _("recommendation")
        verbose_name_plural = _("recommendations")
        indexes = [models.Index(fields=["run", "user", "rank"], name="recs_rec_lookup")]

    def __str__(self) -> str:
        return f"user {self.user_id} -> {self.item_type_id}:{self.item_key}"


class RecommendationList(models.Model):
    """A user's whole list of recommendations of one item model, as computed by a run.

    One row per (run, user, item model) instead of one per recommendation
    (RECOMMENDATION_LAYOUT "lists", the default): ``items`` is a JSON array,
    best first, of ``[key, score]`` or ``[key, score, reason type id, reason
    key]`` entries. Serving unnests it in SQL (``json_array_elements`` on
    PostgreSQL, ``json_each`` on SQLite, ``JSON_TABLE`` on MariaDB), so a
    stored list is still read in the statement that reads its items.
    """

    run = models.ForeignKey(Run, **_RESULT_FK)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, **_RESULT_FK)
    item_type = models.ForeignKey(ContentType, **_RESULT_FK)
    items = models.TextField(help_text=_("JSON: [[key, score, reason type, reason key], ...]"))
    length = models.PositiveIntegerField(help_text=_("Entries in the list."))

    objects = models.Manager.from_queryset(RecommendationListQuerySet)()

    class Meta:
        verbose_name = _("recommendation list")
        verbose_name_plural = _("recommendation lists")
        indexes = [models.Index(fields=["run", "user", "item_type"], name="recs_rec_list_lookup")]

    def __str__(self) -> str:
        return f"user {self.user_id}: {self.length} items of type {self.item_type_id}"

    @property
    def entries(self) -> list[tuple[str, float, int | None, str | None]]:
        """``(item key, score, reason type id, reason key)`` per entry, best first."""
        import json

        return [(str(entry[0]), float(entry[1]),
                 entry[2] if len(entry) > 2 else None, entry[3] if len(entry) > 3 else None)
                for entry in json.loads(self.items)]


class PopularItem(models.Model):
    """Item ``rank`` (0 = most popular) of a popularity run: the cold-start fallback."""

    run = models.ForeignKey(Run, **_RESULT_FK)
    item_type = models.ForeignKey(ContentType, **_RESULT_FK)
    item_key = models.CharField(max_length=64)
    score = models.FloatField()
    rank = models.PositiveIntegerField()
    # The item's CATEGORY as text, and its rank among the popular items of
    # that category, as the run found them. NULL, not "", for no category:
    # NULL never equals a category, "" could.
    category = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    category_rank = models.PositiveIntegerField(null=True, blank=True)

    objects = models.Manager.from_queryset(PopularItemQuerySet)()

    class Meta:
        verbose_name = _("popular item")
        verbose_name_plural = _("popular items")
        indexes = [
            models.Index(fields=["run", "item_type", "rank"], name="recs_popular_lookup"),
            # Serving reads one item's popularity (the score of a fallback item).
            models.Index(fields=["run", "item_type", "item_key"], name="recs_popular_item"),
            # An item without neighbours reads the best of its category.
            models.Index(fields=["run", "item_type", "category", "category_rank"],
                         name="recs_popular_category"),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} {self.item_type_id}:{self.item_key}"


class RunShard(models.Model):
    """One finished shard of a sharded run: its rows are written, exactly once.

    Written in the same transaction as the shard's rows; the unique
    constraint makes a shard re-run after a lost worker write nothing (a
    concurrent duplicate waits for the first, then fails to insert), and the
    run is only swapped in when every planned shard has its row.
    """

    class Phase(models.TextChoices):
        SIMILAR = "similar", _("similar items")
        RECOMMEND = "recommend", _("recommendations")

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="shards")
    phase = models.CharField(max_length=16, choices=Phase.choices)
    index = models.PositiveIntegerField()
    start = models.BigIntegerField(help_text=_("First item or user row of the shard."))
    stop = models.BigIntegerField(help_text=_("Row after the shard's last."))
    rows = models.BigIntegerField(default=0, help_text=_("Result rows written."))
    seconds = models.JSONField(default=dict, blank=True,
                               help_text=_("Seconds to load, compute and write."))
    details = models.JSONField(default=dict, blank=True,
                               help_text=_("The shard's share of the run's metrics."))
    worker = models.CharField(max_length=255, blank=True, default="")
    finished_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("run shard")
        verbose_name_plural = _("run shards")
        constraints = [
            models.UniqueConstraint(fields=["run", "phase", "index"], name="recs_run_shard_once"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.phase} shard {self.index} [{self.start}, {self.stop})"


class ShardStart(models.Model):
    """How many times a shard of a sharded run has started.

    Counted before the shard works, in a transaction of its own, so a start
    that kills its worker still counts: a shard that never finishes (out of
    memory every time) fails its run instead of being delivered forever.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="shard_starts")
    phase = models.CharField(max_length=16, choices=RunShard.Phase.choices)
    index = models.PositiveIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("shard start")
        verbose_name_plural = _("shard starts")
        constraints = [
            models.UniqueConstraint(fields=["run", "phase", "index"], name="recs_shard_start_once"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.phase} shard {self.index}: {self.count} starts"


# --- Online feedback: impressions, clicks, conversions and their daily roll-up ----------------
#
# Impressions are a log written by the million (buffered, COPY on PostgreSQL): one row
# per list shown, no foreign key constraint (a trigger per row would slow the write),
# and no index but the primary key and the users' rows (for forget_user and a user's
# deletion). Their primary key is a time-ordered UUID (version 7) made when the list
# is rendered, so a click link names the impression before its row is written, and a
# range of ids is a range of time: the roll-up and the retention read the primary key.
# Clicks and conversions name impressions and interactions by id, without foreign
# keys: a click may arrive before its impression is written, and a foreign key to
# Interaction would make every deletion of interactions collect them first.

_LOG_USER = {"null": True, "blank": True, "on_delete": models.CASCADE, "related_name": "+",
             "db_index": False, "db_constraint": False}
_LOG_REFERENCE = {"on_delete": models.DO_NOTHING, "related_name": "+", "db_index": False,
                  "db_constraint": False}


class Impression(models.Model):
    """One list shown to a visitor: where, to whom, from which algorithm and run, which items."""

    id = models.UUIDField(primary_key=True, editable=False,
                          help_text=_("Time-ordered (UUID version 7), made when the list is shown."))
    shown_at = models.DateTimeField()
    placement = models.CharField(max_length=64)
    # The visitor: the account, or for an anonymous visitor the session.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, **_LOG_USER)
    session_key = models.CharField(max_length=40, blank=True, default="")
    item_type = models.ForeignKey(ContentType, **_LOG_REFERENCE)
    source_key = models.CharField(
        max_length=64, blank=True, default="",
        help_text=_("The item a list of similar items is about; empty for other lists."))
    items = models.TextField(help_text=_("The keys of the items shown, in order, comma-separated."))
    sources = models.TextField(
        blank=True, default="",
        help_text=_("The source of each item in order, repeats collapsed: "
                    "personal*8,popular*2."))
    algorithm = models.CharField(max_length=64)
    run = models.ForeignKey(Run, null=True, blank=True, **_LOG_REFERENCE)
    # A list served in an A/B experiment: which one, the variant, and the visitor's
    # assignment unit (the same before and after a login). The experiment may be
    # deleted since: its impressions keep its id.
    experiment = models.ForeignKey("Experiment", null=True, blank=True, **_LOG_REFERENCE)
    variant = models.CharField(max_length=64, blank=True, default="")
    visitor_unit = models.CharField(
        max_length=40, blank=True, default="",
        help_text=_("The visitor as the experiment assigns them (kept across a login)."))

    class Meta:
        verbose_name = _("impression")
        verbose_name_plural = _("impressions")
        indexes = [
            models.Index(fields=["user"], name="recs_impression_user",
                         condition=Q(user__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.placement} {self.shown_at:%Y-%m-%d %H:%M:%S}"

    @property
    def item_keys(self) -> list[str]:
        return self.items.split(",") if self.items else []

    @property
    def item_sources(self) -> list[str]:
        """The source of each item, in order (``sources`` expanded)."""
        expanded = []
        for run in filter(None, self.sources.split(",")):
            name, _, count = run.rpartition("*")
            expanded += [name] * int(count)
        return expanded


class Click(models.Model):
    """A visitor followed the link of item ``position`` of an impression."""

    impression_id = models.UUIDField()
    position = models.PositiveIntegerField()
    item_type = models.ForeignKey(ContentType, **_LOG_REFERENCE)
    item_key = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, **_LOG_USER)
    session_key = models.CharField(max_length=40, blank=True, default="")
    clicked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("click")
        verbose_name_plural = _("clicks")
        constraints = [
            # A replayed link counts once.
            models.UniqueConstraint(fields=["impression_id", "position"], name="recs_click_once"),
        ]
        indexes = [
            models.Index(fields=["user", "clicked_at"], name="recs_click_user",
                         condition=Q(user__isnull=False)),
            models.Index(fields=["session_key", "clicked_at"], name="recs_click_session",
                         condition=Q(user__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"click {self.item_type_id}:{self.item_key} at {self.position}"


class Conversion(models.Model):
    """A conversion interaction (a purchase) attributed to the click that led to it."""

    interaction_id = models.BigIntegerField(unique=True)
    click_id = models.BigIntegerField()
    impression_id = models.UUIDField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, **_LOG_USER)
    session_key = models.CharField(max_length=40, blank=True, default="")
    value = models.FloatField(null=True, blank=True)
    converted_at = models.DateTimeField()

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")
        indexes = [
            models.Index(fields=["user"], name="recs_conversion_user",
                         condition=Q(user__isnull=False)),
            models.Index(fields=["session_key"], name="recs_conversion_session",
                         condition=Q(user__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"conversion of interaction {self.interaction_id}"


class DailyFeedback(models.Model):
    """What the lists of one placement, algorithm and run earned on one day.

    Clicks and conversions count on the day their impression was shown, so a
    day's rates compare like with like.
    """

    day = models.DateField()
    placement = models.CharField(max_length=64)
    algorithm = models.CharField(max_length=64)
    # The run may be deleted since (KEEP_RUNS): its numbers stay under its id.
    run = models.ForeignKey(Run, null=True, blank=True, **_LOG_REFERENCE)
    impressions = models.BigIntegerField(default=0)
    clicked = models.BigIntegerField(default=0, help_text=_("Impressions with a click."))
    clicks = models.BigIntegerField(default=0)
    conversions = models.BigIntegerField(
        default=0, help_text=_("Clicks followed by an attributed conversion."))
    revenue = models.FloatField(default=0.0)
    revenue_squares = models.FloatField(
        default=0.0, help_text=_("Sum over impressions of the square of their revenue."))

    class Meta:
        verbose_name = _("daily feedback")
        verbose_name_plural = _("daily feedback")
        constraints = [
            models.UniqueConstraint(fields=["day", "placement", "algorithm", "run"],
                                    name="recs_daily_feedback_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.placement} {self.algorithm}"


class FeedbackRollup(models.Model):
    """How far the roll-up has read the feedback logs (one row)."""

    impressions_until = models.UUIDField(
        null=True, blank=True, help_text=_("Impressions with a smaller id are rolled up."))
    clicks_until = models.BigIntegerField(
        default=0, help_text=_("Clicks with an id up to this one are rolled up."))
    interactions_until = models.BigIntegerField(
        default=0, help_text=_("Interactions with an id up to this one are attributed."))
    rolled_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("feedback roll-up")
        verbose_name_plural = _("feedback roll-up")

    def __str__(self) -> str:
        return f"feedback rolled up at {self.rolled_up_at}"


# --- A/B experiments: which algorithm a placement serves to which visitor --------------------


def new_experiment_salt() -> str:
    import secrets

    return secrets.token_hex(8)


class Experiment(models.Model):
    """An A/B test at one or more placements: visitors split between variants by a hash, by weight.

    ``placements`` lists them, separated by commas. At most one experiment
    runs per placement: each placement of an experiment is an
    :class:`ExperimentPlacement` row whose ``running_placement`` holds the
    placement while the experiment runs and NULL otherwise, under a plain
    unique constraint (NULLs never collide), which every supported database
    enforces, MariaDB included. :meth:`save` keeps those rows in step, in the
    same transaction: a save that would run a second experiment at a
    placement raises IntegrityError and changes nothing.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        RUNNING = "running", _("running")
        STOPPED = "stopped", _("stopped")

    name = models.CharField(max_length=100)
    placements = models.CharField(
        max_length=500,
        help_text=_("The placement= of the lists it applies to; several separated by commas."))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    salt = models.CharField(
        max_length=32, default=new_experiment_salt, editable=False,
        help_text=_("Mixed into the visitors' hash: each experiment splits them anew."))
    minimum_effect = models.FloatField(
        default=0.10,
        help_text=_("The smallest relative change in conversion rate worth detecting (0.10 = "
                    "10%): it sets the sample size to wait for."))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    promoted_variant = models.CharField(max_length=64, blank=True, default="", editable=False)
    results = models.JSONField(
        null=True, blank=True, editable=False,
        help_text=_("The results as they stood when the experiment stopped."))

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.placements}, {self.status})"

    def save(self, *args, **kwargs):
        from django.db import router, transaction

        self.placements = ", ".join(self.placement_list)
        update_fields = kwargs.get("update_fields")
        synced = update_fields is None or bool({"status", "placements"} & set(update_fields))
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
            if synced:
                self._sync_placements(using)

    def _sync_placements(self, using: str) -> None:
        """One :class:`ExperimentPlacement` per placement; ``running_placement`` set while running."""
        wanted = list(dict.fromkeys(self.placement_list))
        rows = ExperimentPlacement.objects.using(using).filter(experiment=self)
        rows.exclude(placement__in=wanted).delete()
        running = self.status == self.Status.RUNNING
        # Release before claiming: a placement moves between rows of this experiment only.
        if not running:
            rows.update(running_placement=None)
        existing = {row.placement: row for row in rows}
        for placement in wanted:
            row = existing.get(placement)
            claim = placement if running else None
            if row is None:
                ExperimentPlacement.objects.using(using).create(
                    experiment=self, placement=placement, running_placement=claim)
            elif row.running_placement != claim:
                row.running_placement = claim
                row.save(using=using, update_fields=["running_placement"])

    def clean(self):
        from django.core.exceptions import ValidationError

        placements = self.placement_list
        if not placements:
            raise ValidationError({"placements": _("At least one placement.")})
        for placement in placements:
            if len(placement) > 64 or any(ord(c) < 32 or ord(c) == 127 for c in placement):
                raise ValidationError({"placements": _(
                    "%(placement)r is not a placement: at most 64 characters, no control "
                    "characters.") % {"placement": placement}})
        if len(set(placements)) != len(placements):
            raise ValidationError({"placements": _("A placement is listed twice.")})
        if self.status == self.Status.RUNNING:
            others = ExperimentPlacement.objects.filter(running_placement__in=placements)
            if self.pk is not None:
                others = others.exclude(experiment_id=self.pk)
            other = others.select_related("experiment").order_by("placement").first()
            if other is not None:
                raise ValidationError({"status": _(
                    "Experiment %(other)r already runs at placement %(placement)r: stop it "
                    "first (one running experiment per placement).")
                    % {"other": other.experiment.name, "placement": other.placement}})
        if not (isinstance(self.minimum_effect, int | float) and 0 < self.minimum_effect < 10):
            raise ValidationError({"minimum_effect": _(
                "A relative effect between 0 and 10 (0.10 = 10%).")})

    @property
    def placement_list(self) -> list[str]:
        """The placements, in the order written (``placements`` may also be set to a list)."""
        value = self.placements
        parts = value.split(",") if isinstance(value, str) else list(value or ())
        return [str(part).strip() for part in parts if str(part).strip()]


class ExperimentPlacement(models.Model):
    """A placement of an experiment; ``running_placement`` is unique: one running experiment there.

    Written by :meth:`Experiment.save` from ``Experiment.placements``.
    """

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE,
                                   related_name="placement_rows")
    placement = models.CharField(max_length=64)
    running_placement = models.CharField(
        max_length=64, null=True, blank=True, unique=True, editable=False,  # noqa: DJ001
        help_text=_("The placement while the experiment runs, else empty: one running "
                    "experiment per placement."))

    class Meta:
        verbose_name = _("experiment placement")
        verbose_name_plural = _("experiment placements")
        constraints = [
            models.UniqueConstraint(fields=["experiment", "placement"],
                                    name="recs_experiment_placement"),
        ]

    def __str__(self) -> str:
        return self.placement


class Variant(models.Model):
    """One arm of an experiment: the algorithm it serves ("none": no list) and its weight."""

    #: The algorithm of a hold-out variant: an empty list, still logged (the visitor counts).
    NONE = "none"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=64, help_text=_('e.g. "A", "als"'))
    algorithm = models.CharField(
        max_length=64,
        help_text=_('A name of ALGORITHMS, or "none" for a hold-out that shows no list.'))
    weight = models.PositiveIntegerField(default=1, help_text=_("Its share of the traffic."))
    is_control = models.BooleanField(
        default=False, help_text=_("The variant the others are compared with (one)."))

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["experiment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="recs_variant_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.algorithm} x{self.weight}"

    def clean(self):
        from django.core.exceptions import ValidationError

        from .registry import algorithm_names

        names = algorithm_names()
        if self.algorithm != self.NONE and self.algorithm not in names:
            raise ValidationError({"algorithm": _(
                "%(algorithm)r is not in DJANGO_RECS['ALGORITHMS'] (%(names)s) nor \"none\".")
                % {"algorithm": self.algorithm, "names": ", ".join(names) or "none configured"}})


class PlacementAlgorithm(models.Model):
    """The algorithm a placement serves to everyone, whatever the page asks (a promoted winner)."""

    placement = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(
        max_length=64, help_text=_('A name of ALGORITHMS, or "none": no list there.'))
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("placement algorithm")
        verbose_name_plural = _("placement algorithms")

    def __str__(self) -> str:
        return f"{self.placement}: {self.algorithm}"


class ExperimentVisitor(models.Model):
    """An account's assignment unit, so it keeps its variants on every device and after login."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="+")
    unit = models.CharField(max_length=40)

    class Meta:
        verbose_name = _("experiment visitor")
        verbose_name_plural = _("experiment visitors")

    def __str__(self) -> str:
        return f"user {self.user_id}: {self.unit}"
