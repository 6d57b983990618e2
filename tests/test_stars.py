"""Stars, titles and notes: a star is its owner's alone (viewers star too), the Starred filter
shows one's own, and a title and note by the author or an admin show on the card and the job page,
are found by search and are in the activity log."""

import pytest
from django.urls import reverse

from accounts.models import Action, ActivityEntry
from review.models import Star
from review.stars import toggle_star
from tests.factories import make_job, make_person
from videos.models import Status, VideoJob

pytestmark = pytest.mark.django_db


def gallery_ids(client, **params) -> list[int]:
    return [job.pk for job in client.get(reverse("videos-gallery"), params).context["jobs"]]


def test_a_star_toggles_and_is_its_owners_alone(member, other_member):
    job = make_job(member)
    assert toggle_star(job, user=other_member) is True
    assert toggle_star(job, user=member) is True
    assert toggle_star(job, user=member) is False
    assert list(Star.objects.values_list("user__username", flat=True)) == ["otto"]


def test_the_starred_filter_shows_my_stars_only(client, member, other_member, viewer):
    mine, theirs, neither = (make_job(member) for _ in range(3))
    toggle_star(mine, user=viewer)
    toggle_star(theirs, user=other_member)
    client.force_login(viewer)
    assert gallery_ids(client, starred="1") == [mine.pk]
    assert set(gallery_ids(client)) == {mine.pk, theirs.pk, neither.pk}
    # A value that makes no sense is dropped, as for every filter.
    assert set(gallery_ids(client, starred="yes")) == {mine.pk, theirs.pk, neither.pk}


def test_the_starred_filter_is_kept_by_the_pager_and_the_bulk_bar(member_client, member):
    make_job(member)
    toggle_star(make_job(member), user=member)
    page = member_client.get(reverse("videos-gallery"), {"starred": "1", "review": "none"})
    html = page.content.decode()
    assert '<input type="hidden" name="starred" value="1">' in html
    assert '<input type="hidden" name="review" value="none">' in html
    assert 'name="starred" value="1" checked' in html
    assert page.context["export_url"].endswith("?starred=1&review=none")


def test_starring_from_a_card_swaps_the_button_or_returns_to_the_page(client, member, viewer):
    job = make_job(member, status=Status.COMPLETED)
    client.force_login(viewer)
    url = reverse("review-star", args=[job.pk])
    answer = client.post(url, {"next": "/?starred=1"}, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert 'class="star starred" aria-pressed="true"' in answer.content.decode()
    assert 'value="/?starred=1"' in answer.content.decode()
    answer = client.post(url, {"next": "/?q=x"})
    assert answer.status_code == 302 and answer["Location"] == "/?q=x"
    assert not Star.objects.exists()
    # Another site is no place to return to.
    answer = client.post(url, {"next": "https://evil.example/"})
    assert answer["Location"] == reverse("videos-detail", args=[job.pk])


def test_the_card_and_the_job_page_show_my_star_filled(member_client, member, other_member):
    starred, plain = make_job(member), make_job(member)
    toggle_star(starred, user=member)
    toggle_star(plain, user=other_member)
    html = member_client.get(reverse("videos-gallery")).content.decode()
    assert html.count('class="star starred"') == 1
    assert html.count('class="star"') == 1
    page = member_client.get(reverse("videos-detail", args=[starred.pk])).content.decode()
    assert 'class="star starred" aria-pressed="true"' in page


def test_the_gallery_asks_once_for_stars_whatever_the_cards(
    member_client, member, django_assert_max_num_queries
):
    for _ in range(3):
        toggle_star(make_job(member, status=Status.COMPLETED), user=member)
    url = reverse("videos-gallery")
    with django_assert_max_num_queries(20) as few:
        member_client.get(url)
    for _ in range(20):
        toggle_star(make_job(member, status=Status.COMPLETED), user=member)
    with django_assert_max_num_queries(20) as many:
        member_client.get(url)
    assert len(few.captured_queries) == len(many.captured_queries)


def test_outsiders_and_anonymous_visitors_cannot_star(client, member):
    job = make_job(member)
    url = reverse("review-star", args=[job.pk])
    assert client.post(url).status_code == 302  # to the login page
    client.force_login(make_person("olga"))
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405
    assert not Star.objects.exists()


def test_the_author_gives_a_title_and_note_shown_on_card_and_page(member_client, member):
    job = make_job(member, prompt="Waves at dusk")
    url = reverse("review-describe", args=[job.pk])
    form = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'id="job-describe" class="describe-form"' in form
    answer = member_client.post(
        url,
        {"title": "  Opening\nshot ", "note": "Client likes the\r\nlight.  "},
        headers={"HX-Request": "true"},
    )
    assert '<h2 class="job-title" dir="auto">Opening shot</h2>' in answer.content.decode()
    job.refresh_from_db()
    assert (job.title, job.note) == ("Opening shot", "Client likes the\nlight.")
    card = member_client.get(reverse("videos-gallery")).content.decode()
    assert '<h2 class="card-title" dir="auto">Opening shot</h2>' in card
    assert "Client likes the" in card
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Client likes the<br>light." in page
    entry = ActivityEntry.objects.get(action=Action.DESCRIBE)
    assert entry.actor == member and entry.job_id == job.pk
    assert entry.subject["title"] == "Opening shot" and entry.subject["old_title"] == ""
    assert entry.subject["prompt"] == "Waves at dusk"
    assert gallery_ids(member_client, q="opening") == [job.pk]


def test_describing_without_javascript_is_a_page_and_a_redirect(member_client, member):
    job = make_job(member)
    url = reverse("review-describe", args=[job.pk])
    page = member_client.get(url)
    assert page.status_code == 200 and b"<h1>" in page.content
    answer = member_client.post(url, {"title": "Take 2", "note": ""})
    assert answer.status_code == 302
    assert answer["Location"] == reverse("videos-detail", args=[job.pk])
    too_long = member_client.post(url, {"title": "x" * 121, "note": ""})
    assert too_long.status_code == 200 and b"field-error" in too_long.content
    assert VideoJob.objects.get(pk=job.pk).title == "Take 2"
    # Saving the same again writes no second entry.
    member_client.post(url, {"title": "Take 2", "note": ""})
    assert ActivityEntry.objects.filter(action=Action.DESCRIBE).count() == 1


@pytest.mark.parametrize(("who", "status"), [("author", 200), ("admin", 200), ("other", 403),
                                              ("viewer", 403), ("outsider", 403)])  # fmt: skip
def test_only_the_author_or_an_admin_describes(client, member, who, status):
    job = make_job(member)
    people = {
        "author": member,
        "admin": make_person("ada", "admin"),
        "other": make_person("otto", "member"),
        "viewer": make_person("vera", "viewer"),
        "outsider": make_person("olga"),
    }
    client.force_login(people[who])
    url = reverse("review-describe", args=[job.pk])
    assert client.get(url).status_code == status
    answer = client.post(url, {"title": "Mine now", "note": ""})
    assert answer.status_code == (302 if status == 200 else 403)
    page = client.get(reverse("videos-detail", args=[job.pk]))
    if who != "outsider":
        assert (b'class="edit-describe"' in page.content) is (status == 200)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_star_filter_title_search_and_approval_in_the_browser(page, member):
    import re

    from playwright.sync_api import expect

    from tests.test_browser import ARTIFACTS, assert_nothing_blocked_or_logged, log_in

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = make_job(member, status=Status.COMPLETED, prompt="Waves at dusk", with_files=True)
    make_job(member, status=Status.COMPLETED, prompt="A red kite over the dunes")
    log_in(page, "mia", "pw-mia")

    star = page.locator(f"#job-{kept.pk} .star")
    star.click()
    expect(page.locator(f"#job-{kept.pk} .star")).to_have_attribute("aria-pressed", "true")
    page.check("input[name=starred]")
    expect(page).to_have_url(re.compile(r"starred=1"))
    expect(page.locator(".job-card")).to_have_count(1)
    expect(page.locator(".job-card")).to_have_id(f"job-{kept.pk}")

    page.locator(f"#job-{kept.pk} a.thumb").click()
    page.wait_for_load_state()
    page.get_by_role("link", name="Add a title and note").click()
    page.fill(f"#describe-title-{kept.pk}", "Lumberjack opening")
    page.fill(f"#describe-note-{kept.pk}", "客户喜欢这只猫咪")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".job-title")).to_have_text("Lumberjack opening")
    page.fill(f"#review-comment-{kept.pk}", "Ship it")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#job-approval .review-badge")).to_have_text("Approved")
    page.screenshot(path=ARTIFACTS / "job-review.png")

    page.goto("/")
    page.wait_for_load_state()
    page.fill("#q", "lumberjack")
    expect(page).to_have_url(re.compile(r"q=lumberjack"))
    card = page.locator(".job-card")
    expect(card).to_have_count(1)
    expect(card.locator(".card-title")).to_have_text("Lumberjack opening")
    expect(card.locator(".review-badge")).to_have_text("Approved")
    expect(card.locator(".star")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=ARTIFACTS / "gallery-review.png")
    star_url = f"/videos/{kept.pk}/star"
    assert_nothing_blocked_or_logged(page, ["/", star_url, f"/videos/{kept.pk}/review"])
