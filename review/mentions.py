"""Telling people someone mentioned them: the "For you" count in the menu, a toast, and the
"For you" page.

A mention is someone else's doing: no page of the mentioned person can know when it comes, so
unlike the notifier of one's own jobs (videos.notifications, silent while nothing of mine runs)
every page of a team member asks once a minute, and only while it is visible
(static/js/comments.js). That ask costs one indexed query and answers 204 while nothing changed.
A page drawn while a mention is new asks once at once, to show its toast; the session remembers
which mentions it has toasted, so each toasts once per sign-in, in one tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.utils import timezone

from review.models import Mention
from videos.paging import PAGE_SIZE, cursor_at, older_than, parse_cursor

# The count in the menu stops here ("9+"): reading more rows would only make a bigger number.
SHOWN_COUNT = 9
# The most toasts one poll brings; the others wait on the "For you" page.
MAX_TOASTS = 3
POLL_SECONDS = 60
SESSION_KEY = "review_mentions_toasted"


@dataclass
class Notices:
    """What a page says about the person's unseen mentions."""

    unseen: int = 0
    # The unseen mentions not toasted yet in this session, newest first.
    new: list[Mention] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{SHOWN_COUNT}+" if self.unseen > SHOWN_COUNT else str(self.unseen)


def with_context(mentions: QuerySet[Mention]) -> QuerySet[Mention]:
    """Mentions with what a toast or a line of "For you" shows: the comment, its author, its job."""
    return mentions.select_related("comment", "comment__author", "comment__job")


def notices(user, toasted_upto: int = 0) -> Notices:
    """The user's unseen mentions, counted up to SHOWN_COUNT + 1, and those newer than
    `toasted_upto`: one query on the mention_user_created index."""
    rows = list(
        with_context(Mention.objects.filter(user=user, seen_at__isnull=True)).order_by(
            "-created_at", "-id"
        )[: SHOWN_COUNT + 1]
    )
    new = [mention for mention in rows if mention.pk > toasted_upto][:MAX_TOASTS]
    return Notices(unseen=len(rows), new=new)


def toasted_upto(session) -> int:
    value = session.get(SESSION_KEY, 0)
    return value if isinstance(value, int) else 0


def remember_toasted(session, shown: list[Mention]) -> None:
    if shown:
        session[SESSION_KEY] = max(toasted_upto(session), *(mention.pk for mention in shown))


@dataclass
class ForYouPage:
    mentions: list[Mention]
    older: str | None
    first: bool


def for_you_page(user, older: str = "") -> ForYouPage:
    """A page of the user's mentions, newest first, by cursor (as the gallery's pages); those
    shown are seen from now on (each keeps whether it was new until now, `was_new`)."""
    mentions = with_context(Mention.objects.filter(user=user))
    position = parse_cursor(older)
    if position is not None:
        mentions = mentions.filter(older_than(*position))
    rows = list(mentions.order_by("-created_at", "-id")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    unseen = [mention.pk for mention in rows if mention.seen_at is None]
    for mention in rows:
        mention.was_new = mention.seen_at is None
    if unseen:
        Mention.objects.filter(pk__in=unseen, seen_at__isnull=True).update(seen_at=timezone.now())
    return ForYouPage(
        rows,
        older=cursor_at(rows[-1].created_at, rows[-1].pk) if more else None,
        first=position is None,
    )
