"""Comments on a job: writing, editing and deleting them, and the @mentions they carry.

Each change takes the actor, keeps the job's comment count (what the cards show, read with no
query) in step with an F() update, and writes its activity entry in the same transaction.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.activity import record
from accounts.models import Action
from accounts.roles import GROUPS, Role, can, role_of
from muxweb.text import without_control_characters
from review.models import Comment, Mention, ShareLink
from videos.models import VideoJob

MAX_BODY = 4000
# The most people one comment notifies: a pasted list of the whole team is not a mention.
MAX_MENTIONS = 20
# The longest video a pin may point into, in seconds (the column holds 99999.999).
MAX_AT_SECONDS = Decimal("99999.999")
# "@name" after a space, a bracket or the start, as Django usernames are spelt (letters, digits
# and @.+-_); a full stop or a hyphen ending a sentence is not part of the name.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]+)")


class CommentError(ValueError):
    """A comment the rules refuse; `message` says why, in the reader's language."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def may_comment(user) -> bool:
    """Everyone in the team comments: admins, members and viewers."""
    return can(user, "view")


def may_change(user, comment: Comment) -> bool:
    """Only its author edits a comment: a comment says what they wrote."""
    return bool(user.is_authenticated and comment.author_id == user.pk and may_comment(user))


def may_delete(user, comment: Comment) -> bool:
    """Its author, or an admin (a guest's comment, or a teammate's that should not stay)."""
    return may_change(user, comment) or role_of(user) == Role.ADMIN


def clean_body(body: str) -> str:
    """The comment as kept: no control characters, trimmed; refused when empty or too long."""
    text = without_control_characters(body or "").strip()
    if not text:
        raise CommentError(_("Write something first."))
    if len(text) > MAX_BODY:
        raise CommentError(_("A comment holds at most %(limit)s characters.") % {"limit": MAX_BODY})
    return text


def clean_at(value) -> Decimal | None:
    """A pin's moment in seconds (three decimals), None for no pin or anything that is not one."""
    if value in (None, ""):
        return None
    try:
        seconds = Decimal(str(value).strip()).quantize(Decimal("0.001"))
    except (InvalidOperation, ValueError):
        return None
    if not seconds.is_finite() or seconds < 0 or seconds > MAX_AT_SECONDS:
        return None
    return seconds


def mentioned_people(body: str) -> list:
    """The active team members named as @username in `body` (any case), once each: one query.
    A deactivated account, an account outside the team or a name nobody has notifies nobody."""
    names = {name.rstrip(".-").lower() for name in MENTION.findall(body)}
    names.discard("")
    if not names:
        return []
    User = get_user_model()
    in_role_group = User.groups.through.objects.filter(
        user_id=OuterRef("pk"), group__name__in=GROUPS.values()
    )
    matches = Q()
    for name in sorted(names)[:MAX_MENTIONS]:
        matches |= Q(username__iexact=name)
    people = User.objects.filter(matches, is_active=True).filter(
        Q(is_superuser=True) | Exists(in_role_group)
    )
    return list(people.order_by("pk"))


def add_comment(
    job: VideoJob,
    body: str,
    *,
    author=None,
    guest_name: str = "",
    share_link: ShareLink | None = None,
    at_seconds=None,
) -> Comment:
    """A new comment on `job` by a teammate (`author`) or a guest (`guest_name`, through
    `share_link`), pinned to `at_seconds` when given. Notifies the people it mentions (not its
    author), counts it on the job and records it."""
    text = clean_body(body)
    guest = without_control_characters(guest_name or "").strip()[:80]
    if author is None and not guest:
        raise CommentError(_("Say who you are."))
    if author is not None:
        guest = ""
    with transaction.atomic():
        comment = Comment.objects.create(
            job=job,
            author=author,
            guest_name=guest,
            share_link=share_link,
            body=text,
            at_seconds=clean_at(at_seconds),
        )
        # A guest's @name notifies nobody: a share link must not let strangers page the team.
        people = [] if author is None else [p for p in mentioned_people(text) if p.pk != author.pk]
        Mention.objects.bulk_create(
            [
                Mention(comment=comment, user=person, created_at=comment.created_at)
                for person in people
            ]
        )
        VideoJob.objects.filter(pk=job.pk).update(comment_count=F("comment_count") + 1)
        record(
            author,
            Action.COMMENT,
            job=job,
            comment=comment.pk,
            at_seconds=comment.at_seconds,
            guest=guest,
            mentions=[person.get_username() for person in people],
            text=text[:200],
        )
    return comment


def edit_comment(comment: Comment, body: str, *, actor) -> Comment:
    """The author's new wording. People it now mentions for the first time are notified; the
    comment shows it was edited."""
    if not may_change(actor, comment):
        raise PermissionError
    text = clean_body(body)
    if text == comment.body:
        return comment
    with transaction.atomic():
        comment.body = text
        comment.edited_at = timezone.now()
        comment.save(update_fields=["body", "edited_at"])
        known = set(comment.mentions.values_list("user_id", flat=True))
        Mention.objects.bulk_create(
            [
                Mention(comment=comment, user=person)
                for person in mentioned_people(text)
                if person.pk != actor.pk and person.pk not in known
            ]
        )
    return comment


def delete_comment(comment: Comment, *, actor) -> bool:
    """Remove the comment and its mentions. False if it was already gone (a second click)."""
    if not may_delete(actor, comment):
        raise PermissionError
    with transaction.atomic():
        deleted, _kinds = Comment.objects.filter(pk=comment.pk).delete()
        if not deleted:
            return False
        VideoJob.objects.filter(pk=comment.job_id, comment_count__gt=0).update(
            comment_count=F("comment_count") - 1
        )
        record(
            actor,
            Action.COMMENT_DELETE,
            job=comment.job,
            comment=comment.pk,
            by=comment.author.get_username() if comment.author else comment.guest_name,
            text=comment.body[:200],
        )
    return True


def comments_of(job: VideoJob) -> QuerySet[Comment]:
    """A job's comments, oldest first, each with its author: one query however many
    (the comment_job_created index)."""
    return Comment.objects.filter(job=job).select_related("author").order_by("created_at", "id")


def timecode(seconds: Decimal | float | None) -> str:
    """A pin as people read it: "0:03.2", "12:04.0", "1:02:03.5"."""
    if seconds is None:
        return ""
    tenths = int((Decimal(seconds) * 10).to_integral_value())
    minutes, rest = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    second, tenth = divmod(rest, 10)
    if hours:
        return f"{hours}:{minutes:02d}:{second:02d}.{tenth}"
    return f"{minutes}:{second:02d}.{tenth}"
