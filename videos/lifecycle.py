"""A job's life at the provider: submitting it, finding a create whose answer never came, and
applying what the provider answers (polls, webhooks' refreshes) to the row.

Every save touches only the fields it changed, through a conditional update where two workers
may answer for the same job at once.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from videos import fairshare, holders
from videos.models import (
    LIFECYCLE_FIELDS,
    MAX_RENDER_TIME,
    Status,
    VideoJob,
    WebhookEvent,
    map_upstream_status,
)
from videos.queue import TASK_LEASE, enqueue_fetch, kick_poll_sweep
from videos.upstream.client import BudgetDeferred, UpstreamError, default_client
from videos.upstream.ratelimit import Priority, default_budget, on_check_grid
from videos.upstream.video import UpstreamVideo, identifier

log = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5
# A create whose answer never came is looked for in the provider's list of jobs. It counts as
# absent (and is sent again) only when this many listings, this far apart at least from the send,
# all covered its time and none had it. A provider that cannot be asked leaves it unknown.
RECONCILE_CONFIRMATIONS = 2
RECONCILE_SETTLE = 15.0
RECONCILE_INTERVAL = 5.0
MAX_RECONCILE_ATTEMPTS = 8
RECONCILE_PAGES = 5
# Clocks differ: a provider's created_at may be this much earlier than our send.
CLOCK_SKEW = timedelta(minutes=2)
# Polls that fail this many times in a row (with backoff: about 15 minutes) end the job.
MAX_POLL_FAILURES = 10
# The longest a Retry-After is honoured for; a provider asking for more is asked again then.
MAX_RETRY_AFTER = 300.0
# A job the provider answers 404 for this many times in a row is taken as forgotten.
MAX_NOT_FOUND = 3
FIRST_POLL_DELAY = 1.0
# Polls start this often and slow down while a job makes no progress.
BASE_POLL_INTERVAL = 2.0
# A running job is polled again after this share of the time it has run so far.
AGE_POLL_FACTOR = 0.3
MIN_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 30.0
MAX_POLL_BACKOFF = 300.0
# With webhooks working: one look every this often, in case one of them is lost.
SAFETY_POLL_INTERVAL = 120.0
# With the budget tight, a job is looked at again when it should be done, this much after.
FINISH_MARGIN = 2.0
# ... but never longer from now than this: an estimate may be wrong.
MAX_FINISH_WAIT = 120.0
# Typical render times are read again this often (seconds); while none is known, this often: the
# first jobs to finish make the estimate for every job sent after them.
TYPICAL_RENDER_TTL = 30.0
UNKNOWN_RENDER_TTL = 3.0
# A job's progress says little early on (queued at 0, then uneven steps): what it implies is left
# is trusted no further ahead than the job has run so far, or this many seconds.
PROGRESS_GUESS_FLOOR = 20.0
POLL_CONCURRENCY = 8
POLL_READ_TIMEOUT = 15.0
SWEEP_BATCH = 200


def submit_job(job_id: int) -> None:
    """Send a pending job to the provider: create (or remix) it upstream."""
    # Held with a heartbeat while the create is in flight (videos.holders): should this worker
    # die, the job is looked for at the provider seconds after the restart, not TASK_LEASE later.
    with holders.held(f"{holders.SUBMIT_PREFIX}{job_id}", TASK_LEASE) as claimed:
        if claimed:
            _submit_job(job_id)


def _submit_job(job_id: int) -> None:
    now = timezone.now()
    # The send time is recorded before the send: should this worker die with the create in
    # flight, the lease runs out and the job is looked for at the provider, never sent blindly.
    claimed = VideoJob.objects.filter(pk=job_id, status=Status.PENDING).update(
        status=Status.SUBMITTING,
        submit_attempts=F("submit_attempts") + 1,
        submit_sent_at=now,
        next_poll_at=now + TASK_LEASE,
    )
    if not claimed:
        return
    job = VideoJob.objects.select_related("remix_of").get(pk=job_id)
    if job.remix_of_id and not (job.remix_of and job.remix_of.upstream_id):
        fail(job, "remix_source_missing", "The video this remixes is no longer at the provider.")
        return
    client = default_client()
    try:
        if job.remix_of_id:
            video = client.remix(job.remix_of.upstream_id, job.prompt)
        else:
            reference = None
            if job.input_reference:
                with job.input_reference.open("rb") as f:
                    reference = ("reference.png", f.read(), "image/png")
            video = client.create(
                prompt=job.prompt,
                model=job.model,
                seconds=job.seconds,
                size=job.size,
                input_reference=reference,
            )
    except BudgetDeferred as exc:
        _submit_deferred(job, exc)
        return
    except UpstreamError as exc:
        _submit_failed(job, exc)
        return
    try:
        answer = read_video(video)
    except UpstreamError as exc:
        # Accepted, perhaps, but with no id we could keep: look for it before anything else.
        start_checking(job, exc)
        return
    _adopt(job, answer, from_status=Status.SUBMITTING)


def read_video(data: object) -> UpstreamVideo:
    """The provider's Video object, checked (see upstream/video.py), or UpstreamError."""
    return UpstreamVideo.parse(data, secret=settings.MUXWEB_API_KEY)


def _adopt(job: VideoJob, video: UpstreamVideo, *, from_status: Status) -> bool:
    """Take the provider's job as this one's: its id first, on its own update, so that whatever
    happens next this paid job is never lost track of. False if another worker got there first."""
    try:
        with transaction.atomic():
            adopted = VideoJob.objects.filter(
                pk=job.pk, status=from_status, upstream_id__isnull=True
            ).update(
                upstream_id=video.id,
                submitted_at=timezone.now(),
                status=Status.QUEUED,
                error_code="",
                error_message="",
            )
    except IntegrityError:
        # Another row already holds this provider id.
        return False
    if not adopted:
        return False
    job.refresh_from_db()
    apply_upstream(job, video, poll_after=FIRST_POLL_DELAY)
    kick_poll_sweep()
    return True


def _submit_deferred(job: VideoJob, exc: BudgetDeferred) -> None:
    """Nothing was sent (the key's budget had no room): back in line for when it has, the
    attempt not counted."""
    VideoJob.objects.filter(pk=job.pk, status=Status.SUBMITTING).update(
        status=Status.PENDING,
        submit_attempts=F("submit_attempts") - 1,
        next_poll_at=timezone.now() + timedelta(seconds=exc.retry_after),
    )
    kick_poll_sweep()


def _submit_failed(job: VideoJob, exc: UpstreamError) -> None:
    # A create is a paid generation. It is sent again at once only when the provider surely did
    # not take it: no connection was made, or it said "rate limited" or "unavailable". A 4xx is
    # a clear no. Anything else (a timeout, a 500, a garbled 200) may have created the job, so
    # the provider's list is checked first.
    if not exc.sent or exc.status in (429, 503):
        if job.submit_attempts < MAX_SUBMIT_ATTEMPTS:
            delay = _retry_delay(exc, 5 * 2 ** (job.submit_attempts - 1))
            job.status = Status.PENDING
            job.next_poll_at = timezone.now() + timedelta(seconds=delay)
            job.error_code = exc.code or "retrying"
            job.error_message = exc.message
            log.warning("job %s: submit failed (%s), retrying in %ss", job.pk, exc, delay)
            if save_lifecycle(job):
                kick_poll_sweep()
        else:
            fail(job, _error_code(exc), _last_error(job.submit_attempts, exc))
    elif exc.status is not None and 300 <= exc.status < 500:
        # A clear no, and so is a redirect: it is never followed, so nothing was created.
        fail(job, exc.code or f"http_{exc.status}", exc.message)
    else:
        start_checking(job, exc)


def _retry_delay(exc: UpstreamError, backoff: float) -> float:
    """Retry-After when the provider sent one (up to a cap), else our own backoff."""
    if exc.retry_after is not None:
        return min(max(exc.retry_after, 0.5), MAX_RETRY_AFTER)
    return min(backoff, MAX_RETRY_AFTER)


def _error_code(exc: UpstreamError) -> str:
    return exc.code or (f"http_{exc.status}" if exc.status else "unreachable")


def _last_error(attempts: int, error: object) -> str:
    return f"The provider failed {attempts} times in a row; the last error was: {error}"


def start_checking(job: VideoJob, exc: UpstreamError) -> None:
    job.status = Status.CHECKING
    job.reconcile_attempts = 0
    job.error_code = _error_code(exc)
    job.error_message = exc.message
    # The first look comes a little later: a provider's list may lag behind its creates.
    job.next_poll_at = timezone.now() + timedelta(seconds=RECONCILE_INTERVAL)
    log.warning("job %s: create outcome unknown (%s), checking with the provider", job.pk, exc)
    if save_fields(job, [*LIFECYCLE_FIELDS, "reconcile_attempts"]):
        kick_poll_sweep()


def reconcile_submit(job_id: int) -> None:
    """Find out whether a create whose answer never came reached the provider.

    The provider's newest jobs are listed and matched on prompt, model, length, size (and the
    source, for a remix) and time. A match that no other job here has claimed becomes this job's
    upstream job. With no match, the create is sent again only once the provider has clearly
    not got it; a provider that cannot be asked leaves the job failed as "unknown", never paid
    for twice.
    """
    job = VideoJob.objects.select_related("remix_of").filter(pk=job_id).first()
    if job is None or job.status != Status.CHECKING:
        return
    job.reconcile_attempts += 1
    try:
        video, covered = _find_upstream(job)
    except BudgetDeferred as exc:
        # Nothing was asked: not an attempt.
        job.next_poll_at = timezone.now() + timedelta(seconds=exc.retry_after)
        save_fields(job, ["next_poll_at"])
        return
    except UpstreamError as exc:
        if job.reconcile_attempts >= MAX_RECONCILE_ATTEMPTS:
            fail(
                job,
                "submit_outcome_unknown",
                f"{UNKNOWN_SUBMIT_MESSAGE} ({exc})",
                gave_up=True,
            )
            return
        delay = _retry_delay(exc, RECONCILE_INTERVAL * 2**job.reconcile_attempts)
        job.next_poll_at = timezone.now() + timedelta(seconds=delay)
        job.error_code, job.error_message = _error_code(exc), exc.message
        save_fields(job, ["reconcile_attempts", "next_poll_at", "error_code", "error_message"])
        return
    if video is not None:
        if _adopt(job, video, from_status=Status.CHECKING):
            log.info("job %s: found at the provider as %s", job.pk, video.id)
        return
    settled = (timezone.now() - job.submit_sent_at).total_seconds() >= RECONCILE_SETTLE
    if covered and settled and job.reconcile_attempts >= RECONCILE_CONFIRMATIONS:
        log.warning("job %s: not at the provider, sending it again", job.pk)
        _resend(job)
        return
    if job.reconcile_attempts >= MAX_RECONCILE_ATTEMPTS:
        fail(job, "submit_outcome_unknown", UNKNOWN_SUBMIT_MESSAGE, gave_up=True)
        return
    job.next_poll_at = timezone.now() + timedelta(seconds=RECONCILE_INTERVAL)
    save_fields(job, ["reconcile_attempts", "next_poll_at"])


def _find_upstream(job: VideoJob) -> tuple[UpstreamVideo | None, bool]:
    """The provider's job that matches this one, if any, and whether the listing went back far
    enough (to before the first send) to say it is not there."""
    client = default_client()
    since = (job.submit_sent_at or job.created_at) - CLOCK_SKEW
    if job.submit_attempts > 1:
        # An earlier send may have arrived too: look back to the job's creation.
        since = job.created_at - CLOCK_SKEW
    candidates: list[UpstreamVideo] = []
    covered, after = False, None
    for _page in range(RECONCILE_PAGES):
        # A create's fate: asked before polls, it may be a paid job nobody tracks.
        listing = client.list(limit=100, after=after, priority=Priority.URGENT)
        videos = listed_videos(listing)
        for video in videos:
            if video.created_at is not None and video.created_at < since:
                covered = True
            elif _same_request(job, video):
                candidates.append(video)
        if covered or not listing.get("has_more") or not videos:
            covered = covered or not listing.get("has_more")
            break
        after = next_page_after(listing, videos)
    ids = [v.id for v in candidates]
    taken = set(VideoJob.objects.filter(upstream_id__in=ids).values_list("upstream_id", flat=True))
    free = [v for v in candidates if v.id not in taken]
    # The oldest: the first send is the one that may have gone through.
    free.sort(key=lambda v: v.created_at or datetime.min.replace(tzinfo=UTC))
    return (free[0] if free else None), covered


def listed_videos(listing: dict) -> list[UpstreamVideo]:
    """The sound Video objects of one page of `GET /videos`; a garbled entry is skipped."""
    videos = []
    data = listing.get("data")
    for item in data if isinstance(data, list) else []:
        try:
            videos.append(read_video(item))
        except UpstreamError as exc:
            log.warning("skipped a job in the provider's list: %s", exc)
    return videos


def next_page_after(listing: dict, videos: list[UpstreamVideo]) -> str:
    return identifier(listing.get("last_id")) or videos[-1].id


def _same_request(job: VideoJob, video: UpstreamVideo) -> bool:
    if video.prompt.strip() != job.prompt.strip():
        return False
    if job.remix_of_id:
        return video.remixed_from == (job.remix_of.upstream_id or "")
    if (video.model or job.model) != job.model:
        return False
    if (video.size or job.size) != job.size:
        return False
    return (video.seconds or job.seconds) == job.seconds


def _resend(job: VideoJob) -> None:
    if job.submit_attempts >= MAX_SUBMIT_ATTEMPTS:
        fail(
            job,
            job.error_code or "submit_failed",
            _last_error(job.submit_attempts, job.error_message),
        )
        return
    updated = VideoJob.objects.filter(pk=job.pk, status=Status.CHECKING).update(
        status=Status.PENDING, next_poll_at=timezone.now(), reconcile_attempts=0
    )
    if updated:
        transaction.on_commit(lambda: async_task("videos.tasks.submit_job", job.pk))


UNKNOWN_SUBMIT_MESSAGE = (
    "The provider did not confirm the job: it may have been created anyway. "
    "Check the provider before generating it again."
)


def fail(job: VideoJob, code: str, message: str, *, gave_up: bool = False) -> None:
    """End the job as failed. `gave_up`: muxweb stopped on its own (the provider never said the
    job failed), so it may be checked with the provider again (videos.recheck)."""
    job.status = Status.FAILED
    job.gave_up = gave_up
    job.error_code = code
    job.error_message = message
    job.next_poll_at = None
    save_lifecycle(job)


def save_lifecycle(job: VideoJob) -> bool:
    """Save the lifecycle fields; False if the job finished meanwhile (or was deleted).

    Polls of one job can run at once (the sweep, a webhook's refresh) and answer in any order:
    a finished job is never taken back to running by a late answer, nor finished twice, which
    would start a second download.
    """
    job.updated_at = timezone.now()
    saved = (
        VideoJob.objects.filter(pk=job.pk)
        .exclude(status__in=(Status.COMPLETED, Status.FAILED))
        .update(**{field: getattr(job, field) for field in LIFECYCLE_FIELDS})
        == 1
    )
    if saved and job.status in (Status.COMPLETED, Status.FAILED):
        # The job no longer renders at the provider: its slot goes to the next waiting job.
        fairshare.slot_freed()
    return saved


def save_fields(job: VideoJob, fields: list[str]) -> bool:
    """Save only these fields; False if the row is gone (deleted meanwhile).

    Never a full save: a stale row must not overwrite what a user changed, nor bring back a job
    deleted while its poll or download was under way.
    """
    try:
        job.save(update_fields={*fields, "updated_at"})
    except DatabaseError:
        if VideoJob.objects.filter(pk=job.pk).exists():
            raise
        return False
    return True


def apply_upstream(
    job: VideoJob, video: dict | UpstreamVideo, *, poll_after: float | None = None
) -> None:
    """Bring a job up to date with the provider's Video object and save it.

    An answer that cannot be read (see upstream/video.py) counts as a failed poll: backoff and a
    message on the job, like any other provider error."""
    if not isinstance(video, UpstreamVideo):
        if isinstance(video, dict) and video.get("id") is None and job.upstream_id:
            # Some relays leave the id out of a job they were asked about by id.
            video = {**video, "id": job.upstream_id}
        try:
            video = read_video(video)
        except UpstreamError as exc:
            record_poll_failure(job, exc)
            return
    now = timezone.now()
    previous_status, previous_progress = job.status, job.progress
    status = map_upstream_status(video.status)
    if status is None:
        # An unknown word is taken as still running; MAX_RENDER_TIME ends it if it never finishes.
        log.warning("job %s: unknown provider status %r", job.pk, video.status)
        status = Status.IN_PROGRESS
    progress = job.progress if video.progress is None else video.progress
    job.status = status
    job.progress = max(progress, job.progress) if status != Status.FAILED else progress
    job.poll_failures = 0
    job.poll_count += 1
    job.expires_at = video.expires_at or job.expires_at

    if status == Status.FAILED:
        job.error_code = video.error_code or video.status or "failed"
        job.error_message = (
            video.error_message or f"The provider reports the job as {video.status}."
        )
        job.next_poll_at = None
    elif status == Status.COMPLETED:
        job.progress = 100
        job.completed_at = video.completed_at or job.completed_at or now
        if previous_status != Status.COMPLETED:
            job.final_cost = job.settled_cost(seconds=video.seconds, size=video.size)
        job.error_code = job.error_message = ""
        job.next_poll_at = None
    elif job.is_overdue(now):
        job.status = Status.FAILED
        job.gave_up = True
        job.error_code = "timeout"
        job.error_message = f"The provider did not finish the job within {MAX_RENDER_TIME}."
        job.next_poll_at = None
    else:
        job.error_code = job.error_message = ""
        job.poll_interval = _poll_interval(
            job, poll_after, progressed=progress > previous_progress, now=now
        )
        job.next_poll_at = now + timedelta(seconds=job.poll_interval)
    if not save_lifecycle(job):
        return
    if job.status == Status.COMPLETED and previous_status != Status.COMPLETED:
        enqueue_fetch(job)


def _poll_interval(
    job: VideoJob, poll_after: float | None, *, progressed: bool, now: datetime
) -> float:
    """The wait before the next poll: half as long again each time nothing moved, back to the
    start when it did, and never shorter than the provider asks for. While webhooks arrive they
    announce the end, and polling is only a safety net. With the key's budget tight, a job is
    looked at when it should be done, not while it renders: its progress then moves in fewer
    steps, and the requests go to creates."""
    if webhooks_arriving():
        return max(SAFETY_POLL_INTERVAL, poll_after or 0.0)
    tight = _budget_tight()
    if progressed or not job.poll_interval:
        finish = seconds_to_finish(job) if tight else None
        if finish is not None:
            interval = min(finish + FINISH_MARGIN, MAX_FINISH_WAIT)
        else:
            # Renders take minutes: the longer a job has run, the less a few seconds matter.
            age = (now - (job.submitted_at or job.created_at)).total_seconds()
            interval = min(max(BASE_POLL_INTERVAL, age * AGE_POLL_FACTOR), MAX_POLL_INTERVAL)
    else:
        interval = min(job.poll_interval * 1.5, MAX_POLL_INTERVAL)
    interval = max(interval, poll_after or 0.0, MIN_POLL_INTERVAL)
    # Tight: on the grid every job's checks share, so that one list answers for them all.
    return on_check_grid(now, interval) if tight else interval


def seconds_to_finish(job: VideoJob) -> float | None:
    """How much longer the provider should take: what the model's recent jobs took, or once
    that has passed (or before any finished), what the job's progress says, no further ahead
    than it has run (PROGRESS_GUESS_FLOOR at least); None when neither knows."""
    elapsed = (timezone.now() - (job.submitted_at or job.created_at)).total_seconds()
    typical = typical_render_seconds(job.model)
    if typical is not None and elapsed < typical:
        return typical - elapsed
    if job.progress > 0:
        left = elapsed * (100 - job.progress) / job.progress
        return min(left, max(elapsed, PROGRESS_GUESS_FLOOR))
    return None


_typical_renders: dict[str, tuple[float, float | None]] = {}


def typical_render_seconds(model: str) -> float | None:
    """The median render time (sent to done) of the model's recent jobs, read again every
    TYPICAL_RENDER_TTL by this process (UNKNOWN_RENDER_TTL while none is known); None before any
    finished."""
    checked_at, seconds = _typical_renders.get(model, (0.0, None))
    ttl = UNKNOWN_RENDER_TTL if seconds is None else TYPICAL_RENDER_TTL
    if time.monotonic() - checked_at > ttl:
        render = fairshare.typical_render(model=model)
        seconds = None if render is None else render.total_seconds()
        _typical_renders[model] = (time.monotonic(), seconds)
    return seconds


_tight_seen: tuple[float, bool] = (0.0, False)


def _budget_tight() -> bool:
    """The key's budget is_tight, asked at most once a second by this process (a list answers
    for many jobs at once)."""
    global _tight_seen
    checked_at, tight = _tight_seen
    if time.monotonic() - checked_at > 1.0:
        budget = default_budget()
        tight = budget.enabled and budget.state().is_tight
        _tight_seen = (time.monotonic(), tight)
    return tight


_webhooks_seen: tuple[float, bool] = (0.0, False)


def webhooks_arriving() -> bool:
    """WebhookEvent.arriving(), asked of the database at most every 30 s by this process."""
    global _webhooks_seen
    checked_at, arriving = _webhooks_seen
    if time.monotonic() - checked_at > 30:
        arriving = WebhookEvent.arriving()
        _webhooks_seen = (time.monotonic(), arriving)
    return arriving


def record_poll_failure(job: VideoJob, exc: UpstreamError) -> None:
    """A poll failed. Only a job the provider clearly lost (404 a few times) is given up; other
    errors (a rotated key, rate limits, outages) back off and show on the job meanwhile."""
    now = timezone.now()
    job.poll_failures += 1
    if exc.status == 404 and job.poll_failures >= MAX_NOT_FOUND:
        fail(job, "not_found", "The provider no longer knows this job.")
        return
    if job.poll_failures >= MAX_POLL_FAILURES:
        fail(job, _error_code(exc), _last_error(job.poll_failures, exc), gave_up=True)
        return
    if job.is_overdue(now):
        fail(
            job,
            exc.code or "timeout",
            f"The provider did not finish the job in time: {exc}",
            gave_up=True,
        )
        return
    delay = _retry_delay(exc, 2 ** min(job.poll_failures, 8))
    job.next_poll_at = now + timedelta(seconds=min(delay, MAX_POLL_BACKOFF))
    job.error_code = _error_code(exc)
    job.error_message = exc.message
    log.warning("job %s: poll failed (%s), %s in a row", job.pk, exc, job.poll_failures)
    save_lifecycle(job)


def poll_jobs(jobs: list[VideoJob]) -> None:
    """Ask the provider about several jobs at once, recording each answer as it arrives."""
    if not jobs:
        return
    # Polls are small: a short read timeout keeps one slow answer from holding up a sweep.
    client = default_client().with_read_timeout(POLL_READ_TIMEOUT)
    # The key's budget is claimed here, on this thread, for all of them at once: the most
    # overdue first, the others wait for room (a database write from each poll's thread would
    # also queue behind this thread's transaction on SQLite).
    if client.budget is not None:
        granted, wait = client.budget.take(Priority.POLL, len(jobs))
        for job in jobs[granted:]:
            _put_off(job, wait)
        jobs = jobs[:granted]
        if not jobs:
            return

    def retrieve(job: VideoJob) -> tuple[dict, float | None] | UpstreamError:
        try:
            with client.prepaid():
                return client.retrieve(job.upstream_id)
        except UpstreamError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(POLL_CONCURRENCY, len(jobs))) as pool:
        futures = {pool.submit(retrieve, job): job for job in jobs}
        # Database writes stay on this thread: SQLite connections are per thread.
        for future in as_completed(futures):
            job, answer = futures[future], future.result()
            try:
                if isinstance(answer, BudgetDeferred):
                    # Not asked: the next look waits for room in the budget, not a failure.
                    _put_off(job, answer.retry_after)
                elif isinstance(answer, UpstreamError):
                    record_poll_failure(job, answer)
                else:
                    video, poll_after = answer
                    apply_upstream(job, video, poll_after=poll_after)
            except Exception:
                # One job whose answer cannot be recorded must not hold up the others.
                log.exception("job %s: the provider's answer could not be recorded", job.pk)
                _put_off(job)


def _put_off(job: VideoJob, wait: float | None = None) -> None:
    """Look at a job again later than usual: after `wait` seconds when the budget had no room
    (not a failure), else after something unexpected went wrong with it."""
    if wait is not None:
        VideoJob.objects.filter(pk=job.pk).update(
            next_poll_at=timezone.now() + timedelta(seconds=min(wait, MAX_POLL_BACKOFF))
        )
        return
    delay = timedelta(seconds=min(2 ** min(job.poll_failures + 1, 8), MAX_POLL_BACKOFF))
    VideoJob.objects.filter(pk=job.pk).update(
        next_poll_at=timezone.now() + delay, poll_failures=F("poll_failures") + 1
    )


def refresh_job(job_id: int) -> None:
    """Ask the provider about one job now (a webhook said it changed)."""
    job = VideoJob.objects.filter(pk=job_id).first()
    if job is None or not job.upstream_id or job.status not in (Status.QUEUED, Status.IN_PROGRESS):
        return
    poll_jobs([job])
