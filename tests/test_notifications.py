"""Notifications when my job ends: every page's notifier polls only while one of my own jobs
runs, answers 204 while nothing changed, and brings a toast (and a browser notification, for
those who asked) when one ends; never for someone else's job, always under the policy."""

import html
import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from accounts.models import Profile
from muxweb.security import CONTENT_SECURITY_POLICY
from tests.conftest import ARTIFACTS
from tests.factories import CREATE_FORM, make_job, make_person, write_files
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from tests.test_security import InlineCode
from videos.models import Status, VideoJob
from videos.notifications import MAX_POLL_IDS

POLL = reverse("videos-notifications")
HOSTILE_PROMPT = '<script>alert("x")</script> & a "quoted" lighthouse'


def notifier(text: str) -> str:
    """The notifier element's opening tag in a page or fragment."""
    (tag,) = re.findall(r'<div id="notifier"[^>]*>', text)
    return tag


def watched_ids(text: str) -> set[int]:
    """The job ids the notifier polls about; empty when it has no trigger."""
    tag = notifier(text)
    if "hx-trigger" not in tag:
        assert "hx-get" not in tag
        return set()
    assert 'hx-trigger="every 3s"' in tag and 'hx-swap="outerHTML"' in tag
    (ids,) = re.findall(rf'hx-get="{POLL}\?ids=([0-9,]*)"', tag)
    return {int(i) for i in ids.split(",")}


def toasts(text: str) -> list[str]:
    return re.findall(r'<article class="toast.*?</article>', text, re.S)


def poll(client, *ids: int):
    return client.get(POLL, {"ids": ",".join(map(str, ids))})


def gallery(client) -> str:
    response = client.get(reverse("videos-gallery"))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def running(member) -> VideoJob:
    return make_job(member, status=Status.IN_PROGRESS, progress=40, prompt=HOSTILE_PROMPT)


# The page's notifier


@pytest.mark.django_db
def test_a_page_makes_no_request_while_none_of_my_jobs_runs(member_client, member):
    make_job(member, status=Status.COMPLETED)
    make_job(member, status=Status.FAILED)
    text = gallery(member_client)
    assert watched_ids(text) == set()
    assert f'hx-get="{POLL}' not in text
    assert '<div id="toasts" class="toasts" aria-live="polite"></div>' in text


@pytest.mark.django_db
def test_a_page_watches_my_running_jobs_files_being_saved_included(member_client, member):
    rendering = make_job(member, status=Status.IN_PROGRESS)
    pending = make_job(member, status=Status.PENDING)
    saving = make_job(member, status=Status.COMPLETED, assets_fetched_at=None)
    make_job(member, status=Status.COMPLETED)
    assert watched_ids(gallery(member_client)) == {rendering.pk, pending.pk, saving.pk}
    # Every page, not only the gallery.
    text = member_client.get(reverse("videos-detail", args=[rendering.pk])).content.decode()
    assert watched_ids(text) == {rendering.pk, pending.pk, saving.pk}


@pytest.mark.django_db
def test_someone_elses_running_job_does_not_start_my_notifier(member_client, other_member):
    make_job(other_member, status=Status.IN_PROGRESS)
    assert watched_ids(gallery(member_client)) == set()


@pytest.mark.django_db
def test_no_notifier_for_visitors_and_accounts_outside_the_team(client, member):
    make_job(member, status=Status.IN_PROGRESS)
    text = client.get(reverse("login")).content.decode()
    assert 'id="notifier"' not in text and 'id="toasts"' not in text
    outsider = make_person("olga", None)
    make_job(outsider, status=Status.IN_PROGRESS)
    client.force_login(outsider)
    text = client.get(reverse("videos-gallery")).content.decode()
    assert 'id="notifier"' not in text


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_the_notifier_costs_one_query_per_page_and_none_on_polls_and_for_visitors(
    client, member, settings
):
    jobs = [make_job(member, status=Status.IN_PROGRESS) for _ in range(3)]
    client.force_login(member)
    gallery_poll = reverse("videos-gallery-poll") + f"?ids={jobs[0].pk}&v=stale"
    pages = [reverse("videos-gallery"), reverse("videos-detail", args=[jobs[0].pk]), gallery_poll]
    with_notifier = [count_queries(client, url) for url in pages]
    client.logout()
    login_page = count_queries(client, reverse("login"))

    processors = settings.TEMPLATES[0]["OPTIONS"]["context_processors"]
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "OPTIONS": {
                "context_processors": [
                    p for p in processors if p != "videos.context_processors.notifications"
                ]
            },
        }
    ]
    assert count_queries(client, reverse("login")) == login_page
    client.force_login(member)
    without = [count_queries(client, url) for url in pages]
    assert [a - b for a, b in zip(with_notifier, without, strict=True)] == [1, 1, 0]


# The poll


@pytest.mark.django_db
def test_poll_answers_204_while_my_jobs_run_on(
    member_client, member, running, django_assert_max_num_queries
):
    other = make_job(member, status=Status.COMPLETED, assets_fetched_at=None)  # files being saved
    with django_assert_max_num_queries(4):  # session, user, its role, the jobs
        response = poll(member_client, running.pk, other.pk)
    assert response.status_code == 204
    VideoJob.objects.filter(pk=running.pk).update(progress=90)
    assert poll(member_client, running.pk, other.pk).status_code == 204


@pytest.mark.django_db
def test_a_toast_when_my_job_completes_with_its_files(
    member_client, member, running, django_assert_max_num_queries
):
    assert poll(member_client, running.pk).status_code == 204
    running.status = Status.COMPLETED
    running.assets_fetched_at = running.updated_at
    write_files(running)
    running.save()

    with django_assert_max_num_queries(5):  # session, user, its role, the jobs, the profile
        response = poll(member_client, running.pk)
    assert response.status_code == 200
    text = response.content.decode()
    assert watched_ids(text) == set()  # nothing of mine runs: polling stops
    assert '<div hx-swap-oob="beforeend:#toasts">' in text
    (toast,) = toasts(text)
    thumbnail = reverse("videos-media", args=[running.pk, "thumbnail"])
    job_page = reverse("videos-detail", args=[running.pk])
    assert f'<img src="{thumbnail}" alt="">' in toast
    assert f'data-icon="{thumbnail}"' in toast
    assert f'href="{job_page}"' in toast and f'data-url="{job_page}"' in toast
    assert 'data-title="Your video is ready"' in toast
    assert "Your video is ready" in toast
    assert "<script>" not in text
    assert html.escape(HOSTILE_PROMPT) in toast
    assert "data-browser-notify" not in toast  # not asked for on My account


@pytest.mark.django_db
def test_a_toast_with_the_error_when_my_job_fails(member_client, member, running):
    VideoJob.objects.filter(pk=running.pk).update(
        status=Status.FAILED, error_code="moderation_blocked", error_message="Refused <b>here</b>"
    )
    text = poll(member_client, running.pk).content.decode()
    (toast,) = toasts(text)
    assert 'class="toast toast-failed"' in toast
    assert "Your video failed" in toast
    assert "<code>moderation_blocked</code> Refused &lt;b&gt;here&lt;/b&gt;" in toast
    assert 'data-body="Refused &lt;b&gt;here&lt;/b&gt; · ' in toast
    assert "<img" not in toast and "data-icon" not in toast  # no thumbnail to show
    assert f'href="{reverse("videos-detail", args=[running.pk])}"' in toast


@pytest.mark.django_db
def test_a_toast_once_saving_the_files_is_given_up_not_before(member_client, member):
    job = make_job(member, status=Status.COMPLETED, assets_fetched_at=None)
    assert poll(member_client, job.pk).status_code == 204
    VideoJob.objects.filter(pk=job.pk).update(fetch_given_up=True)
    (toast,) = toasts(poll(member_client, job.pk).content.decode())
    assert "Your video is ready" in toast and "Its files could not be saved here." in toast


@pytest.mark.django_db
def test_the_toast_asks_for_a_browser_notification_when_i_opted_in(member_client, member, running):
    Profile.objects.update_or_create(user=member, defaults={"browser_notifications": True})
    VideoJob.objects.filter(pk=running.pk).update(status=Status.FAILED)
    (toast,) = toasts(poll(member_client, running.pk).content.decode())
    assert "data-browser-notify" in toast


@pytest.mark.django_db
def test_no_toast_for_someone_elses_job_and_its_id_is_dropped(
    member_client, member, other_member, running
):
    theirs = make_job(other_member, status=Status.COMPLETED, with_files=True)
    still_running = make_job(other_member, status=Status.IN_PROGRESS)
    response = poll(member_client, running.pk, theirs.pk, still_running.pk)
    assert response.status_code == 200
    text = response.content.decode()
    assert toasts(text) == []
    assert "hx-swap-oob" not in text
    assert watched_ids(text) == {running.pk}
    assert poll(member_client, running.pk).status_code == 204

    VideoJob.objects.filter(pk=running.pk).update(author=other_member, status=Status.FAILED)
    text = poll(member_client, running.pk).content.decode()
    assert toasts(text) == [] and watched_ids(text) == set()


@pytest.mark.django_db
def test_the_notifier_takes_up_my_jobs_started_elsewhere_and_stops_when_none_runs(
    member_client, member, running
):
    started_in_another_tab = make_job(member, status=Status.PENDING)
    text = poll(member_client, running.pk).content.decode()
    assert watched_ids(text) == {running.pk, started_in_another_tab.pk}
    assert toasts(text) == []

    VideoJob.objects.filter(pk=running.pk).update(status=Status.FAILED)
    text = poll(member_client, running.pk, started_in_another_tab.pk).content.decode()
    assert watched_ids(text) == {started_in_another_tab.pk}
    assert len(toasts(text)) == 1

    VideoJob.objects.filter(pk=started_in_another_tab.pk).update(status=Status.FAILED)
    text = poll(member_client, started_in_another_tab.pk).content.decode()
    assert notifier(text) == '<div id="notifier" class="notifier">'
    assert len(toasts(text)) == 1


@pytest.mark.django_db
def test_poll_ignores_ids_that_name_no_job_and_reads_at_most_its_cap(
    member_client, member, running, django_assert_max_num_queries
):
    garbage = ["abc", "-1", "0", "1e3", "²", "٣", " 7", "9" * 30, str(2**63)]
    response = member_client.get(POLL, {"ids": [",".join(garbage), str(running.pk)]})
    assert response.status_code == 204  # what is left is the one job of mine that runs

    many = ",".join(str(running.pk + 1000 + i) for i in range(MAX_POLL_IDS * 50))
    with django_assert_max_num_queries(4):
        response = member_client.get(POLL, {"ids": many})
    assert watched_ids(response.content.decode()) == {running.pk}


@pytest.mark.django_db
def test_poll_needs_the_team_and_a_get(client, member, viewer, running):
    assert client.get(POLL, {"ids": running.pk}).status_code == 302  # to the login page
    client.force_login(make_person("olga", None))
    assert client.get(POLL, {"ids": running.pk}).status_code == 403
    client.force_login(viewer)
    response = client.get(POLL, {"ids": running.pk})
    assert response.status_code == 200 and toasts(response.content.decode()) == []
    client.force_login(member)
    assert client.post(POLL, {"ids": running.pk}).status_code == 405


# Starting it, and the policy


@pytest.mark.django_db
def test_generating_a_video_starts_the_pages_notifier(member_client, member):
    response = member_client.post(
        reverse("videos-create"),
        {"prompt": "A kite over dunes", **CREATE_FORM},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    text = response.content.decode()
    job = VideoJob.objects.get(prompt="A kite over dunes")
    assert '<div id="notifier" class="notifier" hx-swap-oob="true" hx-get=' in text
    assert watched_ids(text) == {job.pk}


@pytest.mark.django_db
def test_the_notifier_and_its_toasts_hold_nothing_the_policy_blocks(member_client, member, running):
    pages = [member_client.get(reverse("videos-gallery"))]
    VideoJob.objects.filter(pk=running.pk).update(status=Status.FAILED)
    pages.append(poll(member_client, running.pk))
    assert toasts(pages[-1].content.decode())
    for response in pages:
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        parser = InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == []


# In a real browser

# Runs in every page before its own scripts: records each browser notification shown.
RECORD_NOTIFICATIONS = """
window.shownNotifications = [];
if (window.Notification) {
  const Shown = window.Notification;
  window.Notification = class extends Shown {
    constructor(title, options) {
      window.shownNotifications.push({title, body: options.body, icon: options.icon || ""});
      super(title, options);
    }
  };
}
"""


def notification_polls(tab) -> list[str]:
    return [url for url in tab.requested if "/notifications/" in url]


@pytest.mark.browser
def test_a_toast_and_a_browser_notification_when_my_job_ends_and_no_request_before(
    page, live_server, member
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    Profile.objects.update_or_create(user=member, defaults={"browser_notifications": True})
    make_job(member, status=Status.COMPLETED, prompt="An older video")
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.context.add_init_script(RECORD_NOTIFICATIONS)
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    log_in(page, "mia", "pw-mia")

    # Nothing of mine runs: the page asks nothing, however long it stays open.
    page.wait_for_timeout(4000)
    assert notification_polls(page) == []
    expect(page.locator("#notifier")).not_to_have_attribute("hx-trigger", re.compile("."))

    # Generating one starts the notifier without a reload.
    page.fill("#id_prompt", "A paper <kite> over dunes")
    page.click("button:has-text('Generate')")
    expect(page.locator(".job-card").first).to_contain_text("A paper <kite>")
    job = VideoJob.objects.get(prompt="A paper <kite> over dunes")
    expect(page.locator("#notifier")).to_have_attribute("hx-trigger", "every 3s")
    deadline = time.monotonic() + 10
    while not notification_polls(page) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert notification_polls(page), "the notifier polls while my job runs"

    # The job completes with its files (as the sweep would leave it).
    write_files(job)
    Image.new("RGB", (160, 90), (30, 120, 200)).save(job.thumbnail.path, "WEBP")
    job.status = Status.COMPLETED
    job.progress = 100
    job.assets_fetched_at = job.updated_at
    job.save()
    started = time.monotonic()
    toast = page.locator("#toasts .toast")
    expect(toast).to_be_visible(timeout=8000)
    assert time.monotonic() - started < 6, "within a few seconds"
    expect(toast).to_contain_text("Your video is ready")
    expect(toast).to_contain_text("A paper <kite> over dunes")
    expect(toast.locator("a.toast-link")).to_have_attribute(
        "href", reverse("videos-detail", args=[job.pk])
    )
    thumbnail = toast.locator("img")
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") == 160
    expect(page.locator("#notifier")).not_to_have_attribute("hx-trigger", re.compile("."))
    page.screenshot(path=ARTIFACTS / "notification-toast.png")
    assert page.evaluate("window.shownNotifications") == [
        {
            "title": "Your video is ready",
            "body": "A paper <kite> over dunes",
            "icon": reverse("videos-media", args=[job.pk, "thumbnail"]),
        }
    ]

    # Closed by its button; and the page is quiet again.
    polls = len(notification_polls(page))
    toast.locator(".toast-close").click()
    expect(toast).to_have_count(0)
    page.wait_for_timeout(3500)
    assert len(notification_polls(page)) == polls
    assert_nothing_blocked_or_logged(page, ["/", "/videos/new", "/notifications/"])


# A headless browser answers no permission prompt: this one answers what the test says, and
# counts the prompts.
FAKE_PERMISSION_PROMPT = """
window.permissionPrompts = 0;
window.permissionState = "default";
window.permissionAnswer = "denied";
if (window.Notification) {
  Object.defineProperty(Notification, "permission", {get: () => window.permissionState});
  Notification.requestPermission = () => {
    window.permissionPrompts += 1;
    window.permissionState = window.permissionAnswer;
    return Promise.resolve(window.permissionState);
  };
}
"""


@pytest.mark.browser
def test_ticking_browser_notifications_asks_the_browser_and_explains_a_refusal(page, member):
    page.context.add_init_script(FAKE_PERMISSION_PROMPT)
    log_in(page, "mia", "pw-mia")
    account = reverse("accounts-account")
    page.goto(account)
    help_text = page.locator("#notification-permission-help")
    expect(help_text).to_be_hidden()

    page.check("#id_browser_notifications")  # the gesture that may ask
    expect(help_text).to_be_visible()
    assert page.evaluate("window.permissionPrompts") == 1
    page.uncheck("#id_browser_notifications")
    expect(help_text).to_be_hidden()
    page.check("#id_browser_notifications")  # refused already: the browser would not ask again
    expect(help_text).to_be_visible()
    assert page.evaluate("window.permissionPrompts") == 1

    page.evaluate("window.permissionState = 'default'; window.permissionAnswer = 'granted'")
    page.uncheck("#id_browser_notifications")
    page.check("#id_browser_notifications")
    expect(help_text).to_be_hidden()
    assert page.evaluate("window.permissionPrompts") == 2
    # Chromium's [DOM] hints about the page's password form are not this script's business.
    trouble = [m for m in page.console_messages if not m.startswith("verbose: [DOM]")]
    assert trouble + page.policy_violations == []


def test_a_poll_after_the_session_ended_sends_the_whole_page_to_the_login_page(client, member):
    """Signed out in another tab (or deactivated): the next htmx poll does not swap the login
    form into the page, it takes the page there and back afterwards."""
    page = "http://testserver/usage/?month=2026-11"
    response = client.get(
        reverse("videos-notifications") + "?ids=1",
        headers={"HX-Request": "true", "HX-Current-URL": page},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fusage%2F%3Fmonth%3D2026-11"
    # Without htmx, the usual redirect.
    plain = client.get(reverse("videos-notifications"))
    assert plain.status_code == 302 and plain["Location"].startswith("/accounts/login/?next=")
