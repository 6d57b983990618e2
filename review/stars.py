"""Stars (a job someone marks for themselves), and a job's title and note (by author or admin).

A star is its owner's alone: anyone in the team stars and unstars, viewers too, and nobody else
sees it. A title and a note are the team's: shown on the card and the job page, found by search
(videos.search), and each change is in the activity log.
"""

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.activity import record
from accounts.models import Action
from accounts.roles import Role, can, role_of
from muxweb.text import without_control_characters
from review.models import Star
from videos.models import VideoJob


def toggle_star(job: VideoJob, *, user) -> bool:
    """Star the job for `user`, or unstar it if it was starred; True if it is starred now.
    Two clicks racing end where the last one left it, never in an error."""
    if not can(user, "view"):
        raise PermissionDenied
    deleted, _kinds = Star.objects.filter(user=user, job=job).delete()
    if deleted:
        return False
    try:
        with transaction.atomic():
            Star.objects.create(user=user, job=job)
    except IntegrityError:
        pass  # starred meanwhile, by the same person in another tab
    return True


def starred_ids(request: HttpRequest) -> set[int]:
    """The ids of the jobs the requesting user starred, asked once per request however many cards
    the page shows (cards come from the gallery, its polls and the create form alike).
    Answered by the star_once index: WHERE user_id = ?."""
    if not hasattr(request, "_starred_ids"):
        user = request.user
        request._starred_ids = (
            set(Star.objects.filter(user=user).values_list("job_id", flat=True))
            if user.is_authenticated
            else set()
        )
    return request._starred_ids


def may_describe(user, job: VideoJob) -> bool:
    """Titles and notes are written by an admin, or by the member who made the job (a viewer
    writes none, not even on jobs made before they became one, as with deleting)."""
    role = role_of(user)
    return role == Role.ADMIN or (role == Role.MEMBER and job.author_id == user.pk)


class DescribeForm(forms.Form):
    title = forms.CharField(
        label=_("Title"),
        max_length=VideoJob._meta.get_field("title").max_length,
        required=False,
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=VideoJob._meta.get_field("note").max_length,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_title(self) -> str:
        # One line: no control characters, newlines included.
        return " ".join(without_control_characters(self.cleaned_data["title"]).split())

    def clean_note(self) -> str:
        lines = without_control_characters(self.cleaned_data["note"]).split("\n")
        return "\n".join(line.rstrip() for line in lines).strip()


def describe(job: VideoJob, *, actor, title: str, note: str) -> bool:
    """Give the job a title and a note (either may be empty); False if nothing changed. Written
    with its activity entry, which keeps the old and new text."""
    if not may_describe(actor, job):
        raise PermissionDenied
    if (title, note) == (job.title, job.note):
        return False
    before = {"old_title": job.title, "old_note": job.note}
    with transaction.atomic():
        job.title, job.note, job.updated_at = title, note, timezone.now()
        # The card changes: updated_at tells the gallery's polls to bring it again.
        VideoJob.objects.filter(pk=job.pk).update(title=title, note=note, updated_at=job.updated_at)
        record(actor, Action.DESCRIBE, job=job, title=title, note=note, **before)
    return True
