"""Remix, retry, duplicate, move to trash and delete, over real HTTP against the simulator."""

import pytest
from django.urls import reverse

from tests.conftest import run_until_settled
from tests.factories import finished_job, make_job, post_create_form
from videos import downloads, lifecycle, services
from videos.models import ModelSpec, Status, VideoJob

pytestmark = pytest.mark.django_db(transaction=True)


def test_remix_of_a_completed_job_is_made_upstream_from_its_parent_and_shown_as_a_tree(
    member_client, provider
):
    parent = finished_job(member_client, "A lighthouse by day")
    response = member_client.post(
        reverse("videos-remix", args=[parent.pk]), {"prompt": "The same, at night"}
    )
    remix = VideoJob.objects.get(remix_of=parent)
    assert response.status_code == 302 and response["Location"] == reverse(
        "videos-detail", args=[remix.pk]
    )
    assert (remix.model, remix.seconds, remix.size) == (parent.model, parent.seconds, parent.size)
    assert provider.job(remix.upstream_id)["remixed_from_video_id"] == parent.upstream_id

    remix = run_until_settled(remix)
    assert remix.status == Status.COMPLETED and remix.video
    page = member_client.get(reverse("videos-detail", args=[parent.pk])).content.decode()
    assert f'href="{reverse("videos-detail", args=[remix.pk])}"' in page
    assert 'class="depth-1"' in page
    gallery = member_client.get(reverse("videos-gallery")).content.decode()
    assert gallery.count('class="badge badge-remix"') == 1


def test_remix_needs_a_prompt_and_a_completed_parent(member_client):
    failed = finished_job(member_client, "Blocked [fail]")
    response = member_client.post(reverse("videos-remix", args=[failed.pk]), {"prompt": "again"})
    assert response.status_code == 302
    done = finished_job(member_client, "A kite")
    response = member_client.post(reverse("videos-remix", args=[done.pk]), {"prompt": ""})
    assert response.status_code == 200
    assert 'id="error-remix-prompt"' in response.content.decode()
    assert not VideoJob.objects.filter(remix_of__isnull=False).exists()


def test_failed_job_is_resubmitted_with_the_same_parameters_in_one_click(member_client, member):
    failed = finished_job(member_client, "Will it pass [fail]")
    response = member_client.post(reverse("videos-retry", args=[failed.pk]))
    again = VideoJob.objects.exclude(pk=failed.pk).get()
    assert response["Location"] == reverse("videos-detail", args=[again.pk])
    assert (again.prompt, again.model, again.seconds, again.size) == (
        failed.prompt, failed.model, failed.seconds, failed.size,
    )  # fmt: skip
    assert again.upstream_id and again.upstream_id != failed.upstream_id
    assert again.author == member


def test_any_job_opens_as_a_prefilled_create_form(member_client, member):
    job = make_job(
        member, prompt="Tides & <b>moons</b>", model="sora-2-pro", seconds=12, size="1792x1024"
    )
    # ?from= is how the Duplicate link named the job before the date filter took it.
    for query in ({"duplicate": job.pk}, {"from": job.pk}):
        page = member_client.get(reverse("videos-gallery"), query).content.decode()
        assert "Tides &amp; &lt;b&gt;moons&lt;/b&gt;</textarea>" in page
        assert '<option value="sora-2-pro" selected>' in page
        assert '<option value="1792x1024" selected>' in page
        assert '<option value="12" selected>' in page


def test_author_moves_a_job_to_the_trash_keeping_its_files_and_deleting_it_upstream(
    member_client, provider, settings
):
    job = finished_job(member_client, "Short-lived")
    media_dir = settings.MEDIA_ROOT / "videos" / str(job.pk)
    assert media_dir.is_dir()
    confirm = member_client.get(reverse("videos-delete", args=[job.pk]))
    assert "Move this video to the trash?" in confirm.content.decode()
    response = member_client.post(reverse("videos-delete", args=[job.pk]))
    assert response["Location"] == reverse("videos-gallery")
    assert VideoJob.objects.trashed().filter(pk=job.pk).exists()
    assert media_dir.is_dir()
    with pytest.raises(KeyError):
        provider.job(job.upstream_id)


def test_only_the_author_or_an_admin_may_move_to_trash(
    member_client, client, other_member, viewer, admin
):
    job = finished_job(member_client, "Mine")
    url = reverse("videos-delete", args=[job.pk])
    for outsider in (other_member, viewer):
        client.force_login(outsider)
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
        assert (
            "videos-delete"
            not in client.get(reverse("videos-detail", args=[job.pk])).content.decode()
        )
    assert VideoJob.objects.kept().filter(pk=job.pk).exists()
    client.force_login(admin)
    assert client.post(url).status_code == 302
    assert VideoJob.objects.trashed().filter(pk=job.pk).exists()


def test_a_running_job_is_not_moved_to_the_trash(member_client, member):
    job = post_create_form(member_client, "Busy")
    assert job.is_active
    member_client.post(reverse("videos-delete", args=[job.pk]))
    assert VideoJob.objects.kept().filter(pk=job.pk).exists()


def test_viewer_can_neither_remix_nor_retry(client, viewer, member):
    job = make_job(member, status=Status.FAILED)
    client.force_login(viewer)
    assert client.post(reverse("videos-retry", args=[job.pk])).status_code == 403
    assert client.post(reverse("videos-remix", args=[job.pk]), {"prompt": "x"}).status_code == 403
    assert VideoJob.objects.count() == 1


def test_deleting_in_the_admin_removes_the_files_and_the_providers_copy(client, admin, provider):
    job = services.create_job(
        author=admin,
        spec=ModelSpec.objects.get(name="sora-2"),
        prompt="Deleted from the admin",
        seconds=4,
        size="1280x720",
    )
    lifecycle.submit_job(job.pk)
    job = run_until_settled(job)
    media_dir = downloads.job_media_dir(job)
    assert job.video and media_dir.is_dir()
    client.force_login(admin)
    response = client.post(reverse("admin:videos_videojob_delete", args=[job.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not media_dir.exists()
    with pytest.raises(KeyError):
        provider.job(job.upstream_id)
