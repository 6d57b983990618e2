"""The live gallery: a teammate's new job appears at the top of a first page whose filters it
matches, without reload, and an idle gallery's poll costs the same at any history size."""

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS
from tests.factories import make_job
from videos import views
from videos.models import Status, VideoJob
from videos.paging import PAGE_SIZE

POLL = reverse("videos-gallery-poll")
WATCH = re.compile(r'<div id="poll-watch"[^>]*>(.*?)</div>', re.S)
INPUT = re.compile(r'<input type="hidden"(?: class="poll-id")? name="(\w+)" value="([^"]*)"')
VERSION = re.compile(r'id="poll-version" name="v" value="([^"]*)"')
CARD = re.compile(r'<article id="job-(\d+)"')


def poll_state(text: str) -> list[tuple[str, str]]:
    """What the page's poller would send: the running cards' ids, the version, and the watch."""
    (watch,) = WATCH.findall(text)
    ids = [("ids", pk) for pk in re.findall(r'class="poll-id" name="ids" value="(\d+)"', text)]
    watched = [(name, html.unescape(value)) for name, value in INPUT.findall(watch)]
    return [*ids, ("v", VERSION.search(text).group(1)), *watched]


def follow(state: list[tuple[str, str]], answer: str) -> list[tuple[str, str]]:
    """The poller's state after a 200 answer: its cards, version and watch redrawn."""
    ids = [pair for pair in state if pair[0] == "ids"]
    ids += [("ids", pk) for pk in re.findall(r'class="poll-id" name="ids" value="(\d+)"', answer)]
    watch = WATCH.findall(answer)
    watched = (
        [(name, html.unescape(value)) for name, value in INPUT.findall(watch[0])]
        if watch
        else [pair for pair in state if pair[0] not in ("ids", "v")]
    )
    return [*dict.fromkeys(ids), ("v", VERSION.search(answer).group(1)), *watched]


def arrived(answer: str) -> list[int]:
    """The ids of the cards a poll answer prepends, in their order."""
    start = answer.find('<div hx-swap-oob="afterbegin:#cards">')
    if start == -1:
        return []
    end = answer.find('<div id="poll-watch"', start)
    return [int(pk) for pk in CARD.findall(answer[start:end])]


def open_gallery(client, **filters) -> tuple[str, list[tuple[str, str]]]:
    response = client.get(reverse("videos-gallery"), filters)
    assert response.status_code == 200
    text = response.content.decode()
    return text, poll_state(text)


def poll(client, state):
    return client.get(POLL, state)


@pytest.mark.django_db
def test_a_teammates_new_job_comes_to_the_top_of_my_first_page(member_client, member, other_member):
    make_job(member, status=Status.COMPLETED, prompt="an old one")
    text, state = open_gallery(member_client)
    assert f'hx-trigger="every {views.IDLE_POLL_SECONDS}s"' in text, "idle, it still watches"
    assert poll(member_client, state).status_code == 204

    first = make_job(other_member, status=Status.COMPLETED, prompt="otto's first")
    second = make_job(other_member, status=Status.FAILED, prompt="otto's second")
    answer = poll(member_client, state)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert arrived(text) == [second.pk, first.pk], "newest first, on top of the cards"
    assert "otto&#x27;s second" in text
    state = follow(state, text)
    assert poll(member_client, state).status_code == 204, "brought once, then idle again"


@pytest.mark.django_db
def test_a_new_running_job_joins_the_running_cards_poll(member_client, member, other_member):
    make_job(member, status=Status.COMPLETED)
    _text, state = open_gallery(member_client)
    running = make_job(other_member, status=Status.IN_PROGRESS, progress=10)
    text = poll(member_client, state).content.decode()
    assert arrived(text) == [running.pk]
    assert f'hx-trigger="every {views.POLL_SECONDS}s"' in text
    state = follow(state, text)
    assert ("ids", str(running.pk)) in state
    assert poll(member_client, state).status_code == 204
    VideoJob.objects.filter(pk=running.pk).update(
        progress=60, updated_at=timezone.now() + timedelta(seconds=1)
    )
    text = poll(member_client, state).content.decode()
    assert arrived(text) == [], "refreshed in place, not added again"
    assert f'id="job-{running.pk}" class="job-card status-in_progress" hx-swap-oob="true"' in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filters", "matching", "other"),
    [
        ({"q": "kite"}, {"prompt": "a red kite"}, {"prompt": "a blue whale"}),
        ({"author": "OTTO"}, {}, {"author": "mia"}),
        ({"author": "me"}, {"author": "mia"}, {}),
        ({"status": "failed"}, {"status": Status.FAILED}, {"status": Status.COMPLETED}),
        ({"status": "running"}, {"status": Status.IN_PROGRESS}, {"status": Status.FAILED}),
        ({"model": "sora-2-pro"}, {"model": "sora-2-pro"}, {}),
        ({"remixes": "1", "q": "snow"}, {"prompt": "snow", "remix": True}, {"prompt": "snow"}),
    ],
)
def test_only_new_jobs_that_match_the_filters_are_brought(
    member_client, member, other_member, filters, matching, other
):
    people = {"mia": member, "otto": other_member}
    filters = {k: str(other_member.pk) if v == "OTTO" else v for k, v in filters.items()}
    original = make_job(member, status=Status.COMPLETED, prompt="the original")

    def job(fields: dict) -> VideoJob:
        fields = {"status": Status.COMPLETED, **fields}
        author = people[fields.pop("author", "otto")]
        if fields.pop("remix", False):
            fields["remix_of"] = original
        return make_job(author, **fields)

    _text, state = open_gallery(member_client, **filters)
    assert "newest" in dict(state)
    miss = job(other)
    hit = job(matching)
    answer = poll(member_client, state)
    assert arrived(answer.content.decode()) == [hit.pk]
    state = follow(state, answer.content.decode())
    assert poll(member_client, state).status_code == 204

    job(other)
    answer = poll(member_client, state)
    assert arrived(answer.content.decode()) == [], "a job that does not match is not brought"
    # Looked at once: the page's place moves past it, and the next poll is idle again.
    state = follow(state, answer.content.decode())
    assert poll(member_client, state).status_code == 204
    assert miss.pk not in arrived(answer.content.decode())


@pytest.mark.django_db
def test_a_job_i_made_on_the_page_is_not_brought_twice(member_client, member, other_member):
    make_job(member, status=Status.COMPLETED)
    _text, state = open_gallery(member_client)
    teammates = make_job(other_member, status=Status.COMPLETED, prompt="made meanwhile")
    response = member_client.post(
        reverse("videos-create"),
        {"prompt": "mine", "model": "sora-2", "seconds": "4", "size": "1280x720"},
        headers={"HX-Request": "true"},
    )
    created = response.content.decode()
    mine = VideoJob.objects.get(prompt="mine")
    assert f'<input type="hidden" name="shown" value="{mine.pk}">' in created
    # What the page sends next: the composer's card is running, and named as shown.
    state = [*state, ("shown", str(mine.pk))] + [("ids", str(mine.pk))] * mine.is_active
    answer = poll(member_client, state).content.decode()
    assert arrived(answer) == [teammates.pk], "the teammate's job made before mine still comes"
    state = follow(state, answer)
    assert ("shown", str(mine.pk)) not in state, "the page's place is past it now"
    assert poll(member_client, state).status_code == 204


@pytest.mark.django_db
def test_an_empty_gallery_shows_its_pager_and_export_link_with_the_first_card(
    member_client, member, other_member
):
    text, state = open_gallery(member_client)
    assert '<nav id="pager" class="pager" aria-label="Pages" hidden>' in text
    assert 'id="export"' in text
    assert ("newest", "") in state and ("empty", "1") in state
    assert poll(member_client, state).status_code == 204

    job = make_job(other_member, status=Status.COMPLETED)
    answer = poll(member_client, state).content.decode()
    assert arrived(answer) == [job.pk]
    assert '<nav id="pager" class="pager" aria-label="Pages" hx-swap-oob="true">' in answer
    assert f'id="export" href="{reverse("videos-export")}"' in answer
    assert '<p id="gallery-empty" hidden hx-swap-oob="true"></p>' in answer
    state = follow(state, answer)
    assert ("empty", "1") not in state
    assert poll(member_client, state).status_code == 204


@pytest.mark.django_db
def test_a_filtered_empty_gallery_watches_from_the_newest_job_of_all(
    member_client, member, other_member
):
    make_job(other_member, status=Status.COMPLETED, prompt="otto's")
    text, state = open_gallery(member_client, author="me")
    assert "No videos match these filters." in text
    assert ("empty", "1") in state and ("author", "me") in state
    assert poll(member_client, state).status_code == 204, "otto's old job is behind its place"
    mine = make_job(member, status=Status.COMPLETED)
    answer = poll(member_client, state).content.decode()
    assert arrived(answer) == [mine.pk]
    assert f'id="export" href="{reverse("videos-export")}?author=me"' in answer


@pytest.mark.django_db
def test_older_pages_and_a_past_to_day_do_not_watch(member_client, member):
    jobs = [make_job(member, status=Status.COMPLETED) for _ in range(PAGE_SIZE + 1)]
    first, _state = open_gallery(member_client)
    older = re.search(r'href="/\?older=([^"]+)" rel="next"', first).group(1)
    text, state = open_gallery(member_client, older=older)
    assert [name for name, _ in state] == ["v"], "nothing watched"
    assert '<div id="poller">' in text, "and no poll while nothing runs"

    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    text, state = open_gallery(member_client, to=yesterday)
    assert [name for name, _ in state] == ["v"]
    assert '<div id="poller">' in text
    text, state = open_gallery(member_client, to=timezone.localdate().isoformat())
    assert "newest" in dict(state)
    assert jobs


@pytest.mark.django_db
def test_a_poll_with_no_watch_or_a_broken_one_brings_nothing(member_client, member, other_member):
    make_job(member, status=Status.COMPLETED)
    make_job(other_member, status=Status.COMPLETED)
    for state in ([("v", "x")], [("v", "x"), ("newest", "not-a-cursor")]):
        answer = poll(member_client, state)
        assert answer.status_code == 200
        assert arrived(answer.content.decode()) == []
        assert '<div id="poller">' in answer.content.decode()


def idle_poll_queries(client, state) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert poll(client, state).status_code == 204
    return len(ctx.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("filters", [{}, {"q": "lantern", "author": "me", "status": "completed"}])
def test_an_idle_poll_reads_one_row_at_10_jobs_as_at_2000(
    member_client, member, other_member, filters
):
    def grow(total: int) -> None:
        now = timezone.now() - timedelta(days=1)
        missing = total - VideoJob.objects.count()
        VideoJob.objects.bulk_create(
            VideoJob(
                author=(member, other_member)[i % 2],
                prompt=f"a paper lantern {i}",
                model="sora-2",
                seconds=4,
                size="1280x720",
                status=Status.COMPLETED,
                progress=100,
                assets_fetched_at=now,
                created_at=now - timedelta(minutes=i),
            )
            for i in range(missing)
        )

    grow(10)
    _text, state = open_gallery(member_client, **filters)
    few = idle_poll_queries(member_client, state)
    grow(2000)
    _text, state = open_gallery(member_client, **filters)
    many = idle_poll_queries(member_client, state)
    assert few == many
    assert many <= 4  # session, user, its groups, the newest job's place


@pytest.mark.django_db
def test_a_poll_that_brings_cards_stays_small_whatever_arrived(
    member_client, member, other_member, django_assert_max_num_queries
):
    make_job(member, status=Status.COMPLETED)
    _text, state = open_gallery(member_client)
    for _ in range(PAGE_SIZE + 3):
        make_job(other_member, status=Status.IN_PROGRESS)
    with django_assert_max_num_queries(7):
        answer = poll(member_client, state).content.decode()
    assert len(arrived(answer)) == PAGE_SIZE, "at most a page at a time"
    state = follow(state, answer)
    answer = poll(member_client, state).content.decode()
    assert len(arrived(answer)) == 3, "the rest with the next poll"
    newest = VideoJob.objects.order_by("-created_at", "-id").first()
    assert arrived(answer)[0] == newest.pk


@pytest.mark.browser
def test_a_teammates_job_appears_in_my_open_gallery_without_reload(page, member, other_member):
    from tests.test_browser import assert_nothing_blocked_or_logged, log_in

    log_in(page, "mia", "pw-mia")
    expect(page.locator("#gallery-empty")).to_be_visible()
    expect(page.locator("#export")).to_be_hidden()
    page.evaluate("window.stillTheSamePage = true")
    within = (views.IDLE_POLL_SECONDS + 3) * 1000

    job = make_job(other_member, status=Status.COMPLETED, prompt="Otto's harbour at dawn")
    card = page.locator(".job-card").first
    expect(card).to_have_attribute("id", f"job-{job.pk}", timeout=within)
    expect(card).to_contain_text("Otto's harbour at dawn")
    expect(card).to_contain_text("otto")
    expect(page.locator("#export")).to_be_visible()
    expect(page.locator("#gallery-empty")).to_be_hidden()
    assert page.evaluate("window.stillTheSamePage"), "no reload happened"

    page.select_option("select[name=author]", "me")
    expect(page.locator(".job-card")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"\?author=me$"))
    hidden = make_job(other_member, status=Status.COMPLETED, prompt="Not for this filter")
    # Two polls after it was made: the one under way when it was made may have missed it.
    for _ in range(2):
        with page.expect_response(lambda r: "/videos/poll" in r.url, timeout=within):
            pass
    expect(page.locator(f"#job-{hidden.pk}")).to_have_count(0)
    expect(page.locator(".job-card")).to_have_count(0)
    mine = make_job(member, status=Status.COMPLETED, prompt="Mia's own, made elsewhere")
    expect(page.locator(".job-card").first).to_have_attribute(
        "id", f"job-{mine.pk}", timeout=within
    )
    page.screenshot(path=ARTIFACTS / "gallery-live.png")
    assert_nothing_blocked_or_logged(page, ["/accounts/login/", "/", "/videos/poll"])
