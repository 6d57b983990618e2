"""What people do with jobs: create (and remix), retry, delete and import.

Views and commands call these functions; the lifecycle at the provider is in lifecycle.py, the
poll sweep in sweep.py, downloads in downloads.py, the trash in trash.py.
"""

import logging
import shutil
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task
from PIL import Image

from accounts.activity import record
from accounts.models import Action
from muxweb import datadir
from videos import budgets, fairshare
from videos.downloads import job_media_dir
from videos.images import fit_to_size
from videos.lifecycle import FIRST_POLL_DELAY, apply_upstream, listed_videos, next_page_after
from videos.models import (
    ImportRun,
    Lease,
    ModelSpec,
    ModelUnavailable,
    PurgedCost,
    Status,
    VideoJob,
)
from videos.queue import TASK_LEASE, kick_poll_sweep
from videos.upstream.client import BudgetDeferred, UpstreamError, default_client
from videos.upstream.video import UpstreamVideo

log = logging.getLogger(__name__)


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
    action: Action | None = None,
) -> VideoJob:
    """Record a new job and submit it to the provider once the row is committed; the activity
    log gets its entry (`action`: a create, a remix or a retry) in the same transaction.

    `client_token` comes from the form: the same form posted twice (a double click, a resent
    request) gives back the job it made the first time instead of paying for a second one.

    Every new job, whatever made it (the form, Retry, Remix), is checked against the catalogue
    here: a model that is disabled or gone, or a length or size it does not offer, raises
    ModelUnavailable and nothing is made or paid. Its estimated cost is then reserved against
    the author's and the team's monthly budgets: past either, it raises OverBudget (a
    ModelUnavailable too) and nothing is made or sent.
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
    price = spec.price_per_second(size)
    estimate = None if price is None else (price * seconds).quantize(Decimal("0.01"))
    # Past the provider's or the author's limit of jobs at once, it waits in muxweb for a slot.
    waits = fairshare.is_limited(getattr(author, "pk", None))
    try:
        with transaction.atomic():
            # Refused here, before the row exists and so before anything is sent.
            budgets.reserve(author, estimate)
            job = VideoJob.objects.create(
                author=author,
                model=spec.name,
                prompt=prompt,
                seconds=seconds,
                size=size,
                price_per_second=price,
                reserved_cost=estimate,
                remix_of=remix_of,
                client_token=client_token or None,
                status=Status.WAITING if waits else Status.PENDING,
                next_poll_at=None if waits else timezone.now() + TASK_LEASE,
            )
            default = Action.REMIX if remix_of is not None else Action.CREATE
            record(author, action or default, job=job)
    except IntegrityError:
        # The same form, posted twice at the same moment.
        return VideoJob.objects.get(client_token=client_token)
    if reference is not None:
        save_reference(job, reference)
    if waits:
        transaction.on_commit(fairshare.admit_waiting)
    else:
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
    added = seen = 0
    after = None
    for _page in range(max_pages):
        listing, videos, page_added = _import_page(client, specs, page_size, after)
        added += page_added
        seen += len(videos)
        if not listing.get("has_more") or not videos:
            break
        after = next_page_after(listing, videos)
    record(None, Action.IMPORT, added=added, checked=seen, source="command line")
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
            except BudgetDeferred:
                # The key's budget keeps its room for creates, downloads and polls: a fresh task
                # asks again (and waits for room again) where this one stopped.
                hand_over = True
                break
            except UpstreamError as exc:
                run.error = str(exc)
                _finish_import(run)
                break
            run.pages += 1
            run.seen += len(videos)
            run.added += added
            if added:
                kick_poll_sweep()
            if not listing.get("has_more") or not videos or run.pages >= IMPORT_MAX_PAGES:
                _finish_import(run)
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


def _finish_import(run: ImportRun) -> None:
    """The import is done: its result, and its entry in the activity log, together."""
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        details = {"added": run.added, "checked": run.seen}
        record(
            run.started_by, Action.IMPORT, **details, **({"error": run.error} if run.error else {})
        )


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


class JobBusy(Exception):
    """The job is still being submitted, rendered or downloaded: it cannot be deleted yet."""


def delete_job(job: VideoJob, *, actor=None) -> bool:
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
    upstream_gone = delete_at_provider(job)
    media_dir = job_media_dir(job)
    with transaction.atomic():
        # Locked, so that two deletes at once (or a delete and the trash's purge) record, keep
        # the cost of and delete the job once.
        job = VideoJob.objects.select_for_update(of=("self",)).filter(pk=job.pk).first()
        if job is None:
            return upstream_gone
        record(actor, Action.DELETE, job=job, provider_copy_deleted=upstream_gone)
        PurgedCost.keep_for(job)
        job.delete()
    # The whole directory: with the three files go any leftover partial downloads.
    shutil.rmtree(media_dir, ignore_errors=True)
    return upstream_gone


def delete_at_provider(job: VideoJob) -> bool:
    """Ask the provider to delete its copy of the job; True if it is gone (or never was). A
    failure is logged, not raised: the provider's copy expires on its own. Call it outside any
    transaction, it waits on the provider."""
    if not job.upstream_id:
        return True
    try:
        default_client().delete(job.upstream_id)
    except UpstreamError as exc:
        if exc.status == 404:
            return True
        log.warning("job %s: provider delete failed (%s)", job.pk, exc)
        return False
    return True


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
        action=Action.RETRY,
    )
