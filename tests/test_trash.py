"""The trash: moving a job there, restoring it, and removing it for good after its days or when
an admin empties the trash; what the team's lists show meanwhile, and who may do what."""

import csv
import io
import os
import re
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Action, ActivityEntry
from tests.conftest import ARTIFACTS, ROOT, wait_for
from tests.factories import finished_job, make_job, make_person
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from videos import budgets, downloads, trash
from videos.apps import TRASH_SCHEDULE, ensure_schedule
from videos.models import Status, VideoJob
from videos.paging import PAGE_SIZE
from videos.usage import month_usage, this_month

pytestmark = pytest.mark.django_db(transaction=True)


def done(author, prompt: str = "A lighthouse at dusk", **fields) -> VideoJob:
    """A completed job with its files, costing what its 4 seconds cost."""
    return make_job(
        author,
        status=Status.COMPLETED,
        with_files=True,
        prompt=prompt,
        price_per_second=Decimal("0.10"),
        final_cost=Decimal("0.40"),
        **fields,
    )


def actions(job: VideoJob) -> list[str]:
    return list(
        ActivityEntry.objects.filter(job_id=job.pk).order_by("id").values_list("action", flat=True)
    )


# Services


def test_trash_and_restore_keep_the_files_lineage_and_cost_and_delete_at_the_provider_at_once(
    member_client, member, provider
):
    parent = finished_job(member_client, "A kite over the sea")
    remix = make_job(member, status=Status.COMPLETED, remix_of=parent, prompt="At night")
    media_dir = downloads.job_media_dir(parent)
    cost = parent.cost
    assert parent.video and media_dir.is_dir() and provider.job(parent.upstream_id)

    assert trash.trash_job(parent, actor=member) is True
    parent.refresh_from_db()
    assert parent.trashed_at is not None and parent.trashed_by == member
    assert parent.purge_at == parent.trashed_at + timedelta(days=30)
    with pytest.raises(KeyError):
        provider.job(parent.upstream_id)  # gone at the provider now, not at the purge
    assert media_dir.is_dir() and parent.video and parent.cost == cost
    remix.refresh_from_db()
    assert remix.remix_of == parent

    assert trash.restore_job(parent, actor=member) is True
    parent.refresh_from_db()
    assert parent.trashed_at is None and parent.trashed_by is None
    assert parent.video and media_dir.is_dir() and parent.cost == cost
    assert [job for job, _depth in parent.remix_tree()] == [parent, remix]
    assert actions(parent)[-2:] == [Action.TRASH, Action.RESTORE]
    # Twice is once.
    assert trash.restore_job(parent, actor=member) is False


def test_a_running_job_cannot_be_trashed(member):
    for status in (Status.QUEUED, Status.IN_PROGRESS):
        job = make_job(member, status=status)
        with pytest.raises(trash.JobBusy):
            trash.trash_job(job, actor=member)
    saving = make_job(member, status=Status.COMPLETED, assets_fetched_at=None)
    with pytest.raises(trash.JobBusy):
        trash.trash_job(saving, actor=member)
    assert not VideoJob.objects.trashed().exists()


def test_a_provider_that_cannot_delete_is_reported_and_the_job_is_trashed_anyway(
    member_client, member, provider
):
    job = finished_job(member_client, "Stubborn")
    provider.inject("delete", "500", times=None)
    response = member_client.post(reverse("videos-delete", args=[job.pk]), follow=True)
    assert "The provider could not be reached" in response.content.decode()
    assert VideoJob.objects.trashed().filter(pk=job.pk).exists()
    provider.clear_faults()
    # A provider that forgot the job already counts as a deletion.
    gone = make_job(member, status=Status.COMPLETED, upstream_id="video_not_at_the_provider")
    assert trash.trash_job(gone, actor=member) is True


def test_budgets_and_usage_count_a_trashed_job_the_same_before_and_after(member, other_member):
    kept = done(member, "Kept")
    binned = done(member, "Binned")
    done(other_member, "Someone else's")
    running = make_job(member, status=Status.IN_PROGRESS, reserved_cost=Decimal("1.20"))

    def numbers():
        report = month_usage(this_month())
        return (
            budgets.spent_this_month(member.pk),
            budgets.spent_this_month(),
            budgets.month_by_person(),
            report.total,
            report.members,
            report.models,
            report.days,
        )

    before = numbers()
    assert before[0] == Decimal("2.00")  # two completed at 0.40, one running holding 1.20
    assert trash.trash_jobs([binned, kept, running], actor=member).trashed == 2
    assert numbers() == before
    trash.restore_job(binned, actor=member)
    assert numbers() == before


def test_what_a_purged_job_cost_still_counts_in_the_budgets_and_usage(admin, member, other_member):
    """Emptying the trash removes the job and its files, not what it cost: a budget freed that
    way would let the team spend past its limit."""
    binned = done(member, "Binned", model="sora-2-pro")
    done(other_member, "Someone else's")
    failed = make_job(member, status=Status.FAILED, final_cost=None)

    def spend():
        report = month_usage(this_month())
        mine = month_usage(this_month(), only_author_id=member.pk)
        return (
            budgets.spent_this_month(member.pk),
            budgets.spent_this_month(),
            {pk: person.spent for pk, person in budgets.month_by_person().items()},
            report.total,
            report.members,
            report.models,
            report.days,
            mine.members,
            mine.models,
        )

    before = spend()
    assert before[0] == Decimal("0.40") and before[1] == Decimal("0.80")
    assert trash.trash_jobs([binned, failed], actor=member).trashed == 2
    assert trash.empty_trash(admin) == 2
    assert not VideoJob.objects.filter(pk__in=[binned.pk, failed.pk]).exists()
    assert spend() == before

    # Removing an account keeps its spend too, as a former account's.
    member.delete()
    assert budgets.spent_this_month() == Decimal("0.80")
    assert month_usage(this_month()).total.cost == Decimal("0.80")


def test_a_selection_skips_what_the_actor_may_not_delete_and_what_runs(
    member, other_member, viewer, admin, provider
):
    mine = done(member, "Mine")
    theirs = done(other_member, "Theirs")
    running = make_job(member, status=Status.IN_PROGRESS)
    binned = done(member, "Binned already")
    trash.trash_job(binned, actor=member)
    missing = done(member, "Gone")
    VideoJob.objects.filter(pk=missing.pk).delete()

    result = trash.trash_jobs([mine, theirs, running, binned, missing], actor=member)
    assert (result.trashed, result.not_allowed, result.running, result.already) == (1, 1, 1, 2)
    assert result.provider_failed == 0
    assert set(VideoJob.objects.trashed().values_list("pk", flat=True)) == {mine.pk, binned.pk}

    assert trash.trash_jobs([theirs], actor=viewer).not_allowed == 1
    assert trash.trash_jobs([theirs, running], actor=admin).trashed == 1
    assert VideoJob.objects.get(pk=theirs.pk).trashed_by == admin
    entries = ActivityEntry.objects.filter(action=Action.TRASH)
    assert sorted(entries.values_list("actor_name", flat=True)) == ["ada", "mia", "mia"]


def test_the_purge_removes_row_and_files_after_the_days_and_remixes_live_on(
    member, member_client, settings
):
    parent = done(member, "Old news")
    remix = make_job(member, status=Status.COMPLETED, remix_of=parent, prompt="Older news")
    media_dir = downloads.job_media_dir(parent)
    trash.trash_job(parent, actor=member)
    parent.refresh_from_db()
    day = timedelta(days=1)

    assert trash.purge_trash(now=parent.trashed_at + 30 * day - timedelta(seconds=1)) == 0
    assert VideoJob.objects.filter(pk=parent.pk).exists() and media_dir.is_dir()
    assert trash.purge_trash(now=parent.trashed_at + 30 * day + timedelta(seconds=1)) == 1
    assert not VideoJob.objects.filter(pk=parent.pk).exists()
    assert not media_dir.exists()
    # Twice removes nothing twice.
    assert trash.purge_trash(now=parent.trashed_at + 31 * day) == 0
    remix.refresh_from_db()
    assert remix.remix_of is None
    assert member_client.get(reverse("videos-detail", args=[remix.pk])).status_code == 200
    (entry,) = ActivityEntry.objects.filter(action=Action.PURGE)
    assert entry.actor is None and entry.job_id == parent.pk
    assert entry.subject["prompt"] == "Old news" and entry.subject["trashed_by"] == "mia"

    # The days are a setting.
    settings.MUXWEB_TRASH_DAYS = 2
    short = done(member, "Short stay")
    trash.trash_job(short, actor=member)
    short.refresh_from_db()
    assert trash.purge_trash(now=short.trashed_at + 2 * day + timedelta(seconds=1)) == 1


def test_the_purge_runs_hourly_from_a_schedule_made_once():
    from django_q.models import Schedule

    ensure_schedule()
    ensure_schedule()
    (schedule,) = Schedule.objects.filter(name=TRASH_SCHEDULE)
    assert schedule.func == "videos.tasks.purge_trash"
    assert schedule.schedule_type == Schedule.HOURLY


def test_trash_days_come_from_the_environment_and_must_be_a_whole_positive_number(tmp_path):
    def settings_with(days: str) -> subprocess.CompletedProcess:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MUXWEB_", "DATABASE_URL", "REDIS_URL"))
        }
        env = {"MUXWEB_DATA_DIR": str(tmp_path), "MUXWEB_TRASH_DAYS": days}
        code = "import django; django.setup(); from django.conf import settings as s; "
        return subprocess.run(
            [sys.executable, "-c", code + "print(s.MUXWEB_TRASH_DAYS)"],
            cwd=ROOT,
            env={**clean, "DJANGO_SETTINGS_MODULE": "muxweb.settings", **env},
            capture_output=True,
            text=True,
        )

    assert settings_with("7").stdout.strip() == "7"
    assert settings_with("").stdout.strip() == "30"
    for wrong in ("0", "-3", "2.5", "a week"):
        result = settings_with(wrong)
        assert result.returncode != 0 and "MUXWEB_TRASH_DAYS" in result.stderr
    assert "MUXWEB_TRASH_DAYS=30" in (ROOT / ".env.example").read_text()


# Pages


def test_only_admins_empty_the_trash(client, member, viewer, admin):
    jobs = [done(member, f"Binned {n}") for n in range(3)]
    trash.trash_jobs(jobs, actor=member)
    url = reverse("videos-trash-empty")
    outsider = make_person("olga")
    for person in (member, viewer, outsider):
        client.force_login(person)
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
        assert url not in client.get(reverse("videos-trash")).content.decode()
    with pytest.raises(PermissionDenied):
        trash.empty_trash(member)
    assert VideoJob.objects.trashed().count() == 3

    client.force_login(admin)
    assert url in client.get(reverse("videos-trash")).content.decode()
    assert "Empty the trash?" in client.get(url).content.decode()
    response = client.post(url, follow=True)
    assert "3 videos were removed for good." in response.content.decode()
    assert not VideoJob.objects.exists()
    assert not any(downloads.job_media_dir(job).exists() for job in jobs)
    entries = ActivityEntry.objects.filter(action=Action.PURGE)
    assert list(entries.values_list("actor_name", flat=True)) == ["ada"] * 3


def test_who_may_move_to_trash_and_restore(client, member, other_member, viewer, admin):
    job = done(member, "Mine to bin")
    delete = reverse("videos-delete", args=[job.pk])
    restore = reverse("videos-restore", args=[job.pk])
    client.logout()
    assert client.post(delete).status_code == 302  # to the login page
    assert client.post(restore)["Location"].startswith(reverse("login"))
    for person in (other_member, viewer, make_person("olga")):
        client.force_login(person)
        assert client.get(delete).status_code == 403
        assert client.post(delete).status_code == 403
    assert not VideoJob.objects.trashed().exists()

    client.force_login(member)
    response = client.post(delete, follow=True)
    page = response.content.decode()
    assert "Moved to the trash. Restore it from the Trash within 30 days." in page
    assert f'<a href="{reverse("videos-trash")}">' in page
    for person in (other_member, viewer, make_person("olly")):
        client.force_login(person)
        assert client.post(restore).status_code == 403
    assert VideoJob.objects.trashed().filter(pk=job.pk).exists()
    client.force_login(admin)
    assert client.get(restore).status_code == 405
    assert client.post(restore)["Location"] == reverse("videos-detail", args=[job.pk])
    assert VideoJob.objects.kept().filter(pk=job.pk).exists()
    # Back from the trash page, back to the trash page.
    trash.trash_job(job, actor=admin)
    client.force_login(member)
    assert client.post(restore, {"back": "trash"})["Location"] == reverse("videos-trash")


def test_a_trashed_job_page_says_so_and_offers_restore_to_who_may(client, member, viewer):
    job = done(member, "A lantern, binned")
    trash.trash_job(job, actor=member)
    job.refresh_from_db()
    url = reverse("videos-detail", args=[job.pk])
    client.force_login(member)
    page = client.get(url).content.decode()
    assert "In the trash since" in page and "removed for good on" in page
    assert f'action="{reverse("videos-restore", args=[job.pk])}"' in page
    assert 'href="' + reverse("videos-delete", args=[job.pk]) not in page
    assert "?duplicate=" not in page and reverse("videos-remix", args=[job.pk]) not in page
    for variant in ("video", "thumbnail"):
        assert client.get(reverse("videos-media", args=[job.pk, variant])).status_code == 200
    # Moving it again says where it is.
    response = client.post(reverse("videos-delete", args=[job.pk]), follow=True)
    assert "This video is in the trash already." in response.content.decode()

    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == 200 and "In the trash since" in response.content.decode()
    assert reverse("videos-restore", args=[job.pk]) not in response.content.decode()


def test_remix_retry_and_duplicate_of_a_trashed_job_are_refused(member_client, member):
    completed = done(member, "Remix me not")
    failed = make_job(member, status=Status.FAILED, prompt="Retry me not")
    trash.trash_jobs([completed, failed], actor=member)
    response = member_client.post(
        reverse("videos-remix", args=[completed.pk]), {"prompt": "again"}, follow=True
    )
    assert "This video is in the trash: restore it first." in response.content.decode()
    response = member_client.post(reverse("videos-retry", args=[failed.pk]), follow=True)
    assert "This video is in the trash: restore it first." in response.content.decode()
    assert VideoJob.objects.count() == 2
    page = member_client.get(reverse("videos-gallery"), {"duplicate": failed.pk}).content.decode()
    assert "Retry me not</textarea>" not in page


def test_the_gallery_search_csv_poll_neighbours_and_notifications_leave_trashed_jobs_out(
    member_client, member, django_assert_max_num_queries
):
    older = done(member, "A red lantern")
    binned = done(member, "A blue lantern")
    newer = done(member, "A green lantern")
    trash.trash_job(binned, actor=member)

    gallery = member_client.get(reverse("videos-gallery")).content.decode()
    assert f'id="job-{older.pk}"' in gallery and f'id="job-{binned.pk}"' not in gallery
    found = member_client.get(reverse("videos-gallery"), {"q": "lantern"}).content.decode()
    assert "A red lantern" in found and "A blue lantern" not in found
    assert (
        "A blue lantern"
        not in member_client.get(reverse("videos-gallery"), {"q": "blue"}).content.decode()
    )
    export = member_client.get(reverse("videos-export"))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert sorted(row[0] for row in rows[1:]) == sorted([str(older.pk), str(newer.pk)])
    poll = member_client.get(reverse("videos-gallery-poll"), {"ids": str(binned.pk), "v": "old"})
    assert f'id="job-{binned.pk}"' not in poll.content.decode()
    # Neighbours skip it: from the newer job the next older one is `older`.
    page = member_client.get(reverse("videos-detail", args=[newer.pk])).content.decode()
    assert reverse("videos-detail", args=[older.pk]) in page
    assert reverse("videos-detail", args=[binned.pk]) not in page
    # The notifier never toasts a job that is in the trash.
    notes = member_client.get(reverse("videos-notifications"), {"ids": str(binned.pk)})
    assert "A blue lantern" not in notes.content.decode()


def test_the_trash_page_lists_newest_trashed_first_a_page_at_a_time(
    client, member, other_member, viewer, django_assert_max_num_queries
):
    jobs = [
        done(member if n % 2 else other_member, f"Binned number {n}") for n in range(PAGE_SIZE + 3)
    ]
    start = timezone.now() - timedelta(days=3, hours=1)
    for n, job in enumerate(jobs):
        VideoJob.objects.filter(pk=job.pk).update(
            trashed_at=start + timedelta(minutes=n), trashed_by=job.author
        )
    done(member, "Still in the gallery")

    client.force_login(member)
    with django_assert_max_num_queries(6):
        first = client.get(reverse("videos-trash"))
    page = first.content.decode()
    shown = [int(pk) for pk in re.findall(r'id="trashed-(\d+)"', page)]
    assert shown == [job.pk for job in reversed(jobs)][:PAGE_SIZE]
    assert "Still in the gallery" not in page
    assert "27 days left" in page
    assert f'src="{reverse("videos-media", args=[jobs[-1].pk, "thumbnail"])}"' in page
    # Restore for their own jobs only.
    assert page.count('name="back" value="trash"') == PAGE_SIZE // 2
    older = re.search(r'href="([^"]*\?older=[^"]*)"', page).group(1).replace("&amp;", "&")
    rest = client.get(older).content.decode()
    shown = [int(pk) for pk in re.findall(r'id="trashed-(\d+)"', rest)]
    assert shown == [job.pk for job in reversed(jobs[:3])]
    assert client.get(reverse("videos-trash"), {"older": "nonsense"}).status_code == 200

    # Whoever sees the gallery sees the trash, read-only for viewers.
    client.force_login(viewer)
    page = client.get(reverse("videos-trash")).content.decode()
    assert "Binned number" in page and 'name="back"' not in page
    client.force_login(make_person("olga"))
    assert client.get(reverse("videos-trash")).status_code == 403
    client.logout()
    assert client.get(reverse("videos-trash"))["Location"].startswith(reverse("login"))


def test_the_nav_links_the_trash_for_the_team(client, member):
    client.force_login(member)
    page = client.get(reverse("videos-gallery")).content.decode()
    assert f'<a href="{reverse("videos-trash")}">Trash</a>' in page


# In the browser


@pytest.mark.browser
def test_member_trashes_a_job_from_its_page_and_restores_it_from_the_trash(
    page, client, member, provider
):
    client.force_login(member)
    job = finished_job(client, "A paper boat on a pond")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_in(page, "mia", "pw-mia")
    card = page.locator(f"#job-{job.pk}")
    expect(card.locator("img")).to_be_visible()
    card.locator("a.thumb").click()
    page.wait_for_load_state()
    page.click("a.button.danger")
    expect(page.locator("h1")).to_have_text("Move this video to the trash?")
    page.click("button:has-text('Move to trash')")
    page.wait_for_load_state()
    expect(page.locator(".messages")).to_contain_text("Moved to the trash.")
    expect(page.locator(f"#job-{job.pk}")).to_have_count(0)

    page.click("nav.topnav a:has-text('Trash')")
    page.wait_for_load_state()
    item = page.locator(f"#trashed-{job.pk}")
    expect(item).to_contain_text("A paper boat on a pond")
    expect(item).to_contain_text("30 days left")
    expect(item.locator("img")).to_be_visible()
    wait_for(lambda: item.locator("img").evaluate("img => img.naturalWidth") > 0)
    page.screenshot(path=ARTIFACTS / "trash.png", full_page=True)
    item.locator("button:has-text('Restore')").click()
    page.wait_for_load_state()
    expect(page.locator(".messages")).to_contain_text("back in the gallery")
    expect(page.locator(f"#trashed-{job.pk}")).to_have_count(0)

    page.click("nav.topnav a:has-text('Gallery')")
    page.wait_for_load_state()
    expect(page.locator(f"#job-{job.pk} img")).to_be_visible()
    wait_for(lambda: page.locator(f"#job-{job.pk} img").evaluate("img => img.naturalWidth") > 0)
    job_path = reverse("videos-detail", args=[job.pk])
    visited = ["/", job_path, job_path + "delete", "/trash/", job_path + "restore"]
    assert_nothing_blocked_or_logged(page, visited)
