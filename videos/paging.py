"""The gallery's pages: newest first, a page at a time by cursor (keyset), never COUNT or OFFSET.

A cursor names a card by its place in the order, (created_at, id), written in a URL as
"<microseconds since 1970 UTC>_<id>": `?older=` the last card shown, `?newer=` the first. A page
reads PAGE_SIZE + 1 rows from there along an index (see VideoJob.Meta), so it costs the same on
the first page and the thousandth, at a hundred jobs or a million.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from muxweb.text import parse_id
from videos.models import VideoJob, VideoJobQuerySet

PAGE_SIZE = 24
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The most digits a cursor's time may have: year 9999 is 2.5e17 microseconds after 1970.
MAX_TIME_DIGITS = 18


@dataclass
class Page:
    """One page of cards, newest first, and where its links lead."""

    jobs: list[VideoJob]
    # The cursors of the Older and Newer links, None where there is nothing more that way.
    older: str | None
    newer: str | None
    # The newest page, reached without a cursor (or by going Newer to the top).
    first: bool


def cursor_for(job: VideoJob) -> str:
    """The cursor naming `job`'s place in the gallery's order, safe in a URL as it is."""
    return cursor_at(job.created_at, job.pk)


def cursor_at(moment: datetime, pk: int) -> str:
    """The cursor naming (moment, pk) in an order by a time and then the id."""
    delta = moment - EPOCH
    microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{microseconds}_{pk}"


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """The (created_at, id) a cursor names, or None for anything that is not a cursor."""
    micro, sep, pk = value.partition("_")
    negative = micro.startswith("-")
    digits = micro.removeprefix("-")
    if not (sep and digits.isascii() and digits.isdigit() and len(digits) <= MAX_TIME_DIGITS):
        return None
    if (job_id := parse_id(pk)) is None:
        return None
    try:
        created = EPOCH + timedelta(microseconds=-int(digits) if negative else int(digits))
    except OverflowError:
        return None
    return created, job_id


def older_than(created: datetime, pk: int) -> Q:
    """(created_at, id) < (created, pk). The first term alone is what both databases turn into
    the index's range; the second only tells apart the jobs created in the same microsecond."""
    return Q(created_at__lte=created) & (Q(created_at__lt=created) | Q(id__lt=pk))


def newer_than(created: datetime, pk: int) -> Q:
    """(created_at, id) > (created, pk), written like `older_than`."""
    return Q(created_at__gte=created) & (Q(created_at__gt=created) | Q(id__gt=pk))


def page_of(jobs: VideoJobQuerySet, *, older: str = "", newer: str = "") -> Page:
    """The page of `jobs` before the cursor `newer`, or after the cursor `older`, or the newest.
    A cursor that is not one gives the newest page."""
    if (position := parse_cursor(newer)) is not None:
        above = jobs.filter(newer_than(*position)).order_by("created_at", "id")
        rows = list(above[: PAGE_SIZE + 1])
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE][::-1]
            return Page(rows, older=cursor_for(rows[-1]), newer=cursor_for(rows[0]), first=False)
        # Newer reached the top: the newest page, full whatever was added meanwhile.
        return older_page(jobs, None)
    return older_page(jobs, parse_cursor(older))


def older_page(jobs: VideoJobQuerySet, position: tuple[datetime, int] | None) -> Page:
    """The PAGE_SIZE jobs after `position`, or the newest."""
    if position is not None:
        jobs = jobs.filter(older_than(*position))
    rows = list(jobs.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return Page(
        rows,
        older=cursor_for(rows[-1]) if more else None,
        # The card the cursor named, or one before it, is newer than this page.
        newer=cursor_for(rows[0]) if position is not None and rows else None,
        first=position is None,
    )
