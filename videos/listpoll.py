"""List polling: one `GET /videos` page refreshes every running job in it.

A poll per job costs one request each; the provider's newest 100 jobs cost one request for all of
them. So where the provider lists its jobs, the sweep asks for one page (newest first) and applies
each running job's entry through the same code as a poll's answer (`lifecycle.apply_upstream`),
jobs that were not due yet included: they are then not due for a while. While two or more due jobs
are missing from the pages read, the next page is asked (up to three, the newest 300 jobs); only
the due jobs missing from them all are retrieved one by one.

Whether the provider lists at all is found out once and kept on the key's `ProviderBudget` row:
a 404 or 405 (a relay that only forwards creates and retrieves) means no, and the sweep polls job
by job until it is asked again, a day later. Any other error falls back to per-job polls for that
pass only. Webhooks still come first: a job a webhook refreshed is not due, and a list does not
make it due.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from videos.fairshare import RUNNING
from videos.lifecycle import POLL_READ_TIMEOUT, apply_upstream, listed_videos, next_page_after
from videos.models import ProviderBudget, VideoJob
from videos.upstream.client import BudgetDeferred, UpstreamError, default_client
from videos.upstream.ratelimit import Priority, key_id

log = logging.getLogger(__name__)

LIST_PAGE = 100
# Pages asked in one pass at most: running jobs older than the newest 300 are polled one by one.
LIST_PAGES = 3
# One job due costs one request either way; a retrieve also brings the provider's poll-after.
LIST_MIN_DUE = 2
# A provider without the list is asked again this long after it last said no.
LIST_RECHECK = timedelta(days=1)
# What a provider without the list answers `GET /videos`.
NO_LIST_STATUSES = frozenset({404, 405})


def _row() -> ProviderBudget:
    key = key_id(settings.MUXWEB_API_BASE, settings.MUXWEB_API_KEY)
    row, _created = ProviderBudget.objects.get_or_create(key=key)
    return row


def lists_videos() -> bool | None:
    """Whether the provider answers `GET /videos`: None when unknown or due to be asked again."""
    row = _row()
    if row.list_checked_at is None or timezone.now() - row.list_checked_at > LIST_RECHECK:
        return None
    return row.lists_videos


def _remember(lists: bool, known: bool | None) -> None:
    """Keep what the provider showed; written only when it changes (or was due to be asked)."""
    if lists != known:
        ProviderBudget.objects.filter(pk=_row().pk).update(
            lists_videos=lists, list_checked_at=timezone.now()
        )


def poll_by_list(due: list[VideoJob]) -> list[VideoJob]:
    """Refresh running jobs from the provider's list, a page of 100 at a time (newest first, at
    most LIST_PAGES while two or more due jobs are still missing); the due jobs it did not cover,
    to be polled one by one."""
    if len(due) < LIST_MIN_DUE:
        return due
    known = lists_videos()
    if known is False:
        return due
    client = default_client().with_read_timeout(POLL_READ_TIMEOUT)
    covered: set[int] = set()
    after = None
    for page in range(LIST_PAGES):
        try:
            # Instead of polls, so it goes with the polls' priority, not the listings'.
            listing = client.list(limit=LIST_PAGE, after=after, priority=Priority.POLL)
        except BudgetDeferred:
            # No room now: the per-job polls are put off the same way.
            break
        except UpstreamError as exc:
            if page:
                log.warning("the provider's list failed past its first page (%s)", exc)
            elif exc.status in NO_LIST_STATUSES:
                log.info("the provider does not list its jobs (%s): polling job by job", exc)
                _remember(False, known)
            else:
                log.warning("the provider's list failed (%s): polling job by job", exc)
            break
        if not page:
            _remember(True, known)
        videos = listed_videos(listing)
        covered |= _apply(videos)
        missing = [job for job in due if job.pk not in covered]
        if len(missing) < LIST_MIN_DUE or not videos or not listing.get("has_more"):
            break
        after = next_page_after(listing, videos)
    return [job for job in due if job.pk not in covered]


def _apply(videos: list) -> set[int]:
    """Record each running job's entry of a page, as a poll's answer would be; their ids."""
    by_id = {video.id: video for video in videos}
    running = VideoJob.objects.filter(upstream_id__in=list(by_id), status__in=RUNNING)
    covered: set[int] = set()
    for job in running:
        try:
            apply_upstream(job, by_id[job.upstream_id])
        except Exception:
            # Left to a poll of its own: one job's trouble must not hold up the others.
            log.exception("job %s: the provider's list entry could not be recorded", job.pk)
            continue
        covered.add(job.pk)
    return covered
