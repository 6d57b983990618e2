"""Choosing among generations: stars, comments (with mentions), boards and share links.

A job's title, note and review state are the job's own (videos.VideoJob): the gallery filters and
searches them with the rest of the job. What belongs to a person (a star, a mention to read) or
to several jobs (a board, a link to a board) lives here.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from videos.models import VideoJob


class Star(models.Model):
    """A job someone marked for themselves: the "Starred" filter is theirs alone."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stars"
    )
    job = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="stars")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "job"], name="star_once")]

    def __str__(self) -> str:
        return f"{self.user_id} ★ {self.job_id}"


class Comment(models.Model):
    """A remark on a job, by a teammate or by a guest through a share link that allows it;
    optionally pinned to a moment of the video."""

    job = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="comments",
    )
    # A guest's name as they typed it (through a share link); empty for a teammate.
    guest_name = models.CharField(_("name"), max_length=80, blank=True)
    share_link = models.ForeignKey(
        "ShareLink", null=True, blank=True, on_delete=models.SET_NULL, related_name="comments"
    )
    body = models.TextField(_("comment"))
    # The moment of the video it is about, in seconds; None for the whole job.
    at_seconds = models.DecimalField(_("at"), max_digits=8, decimal_places=3, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # A job page's comments in order: WHERE job_id = ? ORDER BY created_at, id.
            models.Index(fields=["job", "created_at", "id"], name="comment_job_created"),
        ]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.job_id}"


class Mention(models.Model):
    """An @username in a comment: the person's "For you" list and a toast."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions"
    )
    created_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comment", "user"], name="mention_once"),
        ]
        indexes = [
            # "For you", newest first: WHERE user_id = ? ORDER BY created_at DESC, id DESC.
            models.Index(fields=["user", "created_at", "id"], name="mention_user_created"),
        ]

    def __str__(self) -> str:
        return f"@{self.user_id} in comment {self.comment_id}"


class Board(models.Model):
    """A named collection of jobs (a client, a campaign, a shot list), in its own order."""

    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="boards"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # The boards list: ORDER BY name, id after a cursor (name, id), a page at a time.
            models.Index(fields=["name", "id"], name="board_name"),
        ]

    def __str__(self) -> str:
        return self.name


class BoardItem(models.Model):
    """A job on a board, at its place in the board's order (smaller first)."""

    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="items")
    job = models.ForeignKey(VideoJob, on_delete=models.CASCADE, related_name="board_items")
    position = models.IntegerField(default=0)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["board", "job"], name="board_item_once")]
        indexes = [
            # A board's page in its order: WHERE board_id = ? ORDER BY position, id.
            models.Index(fields=["board", "position", "id"], name="board_item_order"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} on board {self.board_id}"


class ShareLink(models.Model):
    """A read-only link for people without an account, to one job or one board. Only a hash of
    its token is kept: the token itself is shown once, when the link is made."""

    token_hash = models.CharField(max_length=64, unique=True)
    job = models.ForeignKey(
        VideoJob, null=True, blank=True, on_delete=models.CASCADE, related_name="share_links"
    )
    board = models.ForeignKey(
        Board, null=True, blank=True, on_delete=models.CASCADE, related_name="share_links"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    # Django's password hash, or empty for a link without a password.
    password_hash = models.CharField(max_length=200, blank=True)
    show_prompt = models.BooleanField(_("show the prompt"), default=True)
    show_comments = models.BooleanField(_("show the comments"), default=False)
    allow_comments = models.BooleanField(_("guests may comment"), default=False)
    allow_approval = models.BooleanField(_("guests may approve"), default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(job__isnull=False, board__isnull=True)
                | models.Q(job__isnull=True, board__isnull=False),
                name="share_link_one_target",
            ),
        ]

    def __str__(self) -> str:
        return f"share link {self.pk}"
