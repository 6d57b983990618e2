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
    """Hand completed jobs' downloads to workers. While jobs wait for the key's budget, creates go
    first (fairshare.downloads_yield): the downloads with time to spare are looked at again
    DOWNLOAD_YIELD later, in one update, and only those whose files expire soon go now."""
    from videos.downloads import download_priority
    from videos.fairshare import downloads_yield
    from videos.upstream.ratelimit import Priority

    if not jobs:
        return
    now = timezone.now()
    if downloads_yield():
        spare = [job for job in jobs if download_priority(job) != Priority.URGENT]
        # Not those a worker claimed meanwhile: their next look is the task's lease.
        VideoJob.objects.filter(
            Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), pk__in=[j.pk for j in spare]
        ).update(next_poll_at=now + DOWNLOAD_YIELD)
        jobs = [job for job in jobs if job not in spare]
    for job in jobs:
        if claim(job, now):
            transaction.on_commit(
                partial(async_task, "videos.tasks.fetch_assets", job.pk, timeout=FETCH_TASK_TIMEOUT)
            )


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
