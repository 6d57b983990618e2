"""Checking with the provider again a job muxweb gave up on by itself: ten failed polls, the
3-hour cap, a create whose outcome stayed unknown. Asked once, through the real simulator."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Action, ActivityEntry
from tests.factories import make_job
from videos import lifecycle
from videos.models import MAX_RENDER_TIME, Status, VideoJob
from videos.upstream.client import UpstreamError, default_client

pytestmark = pytest.mark.django_db

PROMPT = "A heron fishing at dawn"


def upstream_job(prompt: str = PROMPT) -> str:
    """A job at the provider (the simulator), as muxweb's create would have made it."""
    return default_client().create(prompt=prompt, model="sora-2", seconds=4, size="1280x720")["id"]


def given_up_after_failed_polls(author, upstream_id: str) -> VideoJob:
    job = make_job(author, status=Status.IN_PROGRESS, upstream_id=upstream_id, prompt=PROMPT)
    for _ in range(lifecycle.MAX_POLL_FAILURES):
        lifecycle.record_poll_failure(job, UpstreamError("Bad gateway", status=502))
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.gave_up
    return job


def check_again(client, job: VideoJob):
    return client.post(reverse("videos-check-again", args=[job.pk]), follow=True)


def test_ten_failed_polls_offer_check_again_which_resumes_tracking(client, member, provider):
    job = given_up_after_failed_polls(member, upstream_job())
    client.force_login(member)
    page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Check with the provider again" in page
    assert reverse("videos-check-again", args=[job.pk]) in page

    response = check_again(client, job)
    assert "muxweb follows it again" in response.content.decode()
    job.refresh_from_db()
    assert job.status in (Status.QUEUED, Status.IN_PROGRESS, Status.COMPLETED)
    assert not job.gave_up and job.error_code == "" and job.poll_failures == 0
    assert job.poll_count == 1, "the answer was applied as a poll's"
    assert job.status == Status.COMPLETED or job.next_poll_at is not None
    entry = ActivityEntry.objects.get(action=Action.CHECK_AGAIN)
    assert entry.actor == member and entry.job_id == job.pk
    assert entry.subject["outcome"] == "resumed"
    page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Check with the provider again" not in page


def test_a_job_the_provider_does_not_have_says_so_and_stays_failed(client, member, provider):
    job = given_up_after_failed_polls(member, "video_nowhere_to_be_found")
    client.force_login(member)
    response = check_again(client, job)
    assert "The provider does not have this job." in response.content.decode()
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.gave_up
    assert ActivityEntry.objects.get(action=Action.CHECK_AGAIN).subject["outcome"] == "not_there"


def test_an_unreachable_provider_changes_nothing(client, admin, member, provider):
    job = given_up_after_failed_polls(member, upstream_job())
    provider.inject("retrieve", "503", times=10)
    client.force_login(admin)
    response = check_again(client, job)
    assert "could not be asked" in response.content.decode()
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.gave_up


def test_a_create_whose_outcome_stayed_unknown_is_found_and_adopted(
    client, admin, member, provider
):
    upstream_id = upstream_job("A kettle boiling, its answer lost")
    now = timezone.now()
    job = make_job(
        member,
        status=Status.FAILED,
        prompt="A kettle boiling, its answer lost",
        error_code="submit_outcome_unknown",
        gave_up=True,
        submit_attempts=1,
        submit_sent_at=now,
        created_at=now,
    )
    client.force_login(admin)
    check_again(client, job)
    job.refresh_from_db()
    assert job.upstream_id == upstream_id
    assert job.status != Status.FAILED and not job.gave_up


def test_past_the_render_cap_a_job_still_rendering_stays_given_up(client, member, provider):
    provider.render_seconds = 60
    job = make_job(
        member,
        status=Status.IN_PROGRESS,
        upstream_id=upstream_job(),
        submitted_at=timezone.now() - MAX_RENDER_TIME - timedelta(minutes=1),
    )
    lifecycle.poll_jobs([job])
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "timeout" and job.gave_up
    client.force_login(member)
    response = check_again(client, job)
    assert "still rendering" in response.content.decode()
    job.refresh_from_db()
    assert job.status == Status.FAILED


def test_a_job_the_provider_failed_is_not_checked_again(client, member, provider):
    job = make_job(member, status=Status.FAILED, upstream_id=upstream_job())
    client.force_login(member)
    page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Check with the provider again" not in page
    response = check_again(client, job)
    assert "Only a job muxweb gave up on" in response.content.decode()
    assert not ActivityEntry.objects.filter(action=Action.CHECK_AGAIN).exists()


def test_only_the_author_and_admins_may_check_again(
    client, member, other_member, viewer, admin, provider
):
    job = given_up_after_failed_polls(member, "video_nowhere_to_be_found")
    url = reverse("videos-check-again", args=[job.pk])
    assert client.post(url).status_code == 302  # anonymous: to the login page
    for person in (viewer, other_member):
        client.force_login(person)
        assert client.post(url).status_code == 403
        page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
        assert "Check with the provider again" not in page
    client.force_login(member)
    assert client.get(url).status_code == 405
    for person in (member, admin):
        client.force_login(person)
        assert client.post(url).status_code == 302
    assert ActivityEntry.objects.filter(action=Action.CHECK_AGAIN).count() == 2
