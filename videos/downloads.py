"""Copying a completed job's files into our own storage: each variant on its own, verified by
its bytes before it is kept, and made from the video when the provider does not offer it."""

import logging
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from muxweb import datadir
from videos import derive, holders
from videos.lifecycle import save_fields
from videos.media import EXTENSIONS
from videos.models import (
    MAX_FETCH_ATTEMPTS,
    VARIANTS,
    Lease,
    Status,
    VideoJob,
)
from videos.probe import InvalidDownload, verify_download
from videos.queue import FETCH_LOCK, TASK_LEASE, spritesheet_lease
from videos.upstream.client import (
    REDIRECT_REFUSED,
    BudgetDeferred,
    UpstreamError,
    default_client,
)
from videos.upstream.ratelimit import Priority, default_budget

log = logging.getLogger(__name__)


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
    # The lock knows its holder and is kept alive by a heartbeat (videos.holders): a download
    # whose worker was killed is taken over within seconds, not when a long lease runs out.
    with holders.held(f"{holders.FETCH_PREFIX}{job.pk}", FETCH_LOCK) as claimed:
        if claimed:
            _fetch(job)


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
    # Two requests per video (the create and the video) when the key is short of room: the
    # pictures are then made here from the video, laid out like the provider's.
    make_here = budget_is_tight(job)
    errors: list[str] = []
    # Each variant on its own, the video first among equals: it is what was paid for, and the
    # pictures can be made from it. One variant's failure never holds back another.
    for variant in VARIANTS:
        if job.has_asset(variant) or variant in job.variants_not_offered:
            continue
        if make_here and variant in PICTURE_MAKERS:
            continue
        try:
            name = _download_variant(client, job, variant, media_dir)
        except BudgetDeferred as exc:
            _fetch_deferred(job, exc)
            return
        except UpstreamError as exc:
            if variant != "video" and refused_for_good(exc):
                log.info("job %s: the provider does not offer the %s (%s)", job.pk, variant, exc)
                job.variants_not_offered = [*job.variants_not_offered, variant]
                if not save_fields(job, ["variants_not_offered"]):
                    return
            else:
                errors.append(f"{variant}: {exc}")
            continue
        except OSError as exc:
            errors.append(f"{variant}: {exc}")
            continue
        job.asset(variant).name = name
        if not save_fields(job, [variant]):
            return
    if not _make_missing_pictures(job, media_dir, errors, make_here=make_here):
        return
    if errors:
        _fetch_failed(job, _summary(errors))
        return
    job.assets_fetched_at = timezone.now()
    job.fetch_error = ""
    job.next_poll_at = None
    save_fields(job, ["assets_fetched_at", "fetch_error", "next_poll_at"])


def _fetch_deferred(job: VideoJob, exc: BudgetDeferred) -> None:
    """The key's budget had no room: tried again when it should, the attempt not counted."""
    VideoJob.objects.filter(pk=job.pk, assets_fetched_at__isnull=True).update(
        fetch_attempts=F("fetch_attempts") - 1,
        next_poll_at=timezone.now() + timedelta(seconds=exc.retry_after),
    )


# A download whose file the provider deletes sooner than this goes before polls (ratelimit.py).
URGENT_BEFORE_EXPIRY = timedelta(minutes=15)


def budget_is_tight(job: VideoJob | None = None) -> bool:
    """Whether the key's budget is short enough to make pictures here rather than download them
    (two more downloads per job are 8 of OpenAI's 25 a minute): tight by its own measure, or
    with a limit known and more work waiting for it (jobs to send, other files to download)."""
    budget = default_budget()
    if not budget.enabled:
        return False
    state = budget.state()
    if state.is_tight:
        return True
    if not state.limit:
        return False
    backlog = VideoJob.objects.filter(
        Q(status=Status.WAITING)
        | Q(status=Status.COMPLETED, assets_fetched_at__isnull=True, fetch_given_up=False)
    )
    if job is not None:
        backlog = backlog.exclude(pk=job.pk)
    return backlog.exists()


def download_priority(job: VideoJob) -> Priority:
    if job.expires_at is not None and job.expires_at - timezone.now() < URGENT_BEFORE_EXPIRY:
        return Priority.URGENT
    return Priority.DOWNLOAD


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
        client.download(job.upstream_id, variant, staging, priority=download_priority(job))
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


def _make_missing_pictures(
    job: VideoJob, media_dir: Path, errors: list[str], *, make_here: bool = False
) -> bool:
    """Make from the cached video the pictures the provider does not offer, or that it could not
    deliver before its copy expires, or (`make_here`) that were not asked for to spare the key's
    budget, so every job has all three. False if the job is gone."""
    if not job.video:
        return True
    expired = job.expires_at is not None and timezone.now() >= job.expires_at
    last_try = expired or job.fetch_attempts >= MAX_FETCH_ATTEMPTS
    video = Path(settings.MEDIA_ROOT) / job.video.name
    for variant, make in PICTURE_MAKERS.items():
        if job.has_asset(variant) or not (
            variant in job.variants_not_offered or last_try or make_here
        ):
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
        if not save_fields(job, [variant]):
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
    save_fields(job, ["fetch_error", "fetch_given_up", "next_poll_at"])


def make_missing_spritesheet(job_id: int) -> None:
    """Make a spritesheet from the saved video of a job that has none (imported, or saved before
    muxweb made them), so every job can be scrubbed. Asked for when the job is first shown
    (videos.queue.enqueue_missing_spritesheets); safe to run twice."""
    job = VideoJob.objects.filter(pk=job_id).first()
    if job is None or not job.lacks_spritesheet:
        return
    # The download's lock: never beside a download of the same job, nor beside a second copy.
    with holders.held(f"{holders.FETCH_PREFIX}{job.pk}", FETCH_LOCK) as claimed:
        if claimed:
            _make_spritesheet(job)


def _make_spritesheet(job: VideoJob) -> None:
    """Under the download lock: the spritesheet made from the saved video."""
    job.refresh_from_db()
    if not job.lacks_spritesheet:
        return
    media_dir = job_media_dir(job)
    datadir.make_media_dir(media_dir, Path(settings.MEDIA_ROOT), settings.MEDIA_GROUP_ID)
    staging = media_dir / f"{STAGING_PREFIX}spritesheet.{uuid.uuid4().hex}.made"
    try:
        video = Path(settings.MEDIA_ROOT) / job.video.name
        content_type = derive.make_spritesheet(video, staging)
        job.spritesheet.name = _place(job, "spritesheet", content_type, staging)
    except (derive.DeriveError, OSError) as exc:
        # The guard's lease stays: the next try comes with a view after it runs out.
        log.warning("job %s: no spritesheet could be made from the video (%s)", job.pk, exc)
        return
    finally:
        staging.unlink(missing_ok=True)
    if save_fields(job, ["spritesheet"]):
        Lease.release(spritesheet_lease(job.pk))


def job_media_dir(job: VideoJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "videos" / str(job.pk)
