"""In a real headless Chromium: log in, generate, watch the card complete without a reload, play;
and on every page, nothing the Content Security Policy blocks and nothing in the console."""

import io
import re
import time

import pytest
from django.contrib.auth.models import Group
from PIL import Image
from playwright.sync_api import Page, expect

from muxweb.security import CONTENT_SECURITY_POLICY
from tests.conftest import ARTIFACTS, wait_for
from tests.factories import make_job
from videos.models import Status
from videos.views import IDLE_POLL_SECONDS

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def assert_nothing_blocked_or_logged(page: Page, visited: list[str]) -> None:
    """No console message and no policy violation so far; every page visited and every htmx
    request was answered with the policy."""
    page.wait_for_timeout(200)  # lets the last violation reports come through
    trouble = page.console_messages + page.policy_violations
    assert trouble == [], "\n".join(trouble)
    seen = {re.sub(r"^https?://[^/]+", "", response.url).split("?")[0] for response in page.answers}
    for path in visited:
        assert path in seen, f"{path} was not visited"
    for response in page.answers:
        header = response.all_headers().get("content-security-policy")
        assert header == CONTENT_SECURITY_POLICY, (response.url, header)


def red_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (220, 20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.screenshot(path=ARTIFACTS / "login.png")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    expect(page.locator("#composer")).to_be_visible()


def test_member_generates_a_video_and_watches_it_complete_without_reload(
    page, qcluster, member, provider
):
    provider.render_seconds = 8  # long enough to watch the bar move a few times
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_in(page, "mia", "pw-mia")
    page.screenshot(path=ARTIFACTS / "gallery-empty.png")

    page.fill("#id_prompt", "A paper lantern drifting over a night lake")
    page.select_option("#id_model", "sora-2-pro")
    expect(page.locator("#id_size option[value='1792x1024']")).to_have_count(1)
    page.select_option("#id_size", "1280x720")
    page.select_option("#id_seconds", "4")
    expect(page.locator("#estimate")).to_have_text("$1.20")
    page.set_input_files(
        "#id_input_reference",
        files=[{"name": "first-frame.png", "mimeType": "image/png", "buffer": red_png(640, 640)}],
    )
    expect(page.locator("#reference-preview img")).to_have_attribute("src", re.compile("^blob:"))
    expect(page.locator("#reference-preview img")).to_have_css("aspect-ratio", "1280 / 720")
    page.screenshot(path=ARTIFACTS / "composer-reference.png")
    page.evaluate("window.stillTheSamePage = true")
    page.click("button:has-text('Generate')")

    card = page.locator(".job-card").first
    expect(card).to_contain_text("A paper lantern")
    expect(card).to_contain_text("mia")
    expect(page.locator("#id_prompt")).to_have_value("")
    seen: list[float] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(set(seen)) < 3:
        # Read without waiting: the bar disappears when the job completes.
        seen += card.locator("progress").evaluate_all("bars => bars.map(bar => bar.value)")
        if not card.locator("progress").count() and seen:
            break
        page.wait_for_timeout(250)
    page.screenshot(path=ARTIFACTS / "gallery-rendering.png")
    assert len(set(seen)) >= 2, f"the progress bar moved on its own: {seen}"
    assert seen == sorted(seen), "and only forward"

    expect(card.locator("img")).to_be_visible(timeout=60_000)
    expect(card).to_have_class(re.compile("status-completed"))
    expect(card.locator(".badge-completed")).to_have_text(
        re.compile("Completed", re.I), timeout=30_000
    )
    assert page.evaluate("window.stillTheSamePage"), "no reload happened"
    # Nothing runs any more: the first page only watches for new jobs, less often.
    expect(page.locator("#poller")).to_have_attribute(
        "hx-trigger", f"every {IDLE_POLL_SECONDS}s", timeout=10_000
    )
    page.screenshot(path=ARTIFACTS / "gallery-completed.png")

    card.locator("a.thumb").click()
    video = page.locator("video.player")
    expect(video).to_be_visible()
    # Polled from here: wait_for_function would retry through eval, which the policy forbids.
    wait_for(lambda: page.evaluate("document.querySelector('video.player').readyState") >= 1, 15)
    duration = page.evaluate("document.querySelector('video.player').duration")
    assert 3.8 < duration < 4.3
    page.evaluate(
        """() => new Promise(resolve => {
            const v = document.querySelector('video.player');
            v.addEventListener('seeked', resolve, {once: true});
            v.currentTime = 2.5;
        })"""
    )
    assert page.evaluate("document.querySelector('video.player').currentTime") == pytest.approx(
        2.5, abs=0.1
    )
    expect(page.locator(".job-facts")).to_contain_text("sora-2-pro")
    expect(page.locator(".downloads a")).to_have_count(3)
    expect(page.locator("img.reference-thumb")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "job-page.png", full_page=True)
    job_page = page.url

    page.click("a.button.danger")
    expect(page.locator("h1")).to_have_text("Move this video to the trash?")
    page.screenshot(path=ARTIFACTS / "delete-confirm.png")
    job_path = re.sub(r"^https?://[^/]+", "", job_page)
    visited = ["/accounts/login/", "/", "/videos/new/options", "/videos/new", "/videos/poll"]
    assert_nothing_blocked_or_logged(page, [*visited, job_path, job_path + "delete"])


def test_admin_pages_work_under_the_policy(page, admin, member):
    job = make_job(member, status=Status.FAILED, prompt="Looked at in the admin")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw-ada")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "admin-index.png")

    job_form = f"/admin/videos/videojob/{job.pk}/change/"
    page.goto(job_form)
    expect(page.locator("#content h1")).to_be_visible()
    # A form with the admin's own widgets: the two-pane picker for a group's permissions.
    group_form = f"/admin/auth/group/{Group.objects.get(name='Members').pk}/change/"
    page.goto(group_form)
    expect(page.locator("#id_permissions_from")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "admin-group.png", full_page=True)
    # People are read here and managed on the Team page.
    user_page = f"/admin/auth/user/{member.pk}/change/"
    page.goto(user_page)
    expect(page.locator("#content h1")).to_be_visible()
    expect(page.locator("input[name=username]")).to_have_count(0)
    catalogue = "/admin/videos/modelspec/"
    page.goto(catalogue)
    expect(page.locator("#result_list")).to_be_visible()
    visited = ["/admin/login/", "/admin/", job_form, group_form, user_page, catalogue]
    assert_nothing_blocked_or_logged(page, visited)
