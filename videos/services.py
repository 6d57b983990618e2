"""Every state change of a job that touches the network or more than one row.

Views, tasks and commands all call these functions; tasks.py only wraps them for the queue.
A job row is claimed with a conditional update before work starts, so a task the queue delivers
twice does its work once.
"""

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Min
from django.utils import timezone
from django_q.tasks import async_task

from videos.media import EXTENSIONS, expected_types, sniff_content_type
from videos.models import (
    MAX_FETCH_ATTEMPTS,
    MAX_RENDER_TIME,
    Lease,
    ModelSpec,
    Status,
    VideoJob,
    map_upstream_status,
)
from videos.upstream.client import UpstreamError, default_client

log = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5
# Consecutive failed polls before a job is given up: a 404 means the provider forgot it.
MAX_POLL_FAILURES = 20
MAX_NOT_FOUND = 3
# Without a hint from the provider, polls start this often and slow down while nothing moves.
FIRST_POLL_DELAY = 1.0
MIN_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 30.0
# How long a queued task may take before the sweep hands the same job out again.
TASK_LEASE = timedelta(minutes=6)
# One sweep task runs this long, then hands over to a fresh task (a worker is never held for long).
SWEEP_SECONDS = 25.0
SWEEP_LEASE = "poll-sweep"
# A job due later than this is left to the scheduled sweep that runs every minute.
SWEEP_HANDOFF_SECONDS = 50.0
POLL_CONCURRENCY = 8
SWEEP_BATCH = 200


def create_job(
    *,
    author,
    spec: ModelSpec,
    prompt: str,
    seconds: int,
    size: str,
    remix_of: VideoJob | None = None,
) -> VideoJob:
    """Record a new job and submit it to the provider once the row is committed."""
    job = VideoJob.objects.create(
        author=author,
        model=spec.name,
        prompt=prompt,
        seconds=seconds,
        size=size,
        price_per_second=spec.price_per_second(size),
        remix_of=remix_of,
        next_poll_at=timezone.now() + TASK_LEASE,
    )
    transaction.on_commit(lambda: async_task("videos.tasks.submit_job", job.pk))
    return job


def submit_job(job_id: int) -> None:
    """Send a pending job to the provider: create (or remix) it upstream."""
    now = timezone.now()
    claimed = VideoJob.objects.filter(pk=job_id, status=Status.PENDING).update(
        status=Status.SUBMITTING,
        submit_attempts=F("submit_attempts") + 1,
        next_poll_at=now + TASK_LEASE,
    )
    if not claimed:
        return
    job = VideoJob.objects.select_related("remix_of").get(pk=job_id)
    client = default_client()
    try:
        if job.remix_of_id and job.remix_of.upstream_id:
            video = client.remix(job.remix_of.upstream_id, job.prompt)
        else:
            video = client.create(
                prompt=job.prompt, model=job.model, seconds=job.seconds, size=job.size
            )
    except UpstreamError as exc:
        _submit_failed(job, exc)
        return
    job.upstream_id = str(video.get("id") or "") or None
    job.submitted_at = timezone.now()
    job.error_code = job.error_message = ""
    if not job.upstream_id:
        job.status = Status.FAILED
        job.error_code = "invalid_response"
        job.error_message = "The provider accepted the job but sent no id."
        job.save()
        return
    apply_upstream(job, video, poll_after=FIRST_POLL_DELAY)
    kick_poll_sweep()


def _submit_failed(job: VideoJob, exc: UpstreamError) -> None:
    # A create is a paid generation: resubmit only when the provider surely did not take it
    # (no connection, or it answered 429/5xx). An unknown outcome is never resent blindly.
    answered_no = exc.status is not None and exc.is_transient
    if (not exc.sent or answered_no) and job.submit_attempts < MAX_SUBMIT_ATTEMPTS:
        delay = exc.retry_after or 5 * 2 ** (job.submit_attempts - 1)
        job.status = Status.PENDING
        job.next_poll_at = timezone.now() + timedelta(seconds=min(delay, 300))
        job.error_code = exc.code or "retrying"
        job.error_message = exc.message
        log.warning("job %s: submit failed (%s), retrying in %ss", job.pk, exc, delay)
    elif exc.sent and exc.status is None:
        _fail_unknown_submit(job)
        return
    else:
        job.status = Status.FAILED
        job.error_code = exc.code or (f"http_{exc.status}" if exc.status else "unreachable")
        job.error_message = exc.message
    job.save()


def _fail_unknown_submit(job: VideoJob) -> None:
    job.status = Status.FAILED
    job.error_code = "submit_outcome_unknown"
    job.error_message = (
        "The provider did not confirm the job: it may have been created anyway. "
        "Check the provider before generating it again."
    )
    job.next_poll_at = None
    job.save()


def _timestamp(value: object) -> datetime | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None


def apply_upstream(job: VideoJob, video: dict, *, poll_after: float | None = None) -> None:
    """Bring a job up to date with the provider's Video object and save it."""
    now = timezone.now()
    previous_status, previous_progress = job.status, job.progress
    status = map_upstream_status(video.get("status"))
    if status is None:
        # An unknown word is taken as still running; MAX_RENDER_TIME ends it if it never finishes.
        log.warning("job %s: unknown provider status %r", job.pk, video.get("status"))
        status = Status.IN_PROGRESS
    try:
        progress = max(0, min(int(float(video.get("progress") or 0)), 100))
    except (TypeError, ValueError):
        progress = job.progress
    job.status = status
    job.progress = max(progress, job.progress) if status != Status.FAILED else progress
    job.poll_failures = 0
    job.expires_at = _timestamp(video.get("expires_at")) or job.expires_at

    if status == Status.FAILED:
        error = video.get("error") if isinstance(video.get("error"), dict) else {}
        raw_status = str(video.get("status") or "").lower()
        job.error_code = str(error.get("code") or raw_status or "failed")
        job.error_message = str(
            error.get("message") or f"The provider reports the job as {raw_status}."
        )
        job.next_poll_at = None
    elif status == Status.COMPLETED:
        job.progress = 100
        job.completed_at = _timestamp(video.get("completed_at")) or job.completed_at or now
        job.error_code = job.error_message = ""
        job.next_poll_at = None
    else:
        if job.is_overdue(now):
            job.status = Status.FAILED
            job.error_code = "timeout"
            job.error_message = f"The provider did not finish the job within {MAX_RENDER_TIME}."
            job.next_poll_at = None
        else:
            job.next_poll_at = now + timedelta(
                seconds=_poll_interval(job, poll_after, previous_progress)
            )
    job.poll_count += 1
    job.save()

    if job.status == Status.COMPLETED and previous_status != Status.COMPLETED:
        enqueue_fetch(job)


def _poll_interval(job: VideoJob, poll_after: float | None, previous_progress: int) -> float:
    if poll_after is not None:
        return max(poll_after, MIN_POLL_INTERVAL)
    # Nothing moved since the last look: wait half as long again, up to the cap.
    if job.progress <= previous_progress and job.poll_count > 0:
        return min(MIN_POLL_INTERVAL * 2 * 1.5 ** min(job.poll_count, 12), MAX_POLL_INTERVAL)
    return MIN_POLL_INTERVAL * 2


def record_poll_failure(job: VideoJob, exc: UpstreamError) -> None:
    """A poll failed: back off, and give the job up once the provider has clearly lost it."""
    job.poll_failures += 1
    limit = MAX_NOT_FOUND if exc.status == 404 else MAX_POLL_FAILURES
    if job.poll_failures >= limit or (
        exc.status is not None and not exc.is_transient and exc.status != 404
    ):
        job.status = Status.FAILED
        job.error_code = "not_found" if exc.status == 404 else (exc.code or f"http_{exc.status}")
        job.error_message = (
            "The provider no longer knows this job." if exc.status == 404 else exc.message
        )
        job.next_poll_at = None
    else:
        delay = exc.retry_after or min(2**job.poll_failures, 300)
        job.next_poll_at = timezone.now() + timedelta(seconds=delay)
    log.warning("job %s: poll failed (%s), %s in a row", job.pk, exc, job.poll_failures)
    job.save()


def poll_jobs(jobs: list[VideoJob]) -> None:
    """Ask the provider about several jobs at once, then record the answers one by one."""
    if not jobs:
        return
    client = default_client()

    def retrieve(job: VideoJob) -> tuple[dict, float | None] | UpstreamError:
        try:
            return client.retrieve(job.upstream_id)
        except UpstreamError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(POLL_CONCURRENCY, len(jobs))) as pool:
        answers = list(pool.map(retrieve, jobs))
    # Database writes stay on this thread: SQLite connections are per thread.
    for job, answer in zip(jobs, answers, strict=True):
        if isinstance(answer, UpstreamError):
            record_poll_failure(job, answer)
        else:
            video, poll_after = answer
            apply_upstream(job, video, poll_after=poll_after)


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
            # create is unknown. It is not resent blindly: that could pay for it twice.
            _fail_unknown_submit(job)
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
    if not VideoJob.objects.needing_work().exists():
        return None
    soonest = VideoJob.objects.needing_work().aggregate(at=Min("next_poll_at"))["at"]
    if soonest is None:
        return 0.0
    return max((soonest - timezone.now()).total_seconds(), 0.0)


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
    carry_on = False
    try:
        while True:
            poll_due_jobs()
            wait = seconds_until_next_due()
            if wait is None or wait > SWEEP_HANDOFF_SECONDS:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                carry_on = True
                break
            time.sleep(min(max(wait, 0.2), remaining))
    finally:
        Lease.release(SWEEP_LEASE)
    if carry_on:
        async_task("videos.tasks.poll_sweep", sync=False)


def enqueue_fetch(job: VideoJob) -> None:
    if _claim(job, timezone.now()):
        transaction.on_commit(lambda: async_task("videos.tasks.fetch_assets", job.pk))


def asset_name(job: VideoJob, variant: str, content_type: str) -> str:
    return f"videos/{job.pk}/{variant}{EXTENSIONS[content_type]}"


def fetch_assets(job_id: int) -> None:
    """Copy a completed job's video, thumbnail and spritesheet into our own storage.

    Each file is checked by its bytes before it is kept. Failures retry with backoff until the
    provider's copy expires.
    """
    job = VideoJob.objects.filter(pk=job_id).first()
    if job is None or not job.is_fetching or not job.upstream_id:
        return
    claimed = VideoJob.objects.filter(pk=job.pk, fetch_attempts=job.fetch_attempts).update(
        fetch_attempts=F("fetch_attempts") + 1, next_poll_at=timezone.now() + TASK_LEASE
    )
    if not claimed:
        return
    job.refresh_from_db()
    client = default_client()
    media_root = Path(settings.MEDIA_ROOT)
    try:
        # The thumbnail first: the gallery card can show it while the video still downloads.
        for variant in ("thumbnail", "spritesheet", "video"):
            if job.has_asset(variant):
                continue
            staging = media_root / f"videos/{job.pk}/{variant}.download"
            client.download(job.upstream_id, variant, staging)
            content_type = sniff_content_type(staging)
            if content_type not in expected_types(variant):
                staging.unlink(missing_ok=True)
                raise UpstreamError(
                    f"the provider's {variant} is not a {variant} file "
                    f"({content_type or 'unknown type'})"
                )
            name = asset_name(job, variant, content_type)
            staging.replace(media_root / name)
            job.asset(variant).name = name
            job.save(update_fields=[variant, "updated_at"])
    except UpstreamError as exc:
        _fetch_failed(job, exc)
        return
    job.assets_fetched_at = timezone.now()
    job.fetch_error = ""
    job.next_poll_at = None
    job.save()


def _fetch_failed(job: VideoJob, exc: UpstreamError) -> None:
    now = timezone.now()
    job.fetch_error = str(exc)
    expired = job.expires_at is not None and now >= job.expires_at
    if expired or job.fetch_attempts >= MAX_FETCH_ATTEMPTS:
        job.fetch_given_up = True
        job.next_poll_at = None
    else:
        job.next_poll_at = now + job.fetch_retry_delay()
    log.warning("job %s: download failed (%s), attempt %s", job.pk, exc, job.fetch_attempts)
    job.save()


def import_upstream_jobs(*, page_size: int = 100, max_pages: int = 100) -> int:
    """Add the provider's jobs that muxweb does not know yet; returns how many were added.

    Pages through `GET /videos` newest first. Running it again adds nothing twice: a job is
    known by its provider id.
    """
    client = default_client()
    specs = {spec.name: spec for spec in ModelSpec.objects.all()}
    added = 0
    after = None
    for _page in range(max_pages):
        listing = client.list(limit=page_size, after=after)
        videos = [v for v in listing.get("data") or [] if isinstance(v, dict) and v.get("id")]
        known = set(
            VideoJob.objects.filter(upstream_id__in=[str(v["id"]) for v in videos]).values_list(
                "upstream_id", flat=True
            )
        )
        for video in videos:
            if str(video["id"]) not in known and _import_one(video, specs):
                added += 1
        if not listing.get("has_more") or not videos:
            break
        after = listing.get("last_id") or videos[-1]["id"]
    if added:
        kick_poll_sweep()
    return added


def _import_one(video: dict, specs: dict[str, ModelSpec]) -> bool:
    created = _timestamp(video.get("created_at")) or timezone.now()
    try:
        seconds = int(float(video.get("seconds") or 0))
    except (TypeError, ValueError):
        seconds = 0
    model, size = str(video.get("model") or ""), str(video.get("size") or "")
    spec = specs.get(model)
    job = VideoJob(
        imported=True,
        upstream_id=str(video["id"]),
        model=model,
        prompt=str(video.get("prompt") or ""),
        seconds=seconds,
        size=size,
        price_per_second=spec.price_per_second(size) if spec else None,
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


def delete_job(job: VideoJob) -> bool:
    """Remove a finished job here and at the provider; True if the provider's copy is gone too.

    Our files go whatever the provider answers: its copy expires on its own, ours would not.
    """
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
    spec = ModelSpec.objects.filter(name=job.model).first() or ModelSpec(name=job.model)
    return create_job(
        author=author,
        spec=spec,
        prompt=job.prompt,
        seconds=job.seconds,
        size=job.size,
        remix_of=job.remix_of,
    )
