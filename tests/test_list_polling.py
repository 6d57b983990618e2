"""List polling and two requests per video: one page of the provider's list refreshes every
running job in it, a provider without the list is polled job by job (and that is remembered), and
a tight budget downloads only the video and makes the pictures here, laid out like the
provider's."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from PIL import Image

from tests.conftest import API_KEY
from tests.factories import finished_job, make_job, post_create_form
from videos import downloads, lifecycle, listpoll
from videos.models import ProviderBudget, Status, VideoJob
from videos.sweep import poll_due_jobs
from videos.upstream import ratelimit
from videos.upstream.ratelimit import Priority, default_budget

pytestmark = pytest.mark.django_db(transaction=True)


def routes(provider) -> list[str]:
    return [route for _at, route in provider.request_log]


def running_jobs(member_client, provider, count: int) -> list[VideoJob]:
    """`count` jobs sent to the provider and due for a poll now; the request log emptied."""
    jobs = [post_create_form(member_client, f"A kite, take {n}") for n in range(count)]
    VideoJob.objects.filter(pk__in=[j.pk for j in jobs]).update(next_poll_at=timezone.now())
    provider.request_log.clear()
    return jobs


def remembered() -> ProviderBudget:
    return ProviderBudget.objects.get()


def test_one_list_page_refreshes_every_running_job_in_it(member_client, provider):
    due_a, due_b, not_due = running_jobs(member_client, provider, 3)
    later = timezone.now() + timedelta(minutes=5)
    VideoJob.objects.filter(pk=not_due.pk).update(next_poll_at=later)

    poll_due_jobs()

    assert routes(provider) == ["list"]
    for job in (due_a, due_b, not_due):
        job.refresh_from_db()
        assert job.poll_count == 2, job  # the create's answer, then the list's
        assert job.next_poll_at < later
    assert remembered().lists_videos is True


def test_a_due_job_missing_from_the_list_is_polled_on_its_own(member_client, provider, member):
    listed = running_jobs(member_client, provider, 1)[0]
    # Not among the provider's newest 100 (here: not at the provider at all).
    missing = make_job(member, status=Status.IN_PROGRESS, next_poll_at=timezone.now())

    poll_due_jobs()

    assert routes(provider) == ["list", "retrieve"]
    listed.refresh_from_db()
    missing.refresh_from_db()
    assert listed.poll_count == 2
    assert missing.poll_failures == 1  # the provider's 404 for it


def test_due_jobs_past_the_first_page_are_read_from_the_next_pages(
    member_client, provider, monkeypatch
):
    """Pages of 2 here (100 at the provider's most): six due jobs cost three lists, not a list
    and four retrieves; past the pages a pass may read, the jobs left are retrieved."""
    monkeypatch.setattr(listpoll, "LIST_PAGE", 2)
    jobs = running_jobs(member_client, provider, 6)

    poll_due_jobs()

    assert routes(provider) == ["list", "list", "list"]
    for job in jobs:
        job.refresh_from_db()
        assert job.poll_count == 2, job

    monkeypatch.setattr(listpoll, "LIST_PAGES", 2)
    VideoJob.objects.filter(pk__in=[j.pk for j in jobs]).update(next_poll_at=timezone.now())
    provider.request_log.clear()
    poll_due_jobs()
    assert routes(provider) == ["list", "list", "retrieve", "retrieve"], "the oldest two"


def test_jobs_a_webhook_refreshed_are_not_polled(member_client, provider):
    jobs = running_jobs(member_client, provider, 2)
    VideoJob.objects.filter(pk__in=[j.pk for j in jobs]).update(
        next_poll_at=timezone.now() + timedelta(seconds=120)
    )

    poll_due_jobs()

    assert routes(provider) == []


@pytest.mark.parametrize("status", [404, 405])
def test_a_provider_without_the_list_is_polled_job_by_job_and_that_is_remembered(
    member_client, provider, status
):
    provider.list_refused_with = status
    jobs = running_jobs(member_client, provider, 2)

    poll_due_jobs()

    assert routes(provider) == ["list", "retrieve", "retrieve"]
    assert remembered().lists_videos is False
    for job in jobs:
        job.refresh_from_db()
        assert job.poll_count == 2 and job.poll_failures == 0

    # Remembered: the next pass does not ask for the list again.
    VideoJob.objects.filter(pk__in=[j.pk for j in jobs]).update(next_poll_at=timezone.now())
    provider.request_log.clear()
    poll_due_jobs()
    assert routes(provider) == ["retrieve", "retrieve"]

    # A day later the provider is asked again, and now it lists.
    provider.list_refused_with = 0
    ProviderBudget.objects.update(list_checked_at=timezone.now() - timedelta(days=1, minutes=1))
    VideoJob.objects.filter(pk__in=[j.pk for j in jobs]).update(next_poll_at=timezone.now())
    provider.request_log.clear()
    poll_due_jobs()
    assert routes(provider) == ["list"]
    assert remembered().lists_videos is True


def test_a_list_that_fails_otherwise_falls_back_for_that_pass_only(member_client, provider):
    provider.inject("list", "500", times=None)
    running_jobs(member_client, provider, 2)

    poll_due_jobs()

    assert routes(provider).count("retrieve") == 2
    assert listpoll.lists_videos() is None


def test_the_budget_is_tight_when_the_key_is_short_of_room(settings):
    budget = default_budget()
    settings.MUXWEB_PROVIDER_RPM = 0
    assert not downloads.budget_is_tight(), "no limit known: downloads as usual"
    settings.MUXWEB_PROVIDER_RPM = 25
    assert downloads.budget_is_tight(), "a low limit"
    settings.MUXWEB_PROVIDER_RPM = 100
    assert not downloads.budget_is_tight()
    budget.take(Priority.CREATE, 60)
    assert downloads.budget_is_tight(), "less than half the minute left"


def test_with_work_waiting_for_the_budget_pictures_are_made_here(settings, member):
    """Room in this minute's window, but more work behind: jobs to send, files to download."""
    settings.MUXWEB_PROVIDER_RPM = 500
    saving = make_job(member, status=Status.COMPLETED, assets_fetched_at=None)
    assert not downloads.budget_is_tight(saving), "the only download: room to spare"
    other = make_job(member, status=Status.COMPLETED, assets_fetched_at=None)
    assert downloads.budget_is_tight(saving)
    other.delete()
    make_job(member, status=Status.WAITING)
    assert downloads.budget_is_tight(saving)
    settings.MUXWEB_PROVIDER_RPM = 0
    assert not downloads.budget_is_tight(saving), "no limit known: downloads as usual"


def test_a_paused_key_is_a_tight_budget(settings):
    settings.MUXWEB_PROVIDER_RPM = 0
    default_budget().observe(429, {"Retry-After": "30"})
    assert downloads.budget_is_tight()


def provider_picture(provider, job: VideoJob, variant: str, dest: Path) -> Image.Image:
    """The picture the provider serves for the job, fetched around muxweb's budget."""
    response = requests.get(
        f"{provider.base_url}/videos/{job.upstream_id}/content",
        params={"variant": variant},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    dest.write_bytes(response.content)
    return Image.open(dest)


@pytest.mark.parametrize("size", ["1280x720", "720x1280"])
def test_a_tight_budget_downloads_only_the_video_and_makes_pictures_like_the_providers(
    member_client, provider, settings, tmp_path, size
):
    settings.MUXWEB_PROVIDER_RPM = 20
    job = finished_job(member_client, f"A harbour at noon, {size}", size=size)

    assert job.assets_fetched_at is not None and not job.fetch_error
    assert routes(provider).count("content") == 1, "the video only"
    media = Path(settings.MEDIA_ROOT)
    for variant, fmt in (("thumbnail", "WEBP"), ("spritesheet", "JPEG")):
        ours = Image.open(media / job.asset(variant).name)
        theirs = provider_picture(provider, job, variant, tmp_path / variant)
        assert (ours.format, ours.size) == (fmt, theirs.size) == (theirs.format, theirs.size)


def test_with_room_to_spare_the_pictures_are_downloaded(member_client, provider, settings):
    settings.MUXWEB_PROVIDER_RPM = 500
    job = finished_job(member_client, "A harbour at dusk")
    assert job.assets_fetched_at is not None
    assert routes(provider).count("content") == 3
    assert Path(settings.MEDIA_ROOT, job.thumbnail.name).exists()


def test_a_tight_budget_looks_at_a_job_when_it_should_be_done(settings, member, monkeypatch):
    """With requests scarce, a running job is looked at when the model's recent jobs say it
    should be done (one request, after which it is), not every few seconds while it renders."""
    monkeypatch.setattr(lifecycle, "_typical_renders", {})
    monkeypatch.setattr(lifecycle, "_tight_seen", (0.0, False))
    now = timezone.now()
    for n in range(3):
        make_job(
            member,
            status=Status.COMPLETED,
            submitted_at=now - timedelta(minutes=10 + n),
            completed_at=now - timedelta(minutes=9 + n),
        )
    job = make_job(member, status=Status.IN_PROGRESS, submitted_at=now - timedelta(seconds=10))

    settings.MUXWEB_PROVIDER_RPM = 25
    lifecycle.apply_upstream(job, {"id": job.upstream_id, "status": "in_progress", "progress": 15})
    left = (job.next_poll_at - now).total_seconds()
    assert 52 <= left <= 52 + ratelimit.CHECK_GRID + 1, "60 s a job takes, less 10 s run, 2 more"
    # On the grid that jobs due at about the same time share: one list answers for them all.
    assert job.next_poll_at.timestamp() % ratelimit.CHECK_GRID < 0.01

    # Past the typical time, the job's own progress says how long is left.
    job.submitted_at = now - timedelta(seconds=90)
    lifecycle.apply_upstream(job, {"id": job.upstream_id, "status": "in_progress", "progress": 90})
    assert (job.next_poll_at - now).total_seconds() <= 90 * 10 / 90 + 3 + ratelimit.CHECK_GRID

    # With room to spare, progress is shown as it moves: looked at again within seconds.
    settings.MUXWEB_PROVIDER_RPM = 0
    monkeypatch.setattr(lifecycle, "_tight_seen", (0.0, False))
    job.submitted_at = now - timedelta(seconds=10)
    lifecycle.apply_upstream(job, {"id": job.upstream_id, "status": "in_progress", "progress": 95})
    assert (job.next_poll_at - now).total_seconds() <= 5


def test_a_tight_budget_trusts_early_progress_no_further_than_the_job_has_run(
    settings, member, monkeypatch
):
    """Before any job of the model has finished, only progress tells how long is left, and 5%
    after 10 s says over three minutes, of a render that takes one: the next check comes no later
    than the job has run so far (20 s at least), not at the 2-minute cap."""
    settings.MUXWEB_PROVIDER_RPM = 25
    monkeypatch.setattr(lifecycle, "_typical_renders", {})
    monkeypatch.setattr(lifecycle, "_tight_seen", (0.0, False))
    now = timezone.now()
    job = make_job(member, status=Status.IN_PROGRESS, submitted_at=now - timedelta(seconds=10))
    lifecycle.apply_upstream(job, {"id": job.upstream_id, "status": "in_progress", "progress": 5})
    left = (job.next_poll_at - now).total_seconds()
    assert 20 <= left <= 20 + lifecycle.FINISH_MARGIN + ratelimit.CHECK_GRID + 1


def test_the_first_jobs_to_finish_set_the_wait_of_the_jobs_sent_after_them(
    settings, member, monkeypatch
):
    """No render time known is read again within seconds, not kept for the 30 s a known one is:
    a burst sent as the first jobs finish is checked when it should be done."""
    settings.MUXWEB_PROVIDER_RPM = 25
    monkeypatch.setattr(lifecycle, "_tight_seen", (0.0, False))
    seen_unknown = time.monotonic() - lifecycle.UNKNOWN_RENDER_TTL - 0.5
    monkeypatch.setattr(lifecycle, "_typical_renders", {"sora-2": (seen_unknown, None)})
    now = timezone.now()
    make_job(
        member,
        status=Status.COMPLETED,
        submitted_at=now - timedelta(seconds=62),
        completed_at=now - timedelta(seconds=2),
    )
    job = make_job(member, status=Status.IN_PROGRESS, submitted_at=now - timedelta(seconds=8))
    lifecycle.apply_upstream(job, {"id": job.upstream_id, "status": "in_progress", "progress": 3})
    left = (job.next_poll_at - now).total_seconds()
    assert 54 <= left <= 54 + ratelimit.CHECK_GRID + 1, "60 s a job takes, less 8 s run, 2 more"

    # A known render time is kept for a while: not one query per job of a list.
    fresh = time.monotonic() - lifecycle.UNKNOWN_RENDER_TTL - 0.5
    monkeypatch.setattr(lifecycle, "_typical_renders", {"sora-2": (fresh, 300.0)})
    lifecycle.apply_upstream(job, {"id": job.upstream_id, "status": "in_progress", "progress": 4})
    assert (job.next_poll_at - now).total_seconds() > lifecycle.MAX_FINISH_WAIT - 1
