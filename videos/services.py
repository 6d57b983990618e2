"""Every state change of a job that touches the network or more than one row.

Views, tasks and commands all call these functions; tasks.py only wraps them for the queue.
A job row is claimed with a conditional update before work starts, so a task the queue delivers
twice does its work once.
"""

import logging
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, F, Min
from django.utils import timezone
from django_q.tasks import async_task
from PIL import Image

from muxweb import datadir
from videos import derive
from videos.forms import fit_to_size
from videos.media import EXTENSIONS
from videos.models import (
    LIFECYCLE_FIELDS,
    MAX_FETCH_ATTEMPTS,
    MAX_RENDER_TIME,
    VARIANTS,
    ImportRun,
    Lease,
    ModelSpec,
    ModelUnavailable,
    Status,
    VideoJob,
    WebhookEvent,
    map_upstream_status,
)
from videos.probe import InvalidDownload, verify_download
from videos.upstream.client import REDIRECT_REFUSED, UpstreamError, default_client
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
# How long a queued task may take before the sweep hands the same job out again.
TASK_LEASE = timedelta(minutes=6)
# A download holds its job's lock a little less long than that: when the sweep hands out again
# a job whose download died, the lock has run out, even on a worker whose clock is behind.
FETCH_LOCK = TASK_LEASE - timedelta(minutes=2)
# A download task may run longer than the cluster's 90 s (a big video), but never past its lock.
FETCH_TASK_TIMEOUT = int(FETCH_LOCK.total_seconds()) - 30
# One sweep task runs this long, then hands over to a fresh task (a worker is never held for long).
SWEEP_SECONDS = 10.0
SWEEP_LEASE = "poll-sweep"
# A job due later than this is left to the scheduled sweep that runs every minute.
SWEEP_HANDOFF_SECONDS = 50.0
POLL_CONCURRENCY = 8
POLL_READ_TIMEOUT = 15.0
SWEEP_BATCH = 200


def create_job(
    *,
    author,
    spec: ModelSpec,
    prompt: str,
    seconds: int,
    size: str,
    remix_of: VideoJob | None = None,
    client_token: str | None = None,
    reference: Image.Image | None = None,
) -> VideoJob:
    """Record a new job and submit it to the provider once the row is committed.

    `client_token` comes from the form: the same form posted twice (a double click, a resent
    request) gives back the job it made the first time instead of paying for a second one.

    Every new job, whatever made it (the form, Retry, Remix), is checked against the catalogue
    here: a model that is disabled or gone, or a length or size it does not offer, raises
    ModelUnavailable and nothing is made or paid.
    """
    if client_token:
        existing = VideoJob.objects.filter(client_token=client_token).first()
        if existing is not None:
            return existing
    spec = ModelSpec.for_new_job(spec.name)
    refusals = spec.refusals(
        seconds=seconds, size=size, reference=reference is not None, remix=remix_of is not None
    )
    if refusals:
        raise ModelUnavailable(list(refusals.values()))
    try:
        with transaction.atomic():
            job = VideoJob.objects.create(
                author=author,
                model=spec.name,
                prompt=prompt,
                seconds=seconds,
                size=size,
                price_per_second=spec.price_per_second(size),
                remix_of=remix_of,
                client_token=client_token or None,
                next_poll_at=timezone.now() + TASK_LEASE,
            )
    except IntegrityError:
        # The same form, posted twice at the same moment.
        return VideoJob.objects.get(client_token=client_token)
    if reference is not None:
        save_reference(job, reference)
    transaction.on_commit(lambda: async_task("videos.tasks.submit_job", job.pk))
    return job


def save_reference(job: VideoJob, image: Image.Image) -> None:
    """Keep the reference image re-encoded (never as uploaded) at exactly the video's size."""
    name = f"videos/{job.pk}/reference.png"
    path = Path(settings.MEDIA_ROOT) / name
    datadir.make_media_dir(path.parent, Path(settings.MEDIA_ROOT), settings.MEDIA_GROUP_ID)
    staging = path.with_name(f".reference.{uuid.uuid4().hex}.png")
    fit_to_size(image, job.size).save(staging, "PNG")
    datadir.publish_media_file(staging, settings.MEDIA_GROUP_ID)
    staging.replace(path)
    job.input_reference.name = name
    job.save(update_fields=["input_reference", "updated_at"])


def submit_job(job_id: int) -> None:
    """Send a pending job to the provider: create (or remix) it upstream."""
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
        _fail(job, "remix_source_missing", "The video this remixes is no longer at the provider.")
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
    except UpstreamError as exc:
        _submit_failed(job, exc)
        return
    try:
        answer = read_video(video)
    except UpstreamError as exc:
        # Accepted, perhaps, but with no id we could keep: look for it before anything else.
        _start_checking(job, exc)
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
            if _save_lifecycle(job):
                kick_poll_sweep()
        else:
            _fail(job, _error_code(exc), _last_error(job.submit_attempts, exc))
    elif exc.status is not None and 300 <= exc.status < 500:
        # A clear no, and so is a redirect: it is never followed, so nothing was created.
        _fail(job, exc.code or f"http_{exc.status}", exc.message)
    else:
        _start_checking(job, exc)


def _retry_delay(exc: UpstreamError, backoff: float) -> float:
    """Retry-After when the provider sent one (up to a cap), else our own backoff."""
    if exc.retry_after is not None:
        return min(max(exc.retry_after, 0.5), MAX_RETRY_AFTER)
    return min(backoff, MAX_RETRY_AFTER)


def _error_code(exc: UpstreamError) -> str:
    return exc.code or (f"http_{exc.status}" if exc.status else "unreachable")


def _last_error(attempts: int, error: object) -> str:
    return f"The provider failed {attempts} times in a row; the last error was: {error}"


def _start_checking(job: VideoJob, exc: UpstreamError) -> None:
    job.status = Status.CHECKING
    job.reconcile_attempts = 0
    job.error_code = _error_code(exc)
    job.error_message = exc.message
    # The first look comes a little later: a provider's list may lag behind its creates.
    job.next_poll_at = timezone.now() + timedelta(seconds=RECONCILE_INTERVAL)
    log.warning("job %s: create outcome unknown (%s), checking with the provider", job.pk, exc)
    if _save_fields(job, [*LIFECYCLE_FIELDS, "reconcile_attempts"]):
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
    except UpstreamError as exc:
        if job.reconcile_attempts >= MAX_RECONCILE_ATTEMPTS:
            _fail(job, "submit_outcome_unknown", f"{UNKNOWN_SUBMIT_MESSAGE} ({exc})")
            return
        delay = _retry_delay(exc, RECONCILE_INTERVAL * 2**job.reconcile_attempts)
        job.next_poll_at = timezone.now() + timedelta(seconds=delay)
        job.error_code, job.error_message = _error_code(exc), exc.message
        _save_fields(job, ["reconcile_attempts", "next_poll_at", "error_code", "error_message"])
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
        _fail(job, "submit_outcome_unknown", UNKNOWN_SUBMIT_MESSAGE)
        return
    job.next_poll_at = timezone.now() + timedelta(seconds=RECONCILE_INTERVAL)
    _save_fields(job, ["reconcile_attempts", "next_poll_at"])


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
        listing = client.list(limit=100, after=after)
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
        _fail(
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


def _fail(job: VideoJob, code: str, message: str) -> None:
    job.status = Status.FAILED
    job.error_code = code
    job.error_message = message
    job.next_poll_at = None
    _save_lifecycle(job)


def _save_lifecycle(job: VideoJob) -> bool:
    """Save the lifecycle fields; False if the job finished meanwhile (or was deleted).

    Polls of one job can run at once (the sweep, a webhook's refresh) and answer in any order:
    a finished job is never taken back to running by a late answer, nor finished twice, which
    would start a second download.
    """
    job.updated_at = timezone.now()
    return (
        VideoJob.objects.filter(pk=job.pk)
        .exclude(status__in=(Status.COMPLETED, Status.FAILED))
        .update(**{field: getattr(job, field) for field in LIFECYCLE_FIELDS})
        == 1
    )


def _save_fields(job: VideoJob, fields: list[str]) -> bool:
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
        job.error_code = job.error_message = ""
        job.next_poll_at = None
    elif job.is_overdue(now):
        job.status = Status.FAILED
        job.error_code = "timeout"
        job.error_message = f"The provider did not finish the job within {MAX_RENDER_TIME}."
        job.next_poll_at = None
    else:
        job.error_code = job.error_message = ""
        job.poll_interval = _poll_interval(job, poll_after, progressed=progress > previous_progress)
        job.next_poll_at = now + timedelta(seconds=job.poll_interval)
    if not _save_lifecycle(job):
        return
    if job.status == Status.COMPLETED and previous_status != Status.COMPLETED:
        enqueue_fetch(job)


def _poll_interval(job: VideoJob, poll_after: float | None, *, progressed: bool) -> float:
    """The wait before the next poll: half as long again each time nothing moved, back to the
    start when it did, and never shorter than the provider asks for. While webhooks arrive they
    announce the end, and polling is only a safety net."""
    if webhooks_arriving():
        return max(SAFETY_POLL_INTERVAL, poll_after or 0.0)
    if progressed or not job.poll_interval:
        # Renders take minutes: the longer a job has run, the less a few seconds matter.
        age = (timezone.now() - (job.submitted_at or job.created_at)).total_seconds()
        interval = max(BASE_POLL_INTERVAL, age * AGE_POLL_FACTOR)
    else:
        interval = job.poll_interval * 1.5
    return max(min(interval, MAX_POLL_INTERVAL), poll_after or 0.0, MIN_POLL_INTERVAL)


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
        _fail(job, "not_found", "The provider no longer knows this job.")
        return
    if job.poll_failures >= MAX_POLL_FAILURES:
        _fail(job, _error_code(exc), _last_error(job.poll_failures, exc))
        return
    if job.is_overdue(now):
        _fail(job, exc.code or "timeout", f"The provider did not finish the job in time: {exc}")
        return
    delay = _retry_delay(exc, 2 ** min(job.poll_failures, 8))
    job.next_poll_at = now + timedelta(seconds=min(delay, MAX_POLL_BACKOFF))
    job.error_code = _error_code(exc)
    job.error_message = exc.message
    log.warning("job %s: poll failed (%s), %s in a row", job.pk, exc, job.poll_failures)
    _save_lifecycle(job)


def poll_jobs(jobs: list[VideoJob]) -> None:
    """Ask the provider about several jobs at once, recording each answer as it arrives."""
    if not jobs:
        return
    # Polls are small: a short read timeout keeps one slow answer from holding up a sweep.
    client = default_client().with_read_timeout(POLL_READ_TIMEOUT)

    def retrieve(job: VideoJob) -> tuple[dict, float | None] | UpstreamError:
        try:
            return client.retrieve(job.upstream_id)
        except UpstreamError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(POLL_CONCURRENCY, len(jobs))) as pool:
        futures = {pool.submit(retrieve, job): job for job in jobs}
        # Database writes stay on this thread: SQLite connections are per thread.
        for future in as_completed(futures):
            job, answer = futures[future], future.result()
            try:
                if isinstance(answer, UpstreamError):
                    record_poll_failure(job, answer)
                else:
                    video, poll_after = answer
                    apply_upstream(job, video, poll_after=poll_after)
            except Exception:
                # One job whose answer cannot be recorded must not hold up the others.
                log.exception("job %s: the provider's answer could not be recorded", job.pk)
                _put_off(job)


def _put_off(job: VideoJob) -> None:
    """Look at a job again later than usual, after something unexpected went wrong with it."""
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


def poll_due_jobs(now: datetime | None = None) -> int:
    """One pass over every job that needs a worker now; returns how many it handled."""
    now = now or timezone.now()
    jobs = list(
        VideoJob.objects.due(now).order_by(F("next_poll_at").asc(nulls_first=True))[:SWEEP_BATCH]
    )
    to_poll = []
    for job in jobs:
        if job.status == Status.PENDING:
            if _claim(job, now):
                async_task("videos.tasks.submit_job", job.pk)
        elif job.status == Status.SUBMITTING:
            # Its lease ran out: the worker submitting it died, and whether the provider got the
            # create is unknown. It is looked for before anything is sent again.
            _start_checking(job, UpstreamError("the worker sending the job stopped"))
        elif job.status == Status.CHECKING:
            if _claim(job, now):
                async_task("videos.tasks.reconcile_submit", job.pk)
        elif job.status == Status.COMPLETED:
            enqueue_fetch(job)
        else:
            to_poll.append(job)
    poll_jobs(to_poll)
    return len(jobs)


def _claim(job: VideoJob, now: datetime) -> bool:
    """Push the job's next look past the lease, unless another worker already did."""
    return (
        VideoJob.objects.filter(pk=job.pk, next_poll_at=job.next_poll_at).update(
            next_poll_at=now + TASK_LEASE
        )
        == 1
    )


def seconds_until_next_due() -> float | None:
    """When the soonest job needs a worker, in seconds from now; None when nothing does."""
    soonest = VideoJob.objects.needing_work().aggregate(at=Min("next_poll_at"), count=Count("id"))
    if not soonest["count"]:
        return None
    if soonest["at"] is None:
        return 0.0
    return max((soonest["at"] - timezone.now()).total_seconds(), 0.0)


def kick_poll_sweep() -> None:
    """Make sure a sweep runs now; a no-op while one is already running."""
    if Lease.is_held(SWEEP_LEASE):
        return
    # Always through the broker: a sweep sleeps between passes and must not run inside a request.
    async_task("videos.tasks.poll_sweep", sync=False)


def run_poll_sweep() -> None:
    """Poll due jobs for a while, sleeping until the next one is due, then hand over.

    One sweep at a time holds the lease. While jobs are running each sweep enqueues the next,
    so polling goes on at the jobs' own pace; a schedule restarts the chain every minute in case
    a worker died holding it.
    """
    if not Lease.claim(SWEEP_LEASE, timedelta(seconds=SWEEP_SECONDS + 120)):
        return
    deadline = time.monotonic() + SWEEP_SECONDS
    try:
        while True:
            poll_due_jobs()
            wait = seconds_until_next_due()
            if wait is None or wait > SWEEP_HANDOFF_SECONDS:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(max(wait, 0.2), remaining))
    finally:
        Lease.release(SWEEP_LEASE)
    # Asked again after the release: a job submitted while this sweep was ending found the lease
    # held and did not start one of its own.
    wait = seconds_until_next_due()
    if wait is not None and wait <= SWEEP_HANDOFF_SECONDS:
        async_task("videos.tasks.poll_sweep", sync=False)


def enqueue_fetch(job: VideoJob) -> None:
    if _claim(job, timezone.now()):
        transaction.on_commit(
            lambda: async_task("videos.tasks.fetch_assets", job.pk, timeout=FETCH_TASK_TIMEOUT)
        )


def asset_name(job: VideoJob, variant: str, content_type: str) -> str:
    return f"videos/{job.pk}/{variant}{EXTENSIONS[content_type]}"


def fetch_assets(job_id: int) -> None:
    """Copy a completed job's video, thumbnail and spritesheet into our own storage.

    Each file is checked by its bytes before it is kept, and renamed into place whole. One task
    at a time downloads a job's files (the queue delivers at least once). Failures retry with
    backoff until the provider's copy expires.
    """
    job = VideoJob.objects.filter(pk=job_id).first()
    if job is None or not job.is_fetching or not job.upstream_id:
        return
    # One download of a job at a time: another task for it (enqueued twice, delivered again)
    # must neither start a second one nor take this one's partial files for leftovers.
    lock = f"fetch:{job.pk}"
    if not Lease.claim(lock, FETCH_LOCK):
        return
    try:
        _fetch(job)
    finally:
        Lease.release(lock)


def _fetch(job: VideoJob) -> None:
    claimed = VideoJob.objects.filter(
        pk=job.pk, fetch_attempts=job.fetch_attempts, assets_fetched_at__isnull=True
    ).update(fetch_attempts=F("fetch_attempts") + 1, next_poll_at=timezone.now() + TASK_LEASE)
    if not claimed:
        return
    job.refresh_from_db()
    client = default_client()
    media_dir = job_media_dir(job)
    datadir.make_media_dir(media_dir, Path(settings.MEDIA_ROOT), settings.MEDIA_GROUP_ID)
    _remove_partial_downloads(media_dir)
    errors: list[str] = []
    # Each variant on its own, the video first among equals: it is what was paid for, and the
    # pictures can be made from it. One variant's failure never holds back another.
    for variant in VARIANTS:
        if job.has_asset(variant) or variant in job.variants_not_offered:
            continue
        try:
            name = _download_variant(client, job, variant, media_dir)
        except UpstreamError as exc:
            if variant != "video" and refused_for_good(exc):
                log.info("job %s: the provider does not offer the %s (%s)", job.pk, variant, exc)
                job.variants_not_offered = [*job.variants_not_offered, variant]
                if not _save_fields(job, ["variants_not_offered"]):
                    return
            else:
                errors.append(f"{variant}: {exc}")
            continue
        except OSError as exc:
            errors.append(f"{variant}: {exc}")
            continue
        job.asset(variant).name = name
        if not _save_fields(job, [variant]):
            return
    if not _make_missing_pictures(job, media_dir, errors):
        return
    if errors:
        _fetch_failed(job, _summary(errors))
        return
    job.assets_fetched_at = timezone.now()
    job.fetch_error = ""
    job.next_poll_at = None
    _save_fields(job, ["assets_fetched_at", "fetch_error", "next_poll_at"])


def _summary(errors: list[str]) -> str:
    """ "video: X; thumbnail: X" as "video, thumbnail: X": one line per distinct reason."""
    variants_by_reason: dict[str, list[str]] = {}
    for error in errors:
        variant, _colon, reason = error.partition(": ")
        variants_by_reason.setdefault(reason, []).append(variant)
    return "; ".join(f"{', '.join(v)}: {reason}" for reason, v in variants_by_reason.items())


# A provider saying "not ready yet" (404), "rate limited" or "who are you" may serve the variant
# later or with another key; any other 4xx (a gateway's 400 for a variant its model lacks), or a
# 501, means it never will.
NOT_FOR_GOOD = frozenset({401, 403, 404, 408, 409, 423, 425, 429})


def refused_for_good(exc: UpstreamError) -> bool:
    status = exc.status
    if status is None or exc.code == REDIRECT_REFUSED:
        return False
    return (400 <= status < 500 and status not in NOT_FOR_GOOD) or status == 501


def _download_variant(client, job: VideoJob, variant: str, media_dir: Path) -> str:
    """Download, verify and place one variant; its name under MEDIA_ROOT."""
    staging = media_dir / f"{STAGING_PREFIX}{variant}.{uuid.uuid4().hex}.download"
    try:
        client.download(job.upstream_id, variant, staging)
        try:
            content_type = verify_download(staging, variant, seconds=job.seconds, size=job.size)
        except InvalidDownload as exc:
            raise UpstreamError(str(exc), code="invalid_download") from None
        return _place(job, variant, content_type, staging)
    finally:
        staging.unlink(missing_ok=True)


def _place(job: VideoJob, variant: str, content_type: str, staging: Path) -> str:
    name = asset_name(job, variant, content_type)
    datadir.publish_media_file(staging, settings.MEDIA_GROUP_ID)
    staging.replace(Path(settings.MEDIA_ROOT) / name)
    return name


PICTURE_MAKERS = {"thumbnail": derive.make_thumbnail, "spritesheet": derive.make_spritesheet}


def _make_missing_pictures(job: VideoJob, media_dir: Path, errors: list[str]) -> bool:
    """Make from the cached video the pictures the provider does not offer, or that it could not
    deliver before its copy expires, so every job has all three. False if the job is gone."""
    if not job.video:
        return True
    expired = job.expires_at is not None and timezone.now() >= job.expires_at
    last_try = expired or job.fetch_attempts >= MAX_FETCH_ATTEMPTS
    video = Path(settings.MEDIA_ROOT) / job.video.name
    for variant, make in PICTURE_MAKERS.items():
        if job.has_asset(variant) or not (variant in job.variants_not_offered or last_try):
            continue
        staging = media_dir / f"{STAGING_PREFIX}{variant}.{uuid.uuid4().hex}.made"
        try:
            content_type = make(video, staging)
            name = _place(job, variant, content_type, staging)
        except (derive.DeriveError, OSError) as exc:
            errors.append(f"{variant}: could not be made from the video ({exc})")
            continue
        finally:
            staging.unlink(missing_ok=True)
        errors[:] = [e for e in errors if not e.startswith(f"{variant}: ")]
        job.asset(variant).name = name
        if not _save_fields(job, [variant]):
            return False
    return True


STAGING_PREFIX = ".staging."


def _remove_partial_downloads(media_dir: Path) -> None:
    """Delete what an earlier attempt left half-written (its worker was killed mid-download).

    Safe under the job's download lock: no other download of this job is still running.
    """
    for path in media_dir.glob(".*"):
        if path.name.startswith(STAGING_PREFIX) or path.suffix == ".part":
            path.unlink(missing_ok=True)
            log.info("job %s: removed a partial download %s", media_dir.name, path.name)


def _fetch_failed(job: VideoJob, error: str) -> None:
    now = timezone.now()
    job.fetch_error = error
    expired = job.expires_at is not None and now >= job.expires_at
    if expired or job.fetch_attempts >= MAX_FETCH_ATTEMPTS:
        job.fetch_given_up = True
        job.next_poll_at = None
    else:
        job.next_poll_at = now + job.fetch_retry_delay()
    log.warning("job %s: download failed (%s), attempt %s", job.pk, error, job.fetch_attempts)
    _save_fields(job, ["fetch_error", "fetch_given_up", "next_poll_at"])


IMPORT_MAX_PAGES = 100
# One import task works this long, then hands the rest to a fresh task: a worker is never held
# for long, and a killed worker loses one slice, not the import.
IMPORT_SLICE_SECONDS = 30.0


def import_upstream_jobs(*, page_size: int = 100, max_pages: int = IMPORT_MAX_PAGES) -> int:
    """Add the provider's jobs that muxweb does not know yet, all at once (the command line);
    returns how many were added. Running it again adds nothing twice: a job is known by its
    provider id."""
    client = default_client()
    specs = {spec.name: spec for spec in ModelSpec.objects.all()}
    added = 0
    after = None
    for _page in range(max_pages):
        listing, videos, page_added = _import_page(client, specs, page_size, after)
        added += page_added
        if not listing.get("has_more") or not videos:
            break
        after = next_page_after(listing, videos)
    if added:
        kick_poll_sweep()
    return added


def _import_page(client, specs: dict[str, ModelSpec], page_size: int, after: str | None):
    """One page of the provider's jobs, its new ones added: (listing, videos, added)."""
    listing = client.list(limit=page_size, after=after)
    videos = listed_videos(listing)
    known = set(
        VideoJob.objects.filter(upstream_id__in=[v.id for v in videos]).values_list(
            "upstream_id", flat=True
        )
    )
    added = sum(1 for video in videos if video.id not in known and _import_one(video, specs))
    return listing, videos, added


def start_import(actor) -> ImportRun:
    """Start importing in the background, or give back the import already running."""
    running = ImportRun.objects.filter(finished_at__isnull=True).first()
    if running is not None and running.is_running:
        return running
    if running is not None:
        # Its worker died and nobody took it over: closed, and a new one starts afresh.
        running.finished_at = timezone.now()
        running.error = "stopped"
        running.save(update_fields=["finished_at", "error", "updated_at"])
    run = ImportRun.objects.create(started_by=actor)
    transaction.on_commit(lambda: async_task("videos.tasks.import_jobs", run.pk))
    return run


def continue_import(run_id: int, *, page_size: int = 100) -> None:
    """Import pages for a while, recording progress after each, then hand over or finish."""
    lock = f"import:{run_id}"
    if not Lease.claim(lock, timedelta(seconds=IMPORT_SLICE_SECONDS + 90)):
        return
    hand_over = False
    try:
        run = ImportRun.objects.filter(pk=run_id, finished_at__isnull=True).first()
        if run is None:
            return
        client = default_client()
        specs = {spec.name: spec for spec in ModelSpec.objects.all()}
        deadline = time.monotonic() + IMPORT_SLICE_SECONDS
        while True:
            try:
                listing, videos, added = _import_page(client, specs, page_size, run.cursor or None)
            except UpstreamError as exc:
                run.error = str(exc)
                run.finished_at = timezone.now()
                run.save()
                break
            run.pages += 1
            run.seen += len(videos)
            run.added += added
            if added:
                kick_poll_sweep()
            if not listing.get("has_more") or not videos or run.pages >= IMPORT_MAX_PAGES:
                run.finished_at = timezone.now()
                run.save()
                break
            run.cursor = next_page_after(listing, videos)
            run.save()
            if time.monotonic() > deadline:
                hand_over = True
                break
    finally:
        Lease.release(lock)
    if hand_over:
        async_task("videos.tasks.import_jobs", run_id)


def _import_one(video: UpstreamVideo, specs: dict[str, ModelSpec]) -> bool:
    created = video.created_at or timezone.now()
    spec = specs.get(video.model)
    job = VideoJob(
        imported=True,
        upstream_id=video.id,
        model=video.model,
        prompt=video.prompt,
        seconds=video.seconds or 0,
        size=video.size,
        price_per_second=spec.price_per_second(video.size) if spec else None,
        created_at=created,
        submitted_at=created,
        status=Status.QUEUED,
    )
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError:
        # Another import added it a moment ago.
        return False
    apply_upstream(job, video, poll_after=FIRST_POLL_DELAY)
    return True


def job_media_dir(job: VideoJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "videos" / str(job.pk)


class JobBusy(Exception):
    """The job is still being submitted, rendered or downloaded: it cannot be deleted yet."""


def delete_job(job: VideoJob) -> bool:
    """Remove a finished job here and at the provider; True if the provider's copy is gone too.

    Our files go whatever the provider answers: its copy expires on its own, ours would not.
    A job still running raises JobBusy, wherever the delete comes from (the job page, the admin):
    deleting it would leave a paid video nobody tracks, or a download writing into nothing.
    """
    try:
        job.refresh_from_db()
    except VideoJob.DoesNotExist:
        return True
    if job.is_active:
        raise JobBusy(job.pk)
    upstream_gone = True
    if job.upstream_id:
        try:
            default_client().delete(job.upstream_id)
        except UpstreamError as exc:
            upstream_gone = exc.status == 404
            if not upstream_gone:
                log.warning("job %s: provider delete failed (%s)", job.pk, exc)
    media_dir = job_media_dir(job)
    job.delete()
    # The whole directory: with the three files go any leftover partial downloads.
    shutil.rmtree(media_dir, ignore_errors=True)
    return upstream_gone


def resubmit_job(job: VideoJob, *, author) -> VideoJob:
    """A new job with the same parameters (and parent, for a remix) as a failed one."""
    spec = ModelSpec.for_new_job(job.model)
    reference = None
    if job.input_reference:
        with job.input_reference.open("rb") as f, Image.open(f) as image:
            reference = image.convert("RGB")
    return create_job(
        author=author,
        spec=spec,
        prompt=job.prompt,
        seconds=job.seconds,
        size=job.size,
        remix_of=job.remix_of,
        reference=reference,
    )
