"""Lifecycle rules: status words mapped; forgotten jobs and expired files end clearly."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from tests.conftest import run_until_settled
from tests.factories import finished_job, make_job, post_create_form
from videos import lifecycle
from videos.models import MAX_RENDER_TIME, Status, VideoJob, map_upstream_status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("queued", Status.QUEUED),
        ("IN_PROGRESS", Status.IN_PROGRESS),
        ("Processing", Status.IN_PROGRESS),
        ("completed", Status.COMPLETED),
        ("SUCCEEDED", Status.COMPLETED),
        ("failed", Status.FAILED),
        ("cancelled", Status.FAILED),
        ("Expired", Status.FAILED),
        ("rendering-ish", None),
        (None, None),
    ],
)
def test_provider_status_words_map_to_ours(word, status):
    assert map_upstream_status(word) == status


def test_unknown_status_keeps_polling_until_the_render_time_cap_then_fails(member):
    job = make_job(member, status=Status.IN_PROGRESS, upstream_id="video_x")
    lifecycle.apply_upstream(job, {"id": "video_x", "status": "thinking", "progress": 5})
    assert job.status == Status.IN_PROGRESS and job.next_poll_at is not None

    job.submitted_at = timezone.now() - MAX_RENDER_TIME - timedelta(minutes=1)
    lifecycle.apply_upstream(job, {"id": "video_x", "status": "thinking", "progress": 5})
    assert job.status == Status.FAILED
    assert job.error_code == "timeout"
    assert job.next_poll_at is None


def test_failed_status_without_error_object_still_says_why(member):
    job = make_job(member, status=Status.IN_PROGRESS, upstream_id="video_y")
    lifecycle.apply_upstream(job, {"id": "video_y", "status": "CANCELLED"})
    assert job.status == Status.FAILED
    assert job.error_code == "cancelled"
    assert "cancelled" in job.error_message


def test_job_the_provider_forgot_fails_after_a_few_404s(member_client, provider):
    job = post_create_form(member_client, "Soon forgotten")
    assert job.upstream_id
    provider.reset()  # the provider loses every job
    job = run_until_settled(job, timeout=60)
    assert job.status == Status.FAILED
    assert job.error_code == "not_found"
    assert job.poll_failures == lifecycle.MAX_NOT_FOUND
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "The provider no longer knows this job." in page


def test_files_that_expire_before_download_are_given_up_and_the_page_says_so(
    member_client, provider
):
    provider.expires_after = 0
    try:
        job = finished_job(member_client, "Gone too soon")
    finally:
        provider.expires_after = 3600
    assert job.status == Status.COMPLETED
    assert job.fetch_given_up
    assert not job.video
    assert "404" in job.fetch_error
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "could not be saved before the provider deleted them" in page


def test_the_api_key_never_reaches_a_page_or_a_log(
    caplog, member_client, admin, client, provider, settings
):
    caplog.set_level("DEBUG")
    settings.MUXWEB_API_KEY = "sk-distinctive-secret-1234"
    provider_key = provider.api_key
    provider.api_key = settings.MUXWEB_API_KEY
    try:
        job = finished_job(member_client, "Keyed")
    finally:
        provider.api_key = provider_key
    client.force_login(admin)
    pages = [
        reverse("videos-gallery"),
        reverse("videos-detail", args=[job.pk]),
        reverse("admin:videos_videojob_change", args=[job.pk]),
        reverse("admin:django_q_success_changelist"),
        reverse("admin:django_q_failure_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "sk-distinctive-secret-1234" not in response.content.decode(), url
    assert "sk-distinctive-secret-1234" not in caplog.text


def test_polls_respect_the_providers_hint_and_slow_down_while_nothing_moves(member):
    job = make_job(member, status=Status.IN_PROGRESS, upstream_id="video_p")

    def wait_after(progress: int, hint: float | None) -> float:
        lifecycle.apply_upstream(
            job, {"id": "video_p", "status": "in_progress", "progress": progress}, poll_after=hint
        )
        return (job.next_poll_at - timezone.now()).total_seconds()

    assert wait_after(10, hint=7.0) >= 6.9, "never sooner than the provider asks"
    first = wait_after(20, hint=None)
    stalled = [wait_after(20, hint=None) for _ in range(3)]
    assert stalled[0] > first and stalled == sorted(stalled), "waits grow while nothing moves"
    assert wait_after(30, hint=None) < stalled[-1], "and shrink again once it moves"


def test_a_failed_download_is_retried_with_backoff_until_it_succeeds(member_client, settings):
    job = post_create_form(member_client, "Retry me")
    good_key = settings.MUXWEB_API_KEY
    deadline = time.monotonic() + 30
    while job.status != Status.COMPLETED and time.monotonic() < deadline:
        time.sleep(0.3)
        with transaction.atomic():
            lifecycle.poll_jobs([job])  # once it sees the job completed, the download is queued
            settings.MUXWEB_API_KEY = "broken-for-a-moment"  # for when the queue runs it
        settings.MUXWEB_API_KEY = good_key
        job.refresh_from_db()
    job = VideoJob.objects.get(pk=job.pk)
    assert job.fetch_attempts == 1 and not job.video and "401" in job.fetch_error
    assert job.next_poll_at > timezone.now(), "retried later, with backoff"
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Download failed, retrying:" in page

    settings.MUXWEB_API_KEY = good_key
    VideoJob.objects.filter(pk=job.pk).update(next_poll_at=None)
    job = run_until_settled(job)
    assert job.video and job.fetch_attempts == 2 and job.fetch_error == ""
