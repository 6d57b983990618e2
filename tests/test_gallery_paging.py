"""The gallery's pages by cursor (every job once, in order, both ways; old page links; a cost that
does not grow with the history), its filters, and the team it lists as authors."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Profile
from tests.conftest import ARTIFACTS
from tests.factories import make_job, make_person
from videos.models import Status, VideoJob
from videos.paging import PAGE_SIZE, cursor_for, parse_cursor

pytestmark = pytest.mark.django_db

GALLERY = reverse("videos-gallery")


def make_history(author, n: int, *, same_moment_every: int = 1, **fields) -> list[VideoJob]:
    """`n` jobs a minute apart, oldest first; `same_moment_every` jobs in a row share their
    creation time, so that only their ids tell them apart."""
    start = timezone.now() - timedelta(days=30)
    return [
        make_job(
            author,
            status=Status.COMPLETED,
            created_at=start + timedelta(minutes=i // same_moment_every),
            **{"prompt": f"job {i}", **fields},
        )
        for i in range(n)
    ]


def newest_first(jobs) -> list[int]:
    return [job.pk for job in sorted(jobs, key=lambda job: (job.created_at, job.pk), reverse=True)]


def shown(response) -> list[int]:
    assert response.status_code == 200
    return [job.pk for job in response.context["jobs"]]


def walk(client, url: str, link: str) -> list[list[int]]:
    """The pages from `url` on, following the `link` ("older_url" or "newer_url")."""
    pages = []
    while url:
        response = client.get(url)
        pages.append(shown(response))
        url = response.context[link]
    return pages


@pytest.mark.parametrize("same_moment_every", [1, 5, 60])
def test_older_pages_show_every_job_once_newest_first_and_newer_walks_back(
    member_client, member, same_moment_every
):
    jobs = make_history(member, 2 * PAGE_SIZE + 12, same_moment_every=same_moment_every)

    older = walk(member_client, GALLERY, "older_url")
    assert [len(page) for page in older] == [PAGE_SIZE, PAGE_SIZE, 12]
    assert sum(older, []) == newest_first(jobs)

    last = member_client.get(GALLERY, {"older": cursor_for(VideoJob.objects.get(pk=older[1][-1]))})
    newer = walk(member_client, last.context["newer_url"], "newer_url")
    assert newer == older[:2][::-1]


def test_a_page_holds_what_its_cursor_says_and_the_first_has_no_newer_link(member_client, member):
    jobs = make_history(member, PAGE_SIZE + 3)
    expected = newest_first(jobs)

    first = member_client.get(GALLERY)
    assert first.context["newer_url"] is None and first.context["newest_url"] is None
    second = member_client.get(first.context["older_url"])
    assert shown(second) == expected[PAGE_SIZE:]
    assert second.context["older_url"] is None
    assert second.context["newest_url"] == GALLERY
    page = second.content.decode()
    assert "Older" not in page and "← Newer" in page and "« Newest" in page
    assert "Page " not in page


def test_newer_goes_back_page_by_page_and_shows_the_newest_page_in_full_at_the_top(
    member_client, member
):
    make_history(member, PAGE_SIZE + 5)
    first = member_client.get(GALLERY)
    second = member_client.get(first.context["older_url"])
    # Three videos made while the second page was open.
    fresh = [make_job(member, status=Status.QUEUED, prompt=f"fresh {i}") for i in range(3)]

    back = member_client.get(second.context["newer_url"])
    assert shown(back) == shown(first)
    top = member_client.get(back.context["newer_url"])
    assert shown(top) == shown(member_client.get(GALLERY))
    assert shown(top)[:3] == [job.pk for job in reversed(fresh)]
    assert top.context["newer_url"] is None and top.context["older_url"]


def test_a_cursor_past_the_oldest_job_says_so_and_links_to_the_newest(member_client, member):
    (job,) = make_history(member, 1)
    response = member_client.get(GALLERY, {"older": cursor_for(job)})
    assert shown(response) == []
    page = response.content.decode()
    assert "No older videos." in page and f'href="{GALLERY}">« Newest' in page
    assert "No videos yet" not in page


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "1_",
        "_1",
        "12",
        "1_0",
        "1_-4",
        "1e3_2",
        "١٢_3",
        "1_²",
        "99999999999999999999_1",
        "999999999999999999_1",
        "-999999999999999999_1",
        "1_99999999999999999999",
        "1\x00_2",
        "0x10_2",
    ],
)
def test_a_cursor_that_is_not_one_gives_the_first_page(member_client, member, cursor):
    jobs = make_history(member, PAGE_SIZE + 1)
    for direction in ("older", "newer"):
        response = member_client.get(GALLERY, {direction: cursor})
        assert shown(response) == newest_first(jobs)[:PAGE_SIZE], (direction, cursor)


def test_a_cursor_names_the_time_to_the_microsecond_and_the_id(member):
    job = make_job(member, created_at=timezone.now().replace(microsecond=123456))
    job.refresh_from_db()
    assert parse_cursor(cursor_for(job)) == (job.created_at, job.pk)
    before_1970 = make_job(member, created_at=timezone.now().replace(year=1969))
    assert parse_cursor(cursor_for(before_1970)) == (before_1970.created_at, before_1970.pk)


def test_old_numbered_page_links_open_the_newest_page_with_their_filters(member_client, member):
    response = member_client.get(GALLERY, {"status": "failed", "q": "kite", "page": "3"})
    assert response.status_code == 302
    assert response["Location"] == f"{GALLERY}?status=failed&q=kite"
    response = member_client.get(GALLERY, {"page": "9999999"})
    assert (response.status_code, response["Location"]) == (302, GALLERY)


def test_the_pager_and_the_export_keep_the_filters(member_client, member, other_member):
    make_history(member, PAGE_SIZE + 2, model="sora-2-pro")
    make_history(other_member, 5, model="sora-2-pro")
    make_history(member, 5, model="sora-2")
    filters = {"author": "me", "model": "sora-2-pro"}

    first = member_client.get(GALLERY, filters)
    assert first.context["export_url"] == f"{reverse('videos-export')}?author=me&model=sora-2-pro"
    older = first.context["older_url"]
    assert older.startswith(f"{GALLERY}?author=me&model=sora-2-pro&older=")
    second = member_client.get(older)
    assert len(shown(second)) == 2
    assert {job.author_id for job in second.context["jobs"]} == {member.pk}
    assert second.context["newer_url"].startswith(f"{GALLERY}?author=me&model=sora-2-pro&newer=")
    assert second.context["newest_url"] == f"{GALLERY}?author=me&model=sora-2-pro"
    page = second.content.decode()
    assert 'href="/?author=me&amp;model=sora-2-pro&amp;newer=' in page


def count_queries(client, url, params=None) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize("filters", [{}, {"status": "completed"}, {"author": "me"}])
def test_a_page_costs_the_same_queries_at_30_jobs_and_at_300(member_client, member, filters):
    def cost() -> tuple[int, int]:
        first = count_queries(member_client, GALLERY, filters)
        below = {**filters, "older": cursor_for(VideoJob.objects.all()[10])}
        deeper = count_queries(member_client, GALLERY, below)
        assert not any("COUNT(" in sql.upper() or "OFFSET" in sql.upper() for sql in first + deeper)
        return len(first), len(deeper)

    make_history(member, 30)
    few = cost()
    make_history(member, 270)
    assert cost() == few


def test_the_author_list_is_the_team_not_the_history(
    member_client, member, other_member, viewer, admin
):
    make_person("nina", "member")  # no video yet
    make_person("lars", "member", active=False)
    make_person("stray")  # in no team group: not on the team
    make_job(None, imported=True)
    make_job(other_member)

    queries = count_queries(member_client, GALLERY)
    response = member_client.get(GALLERY)
    authors = response.context["authors"]
    assert [user.username for user in authors.active] == ["ada", "mia", "nina", "otto", "vera"]
    assert [user.username for user in authors.deactivated] == ["lars"]
    page = response.content.decode()
    assert f'<option value="{User.objects.get(username="nina").pk}">nina</option>' in page
    assert '<optgroup label="Deactivated accounts">' in page and "stray" not in page
    people_queries = [sql for sql in queries if 'FROM "auth_user"' in sql]
    assert people_queries and not any("videos_videojob" in sql for sql in people_queries)


# The new filters: each alone, together, in the viewer's time zone, and what a bad value does.


@pytest.fixture
def assorted(member, other_member) -> dict[str, VideoJob]:
    """One job for each new filter to find, and a plain one none of them keeps."""
    now = timezone.now()
    portrait = make_job(member, prompt="portrait", size="720x1280", seconds=8)
    return {
        "plain": make_job(member, prompt="plain"),
        "portrait": portrait,
        "referenced": make_job(
            other_member, prompt="referenced", input_reference="videos/9/reference.png"
        ),
        "remix": make_job(member, prompt="remix", remix_of=portrait, created_at=now),
        "old": make_job(other_member, prompt="old", created_at=now - timedelta(days=10)),
    }


def prompts(client, **params) -> set[str]:
    response = client.get(GALLERY, params)
    assert response.status_code == 200
    return {job.prompt for job in response.context["jobs"]}


def test_each_new_filter_keeps_only_its_jobs(member_client, assorted):
    everything = {job.prompt for job in assorted.values()}
    ten_days_ago = timezone.localdate() - timedelta(days=10)
    assert prompts(member_client, size="720x1280") == {"portrait"}
    assert prompts(member_client, seconds="8") == {"portrait"}
    assert prompts(member_client, reference="with") == {"referenced"}
    assert prompts(member_client, reference="without") == everything - {"referenced"}
    assert prompts(member_client, remixes="1") == {"remix"}
    assert prompts(member_client, to=ten_days_ago.isoformat()) == {"old"}
    assert prompts(member_client, **{"from": timezone.localdate().isoformat()}) == everything - {
        "old"
    }
    same_day = ten_days_ago.isoformat()
    assert prompts(member_client, **{"from": same_day, "to": same_day}) == {"old"}


def test_filters_combine_freely(member_client, member, assorted):
    today = timezone.localdate().isoformat()
    assert prompts(member_client, author="me", size="1280x720") == {"plain", "remix"}
    assert prompts(member_client, author="me", remixes="1", size="1280x720") == {"remix"}
    assert prompts(member_client, remixes="1", size="720x1280") == set()
    assert prompts(member_client, reference="without", seconds="8", **{"from": today}) == {
        "portrait"
    }
    assert prompts(member_client, status="completed", reference="with") == set()
    assert prompts(member_client, q="portrait", seconds="8", to=today) == {"portrait"}


@pytest.mark.parametrize(
    "params",
    [
        {"size": "<b>1x1</b>"},
        {"size": "1280x720x1"},
        {"seconds": "-4"},
        {"seconds": "4.5"},
        {"seconds": "32768"},
        {"seconds": "٨"},
        {"reference": "maybe"},
        {"remixes": "yes"},
        {"from": "2026-02-30"},
        {"to": "9999-12-31"},
        {"from": "0001-01-01"},
        {"to": "yesterday"},
    ],
)
def test_a_filter_value_that_makes_no_sense_is_dropped(member_client, assorted, params):
    response = member_client.get(GALLERY, params)
    assert {job.prompt for job in response.context["jobs"]} == {
        job.prompt for job in assorted.values()
    }
    assert not any(response.context["filters"].values())
    assert response.context["export_url"] == reverse("videos-export")


def test_days_are_the_viewers_own(client, member, other_member):
    # 23:30 in London (UTC in winter) is already the next morning in Shanghai.
    make_job(member, prompt="late", created_at=datetime(2026, 1, 14, 23, 30, tzinfo=UTC))
    profile = Profile.of(member)
    profile.time_zone = "Asia/Shanghai"
    profile.save()
    client.force_login(member)
    assert prompts(client, **{"from": "2026-01-15", "to": "2026-01-15"}) == {"late"}
    assert prompts(client, to="2026-01-14") == set()
    client.force_login(other_member)  # no time zone of their own: the server's, UTC
    assert prompts(client, **{"from": "2026-01-14", "to": "2026-01-14"}) == {"late"}


def test_the_form_shows_every_filter_it_was_opened_with(member_client, member, assorted):
    query = {
        "size": "720x1280",
        "seconds": "8",
        "reference": "without",
        "remixes": "1",
        "from": "2026-01-01",
        "to": "2026-12-31",
    }
    page = member_client.get(GALLERY, query).content.decode()
    form = page[page.index('<form class="filters"') : page.index("</form>", page.index("filters"))]
    assert '<option value="720x1280" selected>' in form
    assert '<option value="8" selected>8 s</option>' in form
    assert '<option value="without" selected>' in form
    assert 'name="remixes" value="1" checked>' in form
    assert '<input type="date" name="from" value="2026-01-01">' in form
    assert '<input type="date" name="to" value="2026-12-31">' in form
    assert 'hx-push-url="true"' in form and 'method="get"' in form
    # A size the catalogue no longer offers still shows as the one filtered by.
    page = member_client.get(GALLERY, {"size": "640x480"}).content.decode()
    assert '<option value="640x480" selected>640x480</option>' in page


def test_every_filter_reaches_the_pager_and_the_export(member_client, member):
    make_history(member, PAGE_SIZE + 1, size="720x1280", seconds=8, remix_of=None)
    query = {
        "author": "me",
        "size": "720x1280",
        "seconds": "8",
        "reference": "without",
        "from": (timezone.localdate() - timedelta(days=40)).isoformat(),
        "to": timezone.localdate().isoformat(),
    }
    first = member_client.get(GALLERY, query)
    expected = urlencode(query)
    assert first.context["export_url"] == f"{reverse('videos-export')}?{expected}"
    assert first.context["older_url"].startswith(f"{GALLERY}?{expected}&older=")
    second = member_client.get(first.context["older_url"])
    assert len(shown(second)) == 1
    assert second.context["newer_url"].startswith(f"{GALLERY}?{expected}&newer=")


def test_the_filter_form_pushes_an_address_with_only_the_filters_in_use(member_client, member):
    every_field = dict.fromkeys(["q", "status", "author", "model", "seconds", "from", "to"], "")
    response = member_client.get(
        GALLERY,
        {**every_field, "size": "720x1280", "reference": "with", "remixes": "1"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response["HX-Push-Url"] == f"{GALLERY}?size=720x1280&reference=with&remixes=1"
    response = member_client.get(
        GALLERY, every_field, headers={"HX-Request": "true", "HX-Target": "results"}
    )
    assert response["HX-Push-Url"] == GALLERY


def test_the_export_keeps_the_same_jobs_as_the_gallery_for_every_filter(member_client, assorted):
    for params in (
        {"size": "720x1280"},
        {"reference": "with"},
        {"remixes": "1", "author": "me"},
        {"to": (timezone.localdate() - timedelta(days=1)).isoformat()},
    ):
        response = member_client.get(reverse("videos-export"), params)
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert {row["prompt"] for row in rows} == prompts(member_client, **params), params


def back(page) -> None:
    """The browser's Back button, returning once the page it goes back to is loaded. (Back to an
    address htmx pushed makes htmx load it again, which aborts Playwright's own go_back().)"""
    page.evaluate("document.documentElement.dataset.leftByBack = 'yes'; history.back()")
    expect(page.locator("html[data-left-by-back]")).to_have_count(0)


@pytest.mark.browser
def test_filters_live_in_the_url_and_the_back_button_undoes_them(page, member):
    """In a real browser: each filter change redraws the results and goes into the address, Back
    returns to the filters before, and the pager keeps them; nothing blocked by the policy."""
    from tests.test_browser import assert_nothing_blocked_or_logged, log_in

    make_history(member, PAGE_SIZE + 3, size="720x1280")
    make_history(member, 2)
    log_in(page, "mia", "pw-mia")
    cards = page.locator("#cards .job-card")
    expect(cards).to_have_count(PAGE_SIZE)

    page.select_option(".filters select[name=size]", "720x1280")
    expect(page).to_have_url(re.compile(r"/\?size=720x1280"))
    page.check(".filters input[name=remixes]")
    expect(page).to_have_url(re.compile(r"size=720x1280.*remixes=1"))
    expect(page.locator("#results .empty")).to_contain_text("No videos match these filters.")
    back(page)
    expect(page).to_have_url(re.compile(r"/\?size=720x1280$"))
    expect(cards).to_have_count(PAGE_SIZE)
    expect(page.locator(".filters select[name=size]")).to_have_value("720x1280")
    expect(page.locator(".filters input[name=remixes]")).not_to_be_checked()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "gallery-filters.png")

    page.click("text=Older →")
    expect(page).to_have_url(re.compile(r"size=720x1280&older=\d+_\d+"))
    expect(cards).to_have_count(3)
    expect(page.locator(".filters select[name=size]")).to_have_value("720x1280")
    page.fill(".filters input[name=to]", "2000-01-01")
    expect(page).to_have_url(re.compile(r"size=720x1280.*to=2000-01-01"))
    expect(cards).to_have_count(0)
    back(page)
    expect(page).to_have_url(re.compile(r"size=720x1280&older=\d+_\d+$"))
    expect(cards).to_have_count(3)
    back(page)
    expect(page).to_have_url(re.compile(r"/\?size=720x1280$"))
    expect(page.locator(".filters select[name=size]")).to_have_value("720x1280")
    back(page)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".filters select[name=size]")).to_have_value("")
    expect(cards).to_have_count(PAGE_SIZE)
    assert_nothing_blocked_or_logged(page, ["/"])
