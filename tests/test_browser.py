"""In a real headless Chromium: log in, generate, watch the card complete without a reload, play."""

import io
import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.worker]

CHROMIUM = Path("/usr/bin/chromium")
# Quiet, offline-safe flags for a sandboxed root session (see Debian's chromium package).
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium package")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server) -> Page:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    yield page
    context.close()


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
    expect(page.locator("#poller")).not_to_have_attribute(
        "hx-trigger", re.compile("."), timeout=10_000
    )
    page.screenshot(path=ARTIFACTS / "gallery-completed.png")

    card.locator("a.thumb").click()
    video = page.locator("video.player")
    expect(video).to_be_visible()
    page.wait_for_function("document.querySelector('video.player').readyState >= 1", timeout=15_000)
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
    assert page.console_errors == []
