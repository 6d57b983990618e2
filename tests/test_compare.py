"""Comparing two to four jobs side by side: which may be compared, by whom, the prompts' word diff,
and the players kept in sync in a real browser."""

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from review.compare import parse_ids, prompt_diff
from review.compare_views import compare_url
from tests.conftest import ARTIFACTS, wait_for
from tests.factories import finished_job, make_job, make_person
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from videos.models import Status

COMPARE = reverse("review-compare")


def test_words_added_and_removed_are_marked_against_the_first_prompt():
    html = prompt_diff("A red car on a wet road at night", "A blue car on a road at dawn")
    assert html == (
        "A <del>red</del><ins>blue</ins> car on a <del>wet</del> road at "
        "<del>night</del><ins>dawn</ins>"
    )
    assert prompt_diff("same words", "same words") == "same words"


def test_chinese_is_diffed_by_character_and_markup_in_prompts_is_escaped():
    assert prompt_diff("一只猫在屋顶上", "一只狗在屋顶上睡觉") == (
        "一只<del>猫</del><ins>狗</ins>在屋顶上<ins>睡觉</ins>"
    )
    html = prompt_diff("a <b>cat</b>", "a <i>cat</i>")
    assert "<b>" not in html and "<i>" not in html and "&lt;i&gt;cat&lt;/i&gt;" in html


def test_ids_are_read_in_order_once_each_and_refused_if_not_numbers():
    assert parse_ids(["3", "1,2", "3"]) == [3, 1, 2]
    assert parse_ids(["1", "x"]) is None
    assert parse_ids(["١"]) is None


def test_two_to_four_kept_jobs_are_compared_and_anything_else_is_explained(member_client, member):
    jobs = [make_job(member, status=Status.COMPLETED, with_files=True) for _ in range(5)]
    ids = [job.pk for job in jobs]
    for count in (2, 4):
        response = member_client.get(compare_url(ids[:count]))
        assert response.status_code == 200
        assert response.content.decode().count('class="compare-player"') == count
    for query in ([ids[0]], ids, []):
        response = member_client.get(compare_url(query))
        assert response.status_code == 400
        assert "Pick two to four videos to compare." in response.content.decode()
    assert member_client.get(COMPARE + "?ids=1&ids=abc").status_code == 400
    jobs[1].trashed_at = timezone.now()
    jobs[1].save()
    response = member_client.get(compare_url([ids[0], ids[1], 999999]))
    assert response.status_code == 404
    assert f"#{ids[1]}, #999999" in response.content.decode()


def test_the_page_shows_each_prompt_against_the_first_with_model_size_length_and_cost(
    member_client, member
):
    first = make_job(member, status=Status.COMPLETED, prompt="A fox in the snow")
    second = make_job(
        member, status=Status.COMPLETED, prompt="A fox in the rain", model="sora-2-pro"
    )
    page = member_client.get(compare_url([first.pk, second.pk])).content.decode()
    assert '<p class="compare-prompt" dir="auto">A fox in the snow</p>' in page
    assert "A fox in the <del>snow</del><ins>rain</ins>" in page
    assert "sora-2-pro" in page and "1280x720" in page and "4 s" in page
    assert "No video yet." in page  # no files: nothing to play
    assert "style=" not in page


def test_who_may_compare(client, member, viewer, admin):
    ids = [make_job(member, status=Status.COMPLETED).pk for _ in range(2)]
    url = compare_url(ids)
    assert client.get(url).status_code == 302  # anonymous: to the login page
    for person, status in [(member, 200), (viewer, 200), (admin, 200)]:
        client.force_login(person)
        assert client.get(url).status_code == status
    client.force_login(make_person("olga"))
    assert client.get(url).status_code == 403
    client.force_login(make_person("dora", "member", active=False))
    assert client.get(url).status_code == 302


def test_the_bulk_bar_sends_the_selection_oldest_first_to_the_compare_page(member_client, member):
    older = make_job(member, status=Status.COMPLETED)
    newer = make_job(member, status=Status.COMPLETED)
    page = member_client.get(reverse("videos-gallery")).content.decode()
    assert f'id="bulk-compare" formaction="{COMPARE}"' in page
    response = member_client.post(COMPARE, {"ids": [newer.pk, older.pk]})
    assert response.status_code == 302
    assert response["Location"] == compare_url([older.pk, newer.pk])
    response = member_client.post(COMPARE, {"ids": [older.pk]})
    assert response.status_code == 400
    response = member_client.post(COMPARE, {"all": "1"})
    assert response.status_code == 302  # the two that match the (empty) filters


def test_a_remix_links_to_its_comparison_with_its_parent_in_the_lineage(member_client, member):
    parent = make_job(member, status=Status.COMPLETED)
    remix = make_job(member, status=Status.COMPLETED, remix_of=parent, prompt="At night")
    page = member_client.get(reverse("videos-detail", args=[remix.pk])).content.decode()
    link = f"{COMPARE}?ids={parent.pk}&amp;ids={remix.pk}"
    assert f'href="{link}">Compare with parent</a>' in page
    page = member_client.get(reverse("videos-detail", args=[parent.pk])).content.decode()
    assert page.count("Compare with parent") == 1, "the tree links the remix, not the original"


# In the browser


@pytest.mark.browser
def test_compared_videos_play_and_seek_in_sync(page, client, member, provider):
    client.force_login(member)
    first = finished_job(client, "A red kite over green hills")
    second = finished_job(client, "A blue kite over green hills")
    log_in(page, "mia", "pw-mia")
    compare = page.locator("#bulk-compare")
    page.locator(f"#job-{first.pk} .select-card").click()
    expect(compare).to_be_disabled()
    page.locator(f"#job-{second.pk} .select-card").click()
    expect(compare).to_be_enabled()
    compare.click()
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Compare")
    expect(page.locator(".compare-prompt ins")).to_have_text("blue")
    expect(page.locator(".compare-prompt del")).to_have_text("red")
    times = "Array.from(document.querySelectorAll('video.compare-player'), v => v.currentTime)"
    ready = "Array.from(document.querySelectorAll('video.compare-player'), v => v.readyState)"
    wait_for(lambda: min(page.evaluate(ready)) >= 2, 15)
    assert page.evaluate("document.querySelectorAll('video.compare-player')[1].muted")
    assert not page.evaluate("document.querySelectorAll('video.compare-player')[0].muted")

    page.click("#compare-play")
    wait_for(lambda: min(page.evaluate(times)) > 0.3, 10)
    expect(page.locator("#compare-play")).to_have_text("Pause")
    page.locator("#compare-scrubber").fill("2.5")
    wait_for(lambda: 2.5 <= min(page.evaluate(times)) < 3.5, 10)
    for _ in range(3):
        a, b = page.evaluate(times)
        assert abs(a - b) < 0.1, (a, b)
        page.wait_for_timeout(150)

    page.click("#compare-play")  # pause
    expect(page.locator("#compare-play")).to_have_text("Play")
    page.locator("#compare-scrubber").fill("1")
    wait_for(lambda: page.evaluate(times) == [1, 1], 10)
    page.locator("body").press(".")
    wait_for(lambda: page.evaluate(times) == [pytest.approx(1 + 1 / 24, abs=1e-3)] * 2, 10)
    page.locator("body").press(",")
    page.locator("body").press(",")
    wait_for(lambda: page.evaluate(times) == [pytest.approx(1 - 1 / 24, abs=1e-3)] * 2, 10)
    page.screenshot(path=ARTIFACTS / "compare.png", full_page=True)
    assert_nothing_blocked_or_logged(page, ["/", COMPARE])
