"""Keyboard: the gallery's shortcuts move between cards and open them, go to the prompt and the
search, show their list; a video's page plays with space. Never while typing."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import make_job
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from videos.models import Status

# The test's page cannot play the factories' stand-in files: count the calls instead.
SPY_ON_PLAY = """
window.playCalls = 0;
HTMLMediaElement.prototype.play = function () { window.playCalls += 1; return Promise.resolve(); };
"""


def focused_card(page) -> str | None:
    return page.evaluate("() => document.activeElement.closest('.job-card')?.id ?? null")


@pytest.mark.browser
def test_the_gallery_and_a_video_page_work_from_the_keyboard(page, member):
    jobs = [
        make_job(member, status=Status.COMPLETED, with_files=True, prompt=f"Shot {n}")
        for n in range(3)
    ]
    newest_first = [f"job-{job.pk}" for job in reversed(jobs)]
    page.context.add_init_script(SPY_ON_PLAY)
    log_in(page, "mia", "pw-mia")

    page.keyboard.press("j")
    assert focused_card(page) == newest_first[0]
    page.keyboard.press("j")
    assert focused_card(page) == newest_first[1]
    page.keyboard.press("ArrowRight")
    assert focused_card(page) == newest_first[2]
    page.keyboard.press("k")
    assert focused_card(page) == newest_first[1]
    # The focus ring shows where the keyboard is.
    outline = page.evaluate(
        "() => getComputedStyle(document.activeElement.closest('.job-card')).outlineStyle"
    )
    assert outline == "solid"

    # Typing in a field is typing, not a shortcut.
    page.keyboard.press("n")
    expect(page.locator("#id_prompt")).to_be_focused()
    page.keyboard.type("jk/?")
    expect(page.locator("#id_prompt")).to_have_value("jk/?")
    expect(page.locator("#shortcuts")).not_to_be_visible()
    page.locator("#id_prompt").blur()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.locator("#q").blur()

    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    expect(page.locator("#shortcuts")).to_contain_text("Move between videos")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).not_to_be_visible()

    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/videos/{jobs[-1].pk}/$"))
    page.wait_for_load_state()
    page.keyboard.press(" ")
    assert page.evaluate("window.playCalls") == 1
    # ← and → walk the gallery it came from: newer, then older again.
    page.keyboard.press("ArrowRight")
    expect(page).to_have_url(re.compile(rf"/videos/{jobs[1].pk}/$"))
    page.wait_for_load_state()
    page.keyboard.press("ArrowLeft")
    expect(page).to_have_url(re.compile(rf"/videos/{jobs[-1].pk}/$"))
    page.wait_for_load_state()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("main")).to_contain_text("Shot 2")

    # From a filtered gallery, the neighbours are those of that gallery.
    other = make_job(member, status=Status.FAILED, prompt="Failed between")
    page.goto("/?status=completed")
    page.wait_for_load_state()
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/videos/{jobs[-1].pk}/\?status=completed$"))
    page.wait_for_load_state()
    page.keyboard.press("ArrowRight")
    expect(page).to_have_url(re.compile(rf"/videos/{jobs[1].pk}/\?status=completed$"))
    assert other.pk not in (jobs[1].pk, jobs[-1].pk)
    assert_nothing_blocked_or_logged(page, ["/", f"/videos/{jobs[-1].pk}/"])
