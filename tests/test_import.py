"""Import: jobs started elsewhere with the same key are added once, with their files."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import API_KEY, run_until_settled, wait_for
from videos import services
from videos.models import Status, VideoJob
from videos.upstream.client import VideosClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def started_elsewhere(provider) -> list[dict]:
    """Five jobs created straight at the provider: three finish, one fails, one still runs."""
    provider.reset()
    api = VideosClient(provider.base_url, API_KEY)
    provider.render_seconds = 0.5
    early = [
        api.create(prompt=f"Elsewhere {i}", model="sora-2", seconds=4, size="720x1280")
        for i in range(3)
    ]
    early.append(
        api.create(prompt="Elsewhere blocked [fail]", model="sora-2", seconds=4, size="720x1280")
    )
    wait_for(lambda: all(provider.job(v["id"])["status"] in ("completed", "failed") for v in early))
    provider.render_seconds = 30
    running = api.create(
        prompt="Elsewhere running", model="sora-2-pro", seconds=8, size="1792x1024"
    )
    return [*early, running]


def test_import_adds_each_upstream_job_once_with_status_and_files(started_elsewhere, catalogue):
    added = services.import_upstream_jobs(page_size=2)  # three pages
    assert added == 5
    jobs = {job.upstream_id: job for job in VideoJob.objects.all()}
    assert set(jobs) == {v["id"] for v in started_elsewhere}
    assert all(job.imported and job.author is None for job in jobs.values())
    running = jobs[started_elsewhere[-1]["id"]]
    assert running.status in (Status.QUEUED, Status.IN_PROGRESS)
    assert (running.model, running.seconds, running.size) == ("sora-2-pro", 8, "1792x1024")
    assert str(running.cost) == "4.00"
    assert jobs[started_elsewhere[3]["id"]].error_code == "moderation_blocked"
    for video in started_elsewhere[:3]:
        job = run_until_settled(jobs[video["id"]])
        assert job.status == Status.COMPLETED and job.video and job.thumbnail and job.spritesheet

    assert services.import_upstream_jobs(page_size=2) == 0
    assert VideoJob.objects.count() == 5


def test_import_button_is_for_admins_and_says_how_many(client, member, admin, started_elsewhere):
    client.force_login(member)
    assert client.post(reverse("videos-import")).status_code == 403
    assert 'action="/videos/import"' not in client.get(reverse("videos-gallery")).content.decode()
    client.force_login(admin)
    # Run in the background (inline here), its result shown on the gallery.
    response = client.post(reverse("videos-import"), follow=True)
    assert "Import finished: 5 jobs added, 5 checked." in response.content.decode()
    assert "imported" in response.content.decode()
    response = client.post(reverse("videos-import"), follow=True)
    assert "Import finished: 0 jobs added, 5 checked." in response.content.decode()


def test_import_command_reports_the_count(started_elsewhere, catalogue, capsys):
    call_command("import_videos")
    assert "Imported 5 job(s)." in capsys.readouterr().out
    call_command("import_videos")
    assert "Imported 0 job(s)." in capsys.readouterr().out
