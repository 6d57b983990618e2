"""Checking with the provider again: a job muxweb gave up on by itself (polls kept failing, the
3-hour cap, a create whose outcome stayed unknown; `VideoJob.gave_up`) may still be at the
provider. Its author or an admin asks once; if the provider has it, tracking resumes as if the
answer had come from a normal poll.
"""

import logging
from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from accounts.activity import record
from accounts.models import Action

# The reconciliation's own steps (finding a create's job in the provider's list, adopting it):
# a check again looks and adopts exactly as it does.
from videos.lifecycle import _adopt as adopt
from videos.lifecycle import _find_upstream as find_upstream
from videos.lifecycle import apply_upstream, read_video
from videos.models import Status, VideoJob, map_upstream_status
from videos.queue import kick_poll_sweep
from videos.upstream.client import UpstreamError, default_client
from videos.upstream.video import UpstreamVideo

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    # The provider has it: tracking resumed (or it finished there, and that is now shown).
    RESUMED = "resumed"
    # The provider answered and does not have it.
    NOT_THERE = "not_there"
    # The provider still renders it past the 3-hour cap: nothing changes, no job is polled forever.
    STILL_RUNNING = "still_running"
    # The provider could not be asked (an outage, a rate limit): nothing changes.
    UNREACHABLE = "unreachable"
    # Not a job muxweb gave up on (the provider failed it, or it runs): nothing was asked.
    NOT_GIVEN_UP = "not_given_up"


def may_check_again(job: VideoJob) -> bool:
    return job.status == Status.FAILED and job.gave_up and job.trashed_at is None


def check_again(job: VideoJob, *, actor) -> tuple[Outcome, str]:
    """Ask the provider once about a job muxweb gave up on, and resume tracking it if the
    provider has it. Returns the outcome and, for UNREACHABLE, the error."""
    if not may_check_again(job):
        return Outcome.NOT_GIVEN_UP, ""
    try:
        video = _look_up(job)
    except UpstreamError as exc:
        if exc.status == 404:
            video = None
        else:
            log.warning("job %s: checking again failed (%s)", job.pk, exc)
            _record(actor, job, Outcome.UNREACHABLE)
            return Outcome.UNREACHABLE, str(exc)
    if video is None:
        _record(actor, job, Outcome.NOT_THERE)
        return Outcome.NOT_THERE, ""
    return _resume(job, video, actor=actor), ""


def _look_up(job: VideoJob) -> UpstreamVideo | None:
    """The provider's job: by its id, or for a create whose answer never came, the matching job
    in its list (as the reconciliation looks for it). None when the provider does not have it."""
    client = default_client()
    if job.upstream_id:
        data, _poll_after = client.retrieve(job.upstream_id)
        if isinstance(data, dict) and data.get("id") is None:
            data = {**data, "id": job.upstream_id}
        return read_video(data)
    video, _covered = find_upstream(job)
    return video


def _resume(job: VideoJob, video: UpstreamVideo, *, actor) -> Outcome:
    status = map_upstream_status(video.status)
    running = status not in (Status.COMPLETED, Status.FAILED)
    if running and job.upstream_id and job.is_overdue(timezone.now()):
        _record(actor, job, Outcome.STILL_RUNNING)
        return Outcome.STILL_RUNNING
    with transaction.atomic():
        if job.upstream_id:
            # Back to running, then the answer applied as a poll's would be (its status,
            # progress, a completion that starts the download). Conditional: two clicks at once
            # resume it once.
            resumed = VideoJob.objects.filter(pk=job.pk, status=Status.FAILED, gave_up=True).update(
                status=Status.QUEUED,
                gave_up=False,
                poll_failures=0,
                error_code="",
                error_message="",
                next_poll_at=None,
            )
            if resumed:
                job.refresh_from_db()
                apply_upstream(job, video)
        else:
            # A create whose outcome stayed unknown, found after all: the job takes its id.
            resumed = adopt(job, video, from_status=Status.FAILED)
            if resumed:
                VideoJob.objects.filter(pk=job.pk).update(gave_up=False)
        if not resumed:
            return Outcome.NOT_GIVEN_UP
        _record(actor, job, Outcome.RESUMED)
    kick_poll_sweep()
    return Outcome.RESUMED


def _record(actor, job: VideoJob, outcome: Outcome) -> None:
    record(actor, Action.CHECK_AGAIN, job=job, outcome=str(outcome))
