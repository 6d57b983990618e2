"""Share links: a read-only page of one job or one board for people without an account.

A link's token is shown once, when the link is made; only its SHA-256 is kept, and a visitor's
token is found by looking that hash up (an index lookup compares no secret byte by byte). A link
is valid until it expires (at most MUXWEB_SHARE_MAX_DAYS) or is revoked; a password, when it has
one, is kept as Django keeps account passwords. Bad tokens and wrong passwords are counted per
client address: MISS_LIMIT misses within MISS_WINDOW_SECONDS and that address is refused every
share page until the window ends. Every view is in the activity log, with a hash of the
visitor's address rather than the address.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.activity import record
from accounts.models import Action
from accounts.roles import Role, can, role_of
from muxweb.security import client_address
from review.comments import add_comment
from review.models import Board, BoardItem, Comment, ShareLink
from videos.models import ReviewState, VideoJob

DEFAULT_DAYS = 7
# Guessing: this many bad tokens or wrong passwords from one address within the window, and that
# address gets 429 on every share page until the window (counted from its first miss) ends.
MISS_LIMIT = 20
MISS_WINDOW_SECONDS = 10 * 60
# token_urlsafe(32) gives 43 characters; anything much longer is no token of ours.
MAX_TOKEN_LENGTH = 100
# The session key listing the links whose password this browser has given.
UNLOCKED = "share_unlocked"
MAX_UNLOCKED = 50
GUEST_NAME_MAX = 80
COMMENT_MAX = 2000
GUEST_REVIEW_STATES = (
    ReviewState.APPROVED,
    ReviewState.CHANGES_REQUESTED,
    ReviewState.REJECTED,
)


class LinkState(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Found:
    link: ShareLink
    state: LinkState


def max_days() -> int:
    return settings.MUXWEB_SHARE_MAX_DAYS


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(
    job: VideoJob | None = None,
    board: Board | None = None,
    *,
    actor,
    days: int = DEFAULT_DAYS,
    password: str = "",
    show_prompt: bool = True,
    show_comments: bool = False,
    allow_comments: bool = False,
    allow_approval: bool = False,
) -> tuple[ShareLink, str]:
    """A new link to `job` or `board` (exactly one), valid for `days` (at most
    MUXWEB_SHARE_MAX_DAYS), and its token: the only time the token exists outside the visitor's
    address bar. Members and admins only; a job in the trash is not shared."""
    if (job is None) == (board is None):
        raise ValueError("a share link is to one job or one board")
    if not can(actor, "share"):
        raise PermissionDenied
    if job is not None and job.trashed_at is not None:
        raise ValueError("a job in the trash is not shared")
    days = min(max(int(days), 1), max_days())
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        link = ShareLink.objects.create(
            token_hash=hash_token(token),
            job=job,
            board=board,
            created_by=actor,
            created_at=now,
            expires_at=now + timedelta(days=days),
            password_hash=make_password(password) if password else "",
            show_prompt=show_prompt,
            show_comments=show_comments,
            allow_comments=allow_comments,
            allow_approval=allow_approval,
        )
        record(actor, Action.SHARE_CREATE, job=job, **link_details(link))
    return link, token


def link_details(link: ShareLink) -> dict:
    """What an activity entry keeps of a link: enough to tell links apart, never the token."""
    details = {
        "share_link": link.pk,
        "expires": link.expires_at.isoformat(),
        "password": bool(link.password_hash),
    }
    if link.board_id:
        details["board"] = link.board_id
        details["board_name"] = link.board.name
    return details


def may_revoke(user, link: ShareLink) -> bool:
    """Its maker, or an admin; and only while the maker may still share."""
    if not can(user, "share"):
        return False
    return role_of(user) == Role.ADMIN or link.created_by_id == user.pk


def revoke(link: ShareLink, *, actor) -> bool:
    """Ends the link now; False when it was revoked already."""
    if not may_revoke(actor, link):
        raise PermissionDenied
    now = timezone.now()
    with transaction.atomic():
        changed = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if changed:
            link.revoked_at = now
            record(actor, Action.SHARE_REVOKE, job=link.job, **link_details(link))
    return bool(changed)


def find_link(token: str) -> Found | None:
    """The link with this token and whether it still works, or None for no such link."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    link = (
        # The job's author too: a view's activity entry keeps it in its snapshot.
        ShareLink.objects.select_related("job__author", "board")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is None:
        return None
    if link.revoked_at is not None:
        return Found(link, LinkState.REVOKED)
    if link.expires_at <= timezone.now():
        return Found(link, LinkState.EXPIRED)
    if link.job_id and link.job.trashed_at is not None:
        # Moved to the trash: withdrawn from the guest too, back if the job is restored in time.
        return Found(link, LinkState.REVOKED)
    return Found(link, LinkState.VALID)


def links_of(*, job: VideoJob | None = None, board: Board | None = None) -> QuerySet[ShareLink]:
    """A job's or a board's links, the newest first."""
    links = ShareLink.objects.select_related("created_by")
    links = links.filter(job=job) if job is not None else links.filter(board=board)
    return links.order_by("-created_at", "-id")


def is_valid(link: ShareLink) -> bool:
    return link.revoked_at is None and link.expires_at > timezone.now()


# Visitors


def visitor_hash(request: HttpRequest) -> str:
    """The visitor's address (as login throttling counts it), keyed with the secret key: an
    entry tells views from one address apart without keeping the address."""
    address = client_address(request) or "unknown"
    return salted_hmac("review.sharing.visitor", address).hexdigest()[:16]


def _miss_key(request: HttpRequest) -> str:
    return f"share-misses:{visitor_hash(request)}"


def too_many_misses(request: HttpRequest) -> bool:
    return (cache.get(_miss_key(request)) or 0) >= MISS_LIMIT


def count_miss(request: HttpRequest) -> None:
    """A bad token or a wrong password from this visitor's address."""
    key = _miss_key(request)
    # add() starts the window only if none is open; incr() is atomic on Redis and locmem.
    cache.add(key, 0, MISS_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # the window ended between the two calls
        cache.add(key, 1, MISS_WINDOW_SECONDS)


def needs_password(request: HttpRequest, link: ShareLink) -> bool:
    return bool(link.password_hash) and link.pk not in request.session.get(UNLOCKED, [])


def unlock(request: HttpRequest, link: ShareLink, password: str) -> bool:
    """Whether `password` opens the link; if so, this browser's session remembers it. A wrong
    one counts as a miss."""
    if not check_password(password, link.password_hash):
        count_miss(request)
        return False
    # A fresh session key once the visitor holds something worth stealing.
    request.session.cycle_key()
    # The newest links opened in this browser; an older one asks for its password again.
    request.session[UNLOCKED] = [*request.session.get(UNLOCKED, []), link.pk][-MAX_UNLOCKED:]
    return True


def record_view(link: ShareLink, request: HttpRequest, job: VideoJob | None = None) -> None:
    """One more view of the link, in its count and in the activity log (no actor: a guest)."""
    now = timezone.now()
    with transaction.atomic():
        ShareLink.objects.filter(pk=link.pk).update(
            view_count=F("view_count") + 1, last_viewed_at=now
        )
        details = {"share_link": link.pk, "visitor": visitor_hash(request)}
        if link.board_id:
            details["board"] = link.board_id
        record(None, Action.SHARE_VIEW, job=job or link.job, **details)


# What a link shows


def board_jobs(link: ShareLink) -> list[VideoJob]:
    """The board's jobs in the board's order, leaving out those in the trash."""
    items = (
        BoardItem.objects.filter(board_id=link.board_id, job__trashed_at__isnull=True)
        .select_related("job")
        .order_by("position", "id")
    )
    return [item.job for item in items]


def job_of(link: ShareLink, job_id: int) -> VideoJob | None:
    """The job `job_id` if the link shows it: the link's own job, or a job on its board that is
    not in the trash."""
    if link.job_id:
        return link.job if link.job_id == job_id else None
    item = (
        BoardItem.objects.filter(
            board_id=link.board_id, job_id=job_id, job__trashed_at__isnull=True
        )
        .select_related("job__author")
        .first()
    )
    return item.job if item else None


def comments_of(job: VideoJob) -> list[Comment]:
    return list(
        Comment.objects.filter(job=job).select_related("author").order_by("created_at", "id")
    )


# What a guest may do. The comment is written here rather than through the team's comment
# service so that share links stand alone; both create the same Comment row.


def add_guest_comment(link: ShareLink, job: VideoJob, *, name: str, body: str) -> Comment:
    """A guest's comment through a link that allows comments, under the name they typed."""
    if not link.allow_comments:
        raise PermissionDenied
    return add_comment(job, body, guest_name=name[:GUEST_NAME_MAX], share_link=link)


def set_guest_review(link: ShareLink, job: VideoJob, *, name: str, state: str) -> None:
    """A guest's approval, request for changes or rejection of the job, under the name they
    typed."""
    if not link.allow_approval:
        raise PermissionDenied
    if state not in GUEST_REVIEW_STATES:
        raise ValueError(state)
    now = timezone.now()
    with transaction.atomic():
        VideoJob.objects.filter(pk=job.pk).update(
            review_state=state, reviewed_by=None, reviewed_at=now
        )
        job.review_state, job.reviewed_by, job.reviewed_at = state, None, now
        record(
            None,
            Action.REVIEW,
            job=job,
            state=state,
            guest=name[:GUEST_NAME_MAX],
            share_link=link.pk,
        )
