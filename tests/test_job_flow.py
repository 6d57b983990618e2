"""A job followed from the form POST to cached files on disk, against the simulator over HTTP."""

from pathlib import Path

import av
import pytest
from django.urls import reverse
from PIL import Image

from tests.conftest import run_until_settled, wait_for
from tests.factories import finished_job, post_create_form
from videos import sweep
from videos.models import Status

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_goes_from_form_to_saved_video_thumbnail_and_spritesheet(
    member_client, member, provider, settings
):
    job = post_create_form(member_client, "A lighthouse at dusk, waves crashing")
    assert job.upstream_id, "the submit task ran and the provider gave an id"
    assert job.status in (Status.QUEUED, Status.IN_PROGRESS)
    assert provider.job(job.upstream_id)["prompt"] == job.prompt

    job = run_until_settled(job)

    assert job.status == Status.COMPLETED
    assert job.progress == 100
    assert job.author == member
    assert job.completed_at and job.expires_at and job.assets_fetched_at
    assert job.cost is not None and str(job.cost) == "0.40"
    media_root = Path(settings.MEDIA_ROOT)
    video = media_root / job.video.name
    assert video.is_file() and video.suffix == ".mp4"
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert abs(float(container.duration / av.time_base) - 4) < 0.2
    with Image.open(media_root / job.thumbnail.name) as thumb:
        assert thumb.format == "WEBP"
    with Image.open(media_root / job.spritesheet.name) as sheet:
        assert sheet.format == "JPEG"
    assert not list(media_root.rglob("*.part")), "no temporary download is left behind"


def test_completed_job_page_plays_and_offers_downloads(member_client, member):
    job = finished_job(member_client, "Paper boats racing down a gutter")
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    video_url = reverse("videos-media", args=[job.pk, "video"])
    assert f'src="{video_url}"' in page
    assert f"{video_url}?download=1" in page
    assert reverse("videos-media", args=[job.pk, "spritesheet"]) + "?download=1" in page
    assert job.upstream_id in page
    assert "<dd>mia</dd>" in page
    # The job's own poll; the menu's mention notifier (review.mentions) asks on every page.
    assert '<div id="job-status" class="job-page">' in page, "a finished job's page stops polling"


def test_relay_dialect_processing_status_is_followed_to_completion(member_client, provider):
    provider.dialect = "relay"
    job = post_create_form(member_client, "A relay-rendered hummingbird")
    seen = set()

    def completed() -> bool:
        sweep.poll_due_jobs()
        job.refresh_from_db()
        seen.add(job.status)
        return job.status in (Status.COMPLETED, Status.FAILED)

    wait_for(completed, every=0.1)
    assert job.status == Status.COMPLETED
    assert Status.IN_PROGRESS in seen, "'processing' maps to in progress"
    assert run_until_settled(job).video


def test_failed_job_shows_provider_code_and_message_on_card_and_page(member_client):
    job = finished_job(member_client, "Something [fail] the moderator will block")
    assert job.status == Status.FAILED
    assert job.error_code == "moderation_blocked"
    assert job.error_message
    for url in (reverse("videos-gallery"), reverse("videos-detail", args=[job.pk])):
        page = member_client.get(url).content.decode()
        assert "moderation_blocked" in page
        assert job.error_message[:30] in page


def test_job_the_provider_rejects_at_submit_fails_with_its_error(member_client, settings):
    settings.MUXWEB_API_KEY = "wrong-key"
    job = post_create_form(member_client, "Rejected for a bad key")
    assert job.status == Status.FAILED
    assert job.error_code == "invalid_api_key"
    assert job.error_message
    assert "wrong-key" not in job.error_message


def test_completed_job_keeps_its_video_after_the_provider_forgets_it(member_client, provider):
    job = finished_job(member_client, "Kept forever")
    provider.reset()  # the provider deleted everything, as it does after expiry
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert 'class="player"' in page
    response = member_client.get(
        reverse("videos-media", args=[job.pk, "video"]), headers={"Range": "bytes=0-15"}
    )
    assert response.status_code == 206
    assert b"".join(response.streaming_content)[4:8] == b"ftyp"


def test_job_page_poll_answers_204_until_the_job_changes(
    member_client, django_assert_max_num_queries
):
    job = post_create_form(member_client, "Watched closely")
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    poll_url = (
        page.split('id="job-status" class="job-page" hx-get="')[1]
        .split('"')[0]
        .replace("&amp;", "&")
    )
    headers = {"HX-Request": "true", "HX-Target": "job-status"}
    with django_assert_max_num_queries(6):
        assert member_client.get(poll_url, headers=headers).status_code == 204
    job = run_until_settled(job)
    response = member_client.get(poll_url, headers=headers)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div id="job-status"')
    assert "hx-trigger" not in fragment, "the finished job's page stops polling"
