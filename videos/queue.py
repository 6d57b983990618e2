"""Handing work to the background workers: claiming a job for a task, and the tasks that
every part of a job's life may need to start (the poll sweep, a download).

A job row is claimed with a conditional update before its task is queued, so a job the sweep sees
twice is handed out once; the claim is a lease, so a task whose worker died is handed out again.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from videos.models import (
    Lease,
    Status,
    VideoJob,
)

log = logging.getLogger(__name__)

# How long a queued task may take before the sweep hands the same job out again.
TASK_LEASE = timedelta(minutes=6)
# A download holds its job's lock a little less long than that: when the sweep hands out again
# a job whose download died, the lock has run out, even on a worker whose clock is behind. (Only
# where no heartbeat can keep it: inside a transaction, see videos.holders; elsewhere the lock
# runs out seconds after its worker died.)
FETCH_LOCK = TASK_LEASE - timedelta(minutes=2)
# A download task may run longer than the cluster's 90 s (a big video), but not for ever.
FETCH_TASK_TIMEOUT = int(FETCH_LOCK.total_seconds()) - 30
# How long after asking for a job's missing spritesheet a view may ask again (the first request
# failed: a video that does not decode is not tried on every view).
SPRITESHEET_RETRY = timedelta(hours=1)
# One sweep task runs this long, then hands over to a fresh task (a worker is never held for long).
SWEEP_LEASE = "poll-sweep"


def claim(job: VideoJob, now: datetime) -> bool:
    """Push the job's next look past the lease, unless another worker already did."""
    return (
        VideoJob.objects.filter(pk=job.pk, next_poll_at=job.next_poll_at).update(
            next_poll_at=now + TASK_LEASE
        )
        == 1
    )


def kick_poll_sweep() -> None:
    """Make sure a sweep runs now; a no-op while one is already running."""
    if Lease.is_held(SWEEP_LEASE):
        return
    # Always through the broker: a sweep sleeps between passes and must not run inside a request.
    async_task("videos.tasks.poll_sweep", sync=False)


# A download that waits for creates to go first looks again this much later.
DOWNLOAD_YIELD = timedelta(seconds=15)


def enqueue_fetch(job: VideoJob) -> None:
    enqueue_fetches([job])


def enqueue_fetches(jobs: list[VideoJob]) -> None:
    """Hand completed jobs' downloads to workers, as many as the key's budget has room for now.

    While jobs wait for the budget, creates go first (fairshare.downloads_yield): only downloads
    whose files expire soon go, the others are looked at again DOWNLOAD_YIELD later. And no more
    downloads are queued than the budget can take at once: a hundred tasks that would only find
    no room would hold up the queue, the poll sweep's next pass behind them. The rest stay due
    and go at a later pass, the most urgent first."""
    from videos.downloads import download_priority
    from videos.fairshare import downloads_yield, held_for_checks
    from videos.upstream.ratelimit import Priority, default_budget, room_for

    if not jobs:
        return
    now = timezone.now()
    jobs = sorted(jobs, key=lambda job: download_priority(job))
    if downloads_yield():
        spare = [job for job in jobs if download_priority(job) != Priority.URGENT]
        _look_again([job.pk for job in spare], now + DOWNLOAD_YIELD, now)
        jobs = [job for job in jobs if job not in spare]
    budget = default_budget()
    state = budget.state() if budget.enabled else None
    if state is not None and state.limit:
        room = 0 if state.paused_for else room_for(state.limit, Priority.DOWNLOAD) - state.used
        room -= fetches_under_way(now) + held_for_checks(state)
        later = jobs[max(room, 0) :]
        jobs = jobs[: max(room, 0)]
        frees = state.paused_for or state.frees_in
        _look_again([job.pk for job in later], now + timedelta(seconds=max(frees, 1.0)), now)
    for job in jobs:
        if claim(job, now):
            transaction.on_commit(
                partial(async_task, "videos.tasks.fetch_assets", job.pk, timeout=FETCH_TASK_TIMEOUT)
            )


def fetches_under_way(now: datetime) -> int:
    """Downloads handed to a worker and not finished: their job's next look is the task lease."""
    return VideoJob.objects.filter(
        status=Status.COMPLETED,
        assets_fetched_at__isnull=True,
        next_poll_at__gt=now + TASK_LEASE - timedelta(minutes=1),
    ).count()


def _look_again(pks: list[int], at: datetime, now: datetime) -> None:
    """Put off these jobs' next look, unless a worker claimed one meanwhile (its next look is
    the task's lease)."""
    if pks:
        VideoJob.objects.filter(
            Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), pk__in=pks
        ).update(next_poll_at=at)


def enqueue_missing_spritesheets(jobs: Iterable[VideoJob]) -> None:
    """Have a spritesheet made for each shown job that lacks one: once, however many pages show
    it meanwhile (a lease per job, claimed by a conditional update). Costs no query when every
    job has one."""
    for job in jobs:
        if job.lacks_spritesheet and Lease.claim(spritesheet_lease(job.pk), SPRITESHEET_RETRY):
            transaction.on_commit(
                partial(
                    async_task,
                    "videos.tasks.make_missing_spritesheet",
                    job.pk,
                    timeout=FETCH_TASK_TIMEOUT,
                )
            )


def spritesheet_lease(job_id: int) -> str:
    """The lease that lets one view, not every view, ask for a job's missing spritesheet."""
    return f"spritesheet:{job_id}"
