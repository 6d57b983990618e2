"""The live gallery: the jobs made since a gallery's first page was drawn that match its filters.

The page's poller says where it is (the place of its newest card, in paging's cursor form) and
views.gallery_poll asks here what arrived since. When nothing did, that costs one row read from
the end of an index (paging.newest_position), however long the history; only when some job is
newer at all are the page's filters asked, along the same index from the page's place.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.http import QueryDict

from muxweb.text import parse_id
from videos.models import VideoJob, VideoJobQuerySet
from videos.paging import PAGE_SIZE, cursor_at, newer_than, newest_position, parse_cursor

# The most ids of cards a page added itself (the composer's) that one poll may name.
MAX_SHOWN = 100


@dataclass
class Watch:
    """What a first page's poll says it shows: the place of its newest card (None when no job
    existed yet), the cards it added itself since, and whether it shows no card at all (its
    pager waits, hidden, for the first)."""

    since: tuple[datetime, int] | None
    shown: list[int] = field(default_factory=list)
    empty: bool = False


@dataclass
class Arrivals:
    """What a poll brings a first page: the new cards, newest first, and where it stands after."""

    jobs: list[VideoJob]
    newest: str
    shown: list[int]
    empty: bool
    # The page showed no card before this poll and shows some now: its pager appears.
    reveal: bool


def watch_of(query: QueryDict) -> Watch | None:
    """The watch a poll's query string describes: `newest` (a cursor, or empty when the page
    was drawn before any job existed), `shown` ids and `empty`. None when it watches nothing:
    an older page, or a `newest` that is not a cursor."""
    if "newest" not in query:
        return None
    raw = query.get("newest", "")
    since = parse_cursor(raw) if raw else None
    if raw and since is None:
        return None
    shown = [pk for pk in map(parse_id, query.getlist("shown")) if pk is not None]
    return Watch(since=since, shown=shown[:MAX_SHOWN], empty=query.get("empty") == "1")


def newest_beyond(watch: Watch) -> tuple[datetime, int] | None:
    """The place of the newest job of all if it is newer than the watch's, else None: the one
    row an idle poll reads."""
    latest = newest_position()
    if latest is None or (watch.since is not None and latest <= watch.since):
        return None
    return latest


def arrivals(
    watch: Watch, jobs: VideoJobQuerySet, *, latest: tuple[datetime, int], present: list[int]
) -> Arrivals:
    """The jobs of `jobs` (the page's filters) newer than the watch's place and not on the page
    already (`present`: its running cards, and those it added itself), `latest` being the place
    of the newest job of all. At most a page of them, the oldest first, so the next poll goes
    on from the newest brought and none is skipped."""
    if watch.since is not None:
        jobs = jobs.filter(newer_than(*watch.since))
    excluded = [*watch.shown, *present]
    rows = list(jobs.exclude(pk__in=excluded).for_cards().order_by("created_at", "id")[:PAGE_SIZE])
    if len(rows) == PAGE_SIZE:
        # More may match: the next poll goes on after the last one brought.
        newest, shown = (rows[-1].created_at, rows[-1].pk), watch.shown
    else:
        # Every job up to the newest has been looked at, those that do not match too: the next
        # poll answers from the index alone until another job is made.
        newest, shown = max([latest, *((job.created_at, job.pk) for job in rows)]), []
    reveal = watch.empty and bool(rows or watch.shown)
    return Arrivals(
        jobs=rows[::-1],
        newest=cursor_at(*newest),
        shown=shown,
        empty=watch.empty and not reveal,
        reveal=reveal,
    )
