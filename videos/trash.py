"""The trash: a job moved there leaves the gallery and every list the team reads, and can be
restored with its files, lineage and cost for settings.MUXWEB_TRASH_DAYS; then (or when an admin
empties the trash) its row and files go for good.

The provider's copy is deleted when the job is moved to the trash, not when it is purged: the
provider lets it expire anyway, and nothing here needs it any more. Budgets and usage count a job
in the trash as before (videos.budgets, videos.usage read every job): the money was spent.
"""

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from accounts.activity import record
from accounts.models import Action
from accounts.roles import can
from videos.downloads import job_media_dir
from videos.models import NEEDING_WORK, PurgedCost, VideoJob, VideoJobQuerySet
from videos.paging import PAGE_SIZE, Page, cursor_at, parse_cursor
from videos.services import JobBusy, delete_at_provider

log = logging.getLogger(__name__)


@dataclass
class TrashResult:
    """What `trash_jobs` did with a selection."""

    trashed: int = 0
    # Skipped: someone else's job for a member, anything for a viewer.
    not_allowed: int = 0
    # Skipped: still being submitted, rendered or saved.
    running: int = 0
    # Skipped: in the trash already, or gone.
    already: int = 0
    # Trashed, but the provider could not be reached: its copy expires on its own.
    provider_failed: int = 0
    # Trashed; a worker asks the provider to delete them.
    provider_later: int = 0


# Up to this many provider deletes are done while the request waits (and their failures told);
# more go to a worker in batches.
INLINE_PROVIDER_DELETES = 10
PROVIDER_BATCH = 200


def trash_job(job: VideoJob, *, actor) -> bool:
    """Move a finished job to the trash and delete it at the provider; True if the provider's
    copy is gone. The caller checked that `actor` may delete it. A job still running raises
    JobBusy; one already in the trash (or gone) is left as it is."""
    try:
        job.refresh_from_db()
    except VideoJob.DoesNotExist:
        return True
    if job.trashed_at is not None:
        return True
    if job.is_active:
        raise JobBusy(job.pk)
    with transaction.atomic():
        moved = _move_to_trash(job, actor, timezone.now())
    if not moved:
        # Moved to the trash a moment ago by someone else: they told the provider.
        return True
    return delete_at_provider(job)


def trash_jobs(jobs: Iterable[VideoJob], *, actor) -> TrashResult:
    """Move a selection to the trash: the jobs `actor` may delete and that have finished, the
    others skipped and counted. One transaction for the rows and their activity entries; the
    provider is asked to delete after it is committed, so no transaction waits on the provider."""
    result = TrashResult()
    ids = [job.pk for job in jobs]
    moved: list[VideoJob] = []
    now = timezone.now()
    with transaction.atomic():
        found = VideoJob.objects.filter(pk__in=ids).select_related("author")
        result.already = len(ids) - len(found)
        for job in found:
            if job.trashed_at is not None:
                result.already += 1
            elif not can(actor, "delete", job):
                result.not_allowed += 1
            elif job.is_active or not _move_to_trash(job, actor, now):
                result.running += 1
            else:
                moved.append(job)
    result.trashed = len(moved)
    if len(moved) <= INLINE_PROVIDER_DELETES:
        result.provider_failed = sum(1 for job in moved if not delete_at_provider(job))
    else:
        # A big selection would keep the request waiting on the provider once per job: a
        # worker tells the provider instead, a batch at a time.
        result.provider_later = len(moved)
        ids = [job.pk for job in moved if job.upstream_id]
        for start in range(0, len(ids), PROVIDER_BATCH):
            async_task("videos.tasks.delete_at_provider", ids[start : start + PROVIDER_BATCH])
    return result


def delete_trashed_at_provider(job_ids: list[int]) -> None:
    """Ask the provider to delete its copies of these trashed jobs (a worker's half of
    `trash_jobs`); safe to run twice, a second delete finds them gone."""
    for job in VideoJob.objects.trashed().filter(pk__in=job_ids).exclude(upstream_id=None):
        delete_at_provider(job)


def _move_to_trash(job: VideoJob, actor, now: datetime) -> bool:
    """Mark the job trashed, if it still is a finished job outside the trash, and write the
    activity entry; inside the caller's transaction."""
    trashed_by = actor if actor is not None and actor.pk else None
    moved = (
        VideoJob.objects.kept()
        .exclude(NEEDING_WORK)
        .filter(pk=job.pk)
        .update(trashed_at=now, trashed_by=trashed_by, updated_at=now)
    )
    if not moved:
        return False
    job.trashed_at, job.trashed_by, job.updated_at = now, trashed_by, now
    record(actor, Action.TRASH, job=job, purge_at=job.purge_at.isoformat())
    return True


def restore_job(job: VideoJob, *, actor) -> bool:
    """Bring a job back from the trash, as it was: files, lineage and cost. False if it was not
    in the trash (restored meanwhile, or purged)."""
    now = timezone.now()
    with transaction.atomic():
        restored = (
            VideoJob.objects.trashed()
            .filter(pk=job.pk)
            .update(trashed_at=None, trashed_by=None, updated_at=now)
        )
        if restored:
            job.trashed_at, job.trashed_by, job.updated_at = None, None, now
            record(actor, Action.RESTORE, job=job)
    return bool(restored)


def purge_trash(now: datetime | None = None) -> int:
    """Remove for good the jobs in the trash for more than MUXWEB_TRASH_DAYS, row and files;
    returns how many. The scheduled task runs it; running it twice removes nothing twice."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.MUXWEB_TRASH_DAYS)
    return _purge(VideoJob.objects.trashed().filter(trashed_at__lt=cutoff), actor=None)


def empty_trash(actor) -> int:
    """An admin removes everything in the trash for good now; returns how many."""
    if not can(actor, "empty_trash"):
        raise PermissionDenied
    return _purge(VideoJob.objects.trashed().filter(trashed_at__lte=timezone.now()), actor=actor)


def _purge(jobs: VideoJobQuerySet, *, actor) -> int:
    """Delete each of `jobs` with its activity entry, one short transaction each: a job restored
    meanwhile is left alone. Its remixes stay, without a parent (remix_of is SET_NULL)."""
    purged = 0
    for pk in list(jobs.order_by("trashed_at", "id").values_list("pk", flat=True)):
        with transaction.atomic():
            # Locked, so that a restore running now waits and then finds nothing to restore.
            job = jobs.select_for_update(of=("self",)).filter(pk=pk).first()
            if job is None:
                continue
            media_dir = job_media_dir(job)
            record(
                actor,
                Action.PURGE,
                job=job,
                trashed_at=job.trashed_at.isoformat(),
                trashed_by=job.trashed_by.get_username() if job.trashed_by else "",
            )
            PurgedCost.keep_for(job)
            job.delete()
        # The whole directory: with the files go any leftovers.
        shutil.rmtree(media_dir, ignore_errors=True)
        purged += 1
    if purged:
        log.info("trash: %d job(s) removed for good", purged)
    return purged


def trash_page(*, older: str = "") -> Page:
    """A page of the trash, the most recently trashed first, after the cursor `older` (a job's
    (trashed_at, id), see videos.paging); along the videojob_trashed index."""
    jobs = VideoJob.objects.trashed().select_related("author", "trashed_by")
    position = parse_cursor(older)
    if position is not None:
        at, pk = position
        jobs = jobs.filter(Q(trashed_at__lte=at) & (Q(trashed_at__lt=at) | Q(id__lt=pk)))
    rows = list(jobs.order_by("-trashed_at", "-id")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    last = rows[-1] if more else None
    return Page(
        rows,
        older=cursor_at(last.trashed_at, last.pk) if last else None,
        newer=None,
        first=position is None,
    )
