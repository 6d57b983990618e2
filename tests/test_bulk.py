"""Bulk actions on a selection of gallery cards: ticked ids from any page or every job matching
the filters, "select all matching" with its count, moving a selection to the trash through a
confirmation, and the selection in a real browser across pages (shift-click ranges, the x and #
keys)."""

import re
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import make_job
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from videos.models import Status, VideoJob
from videos.paging import PAGE_SIZE

pytestmark = pytest.mark.django_db

SELECT_ALL = reverse("videos-select-all")
TRASH = reverse("videos-bulk-trash")


def history(author, n: int, **fields) -> list[VideoJob]:
    """`n` completed jobs a minute apart, oldest first."""
    start = timezone.now() - timedelta(days=3)
    return [
        make_job(
            author,
            status=Status.COMPLETED,
            created_at=start + timedelta(minutes=i),
            **{"prompt": f"shot {i}", **fields},
        )
        for i in range(n)
    ]


def trashed(*jobs: VideoJob) -> list[bool]:
    return [VideoJob.objects.get(pk=job.pk).trashed_at is not None for job in jobs]


def test_select_all_counts_the_jobs_matching_the_filters(client, member, other_member):
    history(member, 3)
    history(other_member, 2)
    client.force_login(member)
    response = client.get(SELECT_ALL, {"author": other_member.pk})
    assert response.status_code == 200
    assert response.context["count"] == 2
    assert response.context["kept_filters"] == {"author": str(other_member.pk)}
    # Without JavaScript it is a page whose form acts on all of them.
    body = response.content.decode()
    assert 'name="all" value="1"' in body
    assert f'name="author" value="{other_member.pk}"' in body
    # The bulk bar asks for its count in place.
    partial = client.get(SELECT_ALL, {"q": "shot"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert re.search(r'data-all-matching="5"', partial.content.decode())
    assert "<html" not in partial.content.decode()


def test_select_all_stops_counting_at_the_bound(client, member, settings, monkeypatch):
    from videos import views

    monkeypatch.setattr(views, "MAX_SELECTION", 3)
    history(member, 5)
    client.force_login(member)
    response = client.get(SELECT_ALL)
    assert (response.context["count"], response.context["more"]) == (3, True)


def test_trashing_a_selection_asks_first_and_says_what_stays(client, member, other_member):
    mine = history(member, 2)
    theirs = history(other_member, 1)
    running = make_job(member, status=Status.IN_PROGRESS)
    client.force_login(member)
    ids = [job.pk for job in (*mine, *theirs, running)]
    response = client.post(TRASH, {"ids": ids})
    assert response.status_code == 200
    assert response.context["movable"] == 2
    assert response.context["kept_back"] == 2
    assert trashed(*mine, *theirs, running) == [False] * 4
    body = response.content.decode()
    assert 'name="confirmed" value="1"' in body
    for job in mine:
        assert f'name="ids" value="{job.pk}"' in body

    response = client.post(TRASH, {"ids": ids, "confirmed": "1"})
    assert response.status_code == 302
    assert trashed(*mine, *theirs, running) == [True, True, False, False]
    gallery = client.get(reverse("videos-gallery"))
    assert {job.pk for job in gallery.context["jobs"]} == {theirs[0].pk, running.pk}


def test_trashing_all_matching_takes_the_filters_not_the_ids(client, admin, member, other_member):
    mia = history(member, 3)
    otto = history(other_member, 2)
    client.force_login(admin)
    response = client.post(
        TRASH, {"all": "1", "author": member.pk, "ids": [otto[0].pk], "confirmed": "1"}
    )
    assert response.status_code == 302
    # Back to the gallery with its filters.
    assert response["Location"] == f"{reverse('videos-gallery')}?author={member.pk}"
    assert trashed(*mia, *otto) == [True, True, True, False, False]


def test_viewers_and_outsiders_cannot_trash_a_selection(client, viewer, member):
    job = history(member, 1)[0]
    client.force_login(viewer)
    assert client.post(TRASH, {"ids": [job.pk], "confirmed": "1"}).status_code == 403
    # They may still count what matches (it leads to the zip export).
    assert client.get(SELECT_ALL).status_code == 200
    assert trashed(job) == [False]


def test_a_selection_of_ids_ignores_what_is_not_a_job_id(client, member):
    job = history(member, 1)[0]
    client.force_login(member)
    response = client.post(TRASH, {"ids": ["x", "-1", "99999999999999999999", str(job.pk)]})
    assert response.status_code == 200
    assert response.context["movable"] == 1


# In a real browser.


def test_a_selection_survives_paging_takes_ranges_and_goes_to_the_trash(page, live_server, member):
    jobs = history(member, PAGE_SIZE + 4, with_files=True)  # two pages: 4 on the second
    newest = list(reversed(jobs))
    log_in(page, "mia", "pw-mia")
    page.goto(f"{live_server.url}/")
    page.wait_for_load_state()
    bar = page.locator("#bulk")
    expect(bar).to_be_hidden()

    def box(job):
        return page.locator(f"#job-{job.pk} .select-job")

    # Tick the first card, then shift-click the third: a range of three.
    page.locator(f"#job-{newest[0].pk}").hover()
    box(newest[0]).click()
    expect(bar).to_be_visible()
    page.locator(f"#job-{newest[2].pk}").hover()
    box(newest[2]).click(modifiers=["Shift"])
    expect(page.locator("#bulk-count")).to_contain_text("3")
    for job in newest[:3]:
        expect(box(job)).to_be_checked()

    # On the older page, the x key ticks the focused card.
    page.get_by_role("link", name=re.compile("Older")).first.click()
    page.wait_for_load_state()
    expect(bar).to_be_visible()
    page.locator(f"#job-{newest[-1].pk} a.thumb").focus()
    page.keyboard.press("x")
    expect(box(newest[-1])).to_be_checked()
    expect(page.locator("#bulk-count")).to_contain_text("4")

    # Back on the newest page, the ticks are still there; # asks before moving them.
    page.get_by_role("link", name=re.compile("Newer")).first.click()
    page.wait_for_load_state()
    expect(box(newest[1])).to_be_checked()
    page.locator(f"#job-{newest[5].pk} a.thumb").focus()
    page.keyboard.press("#")
    expect(page.locator("h1")).to_contain_text("4")
    page.get_by_role("button", name="Move to trash").click()
    page.wait_for_load_state()
    for job in (*newest[:3], newest[-1]):
        expect(page.locator(f"#job-{job.pk}")).to_have_count(0)
    expect(bar).to_be_hidden()
    assert trashed(*newest[:3], newest[-1], newest[3]) == [True, True, True, True, False]

    # "Select all matching" counts what the filters match, then the zip takes them all.
    page.locator(f"#job-{newest[3].pk}").hover()
    box(newest[3]).click()
    page.locator("#select-all").click()
    expect(page.locator("#bulk-count")).to_contain_text(str(len(jobs) - 4))
    expect(box(newest[4])).to_be_checked()
    page.locator("#bulk").get_by_role("button", name="Export zip").click()
    download_link = page.get_by_role("link", name=re.compile("Download"))
    expect(download_link).to_be_visible()
    with page.expect_download() as download:
        download_link.click()
    with zipfile.ZipFile(download.value.path()) as archive:
        videos = [name for name in archive.namelist() if name.endswith(".mp4")]
    assert len(videos) == len(jobs) - 4
    # The selection went with the export.
    page.goto(f"{live_server.url}/")
    expect(bar).to_be_hidden()
    assert_nothing_blocked_or_logged(page, ["/", "/videos/select-all", "/videos/bulk/trash"])
