"""Concurrency and fair share: past MUXWEB_PROVIDER_CONCURRENCY or a member's own limit (Team
page), jobs wait in muxweb, unsent, and go out in fair order (round-robin between members, oldest
first within a member) when a slot frees; a waiting job can be cancelled by its author or an
admin, and its reserved cost no longer counts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import ActivityEntry, Profile
from tests.factories import make_job
from tests.test_browser import assert_nothing_blocked_or_logged, log_in
from tests.test_idempotency import at_once, tasks_not_run
from videos import budgets, fairshare, lifecycle, services, sweep
from videos.models import Status, VideoJob
from videos.upstream import ratelimit as budget

# Transactional: sending a job waits for its row to commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def create(person, catalogue, prompt: str) -> VideoJob:
    job = services.create_job(
        author=person, spec=catalogue[0], prompt=prompt, seconds=4, size="720x1280"
    )
    job.refresh_from_db()
    return job


def sent(provider, prompt: str) -> int:
    return sum(1 for job in provider.jobs() if job.get("prompt") == prompt)


def finish(job: VideoJob) -> None:
    """The provider says the job is done: its slot frees."""
    job.refresh_from_db()
    lifecycle.apply_upstream(job, {"id": job.upstream_id, "status": "completed", "progress": 100})


def test_jobs_past_the_provider_limit_wait_unsent_and_go_out_as_slots_free(
    settings, provider, member, catalogue
):
    settings.MUXWEB_PROVIDER_CONCURRENCY = 2
    first, second, third = (create(member, catalogue, f"wait {n}") for n in range(3))
    assert [first.status, second.status] == [Status.QUEUED, Status.QUEUED]
    assert third.status == Status.WAITING and third.upstream_id is None
    assert sent(provider, "wait 2") == 0
    # Waiting counts as running for the gallery and the budgets, but is never polled.
    assert third.is_active and third in VideoJob.objects.needing_work()
    assert third not in VideoJob.objects.due(timezone.now() + timedelta(hours=1))
    finish(first)
    third.refresh_from_db()
    assert third.status == Status.QUEUED and sent(provider, "wait 2") == 1


def test_fifty_jobs_of_one_member_delay_another_members_single_job_by_one_slot_at_most(
    settings, member, other_member
):
    settings.MUXWEB_PROVIDER_CONCURRENCY = 3
    start = timezone.now() - timedelta(minutes=10)
    for _n in range(3):
        make_job(member, status=Status.IN_PROGRESS, created_at=start)
    flood = [
        make_job(member, status=Status.WAITING, created_at=start + timedelta(seconds=n))
        for n in range(50)
    ]
    single = make_job(other_member, status=Status.WAITING, created_at=start + timedelta(minutes=5))
    order = fairshare.fair_order(fairshare.waiting_jobs(), fairshare.occupied())
    # Mia holds every slot already: Otto's job goes first, then Mia's oldest first.
    assert order[0] == single
    assert order[1:] == flood
    places = fairshare.line()
    assert places[single.pk].position == 1 and places[flood[0].pk].position == 2

    # With no slot held, the two alternate: Otto waits one slot at most.
    VideoJob.objects.filter(status=Status.IN_PROGRESS).update(status=Status.COMPLETED)
    order = fairshare.fair_order(fairshare.waiting_jobs(), fairshare.occupied())
    assert order.index(single) <= 1


def test_a_members_own_limit_holds_their_jobs_not_the_others(member, other_member, catalogue):
    profile = Profile.of(member)
    profile.concurrency_limit = 1
    profile.save()
    mine = [create(member, catalogue, f"mine {n}") for n in range(2)]
    theirs = create(other_member, catalogue, "theirs")
    assert [job.status for job in mine] == [Status.QUEUED, Status.WAITING]
    assert theirs.status == Status.QUEUED
    finish(mine[0])
    mine[1].refresh_from_db()
    assert mine[1].status == Status.QUEUED


def test_admissions_at_once_never_send_more_than_the_limit(settings, member, other_member):
    settings.MUXWEB_PROVIDER_CONCURRENCY = 3
    for n in range(12):
        make_job(member if n % 2 else other_member, status=Status.WAITING)
    with tasks_not_run():
        admitted = at_once([fairshare.admit_waiting for _ in range(6)])
    assert sum(len(ids) for ids in admitted) == 3
    assert VideoJob.objects.filter(status=Status.PENDING).count() == 3
    # Fair: both members got a slot.
    assert (
        VideoJob.objects.filter(status=Status.PENDING).values("author_id").distinct().count() == 2
    )


def test_the_sweep_sends_waiting_jobs_when_a_slot_is_free(settings, member, provider):
    settings.MUXWEB_PROVIDER_CONCURRENCY = 1
    waiting = make_job(member, status=Status.WAITING, prompt="from the sweep")
    sweep.poll_due_jobs()
    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED and sent(provider, "from the sweep") == 1


def test_a_waiting_job_cancelled_by_its_author_sends_nothing_and_frees_its_reservation(
    settings, client, provider, member, other_member, catalogue
):
    settings.MUXWEB_PROVIDER_CONCURRENCY = 1
    create(member, catalogue, "runs")
    job = create(member, catalogue, "never sent")
    assert job.status == Status.WAITING
    held = budgets.spent_this_month(member.pk)
    assert held == 2 * job.reserved_cost > Decimal(0)
    url = reverse("videos-cancel", args=[job.pk])
    # Another member may not; a GET changes nothing.
    client.force_login(other_member)
    assert client.post(url).status_code == 403
    client.force_login(member)
    assert client.get(url).status_code == 405
    response = client.post(url, {"next": reverse("videos-gallery")})
    assert response.status_code == 302 and response.url == reverse("videos-gallery")
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "cancelled"
    assert budgets.spent_this_month(member.pk) == held - job.reserved_cost
    assert ActivityEntry.objects.filter(action="cancel", job_id=job.pk).exists()
    # Once cancelled (or sent), it cannot be cancelled again.
    response = client.post(url)
    assert response.url == reverse("videos-detail", args=[job.pk])
    sweep.poll_due_jobs()
    assert sent(provider, "never sent") == 0


def test_an_admin_cancels_anyones_waiting_job(admin_client, member):
    job = make_job(member, status=Status.WAITING)
    admin_client.post(reverse("videos-cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == Status.FAILED


def test_the_card_and_job_page_say_the_place_in_line_and_the_wait(
    settings, member_client, member, other_member
):
    settings.MUXWEB_PROVIDER_CONCURRENCY = 1
    make_job(member, status=Status.IN_PROGRESS)
    # Renders took two minutes lately.
    now = timezone.now()
    make_job(member, status=Status.COMPLETED, submitted_at=now - timedelta(minutes=2))
    old = now - timedelta(minutes=5)
    ahead = [
        make_job(other_member, status=Status.WAITING, created_at=old + timedelta(seconds=n))
        for n in range(2)
    ]
    mine = make_job(member, status=Status.WAITING, created_at=old + timedelta(seconds=9))
    # Otto holds no slot: his two go round by round with Mia's, who holds one.
    assert fairshare.line()[mine.pk].position == 3
    page = member_client.get(reverse("videos-detail", args=[mine.pk])).content.decode()
    assert "Waiting, 3rd in line, about 6 min" in page
    assert reverse("videos-cancel", args=[mine.pk]) in page
    gallery = member_client.get(reverse("videos-gallery")).content.decode()
    assert "Waiting, 3rd in line, about 6 min" in gallery
    assert "Waiting, 1st in line, about 2 min" in gallery
    # Mia may cancel her own, not Otto's.
    assert reverse("videos-cancel", args=[ahead[0].pk]) not in gallery


def test_the_team_page_sets_a_members_limit_of_videos_at_once(admin_client, admin, member):
    url = reverse("accounts-team-person-concurrency", args=[member.pk])
    assert admin_client.post(url, {"limit": "2"}).status_code == 302
    assert Profile.of(member).concurrency_limit == 2
    entry = ActivityEntry.objects.get(action="limit_change")
    assert entry.subject["before"] is None and entry.subject["after"] == 2
    page = admin_client.get(reverse("accounts-team")).content.decode()
    assert 'name="limit" size="4" value="2"' in page
    response = admin_client.post(url, {"limit": "0"})
    assert response.status_code == 200 and 'aria-invalid="true"' in response.content.decode()
    admin_client.post(url, {"limit": ""})
    assert Profile.of(member).concurrency_limit is None
    assert fairshare.is_limited(member.pk) is False


def test_only_an_admin_sets_a_limit_of_videos_at_once(member_client, member):
    url = reverse("accounts-team-person-concurrency", args=[member.pk])
    assert member_client.post(url, {"limit": "5"}).status_code == 403
    assert Profile.of(member).concurrency_limit is None


def test_a_member_sees_the_place_in_line_and_cancels_a_waiting_job_in_the_browser(
    page, settings, member, other_member
):
    settings.MUXWEB_PROVIDER_CONCURRENCY = 1
    make_job(other_member, status=Status.IN_PROGRESS, prompt="Otto renders")
    job = make_job(member, status=Status.WAITING, prompt="Mia waits her turn")
    log_in(page, "mia", "pw-mia")
    card = page.locator(f"#job-{job.pk}")
    expect(card.locator(".waiting-label")).to_have_text("Waiting, 1st in line")
    card.locator("button:has-text('Cancel')").click()
    page.wait_for_load_state()
    expect(page.locator(f"#job-{job.pk}")).to_contain_text("Cancelled while it waited")
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert_nothing_blocked_or_logged(page, ["/", f"/videos/{job.pk}/cancel"])


def test_a_cancelled_waiting_job_brings_no_failed_toast(member_client, member):
    job = make_job(member, status=Status.WAITING)
    member_client.post(reverse("videos-cancel", args=[job.pk]))
    response = member_client.get(reverse("videos-notifications"), {"ids": str(job.pk)})
    assert response.status_code == 200
    assert 'class="toast' not in response.content.decode()


def test_past_the_budgets_room_jobs_wait_and_go_out_in_fair_order(
    settings, provider, member, other_member, catalogue
):
    """A create is a request: once the minute's requests are used, jobs wait in muxweb, and the
    next free request goes to the member holding fewer jobs, not to the one who asked first."""
    settings.MUXWEB_PROVIDER_RPM = 3
    mine = [create(member, catalogue, f"budget mine {n}") for n in range(4)]
    theirs = create(other_member, catalogue, "budget theirs")
    # Two creates, and one request kept for the status check of the running jobs.
    assert [job.status for job in mine[:2]] == [Status.QUEUED, Status.QUEUED]
    assert {job.status for job in [*mine[2:], theirs]} == {Status.WAITING}
    assert sent(provider, "budget mine 2") == sent(provider, "budget theirs") == 0
    assert provider.refusals == []
    # The sweep wakes when the oldest request leaves the minute's window, not before.
    assert 50 < fairshare.seconds_until_admission() <= budget.WINDOW

    # One request frees: it goes to the other member's job.
    budget.default_budget().forget()
    budget.default_budget().take(budget.Priority.CREATE, 1)
    sweep.poll_due_jobs()
    theirs.refresh_from_db()
    assert theirs.status == Status.QUEUED and sent(provider, "budget theirs") == 1
    assert VideoJob.objects.filter(status=Status.WAITING).count() == 2
    places = fairshare.line()
    assert [places[job.pk].position for job in mine[2:]] == [1, 2]
    assert places[mine[3].pk].wait >= timedelta(seconds=40)  # two creates at 3 a minute


def test_downloads_with_time_to_spare_wait_while_jobs_wait_for_the_budget(
    settings, member, other_member
):
    settings.MUXWEB_PROVIDER_RPM = 25
    now = timezone.now()
    spare = make_job(member, status=Status.COMPLETED, assets_fetched_at=None, next_poll_at=now)
    spare.expires_at = now + timedelta(hours=1)
    spare.save()
    expiring = make_job(
        member,
        status=Status.COMPLETED,
        assets_fetched_at=None,
        next_poll_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    waiting = make_job(other_member, status=Status.WAITING)
    budget.default_budget().take(budget.Priority.CREATE, 20)
    assert fairshare.downloads_yield()
    with tasks_not_run():
        sweep.poll_due_jobs()
    spare.refresh_from_db()
    expiring.refresh_from_db()
    # The spare one looks again shortly; the one about to expire was handed to a worker.
    assert timedelta(seconds=10) < spare.next_poll_at - now < timedelta(seconds=30)
    assert expiring.next_poll_at - now > timedelta(minutes=5)

    # Jobs waiting only for their member's limit of videos at once hold no download back.
    Profile.objects.update_or_create(user=other_member, defaults={"concurrency_limit": 1})
    make_job(other_member, status=Status.IN_PROGRESS)
    assert waiting.status == Status.WAITING and not fairshare.downloads_yield()


def test_no_more_downloads_are_queued_than_the_budget_has_room_for(settings, member):
    """A hundred download tasks that would only find no room would hold up the queue (the poll
    sweep's next pass behind them): as many go as there is room, the rest stay due."""
    settings.MUXWEB_PROVIDER_RPM = 25
    now = timezone.now()
    jobs = [
        make_job(
            member,
            status=Status.COMPLETED,
            assets_fetched_at=None,
            next_poll_at=now,
            expires_at=now + timedelta(hours=1),
        )
        for _n in range(5)
    ]
    # 21 of 25 used, one kept free by downloads: room for three.
    budget.default_budget().take(budget.Priority.CREATE, 21)
    with tasks_not_run():
        sweep.poll_due_jobs()
    handed = VideoJob.objects.filter(
        pk__in=[job.pk for job in jobs], next_poll_at__gt=now + timedelta(minutes=5)
    )
    assert handed.count() == 3
    later = VideoJob.objects.filter(pk__in=[job.pk for job in jobs]).exclude(pk__in=handed)
    assert all(now < job.next_poll_at <= now + timedelta(seconds=62) for job in later)
