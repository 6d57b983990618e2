"""Video jobs and the model catalogue, with the per-row rules of a job's lifecycle."""

import functools
import operator
import re
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from videos import search

VARIANTS = ("video", "thumbnail", "spritesheet")

# A job that has not finished this long after it was submitted is given up on, whatever the
# provider keeps answering: no job is polled forever.
MAX_RENDER_TIME = timedelta(hours=3)
# Waits between attempts to download a completed job's files, by attempt number.
FETCH_BACKOFF = (5, 15, 30, 60, 120, 300, 600)
MAX_FETCH_ATTEMPTS = 12
# Webhooks count as working while one arrived this recently; polling then slows to a safety net.
WEBHOOKS_FRESH = timedelta(hours=1)


class ModelSpec(models.Model):
    """One entry of the model catalogue: what a provider's model accepts and what it costs."""

    name = models.CharField(
        _("name"), max_length=100, unique=True, help_text=_("As sent upstream.")
    )
    label = models.CharField(_("label"), max_length=100, blank=True)
    sizes = models.JSONField(_("sizes"), default=list, help_text=_('For example ["1280x720"].'))
    seconds = models.JSONField(_("seconds"), default=list, help_text=_("For example [4, 8, 12]."))
    prices = models.JSONField(
        _("prices"),
        default=dict,
        help_text=_('Price per generated second by size: {"1280x720": "0.10"}.'),
    )
    can_remix = models.BooleanField(_("can remix"), default=True)
    can_reference = models.BooleanField(_("accepts a reference image"), default=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("model")
        verbose_name_plural = _("model catalogue")

    def __str__(self) -> str:
        return self.label or self.name

    @classmethod
    def named(cls, name: str) -> "ModelSpec":
        """The catalogue entry, or an unsaved stand-in (no prices, all capabilities) for a model
        the catalogue no longer lists: its jobs can still be retried and remixed."""
        return cls.objects.filter(name=name).first() or cls(name=name)

    @classmethod
    def for_new_job(cls, name: str) -> "ModelSpec":
        """The catalogue entry a new job may be made with: listed and enabled, else a
        ModelUnavailable that says so. Every way of making a job asks this (and `refusals`)."""
        spec = cls.objects.filter(name=name, enabled=True).first()
        if spec is None:
            raise ModelUnavailable(
                _("%(model)s is not offered any more: ask an admin to enable it in the catalogue.")
                % {"model": name}
            )
        return spec

    def refusals(
        self,
        *,
        seconds: int | None = None,
        size: str | None = None,
        reference: bool = False,
        remix: bool = False,
    ) -> dict[str, str]:
        """What this model does not allow of a new job, by form field; empty when all is well.
        For a remix only the remix itself is checked: it keeps its source's length and size."""
        refusals = {}
        if remix:
            if not self.can_remix:
                refusals["model"] = _("%(model)s cannot remix videos.") % {"model": self}
            return refusals
        if reference and not self.can_reference:
            refusals["input_reference"] = _("%(model)s takes no reference image.") % {"model": self}
        if seconds is not None and seconds not in self.seconds:
            allowed = ", ".join(str(s) for s in self.seconds)
            refusals["seconds"] = _("%(model)s makes videos of %(allowed)s seconds.") % {
                "model": self,
                "allowed": allowed,
            }
        if size is not None and size not in self.sizes:
            allowed = ", ".join(self.sizes)
            refusals["size"] = _("%(model)s makes videos of size %(allowed)s.") % {
                "model": self,
                "allowed": allowed,
            }
        return refusals

    def price_per_second(self, size: str) -> Decimal | None:
        price = self.prices.get(size) if isinstance(self.prices, dict) else None
        try:
            return Decimal(str(price)) if price is not None else None
        except ArithmeticError:
            return None

    def clean(self) -> None:
        """Admins type these lists by hand: a typo is a form error, not a broken create form."""
        errors = {}
        if not self.sizes or not all(
            isinstance(s, str) and re.fullmatch(r"\d+x\d+", s) for s in self.sizes
        ):
            errors["sizes"] = _('A list of at least one size like "1280x720".')
        if not self.seconds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in self.seconds
        ):
            errors["seconds"] = _("A list of at least one whole number of seconds, like [4, 8].")
        if not isinstance(self.prices, dict):
            errors["prices"] = _(
                'A mapping of size to price per second, like {"1280x720": "0.10"}.'
            )
        else:
            for size, price in self.prices.items():
                try:
                    if Decimal(str(price)) < 0:
                        raise ArithmeticError
                except ArithmeticError:
                    errors["prices"] = _("%(size)s: %(price)s is not a price.") % {
                        "size": size,
                        "price": price,
                    }
        if errors:
            raise ValidationError(errors)


class ModelUnavailable(ValidationError):
    """A new job asks for what the catalogue does not offer (any more)."""


class ReviewState(models.TextChoices):
    """Where the team's review of a job stands (review app): set by members and admins, and by a
    guest through a share link that allows it."""

    NONE = "", _("Not reviewed")
    APPROVED = "approved", _("Approved")
    CHANGES_REQUESTED = "changes_requested", _("Changes requested")
    REJECTED = "rejected", _("Rejected")


class Status(models.TextChoices):
    # Held in muxweb, not sent: the provider's or the member's limit of jobs at once is reached
    # (videos.fairshare sends it when a slot frees, in fair order).
    WAITING = "waiting", _("Waiting")
    PENDING = "pending", _("Waiting to submit")
    SUBMITTING = "submitting", _("Submitting")
    # A create was sent but its answer never came: is the job at the provider or not?
    CHECKING = "checking", _("Checking with provider")
    QUEUED = "queued", _("Queued")
    IN_PROGRESS = "in_progress", _("Rendering")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


ACTIVE_STATUSES = (
    Status.WAITING,
    Status.PENDING,
    Status.SUBMITTING,
    Status.CHECKING,
    Status.QUEUED,
    Status.IN_PROGRESS,
)

# Providers' words for a job's state, lower-cased. Relays say "processing", "succeeded", ...
UPSTREAM_STATUSES = {
    "queued": Status.QUEUED,
    "pending": Status.QUEUED,
    "submitted": Status.QUEUED,
    "in_progress": Status.IN_PROGRESS,
    "processing": Status.IN_PROGRESS,
    "running": Status.IN_PROGRESS,
    "completed": Status.COMPLETED,
    "succeeded": Status.COMPLETED,
    "success": Status.COMPLETED,
    "failed": Status.FAILED,
    "failure": Status.FAILED,
    "error": Status.FAILED,
    "cancelled": Status.FAILED,
    "canceled": Status.FAILED,
    "expired": Status.FAILED,
}


def map_upstream_status(value: object) -> Status | None:
    """Our status for a provider's, or None for a word we do not know."""
    return UPSTREAM_STATUSES.get(str(value or "").strip().lower())


# What the lifecycle writes; saves touch only these, so a stale row never overwrites the rest.
LIFECYCLE_FIELDS = [
    "status",
    "progress",
    "error_code",
    "error_message",
    "completed_at",
    "final_cost",
    "expires_at",
    "next_poll_at",
    "poll_count",
    "poll_failures",
    "poll_interval",
    "gave_up",
    "updated_at",
]

# Messages for the errors muxweb itself records, translated when shown. A provider's own
# messages are shown as the provider wrote them.
OWN_ERRORS = {
    "not_found": _("The provider no longer knows this job."),
    "submit_outcome_unknown": _(
        "The provider did not confirm the job: it may have been created anyway. "
        "Check the provider before generating it again."
    ),
    "remix_source_missing": _("The video this remixes is no longer at the provider."),
    "cancelled": _("Cancelled while it waited: nothing was sent to the provider or paid."),
}


# Jobs a worker still has to submit, poll or download files for: the gallery's "Running". One
# expression for the queries and the partial index that serves them, so that they cannot drift
# apart: a database uses a partial index only for a query that implies its condition. Each active
# status is its own `status = ?` because SQLite matches an IN list with the index's only when the
# query spells its values out, and Django sends them as parameters.
NEEDING_WORK = functools.reduce(
    operator.or_,
    [
        *(Q(status=status) for status in ACTIVE_STATUSES),
        Q(status=Status.COMPLETED, assets_fetched_at__isnull=True, fetch_given_up=False),
    ],
)
HAS_REFERENCE = ~Q(input_reference="")
# In the trash (videos.trash): kept out of the gallery and every list the team reads, still
# counted by budgets and usage.
TRASHED = Q(trashed_at__isnull=False)


class VideoJobQuerySet(models.QuerySet):
    def kept(self) -> "VideoJobQuerySet":
        """Jobs not in the trash: what the gallery, its exports and lookups show."""
        return self.filter(trashed_at__isnull=True)

    def trashed(self) -> "VideoJobQuerySet":
        return self.filter(TRASHED)

    def needing_work(self) -> "VideoJobQuerySet":
        """Jobs a worker still has to submit, poll or download files for."""
        return self.filter(NEEDING_WORK)

    def due(self, now: datetime | None = None) -> "VideoJobQuerySet":
        """Jobs whose next look is due now. A waiting job is never due by its own clock: it is
        sent when a slot frees (videos.fairshare.admit_waiting)."""
        now = now or timezone.now()
        return (
            self.needing_work()
            .exclude(status=Status.WAITING)
            .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        )

    def for_cards(self) -> "VideoJobQuerySet":
        return self.select_related("author", "remix_of")

    def matching(
        self,
        *,
        text: str = "",
        status: str = "",
        author_id: int | None = None,
        model: str = "",
        size: str = "",
        seconds: int | None = None,
        reference: bool | None = None,
        remixes_only: bool = False,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        starred_by: int | None = None,
        review_state: str | None = None,
    ) -> "VideoJobQuerySet":
        """The gallery's filters. status "running" means still changing, files being saved too;
        `reference` True or False keeps the jobs with or without a reference image; the created
        range includes `created_from` and excludes `created_before`; `starred_by` keeps the jobs
        that user starred; `review_state` those in that ReviewState ("" for not reviewed)."""
        jobs = self
        if text:
            jobs = search.matching_text(jobs, text)
        if status == "running":
            jobs = jobs.needing_work()
        elif status == Status.COMPLETED:
            jobs = jobs.filter(status=status).exclude(
                assets_fetched_at__isnull=True, fetch_given_up=False
            )
        elif status:
            jobs = jobs.filter(status=status)
        if author_id is not None:
            jobs = jobs.filter(author_id=author_id)
        if model:
            jobs = jobs.filter(model=model)
        if size:
            jobs = jobs.filter(size=size)
        if seconds is not None:
            jobs = jobs.filter(seconds=seconds)
        if reference is True:
            jobs = jobs.filter(HAS_REFERENCE)
        elif reference is False:
            jobs = jobs.exclude(HAS_REFERENCE)
        if remixes_only:
            jobs = jobs.filter(remix_of__isnull=False)
        if created_from is not None:
            jobs = jobs.filter(created_at__gte=created_from)
        if created_before is not None:
            jobs = jobs.filter(created_at__lt=created_before)
        if starred_by is not None:
            # The review app's stars: WHERE star.user_id = ? AND star.job_id = job.id, answered by
            # its star_once index (user, job); one star per job and person, so no duplicates.
            jobs = jobs.filter(stars__user_id=starred_by)
        if review_state is not None:
            # No index of its own: the gallery walks its order (created_at, id) and checks each job.
            jobs = jobs.filter(review_state=review_state)
        return jobs


class VideoJob(models.Model):
    """One generation: what was asked, where the provider is with it, and the files we keep."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="video_jobs",
    )
    model = models.CharField(_("model"), max_length=100)
    prompt = models.TextField(_("prompt"))
    seconds = models.PositiveSmallIntegerField(_("seconds"))
    size = models.CharField(_("size"), max_length=20)
    price_per_second = models.DecimalField(
        _("price per second"), max_digits=8, decimal_places=4, null=True, blank=True
    )
    # What the job cost, fixed when it completed: the catalogue's price then, for the length and
    # size the provider reports. A later price change does not rewrite it; a failure costs nothing.
    final_cost = models.DecimalField(
        _("cost"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    # The estimated cost held against the month's budgets from create until the job ends (see
    # videos.budgets): then `final_cost` counts instead, or nothing for a failure.
    reserved_cost = models.DecimalField(
        _("reserved"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    remix_of = models.ForeignKey(
        "self",
        verbose_name=_("remix of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="remixes",
    )

    # NULL until submitted: many jobs may have no id yet, but an id belongs to one job.
    # A token of the form that made the job: the same form posted twice makes one job.
    client_token = models.CharField(max_length=64, unique=True, null=True, blank=True)  # noqa: DJ001
    # Started elsewhere with the same key and brought in by an import: no author here.
    imported = models.BooleanField(_("imported"), default=False)
    upstream_id = models.CharField(_("provider job id"), max_length=200, unique=True, null=True)  # noqa: DJ001
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    error_message = models.TextField(_("error message"), blank=True)

    created_at = models.DateTimeField(_("created"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    expires_at = models.DateTimeField(_("provider deletes files at"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # When a worker should next look at this job (submit, poll or download), and how often it has.
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    poll_count = models.PositiveIntegerField(default=0)
    poll_failures = models.PositiveSmallIntegerField(default=0)
    poll_interval = models.FloatField(default=0)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    # When the last create went out, and how often the provider was asked whether it arrived.
    submit_sent_at = models.DateTimeField(null=True, blank=True)
    reconcile_attempts = models.PositiveSmallIntegerField(default=0)

    # The first frame asked for: re-encoded as PNG at exactly the video's size.
    input_reference = models.FileField(_("reference image"), blank=True)
    video = models.FileField(_("video"), blank=True)
    thumbnail = models.FileField(_("thumbnail"), blank=True)
    spritesheet = models.FileField(_("spritesheet"), blank=True)
    assets_fetched_at = models.DateTimeField(_("files saved"), null=True, blank=True)
    fetch_attempts = models.PositiveSmallIntegerField(default=0)
    fetch_error = models.TextField(blank=True)
    fetch_given_up = models.BooleanField(default=False)
    # Variants the provider refuses for good (a gateway in front of a model without them): muxweb
    # makes them from the video instead of asking again.
    variants_not_offered = models.JSONField(default=list, blank=True)
    # Failed by muxweb itself, not by the provider: polls kept failing, the 3-hour cap, a create
    # whose outcome stayed unknown. The provider may still have it: it can be checked again
    # (videos.recheck).
    gave_up = models.BooleanField(default=False)

    # Moved to the trash (videos.trash): out of the gallery until restored, removed for good
    # settings.MUXWEB_TRASH_DAYS later.
    trashed_at = models.DateTimeField(_("moved to the trash"), null=True, blank=True)
    trashed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("moved to the trash by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # Review (the review app): a title and a short note by the author or an admin, found by
    # search; the review state; the number of comments, kept with the job so a card shows it
    # without a query.
    title = models.CharField(_("title"), max_length=120, blank=True)
    note = models.TextField(_("note"), max_length=2000, blank=True)
    review_state = models.CharField(
        _("review"), max_length=20, choices=ReviewState.choices, default="", blank=True
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    comment_count = models.PositiveIntegerField(_("comments"), default=0)

    objects = VideoJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("video job")
        verbose_name_plural = _("video jobs")
        # The gallery's pages walk these backwards from a cursor (videos.paging):
        #   WHERE <filters> AND created_at <= ? AND (created_at < ? OR id < ?)
        #   ORDER BY created_at DESC, id DESC LIMIT 25
        # so each filter that is an equality has its (field, created_at, id) index, and a filter
        # that keeps few jobs its partial (created_at, id) index: a page reads its 25 rows and
        # sorts nothing, however long the history. A filter that keeps most jobs (no reference
        # image) walks the plain one. Combined filters use the index of one and check the others
        # row by row. Searching the prompt (`text`) has none of its own.
        indexes = [
            # The gallery unfiltered, the date range, the CSV export, the usage page's and the
            # budgets' months: ORDER BY created_at DESC, id DESC / WHERE created_at >= ? AND < ?;
            # the live gallery's poll: ORDER BY created_at DESC, id DESC LIMIT 1.
            models.Index(fields=["created_at", "id"], name="videojob_created"),
            # Status Completed or Failed: WHERE status = ? ORDER BY created_at DESC, id DESC;
            # also the team's running reservations (budgets): WHERE status IN (...).
            models.Index(fields=["status", "created_at", "id"], name="videojob_status_created"),
            # Status Running, few jobs at any time: WHERE <NEEDING_WORK> ORDER BY created_at DESC,
            # id DESC; also the poll sweep's due jobs and its next wake-up (needing_work()).
            models.Index(
                fields=["created_at", "id"], condition=NEEDING_WORK, name="videojob_running"
            ),
            # ... and the files-being-saved part of that WHERE (status = 'completed' AND
            # assets_fetched_at IS NULL ...), where SQLite reads each part of the OR through its
            # own index: without this one it read every completed job.
            models.Index(fields=["assets_fetched_at", "status"], name="videojob_unsaved"),
            # Author (and Made by me): WHERE author_id = ? ORDER BY created_at DESC, id DESC;
            # also a person's spend this month (budgets): WHERE author_id = ? AND created_at >= ?.
            models.Index(fields=["author", "created_at", "id"], name="videojob_author_created"),
            # A person's running jobs, for their notifier and their budget:
            # WHERE author_id = ? AND status IN (...).
            models.Index(fields=["author", "status"], name="videojob_author_status"),
            # Model: WHERE model = ? ORDER BY created_at DESC, id DESC.
            models.Index(fields=["model", "created_at", "id"], name="videojob_model_created"),
            # Size: WHERE size = ? ORDER BY created_at DESC, id DESC.
            models.Index(fields=["size", "created_at", "id"], name="videojob_size_created"),
            # Duration: WHERE seconds = ? ORDER BY created_at DESC, id DESC.
            models.Index(fields=["seconds", "created_at", "id"], name="videojob_seconds_created"),
            # With a reference image, the exception: WHERE NOT (input_reference = '')
            # ORDER BY created_at DESC, id DESC.
            models.Index(
                fields=["created_at", "id"], condition=HAS_REFERENCE, name="videojob_reference"
            ),
            # Remixes only: WHERE remix_of_id IS NOT NULL ORDER BY created_at DESC, id DESC.
            models.Index(
                fields=["created_at", "id"],
                condition=Q(remix_of__isnull=False),
                name="videojob_remixes",
            ),
            # The trash page, newest trashed first, and its purge: WHERE trashed_at IS NOT NULL
            # ORDER BY trashed_at DESC, id DESC / WHERE trashed_at IS NOT NULL AND trashed_at < ?.
            # Few jobs are in the trash at any time: the index holds only those.
            models.Index(fields=["trashed_at", "id"], condition=TRASHED, name="videojob_trashed"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:40]}"

    @property
    def is_terminal(self) -> bool:
        return self.status in (Status.COMPLETED, Status.FAILED)

    @property
    def is_fetching(self) -> bool:
        """Completed upstream, files not yet all saved here."""
        return (
            self.status == Status.COMPLETED
            and self.assets_fetched_at is None
            and not self.fetch_given_up
        )

    @property
    def is_active(self) -> bool:
        """Still changing: a page showing this job keeps refreshing it."""
        return self.status in ACTIVE_STATUSES or self.is_fetching

    @property
    def purge_at(self) -> datetime | None:
        """When a job in the trash is removed for good."""
        if self.trashed_at is None:
            return None
        return self.trashed_at + timedelta(days=settings.MUXWEB_TRASH_DAYS)

    @property
    def trash_days_left(self) -> int | None:
        """Whole days, rounded up, until a job in the trash is removed for good."""
        if self.purge_at is None:
            return None
        return max(-((timezone.now() - self.purge_at) // timedelta(days=1)), 0)

    @property
    def lacks_spritesheet(self) -> bool:
        """A kept job with its video saved but no spritesheet (imported, or saved before muxweb
        made them): one is made from the video. While files are still being saved, the download
        makes it."""
        return (
            self.status == Status.COMPLETED
            and bool(self.video)
            and not self.spritesheet
            and not self.is_fetching
            and self.trashed_at is None
        )

    @property
    def display_progress(self) -> int:
        if self.status == Status.COMPLETED:
            return 100
        return min(self.progress, 99)

    @property
    def cost(self) -> Decimal | None:
        """What it cost once completed, else what it is estimated to cost."""
        if self.final_cost is not None:
            return self.final_cost
        if self.price_per_second is None:
            return None
        return (self.price_per_second * self.seconds).quantize(Decimal("0.01"))

    def settled_cost(self, *, seconds: int | None, size: str) -> Decimal | None:
        """The cost to fix at completion: the catalogue's price now for the length and size the
        provider reports (what was asked where it reports nothing)."""
        size = size or self.size
        seconds = seconds or self.seconds
        spec = ModelSpec.objects.filter(name=self.model).first()
        price = spec.price_per_second(size) if spec is not None else None
        if price is None:
            price = self.price_per_second
        if price is None or not seconds:
            return None
        return (price * seconds).quantize(Decimal("0.01"))

    @property
    def render_seconds(self) -> int | None:
        """Seconds from submission to completion, as the provider reports them."""
        if self.submitted_at and self.completed_at:
            return max(round((self.completed_at - self.submitted_at).total_seconds()), 0)
        return None

    def asset(self, variant: str) -> models.fields.files.FieldFile:
        if variant == "reference":
            return self.input_reference
        if variant not in VARIANTS:
            raise ValueError(variant)
        return getattr(self, variant)

    def has_asset(self, variant: str) -> bool:
        return bool(self.asset(variant))

    @property
    def display_error(self) -> str:
        return str(OWN_ERRORS.get(self.error_code, self.error_message))

    def remix_tree(self, max_depth: int = 20) -> list[tuple["VideoJob", int]]:
        """The job's remix family in tree order, as (job, depth) from the original down."""
        root = self
        for _step in range(max_depth):
            if root.remix_of is None:
                break
            root = root.remix_of
        children: dict[int, list[VideoJob]] = {}
        level = [root.pk]
        for _level in range(max_depth):
            found = list(
                VideoJob.objects.filter(remix_of_id__in=level)
                .select_related("author")
                .order_by("created_at", "id")
            )
            if not found:
                break
            for job in found:
                children.setdefault(job.remix_of_id, []).append(job)
            level = [job.pk for job in found]

        tree: list[tuple[VideoJob, int]] = []

        def walk(job: VideoJob, depth: int) -> None:
            tree.append((job, depth))
            for child in children.get(job.pk, []):
                walk(child, depth + 1)

        walk(root, 0)
        return tree

    def is_overdue(self, now: datetime) -> bool:
        started = self.submitted_at or self.created_at
        return now - started > MAX_RENDER_TIME

    def fetch_retry_delay(self) -> timedelta:
        step = min(self.fetch_attempts, len(FETCH_BACKOFF)) - 1
        return timedelta(seconds=FETCH_BACKOFF[max(step, 0)])


class PurgedCost(models.Model):
    """What a completed job had cost when it was removed for good from the trash: the job and its
    files are gone, but the month's spend, the budgets and the usage page still count it
    (videos.usage), so emptying the trash never frees budget."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=100)
    seconds = models.PositiveSmallIntegerField()
    final_cost = models.DecimalField(max_digits=10, decimal_places=2)
    # Usage and budgets: WHERE completed_at >= ? AND completed_at < ?.
    completed_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.model} {self.final_cost} ({self.completed_at:%Y-%m-%d})"

    @classmethod
    def keep_for(cls, job: "VideoJob") -> None:
        """Before `job` is deleted: keep its cost where a completed job's would count."""
        if job.status == Status.COMPLETED and job.completed_at and job.final_cost is not None:
            cls.objects.create(
                author_id=job.author_id,
                model=job.model,
                seconds=job.seconds,
                final_cost=job.final_cost,
                completed_at=job.completed_at,
            )


class WebhookEvent(models.Model):
    """A webhook delivery taken, by its id: a repeated delivery is recognised and ignored."""

    webhook_id = models.CharField(max_length=200, unique=True)
    event_type = models.CharField(max_length=50)
    video_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.event_type} {self.video_id}"

    @classmethod
    def arriving(cls) -> bool:
        """Webhooks reach us: one came within the last hour."""
        return cls.objects.filter(received_at__gte=timezone.now() - WEBHOOKS_FRESH).exists()


class Lease(models.Model):
    """A named lock with an expiry, shared by every process through the database."""

    name = models.CharField(max_length=50, primary_key=True)
    expires_at = models.DateTimeField()
    # The process holding it ("host/boot id/pid/start time", videos.holders), for leases kept
    # alive by a heartbeat: one whose holder is gone is taken over without waiting for it to run
    # out. Empty for leases that simply run out.
    holder = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def claim(cls, name: str, duration: timedelta, holder: str = "") -> bool:
        now = timezone.now()
        cls.objects.get_or_create(name=name, defaults={"expires_at": now})
        return (
            cls.objects.filter(name=name, expires_at__lte=now).update(
                expires_at=now + duration, holder=holder
            )
            == 1
        )

    @classmethod
    def release(cls, name: str) -> None:
        # The row goes: a lock per job (one download at a time) leaves nothing behind.
        cls.objects.filter(name=name).delete()

    @classmethod
    def is_held(cls, name: str) -> bool:
        return cls.objects.filter(name=name, expires_at__gt=timezone.now()).exists()


class ProviderBudget(models.Model):
    """One provider key's request budget, shared by every process through the database when
    Redis is not configured (videos/upstream/ratelimit.py): the times of the requests sent in the
    last minute, the limit learnt from the provider, and until when the whole key is paused."""

    # A hash of the API base and key: the key itself is never stored.
    key = models.CharField(max_length=40, primary_key=True)
    learnt_limit = models.PositiveIntegerField(null=True, blank=True)
    # Unix times of the requests granted in the last window, oldest first.
    sent = models.JSONField(default=list, blank=True)
    paused_until = models.FloatField(default=0.0)
    # Whether the provider answers `GET /videos` (videos/listpoll.py): None until first asked,
    # asked again a day after it was last found out.
    lists_videos = models.BooleanField(null=True, blank=True)
    list_checked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"budget {self.key[:8]}"


# An import whose worker has not reported for this long died; another may start.
IMPORT_STALE_AFTER = timedelta(minutes=5)


class ImportRun(models.Model):
    """One import of the jobs started elsewhere with the same key, run in the background: its
    counts are its progress, `finished_at` says it is done."""

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Where the next page starts: the last provider id seen.
    cursor = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.pk}"

    @property
    def is_running(self) -> bool:
        return self.finished_at is None and not self.is_stale

    @property
    def is_stale(self) -> bool:
        return self.finished_at is None and timezone.now() - self.updated_at > IMPORT_STALE_AFTER

    @property
    def version(self) -> str:
        """Changes with every page recorded: a poll that sees the same answers 204."""
        return f"{self.pk}-{self.updated_at.timestamp()}"

    @classmethod
    def latest(cls) -> "ImportRun | None":
        return cls.objects.select_related("started_by").first()


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting to start")
    BUILDING = "building", _("Building")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


class ZipExport(models.Model):
    """A zip of videos asked for by one person (videos.exports builds it in the background): the
    jobs it holds, fixed when asked, its progress, and its file while it may be downloaded."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="zip_exports"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # In the gallery's order, resolved when asked: later changes to the gallery do not alter it.
    job_ids = models.JSONField(default=list)
    include_extras = models.BooleanField(default=False)
    # The asker's time zone: the files are named by the date and time they saw.
    time_zone = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=20, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # Jobs of the selection whose video is not in the zip (none saved, or unreadable).
    skipped = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    # Relative to MEDIA_ROOT, set when the build starts.
    file_name = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # My recent exports: WHERE requested_by_id = ? ORDER BY created_at DESC, id DESC.
            models.Index(fields=["requested_by", "created_at", "id"], name="zipexport_requester"),
            # The expiry sweep: WHERE status = 'ready' AND expires_at <= ?, and the builds that
            # stopped: WHERE status = 'building' AND updated_at < ?.
            models.Index(fields=["status", "expires_at"], name="zipexport_status_expires"),
        ]

    def __str__(self) -> str:
        return f"zip export {self.pk}"

    @property
    def is_running(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.BUILDING)

    @property
    def is_downloadable(self) -> bool:
        return (
            self.status == ExportStatus.READY
            and self.expires_at is not None
            and self.expires_at > timezone.now()
        )

    @property
    def is_gone(self) -> bool:
        """Was ready, and its time is up (the sweep may not have removed the file yet)."""
        return self.status == ExportStatus.EXPIRED or (
            self.status == ExportStatus.READY and not self.is_downloadable
        )

    @property
    def videos(self) -> int:
        """The videos the zip holds (or will, once built)."""
        return max(self.total - self.skipped, 0)

    @property
    def version(self) -> str:
        """Changes whenever the page showing this export would: a poll that sees it answers 204."""
        return f"{self.status}-{self.done}-{self.skipped}"
