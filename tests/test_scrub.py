"""Scrubbing a card through its spritesheet, the job page's filmstrip, and the spritesheet made on
first view for jobs saved without one."""

import re
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image
from playwright.sync_api import expect

from review.filmstrip import MUXWEB_LAYOUT, SpriteLayout, frames, sprite_layout, timecode
from tests.conftest import ARTIFACTS, wait_for
from tests.factories import finished_job, make_job
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from videos.models import Lease, Status
from videos.queue import spritesheet_lease


def sheet(job, settings, width: int, height: int) -> None:
    """A spritesheet picture of this size for the job."""
    name = f"videos/{job.pk}/spritesheet.jpg"
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height)).save(path, format="JPEG")
    job.spritesheet.name = name
    job.save()


def test_muxweb_sheets_are_ten_frames_in_five_columns_whatever_the_shape(member, settings):
    landscape = make_job(member, status=Status.COMPLETED, size="1280x720")
    sheet(landscape, settings, 1280, 288)
    portrait = make_job(member, status=Status.COMPLETED, size="720x1280")
    sheet(portrait, settings, 1280, 910)
    assert sprite_layout(landscape) == sprite_layout(portrait) == MUXWEB_LAYOUT
    assert SpriteLayout(columns=5, rows=2, tiles=10) == MUXWEB_LAYOUT


def test_a_provider_sheet_of_another_grid_is_read_from_its_size_and_the_video_shape(
    member, settings
):
    job = make_job(member, status=Status.COMPLETED, size="1280x720")
    sheet(job, settings, 4 * 160, 3 * 90)  # 4 columns, 3 rows of 160x90 tiles
    assert sprite_layout(job) == SpriteLayout(columns=4, rows=3, tiles=12)
    sheet(job, settings, 10 * 100, 1 * 56)  # one row of ten
    assert sprite_layout(job) == SpriteLayout(columns=10, rows=1, tiles=10)


def test_an_unreadable_sheet_is_taken_for_muxweb_layout_and_no_sheet_for_none(member):
    job = make_job(member, status=Status.COMPLETED, with_files=True)  # not a real JPEG
    assert sprite_layout(job) == MUXWEB_LAYOUT
    job.spritesheet = ""
    assert sprite_layout(job) is None


def test_frames_are_spread_like_derive_picks_them_and_labelled_in_tenths(member):
    job = make_job(member, status=Status.COMPLETED, seconds=4)
    shown = frames(job, MUXWEB_LAYOUT)
    assert [f.seconds for f in shown] == pytest.approx([0.2 + 0.4 * i for i in range(10)])
    assert [(f.column, f.row) for f in shown[4:6]] == [(4, 0), (0, 1)]
    assert shown[2].label == "0:01.0"
    assert timecode(83.2) == "1:23.2"
    assert timecode(59.97) == "1:00.0"


def test_completed_cards_carry_their_sheet_for_scrubbing_and_running_ones_do_not(
    member_client, member
):
    done = make_job(member, status=Status.COMPLETED, with_files=True)
    running = make_job(member, status=Status.IN_PROGRESS)
    page = member_client.get(reverse("videos-gallery")).content.decode()
    card = page[page.index(f'id="job-{done.pk}"') :]
    card = card[: card.index("</article>")]
    sprite_url = reverse("videos-media", args=[done.pk, "spritesheet"])
    assert f'data-sprite="{sprite_url}"' in card
    assert 'data-columns="5" data-rows="2" data-tiles="10" data-aspect="1.7778"' in card
    assert 'class="scrub" aria-hidden="true" hidden' in card
    other = page[page.index(f'id="job-{running.pk}"') :]
    assert "data-sprite" not in other[: other.index("</article>")]


def test_the_job_page_shows_the_sheet_as_a_filmstrip_of_seek_buttons(member_client, member):
    job = make_job(member, status=Status.COMPLETED, with_files=True, seconds=8)
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert page.count('class="filmstrip-frame"') == 10
    assert 'aria-label="Seek to 0:00.4"' in page
    assert 'data-seconds="7.600"' in page
    assert 'class="filmstrip"' in page and "style=" not in page


def test_a_job_saved_without_a_sheet_asks_for_one_once_however_often_it_is_shown(
    member_client, member, django_capture_on_commit_callbacks, caplog
):
    job = make_job(member, status=Status.COMPLETED, with_files=True)
    job.spritesheet = ""
    job.save()
    running = make_job(member, status=Status.COMPLETED, with_files=True, assets_fetched_at=None)
    running.spritesheet = ""
    running.save()
    with django_capture_on_commit_callbacks() as asked:
        member_client.get(reverse("videos-detail", args=[job.pk]))
        member_client.get(reverse("videos-detail", args=[job.pk]))
        member_client.get(reverse("videos-gallery"))
        member_client.get(reverse("videos-detail", args=[running.pk]))
    assert len(asked) == 1, "one task, and none for a job whose files are still being saved"
    # The factory's video is not a real one: the task fails, and the next views ask no more.
    with caplog.at_level("WARNING"):
        asked[0]()
    assert "no spritesheet could be made" in caplog.text
    job.refresh_from_db()
    assert not job.spritesheet
    assert Lease.is_held(spritesheet_lease(job.pk))
    with django_capture_on_commit_callbacks() as asked:
        member_client.get(reverse("videos-gallery"))
    assert asked == []


@pytest.mark.django_db(transaction=True)
def test_an_older_job_gets_its_sheet_made_from_its_video_on_first_view(
    member_client, member, settings
):
    job = finished_job(member_client, "A kite over a windy beach")
    (Path(settings.MEDIA_ROOT) / job.spritesheet.name).unlink()
    job.spritesheet = ""
    job.save()
    # Tasks run inline here: the view's request made it.
    member_client.get(reverse("videos-detail", args=[job.pk]))
    job.refresh_from_db()
    with Image.open(Path(settings.MEDIA_ROOT) / job.spritesheet.name) as picture:
        assert picture.format == "JPEG" and picture.size == (1280, 288)
    assert sprite_layout(job) == MUXWEB_LAYOUT
    assert not Lease.is_held(spritesheet_lease(job.pk))
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert page.count('class="filmstrip-frame"') == 10


# In the browser


@pytest.mark.browser
def test_hovering_a_card_scrubs_its_frames_and_the_filmstrip_seeks_the_player(
    page, client, member, provider
):
    client.force_login(member)
    job = finished_job(client, "A paper boat on a pond")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in(page, "mia", "pw-mia")
    card = page.locator(f"#job-{job.pk}")
    thumb = card.locator("a.thumb")
    overlay = card.locator(".scrub")
    expect(card.locator("img")).to_be_visible()
    sprite_url = reverse("videos-media", args=[job.pk, "spritesheet"])
    assert not any(sprite_url in url for url in requested), "the sheet waits for a hover"
    box = thumb.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] / 2)
    expect(overlay).to_be_visible()
    expect(overlay).to_have_attribute("data-frame", "0")
    assert overlay.evaluate("el => el.style.backgroundPosition") == "0% 0%"
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2)
    expect(overlay).to_have_attribute("data-frame", "5")
    assert overlay.evaluate("el => el.style.backgroundPosition") == "0% 100%"
    page.mouse.move(box["x"] + box["width"] * 0.99, box["y"] + box["height"] / 2)
    expect(overlay).to_have_attribute("data-frame", "9")
    assert overlay.evaluate("el => el.style.backgroundPosition") == "100% 100%"
    page.screenshot(path=ARTIFACTS / "scrub-card.png")
    assert any(sprite_url in url for url in requested)
    video_url = reverse("videos-media", args=[job.pk, "video"])
    assert not any(video_url in url for url in requested), "scrubbing never loads the video"
    page.mouse.move(5, 5)
    expect(overlay).to_be_hidden()

    thumb.click()
    page.wait_for_load_state()
    strip = page.locator(".filmstrip")
    expect(strip.locator(".filmstrip-frame")).to_have_count(10)
    wait_for(lambda: page.evaluate("document.querySelector('video.player').readyState") >= 1, 15)
    frame = strip.get_by_role("button", name="Seek to 0:01.4")
    frame.click()
    wait_for(
        lambda: page.evaluate(
            "(() => { const v = document.querySelector('video.player');"
            " return !v.seeking && Math.abs(v.currentTime - 1.4) < 0.05; })()"
        ),
        10,
    )
    expect(frame).to_have_class(re.compile(r"\bcurrent\b"))
    expect(frame).to_have_attribute("aria-current", "true")
    tile = frame.locator(".filmstrip-tile")
    assert tile.evaluate("el => el.style.backgroundPosition") == "75% 0%"
    page.screenshot(path=ARTIFACTS / "filmstrip.png", full_page=True)
    assert_nothing_blocked_or_logged(page, ["/", reverse("videos-detail", args=[job.pk])])
