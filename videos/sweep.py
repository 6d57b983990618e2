"""The poll sweep: one task at a time looks at every job due for work (submit, check, poll,
download) and polls the running ones together, sleeping until the next is due, then hands over."""

import logging
import time
from datetime import datetime, timedelta

from django.db.models import Count, F, Min
from django.utils import timezone
from django_q.tasks import async_task

from videos import holders
from videos.fairshare import admit_waiting, seconds_until_admission
from videos.lifecycle import poll_jobs, start_checking
from videos.listpoll import poll_by_list
from videos.models import (
    Status,
    VideoJob,
)
from videos.queue import SWEEP_LEASE, claim, enqueue_fetches
from videos.upstream.client import UpstreamError

log = logging.getLogger(__name__)

# One sweep task runs this long, then hands over to a fresh task (a worker is never held for long).
SWEEP_SECONDS = 10.0
# A job due later than this is left to the scheduled sweep that runs every minute. A little over
# the budget's window: a job waiting for a request is admitted when the oldest one leaves it, not
# up to a minute later when the schedule comes round.
SWEEP_HANDOFF_SECONDS = 65.0
POLL_CONCURRENCY = 8
SWEEP_BATCH = 200


def poll_due_jobs(now: datetime | None = None) -> int:
    """One pass over every job that needs a worker now; returns how many it handled."""
    now = now or timezone.now()
    jobs = list(
        VideoJob.objects.due(now).order_by(F("next_poll_at").asc(nulls_first=True))[:SWEEP_BATCH]
    )
    to_poll, completed = [], []
    for job in jobs:
        if job.status == Status.PENDING:
            if claim(job, now):
                async_task("videos.tasks.submit_job", job.pk)
        elif job.status == Status.SUBMITTING:
            # Its lease ran out: the worker submitting it died, and whether the provider got the
            # create is unknown. It is looked for before anything is sent again.
            start_checking(job, UpstreamError("the worker sending the job stopped"))
        elif job.status == Status.CHECKING:
            if claim(job, now):
                async_task("videos.tasks.reconcile_submit", job.pk)
        elif job.status == Status.COMPLETED:
            completed.append(job)
        else:
            to_poll.append(job)
    enqueue_fetches(completed)
    # One page of the provider's list answers for most of them (videos.listpoll).
    poll_jobs(poll_by_list(to_poll))
    # Then the budget's free requests go to the waiting jobs, in fair order: after the status
    # check, which is one request for every running job and shows the finished ones.
    admit_waiting()
    return len(jobs)


def seconds_until_next_due() -> float | None:
    """When the soonest job needs a worker, in seconds from now; None when nothing does."""
    # Waiting jobs are sent when a slot frees, at a pass or when a job ends, not by their clock.
    soonest = (
        VideoJob.objects.needing_work()
        .exclude(status=Status.WAITING)
        .aggregate(at=Min("next_poll_at"), count=Count("id"))
    )
    # Jobs waiting for the key's budget are admitted when a request leaves its window.
    admission = seconds_until_admission()
    if not soonest["count"]:
        return admission
    if soonest["at"] is None:
        return 0.0
    due = max((soonest["at"] - timezone.now()).total_seconds(), 0.0)
    return due if admission is None else min(due, admission)


def run_poll_sweep() -> None:
    """Poll due jobs for a while, sleeping until the next one is due, then hand over.

    One sweep at a time holds the lease. While jobs are running each sweep enqueues the next,
    so polling goes on at the jobs' own pace; a schedule restarts the chain every minute in case
    a worker died holding it.
    """
    # Work whose holder died (a download, a sweep) is freed and due again before the pass.
    holders.recover()
    # The lease knows its holder and has a heartbeat (videos.holders): a sweep killed mid-poll
    # holds up the next one for seconds, not minutes.
    with holders.held(SWEEP_LEASE, timedelta(seconds=SWEEP_SECONDS + 120)) as claimed:
        if not claimed:
            return
        deadline = time.monotonic() + SWEEP_SECONDS
        while True:
            poll_due_jobs()
            wait = seconds_until_next_due()
            if wait is None or wait > SWEEP_HANDOFF_SECONDS:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(max(wait, 0.2), remaining))
    # Asked again after the release: a job submitted while this sweep was ending found the lease
    # held and did not start one of its own.
    wait = seconds_until_next_due()
    if wait is not None and wait <= SWEEP_HANDOFF_SECONDS:
        async_task("videos.tasks.poll_sweep", sync=False)
