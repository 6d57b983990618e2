"""Approvals: where the team's review of a job stands (Approved, Changes requested, Rejected), set
by members and admins with an optional comment, shown as a badge on cards and in the activity log.
"""

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.activity import record
from accounts.models import Action
from accounts.roles import Role, role_of
from muxweb.text import without_control_characters
from review.comments import add_comment
from videos.models import ReviewState, VideoJob

# The longest comment a review takes along.
MAX_COMMENT = 5000


def may_review(user) -> bool:
    """Members and admins review; viewers watch."""
    return role_of(user) in (Role.ADMIN, Role.MEMBER)


class ReviewForm(forms.Form):
    state = forms.ChoiceField(label=_("Review"), choices=ReviewState.choices, required=False)
    comment = forms.CharField(
        label=_("Comment (optional)"),
        max_length=MAX_COMMENT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_comment(self) -> str:
        return without_control_characters(self.cleaned_data["comment"]).strip()


def set_review(job: VideoJob, state: str, *, actor, comment: str = "") -> None:
    """Set the job's review state ("" clears it), by `actor`, now. The activity entry and the
    comment, if any, are written in the same transaction."""
    if not may_review(actor):
        raise PermissionDenied
    state = ReviewState(state)
    now = timezone.now()
    with transaction.atomic():
        job.review_state, job.reviewed_by, job.reviewed_at = state, actor, now
        job.updated_at = now  # the card's badge changes: the gallery's polls bring it again
        VideoJob.objects.filter(pk=job.pk).update(
            review_state=state, reviewed_by=actor, reviewed_at=now, updated_at=now
        )
        record(actor, Action.REVIEW, job=job, state=state.value, comment=comment)
        if comment:
            add_comment(job, comment, author=actor)
