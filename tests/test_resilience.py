"""Nothing paid twice, nothing lost: repeated posts and tasks, provider errors while polling."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.conftest import run_until_settled
from tests.factories import finished_job, make_job, make_person, post_create_form
from videos import downloads, lifecycle, services, sweep
from videos.models import ModelSpec, Status, VideoJob

pytestmark = pytest.mark.django_db(transaction=True)

FORM = {
    "prompt": "Once only",
    "model": "sora-2",
    "seconds": "4",
    "size": "720x1280",
    "token": "t-123",
}


def test_the_same_form_posted_twice_makes_one_job_and_one_paid_generation(member_client, provider):
    provider.reset()
    first = member_client.post(reverse("videos-create"), FORM)
    second = member_client.post(reverse("videos-create"), FORM, headers={"HX-Request": "true"})
    assert first.status_code == 302 and second.status_code == 200
    assert VideoJob.objects.count() == 1
    assert len(provider.jobs()) == 1


def test_a_submit_task_delivered_twice_submits_once(member, catalogue, provider):
    provider.reset()
    job = services.create_job(
        author=member, spec=catalogue[0], prompt="Twice", seconds=4, size="720x1280"
    )
    # The queue delivers at least once: the same task arrives again, twice.
    lifecycle.submit_job(job.pk)
    lifecycle.submit_job(job.pk)
    assert len(provider.jobs()) == 1
    job.refresh_from_db()
    assert job.upstream_id == provider.jobs()[0]["id"]


def test_a_download_task_delivered_twice_keeps_one_set_of_files(member_client, settings):
    job = finished_job(member_client, "Once only")
    downloads.fetch_assets(job.pk)
    media_dir = settings.MEDIA_ROOT / "videos" / str(job.pk)
    assert sorted(p.name for p in media_dir.iterdir()) == [
        "spritesheet.jpg",
        "thumbnail.webp",
        "video.mp4",
    ]


def test_a_rejected_key_while_polling_backs_off_shows_on_the_job_and_recovers(
    member_client, settings
):
    job = post_create_form(member_client, "Once only")
    good_key = settings.MUXWEB_API_KEY
    settings.MUXWEB_API_KEY = "rotated-away"
    job.next_poll_at = None
    job.save()
    sweep.poll_due_jobs()
    job.refresh_from_db()
    assert job.is_active, "a paid job is not failed for the provider's trouble"
    assert job.error_code == "invalid_api_key" and job.poll_failures == 1
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Provider trouble, retrying:" in page and "rotated-away" not in page

    settings.MUXWEB_API_KEY = good_key
    VideoJob.objects.filter(pk=job.pk).update(next_poll_at=None)
    job = run_until_settled(job)
    assert job.status == Status.COMPLETED and job.video
    assert job.error_code == ""


def test_an_account_in_no_team_group_sees_nothing(client, member, catalogue):
    job = make_job(member, prompt="Team only")
    client.force_login(make_person("stranger"))
    for url in (
        reverse("videos-gallery"),
        reverse("videos-gallery-poll") + f"?ids={job.pk}",
        reverse("videos-detail", args=[job.pk]),
        reverse("videos-media", args=[job.pk, "video"]),
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Team only" not in response.content.decode()


def test_a_viewer_gets_no_create_form_parts(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("videos-compose-options"), {"model": "sora-2"}).status_code == 403


def test_without_javascript_update_choices_redraws_the_form_for_the_model(member_client):
    response = member_client.post(
        reverse("videos-create"),
        {
            "prompt": "Keep me",
            "model": "sora-2-pro",
            "seconds": "8",
            "size": "720x1280",
            "refresh": "1",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert '<option value="1792x1024">' in page
    assert "Keep me</textarea>" in page
    assert '<option value="8" selected>' in page
    assert 'class="field-error"' not in page
    assert VideoJob.objects.count() == 0


def test_catalogue_typos_are_caught_when_an_admin_saves(db):
    spec = ModelSpec(name="gw-model", sizes=[], seconds=["4"], prices={"1280x720": "ten cents"})
    with pytest.raises(ValidationError) as error:
        spec.full_clean()
    assert set(error.value.message_dict) == {"sizes", "seconds", "prices"}
    ModelSpec(
        name="gw-ok", sizes=["1280x720"], seconds=[5, 10], prices={"1280x720": "0.05"}
    ).full_clean()
