"""Share links: made by members and admins, opened by anyone holding the token (valid, expired,
revoked, with or without the password), showing only what their options say, serving only
their own job's or board's files, counting guesses, and leaving no token in the database, the
activity log or the logs."""

import hashlib
import io
import json
import logging
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Action, ActivityEntry
from muxweb.logfilters import MaskShareTokens
from muxweb.security import CONTENT_SECURITY_POLICY
from review import sharing
from review.models import Board, BoardItem, Comment, ShareLink
from tests.conftest import ARTIFACTS, wait_for
from tests.factories import finished_job, make_job, make_person
from tests.test_browser import assert_nothing_blocked_or_logged
from videos.models import ReviewState, Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The guess counter lives in the cache, which outlives a test's database.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def job(member):
    return make_job(member, status=Status.COMPLETED, with_files=True, prompt="A red kite")


@pytest.fixture
def guest():
    return Client()


def share(job=None, board=None, *, by, **options):
    return sharing.create_link(job, board, actor=by, **options)


def page_url(token: str) -> str:
    return reverse("review-share", args=[token])


def media_url(token: str, job, variant: str = "video") -> str:
    return reverse("review-share-media", args=[token, job.pk, variant])


def assert_guest_headers(response) -> None:
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response["X-Frame-Options"] == "DENY"


# Making and revoking


def test_a_link_keeps_only_the_hash_of_its_long_random_token(job, member):
    link, token = share(job, by=member)
    assert len(token) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = json.dumps(list(ShareLink.objects.values()), default=str)
    assert token not in stored
    entry = ActivityEntry.objects.get(action=Action.SHARE_CREATE)
    assert entry.actor == member and entry.job_id == job.pk
    assert entry.subject["share_link"] == link.pk
    assert token not in json.dumps(entry.subject)
    assert share(job, by=member)[1] != token


def test_a_link_lasts_seven_days_by_default_and_never_longer_than_the_setting(
    job, member, settings
):
    link, _token = share(job, by=member)
    assert link.expires_at - link.created_at == timedelta(days=7)
    settings.MUXWEB_SHARE_MAX_DAYS = 10
    link, _token = share(job, by=member, days=365)
    assert link.expires_at - link.created_at == timedelta(days=10)


def test_viewers_and_outsiders_may_not_share(job, viewer, catalogue, client):
    outsider = make_person("olga")
    for person in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            share(job, by=person)
        client.force_login(person)
        response = client.post(reverse("review-share-create", args=[job.pk]), {"days": "7"})
        assert response.status_code in (403, 404)
    assert not ShareLink.objects.exists()


def test_a_member_makes_a_link_on_the_job_page_and_sees_it_once(member_client, job):
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert 'id="share"' in page
    response = member_client.post(
        reverse("review-share-create", args=[job.pk]),
        {"days": "3", "password": "", "show_prompt": "on"},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    url = re.search(r'id="share-url" value="([^"]+)"', response.content.decode())[1]
    token = url.rstrip("/").rsplit("/", 1)[-1]
    link = ShareLink.objects.get()
    assert link.token_hash == sharing.hash_token(token)
    assert link.show_prompt and not link.allow_comments
    assert link.expires_at - link.created_at == timedelta(days=3)
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert f'id="share-link-{link.pk}"' in page
    assert token not in page


def test_the_form_refuses_more_days_than_the_setting(member_client, job, settings):
    settings.MUXWEB_SHARE_MAX_DAYS = 10
    response = member_client.post(reverse("review-share-create", args=[job.pk]), {"days": "11"})
    assert response.status_code == 302
    assert not ShareLink.objects.exists()


def test_viewers_see_no_share_section(client, viewer, job):
    client.force_login(viewer)
    page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert 'id="share"' not in page


def test_its_maker_or_an_admin_revokes_a_link_and_no_one_else(
    job, member, other_member, admin, client
):
    link, _token = share(job, by=member)
    url = reverse("review-share-revoke", args=[link.pk])
    client.force_login(other_member)
    assert client.post(url).status_code == 403
    client.force_login(admin)
    assert client.post(url).status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None
    entry = ActivityEntry.objects.get(action=Action.SHARE_REVOKE)
    assert entry.actor == admin and entry.subject["share_link"] == link.pk
    mine, _token = share(job, by=member)
    client.force_login(member)
    assert client.post(reverse("review-share-revoke", args=[mine.pk])).status_code == 302
    assert ShareLink.objects.get(pk=mine.pk).revoked_at is not None


# Opening a link


def test_a_valid_link_shows_the_job_to_anyone_and_counts_the_view(job, member, guest):
    link, token = share(job, by=member)
    response = guest.get(page_url(token))
    assert response.status_code == 200
    assert_guest_headers(response)
    page = response.content.decode()
    assert media_url(token, job) in page
    assert media_url(token, job, "thumbnail") in page  # the poster
    assert "A red kite" in page
    link.refresh_from_db()
    assert link.view_count == 1 and link.last_viewed_at is not None
    entry = ActivityEntry.objects.get(action=Action.SHARE_VIEW)
    assert entry.actor is None and entry.job_id == job.pk
    assert entry.subject["share_link"] == link.pk
    assert entry.subject["visitor"] and "127.0.0.1" not in json.dumps(entry.subject)
    guest.get(page_url(token))
    link.refresh_from_db()
    assert link.view_count == 2
    assert ActivityEntry.objects.filter(action=Action.SHARE_VIEW).count() == 2


def test_the_page_shows_only_what_the_options_say(job, member, guest):
    Comment.objects.create(job=job, author=member, body="Tighter crop please")
    _link, hidden = share(job, by=member, show_prompt=False)
    page = guest.get(page_url(hidden)).content.decode()
    assert "A red kite" not in page
    assert "Tighter crop please" not in page
    assert 'name="body"' not in page and 'name="state"' not in page
    _link, shown = share(
        job, by=member, show_comments=True, allow_comments=True, allow_approval=True
    )
    page = guest.get(page_url(shown)).content.decode()
    assert "A red kite" in page and "Tighter crop please" in page
    assert 'name="body"' in page and 'name="state"' in page


def test_a_video_plays_through_the_link_with_range_requests(job, member, guest):
    _link, token = share(job, by=member)
    response = guest.get(media_url(token, job), headers={"Range": "bytes=4-11"})
    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 4-11/64"
    assert b"".join(response.streaming_content) == b"ftypmp42"
    assert_guest_headers(response)
    assert guest.head(media_url(token, job, "thumbnail")).status_code == 200


@pytest.mark.parametrize("state", ["expired", "revoked", "trashed"])
def test_an_ended_link_is_gone_with_its_media(job, member, guest, state):
    link, token = share(job, by=member)
    if state == "expired":
        ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    elif state == "revoked":
        sharing.revoke(link, actor=member)
    else:
        job.trashed_at = timezone.now()
        job.save(update_fields=["trashed_at"])
    response = guest.get(page_url(token))
    assert response.status_code == 410
    assert_guest_headers(response)
    assert ("expired" if state == "expired" else "withdrawn") in response.content.decode()
    assert guest.get(media_url(token, job)).status_code == 410
    assert ShareLink.objects.get(pk=link.pk).view_count == 0


def test_an_unknown_token_is_not_found(guest, catalogue):
    response = guest.get(page_url("x" * 43))
    assert response.status_code == 404
    assert_guest_headers(response)
    assert "does not exist" in response.content.decode()


def test_a_link_serves_no_other_jobs_media(job, member, guest):
    other = make_job(member, status=Status.COMPLETED, with_files=True, prompt="A blue heron")
    _link, token = share(job, by=member)
    for variant in ("video", "thumbnail", "spritesheet"):
        assert guest.get(media_url(token, other, variant)).status_code == 404
    assert guest.get(media_url(token, job, "reference")).status_code == 404
    assert guest.get(reverse("review-share-job", args=[token, other.pk])).status_code == 404
    # The team's own media URL stays behind login.
    response = guest.get(reverse("videos-media", args=[job.pk, "video"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_board_link_shows_its_kept_jobs_in_order_and_nothing_else(member, guest):
    first = make_job(member, status=Status.COMPLETED, with_files=True, prompt="First shot")
    second = make_job(member, status=Status.COMPLETED, with_files=True, prompt="Second shot")
    trashed = make_job(
        member,
        status=Status.COMPLETED,
        with_files=True,
        prompt="Cut shot",
        trashed_at=timezone.now(),
    )
    elsewhere = make_job(member, status=Status.COMPLETED, with_files=True, prompt="Other board")
    board = Board.objects.create(name="Client pitch", created_by=member)
    for position, item in enumerate([second, trashed, first]):
        BoardItem.objects.create(board=board, job=item, position=position)
    link, token = share(board=board, by=member)
    page = guest.get(page_url(token)).content.decode()
    assert "Client pitch" in page
    assert page.index("Second shot") < page.index("First shot")
    assert "Cut shot" not in page and "Other board" not in page
    job_page = guest.get(reverse("review-share-job", args=[token, first.pk]))
    assert job_page.status_code == 200
    assert media_url(token, first) in job_page.content.decode()
    assert guest.get(media_url(token, first)).status_code == 200
    for outside in (trashed, elsewhere):
        assert guest.get(reverse("review-share-job", args=[token, outside.pk])).status_code == 404
        assert guest.get(media_url(token, outside)).status_code == 404
    assert ShareLink.objects.get(pk=link.pk).view_count == 2
    views = ActivityEntry.objects.filter(action=Action.SHARE_VIEW).order_by("pk")
    assert [entry.subject["board"] for entry in views] == [board.pk, board.pk]
    assert views.last().job_id == first.pk


def test_a_board_page_reads_the_same_few_rows_for_3_or_30_jobs(
    member, guest, django_assert_max_num_queries
):
    board = Board.objects.create(name="Long list", created_by=member)
    _link, token = share(board=board, by=member)
    for count in (3, 30):
        while board.items.count() < count:
            job = make_job(member, status=Status.COMPLETED, with_files=True)
            BoardItem.objects.create(board=board, job=job, position=job.pk)
        # The link, the rate count (cache), the view's count and entry, the board's items.
        with django_assert_max_num_queries(6):
            assert guest.get(page_url(token)).status_code == 200
    job = board.items.first().job
    with django_assert_max_num_queries(7):
        assert guest.get(reverse("review-share-job", args=[token, job.pk])).status_code == 200


def test_a_board_link_is_made_by_members_with_the_board_endpoint(member_client, member):
    board = Board.objects.create(name="Shot list", created_by=member)
    response = member_client.post(
        reverse("review-share-board", args=[board.pk]), {"days": "7", "next": "/"}
    )
    assert response.status_code == 200
    assert ShareLink.objects.get().board == board


# Passwords and guessing


def test_a_password_link_opens_only_with_its_password(job, member, guest):
    link, token = share(job, by=member, password="kite-2026")
    response = guest.get(page_url(token))
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()
    assert "A red kite" not in response.content.decode()
    assert guest.get(media_url(token, job)).status_code == 403
    assert ShareLink.objects.get(pk=link.pk).view_count == 0
    unlock = reverse("review-share-unlock", args=[token])
    wrong = guest.post(unlock, {"password": "kite-2025"})
    assert wrong.status_code == 403
    assert_guest_headers(wrong)
    assert "not right" in wrong.content.decode()
    assert guest.get(media_url(token, job)).status_code == 403
    right = guest.post(unlock, {"password": "kite-2026", "next": page_url(token)})
    assert right.status_code == 302 and right["Location"] == page_url(token)
    assert "A red kite" in guest.get(page_url(token)).content.decode()
    assert guest.get(media_url(token, job)).status_code == 200
    # Another browser has not given it.
    assert Client().get(media_url(token, job)).status_code == 403
    assert "kite-2026" not in ShareLink.objects.get(pk=link.pk).password_hash


def test_the_password_form_keeps_its_csrf_check(job, member):
    _link, token = share(job, by=member, password="kite-2026")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("review-share-unlock", args=[token]), {"password": "kite-2026"})
    assert response.status_code == 403
    assert strict.get(media_url(token, job)).status_code == 403


def test_guessing_is_refused_after_twenty_misses_from_one_address(job, member, guest):
    _link, token = share(job, by=member, password="kite-2026")
    for attempt in range(sharing.MISS_LIMIT):
        if attempt % 2:
            assert guest.get(page_url(f"guess{attempt:040d}")).status_code == 404
        else:
            unlock = reverse("review-share-unlock", args=[token])
            assert guest.post(unlock, {"password": "nope"}).status_code == 403
    refused = guest.get(page_url(token))
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(sharing.MISS_WINDOW_SECONDS)
    assert_guest_headers(refused)
    assert "Too many" in refused.content.decode()
    assert guest.get(media_url(token, job)).status_code == 429
    # Another address is not affected.
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert other.get(page_url(token)).status_code == 200


# Guests who may comment or approve


def test_a_guest_comments_under_a_name_when_the_link_allows_it(job, member, guest):
    _closed, closed = share(job, by=member)
    url = reverse("review-share-comment", args=[closed, job.pk])
    assert guest.post(url, {"name": "Lena", "body": "Love it"}).status_code == 403
    link, token = share(job, by=member, allow_comments=True, show_comments=True)
    url = reverse("review-share-comment", args=[token, job.pk])
    assert guest.post(url, {"name": "", "body": "Love it"}).status_code == 302
    assert not Comment.objects.exists()
    response = guest.post(url, {"name": "Lena (client)", "body": "Love it"})
    assert response.status_code == 302 and response["Location"] == page_url(token)
    comment = Comment.objects.get()
    assert (comment.guest_name, comment.share_link, comment.author) == ("Lena (client)", link, None)
    job.refresh_from_db()
    assert job.comment_count == 1
    entry = ActivityEntry.objects.get(action=Action.COMMENT)
    assert entry.actor is None and entry.subject["guest"] == "Lena (client)"
    page = guest.get(page_url(token)).content.decode()
    assert "Love it" in page and 'value="Lena (client)"' in page


def test_a_guest_approves_under_a_name_when_the_link_allows_it(job, member, guest):
    _closed, closed = share(job, by=member)
    url = reverse("review-share-review", args=[closed, job.pk])
    assert guest.post(url, {"name": "Lena", "state": "approved"}).status_code == 403
    _link, token = share(job, by=member, allow_approval=True)
    url = reverse("review-share-review", args=[token, job.pk])
    assert guest.post(url, {"name": "Lena", "state": "bogus"}).status_code == 302
    job.refresh_from_db()
    assert job.review_state == ReviewState.NONE
    assert guest.post(url, {"name": "Lena", "state": "approved"}).status_code == 302
    job.refresh_from_db()
    assert job.review_state == ReviewState.APPROVED and job.reviewed_by is None
    entry = ActivityEntry.objects.get(action=Action.REVIEW)
    assert entry.actor is None
    assert entry.subject["guest"] == "Lena" and entry.subject["state"] == "approved"


# Logs


def test_no_log_line_carries_a_token(catalogue):
    # Django logs each 4xx with its path; the console handler the settings configure masks it.
    console = next(
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, MaskShareTokens) for f in handler.filters)
    )
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        token = "secret" + "a" * 37
        assert Client().get(page_url(token)).status_code == 404
        assert Client().get(media_url(token, make_job(None), "video")).status_code == 404
    finally:
        console.setStream(previous)
    logged = stream.getvalue()
    assert "Not Found: /s/…/" in logged and "/s/…/media/" in logged
    assert token not in logged
    line = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s',
        ("GET /s/abc123/ HTTP/1.1", 200),
        None,
    )
    MaskShareTokens().filter(line)
    assert line.getMessage() == '"GET /s/…/ HTTP/1.1" 200'


# In the browser


@pytest.mark.browser
def test_a_share_link_plays_the_video_in_a_fresh_browser_without_login(
    page, browser, client, member, live_server
):
    client.force_login(member)
    job = finished_job(client, "A kite over the dunes")
    assert job.status == Status.COMPLETED and job.video
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # The member makes the link on the job's page, in a browser of their own.
    team = browser.new_context(base_url=live_server.url, locale="en-US")
    team.grant_permissions(["clipboard-read", "clipboard-write"])
    member_page = team.new_page()
    trouble = []
    member_page.on("console", lambda msg: trouble.append(f"{msg.type}: {msg.text}"))
    member_page.on("pageerror", lambda exc: trouble.append(f"pageerror: {exc}"))
    member_page.goto("/accounts/login/")
    member_page.fill("#id_username", "mia")
    member_page.fill("#id_password", "pw-mia")
    member_page.click("main button[type=submit]")
    member_page.wait_for_load_state()
    member_page.goto(reverse("videos-detail", args=[job.pk]))
    member_page.wait_for_load_state()
    share_section = member_page.locator("#share")
    share_section.locator("#share_days").fill("2")
    share_section.locator("button[type=submit]").click()
    member_page.wait_for_load_state()
    expect(member_page.locator("h1")).to_have_text("Share link made")
    url = member_page.locator("#share-url").input_value()
    member_page.click("button[data-copy]")
    expect(member_page.locator("button[data-copy]")).to_have_text("Copied")
    assert member_page.evaluate("navigator.clipboard.readText()") == url
    member_page.screenshot(path=ARTIFACTS / "share-link-made.png")
    member_page.click("a.button:has-text('Back')")
    member_page.wait_for_load_state()
    expect(member_page.locator("#share .share-list li")).to_have_count(1)
    member_page.locator("#share").screenshot(path=ARTIFACTS / "share-links.png")
    assert trouble == [], trouble
    team.close()

    # Anyone with the address watches, in a browser that never logged in.
    token_path = re.sub(r"^https?://[^/]+", "", url)
    page.goto(token_path)
    page.wait_for_load_state()
    expect(page.locator("video.player")).to_be_visible()
    expect(page.locator("nav.topnav")).to_have_count(0)  # no one is logged in
    page.evaluate(
        """() => {
            const v = document.querySelector('video.player');
            v.muted = true;
            return v.play();
        }"""
    )
    wait_for(lambda: page.evaluate("document.querySelector('video.player').currentTime") > 0, 15)
    page.screenshot(path=ARTIFACTS / "share-link.png", full_page=True)
    assert page.evaluate("document.referrer") == ""
    assert_nothing_blocked_or_logged(page, [token_path])
    link = ShareLink.objects.get()
    assert link.view_count == 1
    assert link.expires_at - link.created_at == timedelta(days=2)
