"""Approvals: members and admins set a job's review state with an optional comment, in the same
transaction as its activity entry; viewers may not; a badge on cards, and a gallery filter."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import Action, ActivityEntry
from review.approvals import set_review
from review.models import Comment
from tests.factories import make_job, make_person
from videos.models import ReviewState, VideoJob

pytestmark = pytest.mark.django_db


def test_a_member_approves_with_a_comment(member, other_member):
    job = make_job(member, prompt="Waves at dusk")
    set_review(job, ReviewState.APPROVED, actor=other_member, comment="Ship it")
    job = VideoJob.objects.get(pk=job.pk)
    assert job.review_state == "approved" and job.reviewed_by == other_member
    assert job.reviewed_at is not None
    assert job.comment_count == 1
    comment = Comment.objects.get()
    assert (comment.job, comment.author, comment.body) == (job, other_member, "Ship it")
    entry = ActivityEntry.objects.get(action=Action.REVIEW)
    assert entry.actor == other_member and entry.job_id == job.pk
    assert entry.subject["state"] == "approved" and entry.subject["comment"] == "Ship it"
    assert entry.subject["prompt"] == "Waves at dusk"


def test_a_review_without_a_comment_adds_none(member, admin):
    job = make_job(member)
    set_review(job, ReviewState.REJECTED, actor=admin)
    set_review(job, ReviewState.NONE, actor=admin)
    assert not Comment.objects.exists()
    assert VideoJob.objects.get(pk=job.pk).review_state == ""
    states = ActivityEntry.objects.filter(action=Action.REVIEW).values_list("subject", flat=True)
    assert sorted(s["state"] for s in states) == ["", "rejected"]


def test_viewers_may_not_review(member, viewer):
    job = make_job(member)
    with pytest.raises(PermissionDenied):
        set_review(job, ReviewState.APPROVED, actor=viewer)
    with pytest.raises(ValueError):
        set_review(job, "maybe", actor=member)
    assert not ActivityEntry.objects.filter(action=Action.REVIEW).exists()


def test_a_failed_review_writes_nothing(member, monkeypatch):
    job = make_job(member)

    def broken(*args, **kwargs):
        raise RuntimeError("the comment could not be written")

    monkeypatch.setattr("review.approvals.add_comment", broken)
    with pytest.raises(RuntimeError):
        set_review(job, ReviewState.APPROVED, actor=member, comment="Ship it")
    assert VideoJob.objects.get(pk=job.pk).review_state == ""
    assert not ActivityEntry.objects.filter(action=Action.REVIEW).exists()


@pytest.mark.parametrize(("role", "status"), [("member", 302), ("admin", 302), ("viewer", 403),
                                               (None, 403)])  # fmt: skip
def test_the_review_form_is_for_members_and_admins(client, member, role, status):
    job = make_job(member)
    person = make_person("rae", role)
    client.force_login(person)
    url = reverse("review-set", args=[job.pk])
    answer = client.post(url, {"state": "changes_requested", "comment": ""})
    assert answer.status_code == status
    reviewed = VideoJob.objects.get(pk=job.pk).review_state
    assert reviewed == ("changes_requested" if status == 302 else "")
    if role is not None:
        page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
        assert ('class="approval-form"' in page) is (status == 302)


def test_the_review_form_answers_htmx_with_its_fragment(member_client, member):
    job = make_job(member)
    url = reverse("review-set", args=[job.pk])
    answer = member_client.post(
        url, {"state": "approved", "comment": "Nice"}, headers={"HX-Request": "true"}
    )
    html = answer.content.decode()
    assert html.lstrip().startswith('<div id="job-approval"')
    assert '<span class="review-badge review-approved">Approved</span>' in html
    assert "by mia" in html
    assert member_client.post(url, {"state": "maybe"}).status_code == 400
    assert member_client.post(url, {"comment": "no state"}).status_code == 400
    assert member_client.get(url).status_code == 405


def test_cards_show_the_badge_and_the_gallery_filters_by_review(member_client, member):
    approved, rejected, open_ = make_job(member), make_job(member), make_job(member)
    set_review(approved, ReviewState.APPROVED, actor=member)
    set_review(rejected, ReviewState.REJECTED, actor=member)
    gallery = reverse("videos-gallery")

    def ids(**params) -> set[int]:
        return {job.pk for job in member_client.get(gallery, params).context["jobs"]}

    assert ids(review="approved") == {approved.pk}
    assert ids(review="rejected") == {rejected.pk}
    assert ids(review="none") == {open_.pk}
    assert ids(review="changes_requested") == set()
    assert ids(review="bogus") == {approved.pk, rejected.pk, open_.pk}
    html = member_client.get(gallery).content.decode()
    assert '<span class="review-badge review-approved">Approved</span>' in html
    assert '<span class="review-badge review-rejected">Rejected</span>' in html
    selected = member_client.get(gallery, {"review": "rejected"}).content.decode()
    assert '<option value="rejected" selected>' in selected


def test_the_activity_log_reads_reviews_and_titles(client, member, admin):
    job = make_job(member, prompt="Waves at dusk")
    set_review(job, ReviewState.CHANGES_REQUESTED, actor=admin, comment="Slower pan")
    client.force_login(admin)
    client.post(reverse("review-describe", args=[job.pk]), {"title": "Take 3", "note": "x"})
    html = client.get(reverse("accounts-activity")).content.decode()
    assert "Reviewed a video" in html and "Changes requested" in html and "Slower pan" in html
    assert "Changed a title or note" in html and "Take 3" in html and "note changed" in html
