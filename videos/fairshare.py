"""Concurrency and fair share: how many jobs render at the provider at once, and which waiting job
goes next.

Three limits hold jobs back inside muxweb (status WAITING, nothing sent, nothing paid): the
provider's, settings.MUXWEB_PROVIDER_CONCURRENCY, for every member together; a member's own,
accounts.models.Profile.concurrency_limit, set on the Team page; and the key's request budget
(videos/upstream/ratelimit.py) once its limit is known, since a create is a request. A job
occupies a slot from the moment it may be sent (pending) until the provider says it is done or
failed; saving its files takes no slot.

When a slot frees (a pass of the poll sweep, a job ending, a request leaving the budget's
window), the waiting jobs are sent in fair order: round-robin between members, oldest first
within a member. A member's turn counts the slots they already hold, so fifty jobs from one
member delay another member's single job by one slot at most. Admission runs under one lock row,
so several workers admitting at once never send more than the limits allow; each job is taken
from WAITING by a conditional update.

While status checks are due soon, admission leaves a request free for each (held_for_checks):
the check (one list for every running job, videos/listpoll.py) that shows jobs finished must not
wait a minute behind creates. And while jobs wait for the budget, downloads with time to spare
wait too (`downloads_yield`): creates go first, and a file the provider deletes soon still goes
at once.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import ordinal
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from accounts.activity import record
from accounts.models import Action, Profile
from videos.models import ACTIVE_STATUSES, Lease, Status, VideoJob
from videos.queue import TASK_LEASE
from videos.upstream.ratelimit import CHECK_GRID, WINDOW, default_budget

# The statuses that hold a slot at the provider (or are about to: pending is sent at once).
OCCUPYING = tuple(status for status in ACTIVE_STATUSES if status != Status.WAITING)
# The row every admission locks first, so that two workers never count the same free slot.
ADMISSION_LOCK = "fair-share-admission"
# Render times of this many recent jobs make the wait estimate.
ESTIMATE_SAMPLE = 20


# Running at the provider: a status check may find them finished.
RUNNING = (Status.QUEUED, Status.IN_PROGRESS)
# Requests of the budget's window kept free for status checks due within this many seconds ...
CHECK_HORIZON = 30.0
# ... one for each grid step with a check due, up to this many (of the due jobs read at most).
CHECK_HELD_MOST = 3
CHECK_SAMPLE = 500
# The shortest wait before the budget is asked again for a waiting job's room.
ADMISSION_RECHECK = 0.5


def is_limited(author_id: int | None) -> bool:
    """Whether a new job of this author must wait for a slot rather than go out at once."""
    if settings.MUXWEB_PROVIDER_CONCURRENCY is not None or default_budget().limits_creates():
        return True
    return (
        author_id is not None
        and Profile.objects.filter(user_id=author_id, concurrency_limit__isnull=False).exists()
    )


def budget_room(state=None) -> float:
    """Creates the key's budget has room for now (infinite when it knows no limit), less the jobs
    admitted and not sent yet, and less the request kept for status checks while jobs render.
    `state`: the budget's, when the caller has just read it."""
    budget = default_budget()
    if state is None and budget.enabled:
        state = budget.state()
    if state is None or state.room is None:
        return math.inf
    unsent = VideoJob.objects.filter(status=Status.PENDING).count()
    return max(state.room - unsent - held_for_checks(state), 0)


def held_for_checks(state) -> int:
    """The requests kept for status checks: one for each time a check is due soon
    (CHECK_HORIZON) or before the next request leaves the window (after that, it can take that
    one), at most CHECK_HELD_MOST and a third of the limit."""
    most = min(CHECK_HELD_MOST, (state.limit or 0) // 3)
    if not most:
        return 0
    horizon = timezone.now() + timedelta(seconds=max(state.frees_in, CHECK_HORIZON))
    due = VideoJob.objects.filter(status__in=RUNNING, next_poll_at__lte=horizon)
    # Checks due within the same grid step go as one list (ratelimit.on_check_grid).
    times = due.values_list("next_poll_at", flat=True)[:CHECK_SAMPLE]
    return min(len({math.ceil(at.timestamp() / CHECK_GRID) for at in times}), most)


def seconds_until_admission() -> float | None:
    """When a job waiting for the key's budget may find room: the poll sweep wakes then. None when
    no job waits for the budget (those waiting for jobs to end are admitted as they end)."""
    budget = default_budget()
    if not budget.enabled or not VideoJob.objects.filter(status=Status.WAITING).exists():
        return None
    state = budget.state()
    if not state.limit:
        return None
    if state.paused_for > 0:
        return state.paused_for
    if budget_room(state) > 0:
        return None
    # The oldest request leaving the window frees one; a job being sent meanwhile may take it.
    return max(state.frees_in, ADMISSION_RECHECK)


def downloads_yield() -> bool:
    """Whether downloads with time to spare should wait: jobs wait that only the budget holds
    back (neither the provider's nor their member's limit of jobs at once)."""
    budget = default_budget()
    if not budget.enabled or not budget.state().limit:
        return False
    waiting = waiting_jobs()
    if not waiting:
        return False
    held = occupied()
    total = settings.MUXWEB_PROVIDER_CONCURRENCY
    if total is not None and sum(held.values()) >= total:
        return False
    limits = member_limits()
    return any(
        job.author_id not in limits or held[job.author_id] < limits[job.author_id]
        for job in waiting
    )


def member_limits() -> dict[int, int]:
    return dict(
        Profile.objects.filter(concurrency_limit__isnull=False).values_list(
            "user_id", "concurrency_limit"
        )
    )


def occupied() -> Counter:
    """Slots held now, by author (None: imported jobs and former members)."""
    rows = (
        VideoJob.objects.filter(status__in=OCCUPYING)
        .values_list("author_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Counter(dict(rows))


def fair_order(waiting: list[VideoJob], held: Counter) -> list[VideoJob]:
    """The waiting jobs in the order they go out: round by round, each member's oldest first,
    a member's round counting the slots they hold already; within a round, the oldest first."""
    taken: dict[int | None, int] = defaultdict(int)
    keyed = []
    for job in sorted(waiting, key=lambda job: (job.created_at, job.pk)):
        turn = held[job.author_id] + taken[job.author_id]
        taken[job.author_id] += 1
        keyed.append((turn, job.created_at, job.pk, job))
    keyed.sort(key=lambda key: key[:3])
    return [key[3] for key in keyed]


def waiting_jobs() -> list[VideoJob]:
    # Few at any time; the running index (NEEDING_WORK) serves WHERE status = 'waiting'.
    return list(
        VideoJob.objects.filter(status=Status.WAITING).only("pk", "author_id", "created_at")
    )


def admit_waiting() -> list[int]:
    """Send as many waiting jobs as the limits allow now, in fair order; their ids."""
    if not VideoJob.objects.filter(status=Status.WAITING).exists():
        return []
    Lease.objects.get_or_create(
        name=ADMISSION_LOCK, defaults={"expires_at": timezone.now() + timedelta(days=3650)}
    )
    admitted = []
    with transaction.atomic():
        # PostgreSQL: FOR UPDATE, one admission at a time; SQLite: every transaction here is
        # BEGIN IMMEDIATE already. The counts below are read after the lock is held.
        list(Lease.objects.select_for_update().filter(name=ADMISSION_LOCK))
        held = occupied()
        limits = member_limits()
        total = settings.MUXWEB_PROVIDER_CONCURRENCY
        free = math.inf if total is None else total - sum(held.values())
        free = min(free, budget_room())
        now = timezone.now()
        for job in fair_order(waiting_jobs(), held):
            if free <= 0:
                break
            limit = limits.get(job.author_id)
            if limit is not None and held[job.author_id] >= limit:
                continue
            # The lease, as for a new job: should the task be lost, the sweep sends it later.
            if VideoJob.objects.filter(pk=job.pk, status=Status.WAITING).update(
                status=Status.PENDING, next_poll_at=now + TASK_LEASE, updated_at=now
            ):
                admitted.append(job.pk)
                held[job.author_id] += 1
                free -= 1
    for job_id in admitted:
        transaction.on_commit(lambda job_id=job_id: async_task("videos.tasks.submit_job", job_id))
    return admitted


def slot_freed() -> None:
    """A job stopped rendering at the provider: its slot goes to the next waiting job."""
    transaction.on_commit(admit_waiting)


def cancel_waiting(job: VideoJob, *, actor) -> bool:
    """Cancel a job that has not been sent: it ends failed ("cancelled"), so its reserved cost no
    longer counts against the budgets. False if it was sent (or ended) meanwhile."""
    with transaction.atomic():
        cancelled = VideoJob.objects.filter(pk=job.pk, status=Status.WAITING).update(
            status=Status.FAILED,
            error_code="cancelled",
            error_message="Cancelled while it waited: nothing was sent to the provider or paid.",
            next_poll_at=None,
            updated_at=timezone.now(),
        )
        if cancelled:
            record(actor, Action.CANCEL, job=job)
    return bool(cancelled)


@dataclass
class Place:
    """Where a waiting job stands: its place in line (1 is next) and the wait expected."""

    position: int
    wait: timedelta | None

    @property
    def label(self) -> str:
        place = ordinal(self.position)
        if self.wait is None:
            return _("Waiting, %(place)s in line") % {"place": place}
        minutes = max(1, round(self.wait.total_seconds() / 60))
        return _("Waiting, %(place)s in line, about %(minutes)s min") % {
            "place": place,
            "minutes": minutes,
        }


def typical_render(model: str | None = None) -> timedelta | None:
    """The median render time (sent to done) of the recent jobs (of one model), or None before
    any."""
    recent = VideoJob.objects.filter(status=Status.COMPLETED, submitted_at__isnull=False)
    if model is not None:
        recent = recent.filter(model=model)
    recent = (
        recent.exclude(completed_at=None)
        .order_by("-completed_at")
        .values_list("submitted_at", "completed_at")[:ESTIMATE_SAMPLE]
    )
    seconds = [(done - sent).total_seconds() for sent, done in recent if done >= sent]
    return timedelta(seconds=statistics.median(seconds)) if seconds else None


def line() -> dict[int, Place]:
    """Every waiting job's place, by id. A few queries, whatever the number of jobs waiting."""
    waiting = waiting_jobs()
    if not waiting:
        return {}
    held = occupied()
    limits = member_limits()
    render = typical_render()
    budget = default_budget()
    limit = budget.state().limit if budget.enabled else None
    # Each create is a request: the budget sends one every minute / limit at most.
    per_create = timedelta(seconds=WINDOW / limit) if limit else None
    places = {}
    for position, job in enumerate(fair_order(waiting, held), start=1):
        waits = []
        slots = settings.MUXWEB_PROVIDER_CONCURRENCY or limits.get(job.author_id)
        if slots and render is not None:
            waits.append(render * math.ceil(position / slots))
        if per_create is not None:
            waits.append(per_create * position)
        places[job.pk] = Place(position, max(waits) if waits else None)
    return places


def place_of(request, job: VideoJob) -> Place | None:
    """A waiting job's place in line, the line read once per request however many cards ask."""
    if job.status != Status.WAITING:
        return None
    places = getattr(request, "_waiting_line", None)
    if places is None:
        places = request._waiting_line = line()
    return places.get(job.pk)
