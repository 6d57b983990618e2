"""Boards: who may make, change, rename and delete them; adding jobs (idempotent, at the end);
the order (up, down, before, after, a board renumbered when its gaps run out); the trash left out;
a board page's queries the same at 5 jobs and 200; and in a real browser, a board made from the
gallery's selection, reordered by keyboard and by dragging, its cover following its first job."""

import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Action, ActivityEntry
from review import boards
from review.boards import Place
from review.models import Board, BoardItem
from tests.conftest import ARTIFACTS
from tests.factories import make_job, make_person
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from videos.models import Status, VideoJob

pytestmark = pytest.mark.django_db


def history(author, n: int, **fields) -> list[VideoJob]:
    """`n` completed jobs a minute apart, oldest first."""
    start = timezone.now() - timedelta(days=1)
    return [
        make_job(
            author,
            status=Status.COMPLETED,
            created_at=start + timedelta(minutes=i),
            **{"prompt": f"shot {i}", **fields},
        )
        for i in range(n)
    ]


def order(board: Board) -> list[int]:
    return list(boards.kept_items(board).values_list("job_id", flat=True))


def ids(jobs) -> list[int]:
    return [job.pk for job in jobs]


# The service


def test_adding_is_idempotent_and_appends_in_the_order_given(member):
    a, b, c = history(member, 3)
    board = boards.create_board("Client A", actor=member)
    assert boards.add_jobs(board, [b, a], actor=member) == 2
    assert boards.add_jobs(board, [a, c, b, c], actor=member) == 1
    assert order(board) == ids([b, a, c])
    assert BoardItem.objects.filter(board=board).count() == 3
    entries = ActivityEntry.objects.filter(action=Action.BOARD_CHANGE).order_by("id")
    assert [e.subject["change"] for e in entries] == ["created", "added", "added"]
    subject = entries[1].subject
    assert (subject["board"], subject["count"], subject["job_ids"]) == ("Client A", 2, ids([b, a]))


def test_a_job_can_be_on_several_boards(member):
    (job,) = history(member, 1)
    one = boards.create_board("One", actor=member)
    two = boards.create_board("Two", actor=member)
    boards.add_jobs(one, [job], actor=member)
    boards.add_jobs(two, [job], actor=member)
    assert [b.name for b in boards.boards_of(job)] == ["One", "Two"]


def test_moving_up_down_before_and_after(member):
    a, b, c, d = history(member, 4)
    board = boards.create_board("Shots", actor=member)
    boards.add_jobs(board, [a, b, c, d], actor=member)
    assert boards.move(board, c, Place(step=-1), actor=member)
    assert order(board) == ids([a, c, b, d])
    assert boards.move(board, a, Place(step=1), actor=member)
    assert order(board) == ids([c, a, b, d])
    assert boards.move(board, d, Place(before=c.pk), actor=member)
    assert order(board) == ids([d, c, a, b])
    assert boards.move(board, d, Place(after=b.pk), actor=member)
    assert order(board) == ids([c, a, b, d])
    # Nothing past the ends, nor next to a job that is not on the board.
    (stranger,) = history(member, 1)
    assert not boards.move(board, c, Place(step=-1), actor=member)
    assert not boards.move(board, d, Place(step=1), actor=member)
    assert not boards.move(board, a, Place(before=stranger.pk), actor=member)
    assert order(board) == ids([c, a, b, d])


def test_a_board_without_gaps_left_is_renumbered_alone(member):
    jobs = history(member, 4)
    board = boards.create_board("Tight", actor=member)
    other = boards.create_board("Other", actor=member)
    boards.add_jobs(board, jobs, actor=member)
    boards.add_jobs(other, jobs, actor=member)
    # Neighbours with no room between them.
    for position, job in enumerate(jobs):
        BoardItem.objects.filter(board=board, job=job).update(position=position)
    before_other = list(other.items.order_by("id").values_list("position", flat=True))
    boards.move(board, jobs[3], Place(after=jobs[0].pk), actor=member)
    assert order(board) == ids([jobs[0], jobs[3], jobs[1], jobs[2]])
    positions = list(boards.kept_items(board).values_list("position", flat=True))
    assert positions == sorted(set(positions))
    assert list(other.items.order_by("id").values_list("position", flat=True)) == before_other


def test_many_moves_keep_the_order_a_list_would_have(member):
    jobs = history(member, 5)
    board = boards.create_board("Churn", actor=member)
    boards.add_jobs(board, jobs, actor=member)
    expected = ids(jobs)
    # Always between the first two: the gap halves until that board is renumbered.
    for i in range(40):
        job = jobs[i % 5]
        anchor = expected[0] if expected[0] != job.pk else expected[1]
        boards.move(board, job, Place(after=anchor), actor=member)
        expected.remove(job.pk)
        expected.insert(expected.index(anchor) + 1, job.pk)
        assert order(board) == expected


def test_trashed_jobs_leave_the_board_until_restored(member):
    a, b = history(member, 2)
    board = boards.create_board("Trash", actor=member)
    boards.add_jobs(board, [a, b], actor=member)
    VideoJob.objects.filter(pk=a.pk).update(trashed_at=timezone.now())
    assert order(board) == [b.pk]
    listed = boards.with_covers(boards.boards_for_list())
    assert (listed[0].job_count, listed[0].cover.pk) == (1, b.pk)
    # Adding a trashed job does nothing.
    a.refresh_from_db()
    assert boards.add_jobs(board, [a], actor=member) == 0
    VideoJob.objects.filter(pk=a.pk).update(trashed_at=None)
    assert order(board) == ids([a, b])


def test_viewers_change_nothing_and_only_the_maker_or_an_admin_renames_or_deletes(
    member, other_member, viewer, admin
):
    (job,) = history(member, 1)
    with pytest.raises(PermissionDenied):
        boards.create_board("Mine", actor=viewer)
    board = boards.create_board("Mia's", actor=member)
    with pytest.raises(PermissionDenied):
        boards.add_jobs(board, [job], actor=viewer)
    # Any member changes what is on a board…
    boards.add_jobs(board, [job], actor=other_member)
    # …but only its maker or an admin renames or deletes it.
    with pytest.raises(PermissionDenied):
        boards.rename_board(board, "Otto's", actor=other_member)
    with pytest.raises(PermissionDenied):
        boards.delete_board(board, actor=other_member)
    boards.rename_board(board, "Renamed", actor=admin)
    boards.delete_board(board, actor=member)
    assert not Board.objects.exists()
    assert VideoJob.objects.filter(pk=job.pk).exists()
    last = ActivityEntry.objects.filter(action=Action.BOARD_CHANGE).latest("id")
    assert last.subject["change"] == "deleted" and last.subject["board"] == "Renamed"


# The pages


def test_pages_for_each_role(client, member, other_member, viewer, admin):
    (job,) = history(member, 1)
    board = boards.create_board("Client", actor=member)
    boards.add_jobs(board, [job], actor=member)
    outsider = make_person("olga")
    urls = {
        "list": reverse("review-boards"),
        "board": reverse("review-board", args=[board.pk]),
        "rename": reverse("review-board-rename", args=[board.pk]),
        "delete": reverse("review-board-delete", args=[board.pk]),
        "job": reverse("review-job-boards", args=[job.pk]),
    }
    move = reverse("review-board-move", args=[board.pk])
    create = reverse("review-board-create")

    client.force_login(outsider)
    for url in urls.values():
        assert client.get(url).status_code == 403, url
    assert client.post(create, {"name": "x"}).status_code == 403

    client.force_login(viewer)
    assert client.get(urls["list"]).status_code == 200
    page = client.get(urls["board"])
    assert page.status_code == 200 and "Move up" not in page.content.decode()
    assert "Create board" not in client.get(urls["list"]).content.decode()
    for name in ("rename", "delete", "job"):
        assert client.get(urls[name]).status_code == 403, name
    assert client.post(create, {"name": "x"}).status_code == 403
    assert client.post(move, {"job": job.pk, "direction": "up"}).status_code == 403
    add = reverse("review-boards-add-selection")
    assert client.post(add, {"ids": [job.pk]}).status_code == 403

    client.force_login(other_member)
    assert client.get(urls["rename"]).status_code == 403
    assert client.get(urls["delete"]).status_code == 403
    assert client.get(urls["job"]).status_code == 200

    client.force_login(admin)
    assert client.get(urls["rename"]).status_code == 200
    assert client.get(urls["delete"]).status_code == 200

    client.logout()
    assert client.get(urls["list"]).status_code == 302
    assert client.get(reverse("review-board", args=[board.pk + 1000])).status_code == 302
    client.force_login(member)
    assert client.get(reverse("review-board", args=[board.pk + 1000])).status_code == 404


def test_a_member_makes_a_board_adds_from_the_job_page_and_deletes_it(member_client, member):
    (job,) = history(member, 1)
    response = member_client.post(reverse("review-board-create"), {"name": "  "})
    assert response.status_code == 400
    response = member_client.post(reverse("review-board-create"), {"name": "Campaign"})
    board = Board.objects.get()
    assert response.url == reverse("review-board", args=[board.pk])
    detail = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert 'id="job-boards"' in detail and "Campaign" in detail
    url = reverse("review-job-boards", args=[job.pk])
    back = reverse("videos-detail", args=[job.pk])
    response = member_client.post(url, {"board": board.pk, "next": back})
    assert response.url == back
    member_client.post(url, {"board": board.pk, "next": "https://elsewhere.example/"})
    assert order(board) == [job.pk]
    # A new board by name, from the same form.
    member_client.post(url, {"new_name": "Shot list"})
    assert order(Board.objects.get(name="Shot list")) == [job.pk]
    assert member_client.post(url, {}).status_code == 200  # asks again
    # The card links to it; the list shows the count and the cover.
    gallery = member_client.get(reverse("videos-gallery")).content.decode()
    assert url in gallery
    listing = member_client.get(reverse("review-boards"))
    assert [(b.name, b.job_count) for b in listing.context["boards"]] == [
        ("Campaign", 1),
        ("Shot list", 1),
    ]
    delete = reverse("review-board-delete", args=[board.pk])
    assert member_client.get(delete).status_code == 200
    assert Board.objects.filter(pk=board.pk).exists()
    member_client.post(delete)
    assert not Board.objects.filter(pk=board.pk).exists()


def test_adding_a_selection_asks_which_board_then_appends_newest_first(member_client, member):
    jobs = history(member, 4)
    board = boards.create_board("Picks", actor=member)
    boards.add_jobs(board, [jobs[1]], actor=member)
    add = reverse("review-boards-add-selection")
    selection = {"ids": [jobs[0].pk, jobs[1].pk, jobs[3].pk]}
    asked = member_client.post(add, selection)
    assert asked.status_code == 200 and asked.context["count"] == 3
    assert Board.objects.get().items.count() == 1
    member_client.post(add, {**selection, "confirmed": "1", "board": board.pk})
    assert order(board) == ids([jobs[1], jobs[3], jobs[0]])
    # Every job matching the gallery's filters, onto a new board.
    member_client.post(add, {"all": "1", "q": "shot", "confirmed": "1", "new_name": "All"})
    assert order(Board.objects.get(name="All")) == ids(reversed(jobs))


def test_moves_by_button_with_and_without_htmx(member_client, member):
    a, b, c = history(member, 3)
    board = boards.create_board("Order", actor=member)
    boards.add_jobs(board, [a, b, c], actor=member)
    move = reverse("review-board-move", args=[board.pk])
    response = member_client.post(move, {"job": c.pk, "direction": "up"})
    assert response.status_code == 302
    assert order(board) == ids([a, c, b])
    response = member_client.post(
        move, {"job": a.pk, "after_job": b.pk}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert order(board) == ids([c, b, a])
    assert member_client.post(move, {"job": a.pk}).status_code == 400
    remove = reverse("review-board-remove", args=[board.pk])
    member_client.post(remove, {"job": b.pk})
    assert order(board) == ids([c, a])


# Session, user, role; the board; one page of items with their jobs, authors and parents; the
# notifier's running jobs; the menu's unread mentions; the board's share links; the viewer's
# stars. The same at any size: the page reads BOARD_PAGE_SIZE + 1 items.
QUERIES = 9


@pytest.mark.parametrize("size", [5, 200])
def test_a_board_page_costs_the_same_queries_at_5_and_200_jobs(
    client, member, size, django_assert_num_queries
):
    others = [make_person(f"author{i}", "member") for i in range(3)]
    jobs = [
        make_job(others[i % 3], status=Status.COMPLETED, prompt=f"shot {i}", with_files=i < 60)
        for i in range(size)
    ]
    remixes = [make_job(member, status=Status.COMPLETED, remix_of=jobs[0]) for _ in range(2)]
    board = boards.create_board("Big", actor=member)
    boards.add_jobs(board, [*jobs, *remixes], actor=member)
    client.force_login(member)
    url = reverse("review-board", args=[board.pk])
    client.get(url)  # the session, warmed
    with django_assert_num_queries(QUERIES) as captured:
        response = client.get(url)
    assert response.status_code == 200
    shown = len(response.context["page"]["items"])
    assert shown == min(size + 2, 48)
    print(f"board page of {size + 2} jobs: {len(captured.captured_queries)} queries")


def test_a_board_page_goes_on_by_position_cursor(client, member):
    jobs = history(member, 50)
    board = boards.create_board("Long", actor=member)
    boards.add_jobs(board, jobs, actor=member)
    client.force_login(member)
    first = client.get(reverse("review-board", args=[board.pk]))
    assert [i.job_id for i in first.context["page"]["items"]] == ids(jobs[:48])
    second = client.get(first.context["older_url"])
    assert [i.job_id for i in second.context["page"]["items"]] == ids(jobs[48:])
    back = client.get(second.context["newer_url"])
    assert [i.job_id for i in back.context["page"]["items"]] == ids(jobs[:48])
    assert back.context["newer_url"] is None
    # A cursor that is none gives the first page.
    junk = client.get(reverse("review-board", args=[board.pk]), {"after": "x_1"})
    assert junk.context["page"]["items"][0].job_id == jobs[0].pk


def test_the_activity_log_names_the_board_as_it_was(client, member, admin):
    (job,) = history(member, 1)
    board = boards.create_board("Before", actor=member)
    boards.add_jobs(board, [job], actor=member)
    boards.rename_board(board, "After", actor=member)
    boards.delete_board(board, actor=admin)
    client.force_login(admin)
    body = client.get(reverse("accounts-activity")).content.decode()
    for text in ("board made", "1 video added", "renamed from “Before”", "board deleted"):
        assert text in body, text


# In a real browser.


@pytest.mark.browser
def test_a_board_from_a_selection_reordered_by_keyboard_and_drag(page, live_server, member):
    jobs = history(member, 3, with_files=True)
    newest = list(reversed(jobs))
    log_in(page, "mia", "pw-mia")
    page.goto(f"{live_server.url}/")
    page.wait_for_load_state()

    # Tick two cards, Add to board, name a new board.
    for job in newest[:2]:
        page.locator(f"#job-{job.pk}").hover()
        page.locator(f"#job-{job.pk} .select-job").click()
    expect(page.locator("#bulk-count")).to_contain_text("2")
    page.locator("#bulk-board").click()
    page.wait_for_load_state()
    page.fill("input[name=new_name]", "Client cut")
    page.get_by_role("button", name="Add to board").click()
    page.wait_for_load_state()
    expect(page.locator(".messages")).to_contain_text("2 videos added")
    expect(page.locator("#bulk")).to_be_hidden()
    board = Board.objects.get(name="Client cut")
    assert order(board) == ids(newest[:2])

    page.goto(f"{live_server.url}/boards/")
    cover = page.locator(f"#board-{board.pk} img.board-cover")
    expect(cover).to_have_attribute("data-cover", str(newest[0].pk))

    # By keyboard: focus the second card's Move up, press Enter; the focus stays on the card.
    page.goto(f"{live_server.url}/boards/{board.pk}/")
    page.wait_for_load_state()
    second = page.locator(f"#board-item-{newest[1].pk} [data-move=up]")
    second.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".board-item").first).to_have_id(f"board-item-{newest[1].pk}")
    expect(page.locator(f"#board-item-{newest[1].pk} [data-move=down]")).to_be_focused()
    assert order(board) == ids([newest[1], newest[0]])

    # By dragging: the now-second card onto the first card's left half.
    target = page.locator(f"#board-item-{newest[1].pk}")
    box = target.bounding_box()
    page.locator(f"#board-item-{newest[0].pk}").drag_to(
        target, target_position={"x": 10, "y": box["height"] / 2}
    )
    expect(page.locator(".board-item").first).to_have_id(f"board-item-{newest[0].pk}")
    assert order(board) == ids([newest[0], newest[1]])
    page.screenshot(path=ARTIFACTS / "board.png")

    # The cover follows the first job.
    boards.move(board, newest[1], Place(step=-1), actor=member)
    page.goto(f"{live_server.url}/boards/")
    expect(cover).to_have_attribute("data-cover", str(newest[1].pk))
    page.screenshot(path=ARTIFACTS / "boards.png")
    expect(page.get_by_role("link", name=re.compile("Client cut")).first).to_be_visible()
    assert_nothing_blocked_or_logged(
        page, ["/boards/", f"/boards/{board.pk}/", f"/boards/{board.pk}/move", "/boards/add"]
    )


def test_the_boards_list_goes_a_page_at_a_time_in_name_order_at_the_same_cost(
    client, member, django_assert_max_num_queries
):
    """Boards accumulate with the team's history: the list reads a page of 48 by (name, id)
    cursor, its queries the same on the first page and the third, and every board is on exactly
    one page, also where several share a name."""
    job = make_job(member, status=Status.COMPLETED, with_files=True)
    names = [f"Client {n:03d}" for n in range(100)] + ["Same"] * 5
    Board.objects.bulk_create(Board(name=name, created_by=member) for name in names)
    boards.add_jobs(Board.objects.get(name="Client 050"), [job], actor=member)
    client.force_login(member)
    url = reverse("review-boards")
    client.get(url)  # the session, warmed

    with django_assert_max_num_queries(12) as first_queries:
        response = client.get(url)
    pages = [response]
    while response.context["next_url"]:
        with django_assert_max_num_queries(12) as later_queries:
            response = client.get(response.context["next_url"])
        pages.append(response)
    assert len(later_queries.captured_queries) == len(first_queries.captured_queries)
    seen = [board.pk for page in pages for board in page.context["boards"]]
    assert [len(page.context["boards"]) for page in pages] == [48, 48, 9]
    assert seen == list(Board.objects.order_by("name", "id").values_list("pk", flat=True))
    second = pages[1]
    listed = {board.name: board for board in second.context["boards"]}
    assert (listed["Client 050"].job_count, listed["Client 050"].cover.pk) == (1, job.pk)
    page = second.content.decode()
    assert 'rel="next"' in page and 'rel="prev"' in page and "1 video" in page

    # Back from the last page by its Previous link.
    back = client.get(pages[-1].context["previous_url"])
    assert [b.pk for b in back.context["boards"]] == seen[48:96]
    back = client.get(back.context["previous_url"])
    assert [b.pk for b in back.context["boards"]] == seen[:48]
    assert back.context["previous_url"] is None

    # A board deleted or renamed meanwhile does not move the pages: the cursor names a place.
    cursor_board = Board.objects.get(pk=seen[47])
    next_url = pages[0].context["next_url"]
    Board.objects.filter(pk=cursor_board.pk).update(name="Aardvark")
    assert [b.pk for b in client.get(next_url).context["boards"]] == seen[48:96]
    cursor_board.delete()
    assert [b.pk for b in client.get(next_url).context["boards"]] == seen[48:96]

    # A cursor that names nothing gives the first page; past the end, a way back to it.
    for junk in ["x", "12", "x_Client", "1_\x00", f"1_{'a' * 121}", "-5_Client"]:
        listed = client.get(url, {"after": junk, "before": junk})
        assert listed.status_code == 200
        assert listed.context["boards"][0].name == "Client 000", junk
    end = client.get(url, {"after": f"{seen[-1]}_Same"}).content.decode()
    assert "No more boards." in end and f'href="{url}"' in end
    Board.objects.all().delete()
    assert "No boards yet." in client.get(url, {"after": "x"}).content.decode()
