"""Comments on a job's page: who may write, edit and delete them, pins to a moment of the video,
@mentions of active teammates with their toast and "For you" list, the count on cards, and a
job page whose query count does not grow with its comments."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import Action, ActivityEntry
from review.comments import CommentError, add_comment, delete_comment, edit_comment, timecode
from review.mentions import POLL_SECONDS
from review.models import Comment, Mention
from tests.conftest import ARTIFACTS, wait_for
from tests.factories import finished_job, make_job, make_person
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from videos.models import Status, VideoJob

POLL = reverse("review-mentions-poll")
FOR_YOU = reverse("review-for-you")


def job_page(client, job) -> str:
    response = client.get(reverse("videos-detail", args=[job.pk]))
    assert response.status_code == 200
    return response.content.decode()


def post_comment(client, job, body: str, **extra):
    return client.post(reverse("review-comment-add", args=[job.pk]), {"body": body, **extra})


def count(job) -> int:
    return VideoJob.objects.values_list("comment_count", flat=True).get(pk=job.pk)


# Writing, editing, deleting


@pytest.mark.django_db
def test_members_viewers_and_admins_comment_and_outsiders_do_not(client, member, viewer, admin):
    job = make_job(member, status=Status.COMPLETED)
    for person in (member, viewer, admin):
        client.force_login(person)
        response = post_comment(client, job, f"Hello from {person.username}")
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("videos-detail", args=[job.pk]))
    assert count(job) == 3
    text = job_page(client, job)
    assert "Hello from vera" in text and 'id="comment-body"' in text

    client.force_login(make_person("olga", None))
    assert post_comment(client, job, "Let me in").status_code == 403
    client.logout()
    assert post_comment(client, job, "Anonymous").status_code == 302  # to the login page
    assert Comment.objects.count() == 3
    entry = ActivityEntry.objects.filter(action=Action.COMMENT).latest("pk")
    assert entry.actor == admin and entry.subject["text"] == "Hello from ada"


@pytest.mark.django_db
def test_a_pin_is_kept_to_the_millisecond_and_shown_as_a_timecode(member_client, member):
    job = make_job(member, status=Status.COMPLETED, with_files=True)
    post_comment(member_client, job, "Look here", pin="1", at_seconds="3.2049")
    post_comment(member_client, job, "Not pinned", at_seconds="2")  # no tick: no pin
    post_comment(member_client, job, "Garbage pin", pin="1", at_seconds="NaN")
    pinned, unpinned, garbage = Comment.objects.order_by("pk")
    assert str(pinned.at_seconds) == "3.205"
    assert unpinned.at_seconds is None and garbage.at_seconds is None
    text = job_page(member_client, job)
    assert '<button type="button" class="timecode" data-at="3.205"' in text
    assert 'class="comment-mark" data-at="3.205"' in text
    assert timecode(pinned.at_seconds) == "0:03.2"
    assert [timecode(s) for s in (0, 59.96, 754, 3723.5)] == [
        "0:00.0",
        "1:00.0",
        "12:34.0",
        "1:02:03.5",
    ]


@pytest.mark.django_db
def test_a_comment_is_refused_empty_or_too_long_and_loses_its_control_characters(member):
    job = make_job(member)
    with pytest.raises(CommentError):
        add_comment(job, " \x00\n ", author=member)
    with pytest.raises(CommentError):
        add_comment(job, "x" * 4001, author=member)
    comment = add_comment(job, "  fine\x07\r\nline two  ", author=member)
    assert comment.body == "fine\nline two"
    assert count(job) == 1


@pytest.mark.django_db
def test_htmx_swaps_the_comments_and_an_error_keeps_the_draft(member_client, member):
    job = make_job(member, status=Status.COMPLETED)
    headers = {"HX-Request": "true"}
    url = reverse("review-comment-add", args=[job.pk])
    response = member_client.post(url, {"body": "Swapped in"}, headers=headers)
    text = response.content.decode()
    assert response.status_code == 200 and text.lstrip().startswith('<section id="comments"')
    assert "Swapped in" in text and "<html" not in text
    response = member_client.post(url, {"body": "   "}, headers=headers)
    assert response.status_code == 422 and 'id="comment-error"' in response.content.decode()


@pytest.mark.django_db
def test_only_the_author_edits_and_the_edit_is_marked(client, member, other_member, admin):
    job = make_job(member, status=Status.COMPLETED)
    comment = add_comment(job, "First words", author=member)
    edit = reverse("review-comment-edit", args=[comment.pk])
    for person in (other_member, admin):
        client.force_login(person)
        assert client.get(edit).status_code == 403
        assert client.post(edit, {"body": "Not mine"}).status_code == 403
    client.force_login(member)
    assert client.get(edit).status_code == 200
    assert "edited</span>" not in job_page(client, job)
    assert client.post(edit, {"body": "Better words"}).status_code == 302
    comment.refresh_from_db()
    assert comment.body == "Better words" and comment.edited_at is not None
    assert 'class="comment-edited muted"' in job_page(client, job)
    fragment = client.post(edit, {"body": "Best words"}, headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith(f'<li id="comment-{comment.pk}"')


@pytest.mark.django_db
def test_authors_and_admins_delete_and_other_members_do_not(
    client, member, other_member, admin, viewer
):
    job = make_job(member, status=Status.COMPLETED)
    mine = add_comment(job, "Mine", author=member)
    viewers = add_comment(job, "A viewer's", author=viewer)
    assert count(job) == 2
    client.force_login(other_member)
    assert client.post(reverse("review-comment-delete", args=[mine.pk])).status_code == 403
    assert "review-comment-delete" not in job_page(client, job)
    assert f'action="{reverse("review-comment-delete", args=[mine.pk])}"' not in job_page(
        client, job
    )

    client.force_login(member)
    assert client.post(reverse("review-comment-delete", args=[mine.pk])).status_code == 302
    assert count(job) == 1
    with pytest.raises(PermissionError):
        delete_comment(viewers, actor=member)

    client.force_login(admin)
    assert f'action="{reverse("review-comment-delete", args=[viewers.pk])}"' in job_page(
        client, job
    )
    response = client.post(
        reverse("review-comment-delete", args=[viewers.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "No comments yet." in response.content.decode()
    assert count(job) == 0 and not Comment.objects.exists()
    assert client.post(reverse("review-comment-delete", args=[viewers.pk])).status_code == 404
    entry = ActivityEntry.objects.filter(action=Action.COMMENT_DELETE).latest("pk")
    assert entry.actor == admin and entry.subject["by"] == "vera"


@pytest.mark.django_db
def test_the_card_shows_the_count_without_asking_the_database(member_client, member):
    job = make_job(member, status=Status.COMPLETED)
    for n in range(3):
        add_comment(job, f"Note {n}", author=member)
    text = member_client.get(reverse("videos-gallery")).content.decode()
    card = re.search(rf'<article id="job-{job.pk}".*?</article>', text, re.S).group(0)
    assert '<span class="visually-hidden">3 comments</span>' in card


# Mentions


@pytest.mark.django_db
def test_mentions_notify_active_team_members_only_once_each(member, other_member, viewer, admin):
    job = make_job(member)
    make_person("gone", "member", active=False)
    make_person("olga", None)
    comment = add_comment(
        job,
        "@Otto and @vera, see (@ada). @gone @olga @nobody @mia mail@otto.example @otto.",
        author=member,
    )
    mentioned = set(
        Mention.objects.filter(comment=comment).values_list("user__username", flat=True)
    )
    assert mentioned == {"otto", "vera", "ada"}  # not the author, not inactive or outside the team

    edit_comment(comment, "@otto @vera and now @mia too, and @ada", actor=member)
    assert Mention.objects.filter(comment=comment).count() == 3, "no second mention"
    entry = ActivityEntry.objects.filter(action=Action.COMMENT).latest("pk")
    assert sorted(entry.subject["mentions"]) == ["ada", "otto", "vera"]


@pytest.mark.django_db
def test_the_menu_counts_unseen_mentions_and_for_you_lists_and_sees_them(
    client, member, other_member
):
    job = make_job(member, status=Status.COMPLETED, prompt="A kite over dunes")
    for n in range(12):
        add_comment(job, f"@otto look {n}", author=member)
    client.force_login(other_member)
    text = client.get(reverse("videos-gallery")).content.decode()
    assert '<span class="visually-hidden">9+ unread</span>' in text
    page = client.get(FOR_YOU).content.decode()
    assert page.index("@otto look 11") < page.index("@otto look 10")
    assert page.count('class="mention mention-new"') == 12
    assert not Mention.objects.filter(seen_at__isnull=True).exists()
    text = client.get(reverse("videos-gallery")).content.decode()
    assert "unread</span>" not in text
    assert client.get(FOR_YOU).content.decode().count("mention-new") == 0


@pytest.mark.django_db
def test_for_you_goes_by_cursor_pages(client, member, other_member):
    job = make_job(member)
    for n in range(30):
        add_comment(job, f"@otto number {n:02d}", author=member)
    client.force_login(other_member)
    first = client.get(FOR_YOU).content.decode()
    assert "number 29" in first and "number 05" not in first
    (older,) = re.findall(r'href="\?older=([0-9_]+)"', first)
    second = client.get(FOR_YOU, {"older": older}).content.decode()
    assert "number 05" in second and "number 29" not in second and 'href="?older=' not in second
    assert client.get(FOR_YOU, {"older": "junk"}).status_code == 200


@pytest.mark.django_db
def test_the_mention_poll_answers_204_until_a_mention_comes_and_toasts_it_once(
    client, member, other_member, django_assert_max_num_queries
):
    job = make_job(member, status=Status.COMPLETED, prompt="A kite over dunes")
    client.force_login(other_member)
    text = client.get(reverse("videos-gallery")).content.decode()
    assert f'hx-get="{POLL}?n=0" hx-trigger="every {POLL_SECONDS}s"' in text
    with django_assert_max_num_queries(4):  # session, user, its role, the mentions
        assert client.get(POLL, {"n": "0"}).status_code == 204

    add_comment(job, "What do you think, @otto?", author=member)
    answer = client.get(POLL, {"n": "0"}).content.decode()
    assert "mia mentioned you on “A kite over dunes”" in answer
    assert 'hx-swap-oob="beforeend:#toasts"' in answer
    assert '<span class="visually-hidden">1 unread</span>' in answer
    assert client.get(POLL, {"n": "1"}).status_code == 204, "toasted once"
    # Another page of the same session: the count, no second toast.
    text = client.get(reverse("videos-gallery")).content.decode()
    assert 'hx-trigger="every' in text and 'hx-trigger="load' not in text

    client.get(FOR_YOU)
    answer = client.get(POLL, {"n": "1"})
    assert answer.status_code == 200 and "unread" not in answer.content.decode()


@pytest.mark.django_db
def test_a_new_sign_in_toasts_unseen_mentions_at_once(client, member, other_member, viewer):
    add_comment(make_job(member), "@otto please check", author=member)
    client.force_login(other_member)
    text = client.get(reverse("videos-gallery")).content.decode()
    assert f'hx-trigger="load, every {POLL_SECONDS}s"' in text
    client.force_login(make_person("olga", None))
    assert client.get(POLL).status_code == 403
    assert 'id="mention-notifier"' not in client.get(reverse("accounts-account")).content.decode()
    client.logout()
    assert client.get(POLL).status_code == 302


# What a job page costs


# What a job page costs however many comments it has (the closing note reports it).
JOB_PAGE_QUERIES = 15


def queries_of(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_a_job_pages_queries_do_not_grow_with_its_comments(
    member_client, member, other_member, viewer
):
    few, many = make_job(member, status=Status.COMPLETED), make_job(member, status=Status.COMPLETED)
    people = [member, other_member, viewer]
    for n in range(2):
        add_comment(few, f"Few {n}", author=people[n % 3], at_seconds=n)
    for n in range(200):
        add_comment(many, f"Many {n} @otto", author=people[n % 3], at_seconds=n / 10)
    url = reverse("videos-detail", args=[many.pk])
    queries = queries_of(member_client, url)
    assert queries == queries_of(member_client, reverse("videos-detail", args=[few.pk]))
    assert queries == JOB_PAGE_QUERIES, queries
    assert job_page(member_client, many).count('<li id="comment-') == 200


# In a real browser


@pytest.mark.browser
def test_a_timecoded_comment_seeks_the_player(page, transactional_db, live_server, member, client):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    client.force_login(member)
    job = finished_job(client, "A lighthouse, commented")
    log_in(page, "mia", "pw-mia")
    page.goto(reverse("videos-detail", args=[job.pk]))
    page.wait_for_load_state()
    video = page.locator("video.player")
    wait_for(lambda: page.evaluate("document.querySelector('video.player').readyState") >= 1, 15)
    page.evaluate(
        """() => new Promise(resolve => {
            const v = document.querySelector('video.player');
            v.addEventListener('seeked', resolve, {once: true});
            v.currentTime = 2.6;
        })"""
    )
    page.fill("#comment-body", "The light turns here, @mia")
    page.click(".comment-form button[type=submit]")
    comment = page.locator(".comment").first
    expect(comment).to_contain_text("The light turns here")
    expect(comment.locator(".timecode")).to_have_text("0:02.6")
    expect(page.locator(".comment-marks-player .comment-mark")).to_have_count(1)

    page.evaluate("document.querySelector('video.player').currentTime = 0.5")
    comment.locator(".timecode").click()
    wait_for(
        lambda: (
            abs(page.evaluate("document.querySelector('video.player').currentTime") - 2.6) < 0.2
        ),
        5,
    )
    page.evaluate("document.querySelector('video.player').pause()")
    # The mark sits at its share of the video's length, and seeks too.
    left = page.evaluate("document.querySelector('.comment-marks-player .comment-mark').style.left")
    duration = page.evaluate("document.querySelector('video.player').duration")
    assert float(left.rstrip("%")) == pytest.approx(2.6 / duration * 100, abs=0.5)
    page.evaluate("document.querySelector('video.player').currentTime = 0.1")
    page.locator(".comment-marks-player .comment-mark").click()
    wait_for(
        lambda: (
            abs(page.evaluate("document.querySelector('video.player').currentTime") - 2.6) < 0.2
        ),
        5,
    )
    expect(video).to_be_visible()
    page.screenshot(path=ARTIFACTS / "job-comments.png", full_page=True)
    assert_nothing_blocked_or_logged(page, [reverse("review-comment-add", args=[job.pk])])


@pytest.mark.browser
def test_a_mention_toast_comes_to_the_mentioned_person(page, live_server, member, other_member):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    job = make_job(member, status=Status.COMPLETED, prompt="A kite over dunes")
    add_comment(job, "@otto, is the kite too small?", author=member, at_seconds=1)
    log_in(page, "otto", "pw-otto")
    toast = page.locator("#toasts .toast-mention")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("mia mentioned you on “A kite over dunes”")
    expect(toast).to_contain_text("is the kite too small?")
    expect(page.locator("#for-you-link")).to_contain_text("1 unread")
    page.screenshot(path=ARTIFACTS / "mention-toast.png")
    toast.locator("a.toast-link").click()
    expect(page).to_have_url(re.compile(rf"/videos/{job.pk}/?#comment-\d+$"))
    expect(page.locator("#toasts .toast-mention")).to_have_count(0)  # toasted once
    page.click("#for-you-link")
    expect(page.locator(".mention-new")).to_contain_text("is the kite too small?")
    expect(page.locator("#for-you-link")).not_to_contain_text("unread")
    assert_nothing_blocked_or_logged(page, [FOR_YOU, POLL])
