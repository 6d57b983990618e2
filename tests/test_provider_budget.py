"""One request budget per provider key, shared by every process: never exceeded, paused as a
whole after a 429, and spent on creates before polls before listings. And the simulator's own
limits, which these tests run against. The suite runs with and without REDIS_URL, so each test
covers the backend CI gave it."""

from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from tests.conftest import API_KEY, start_qcluster, stop_qcluster, wait_for
from tests.factories import post_create_form
from videos import lifecycle
from videos.models import Status, VideoJob
from videos.upstream import ratelimit
from videos.upstream.client import BudgetDeferred, default_client
from videos.upstream.ratelimit import Priority, default_budget, parse_duration


def api(provider, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    return requests.request(method, provider.base_url + path, headers=headers, timeout=5, **kwargs)


def test_simulator_answers_429_like_openai_past_its_requests_per_minute(provider):
    provider.rpm_limit = 2
    first = api(provider, "GET", "/videos")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert 59 <= parse_duration(first.headers["x-ratelimit-reset-requests"]) <= 60
    assert api(provider, "GET", "/videos").headers["x-ratelimit-remaining-requests"] == "0"

    refused = api(provider, "GET", "/videos")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 58 <= int(refused.headers["retry-after-ms"]) / 1000 <= 60
    assert int(refused.headers["Retry-After"]) == 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert provider.refusals == [("list", "requests")]
    assert provider.most_requests_in_window() == 2


def test_simulator_refuses_a_create_past_its_jobs_at_once(provider):
    provider.reset()  # the session's simulator may still render an earlier test's job
    provider.concurrency_limit = 1
    fields = {"prompt": "One at a time"}
    assert api(provider, "POST", "/videos", json=fields).status_code == 200
    refused = api(provider, "POST", "/videos", json=fields)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_concurrent_jobs"
    assert 0 < int(refused.headers["retry-after-ms"]) <= 2500
    # No per-minute limit: no x-ratelimit headers, as from a provider that states none.
    assert "x-ratelimit-limit-requests" not in refused.headers
    assert provider.refusals == [("create", "concurrency")]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("250ms", 0.25), ("1.5s", 1.5), ("2", 2.0), ("1h", 3600.0)],
)
def test_openai_durations_are_read(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "-3", "nan", "inf", "9" * 50])
def test_nonsense_durations_are_ignored(text):
    assert parse_duration(text) is None


def test_lower_priorities_leave_room_for_higher_ones(db, settings):
    settings.MUXWEB_PROVIDER_RPM = 10
    budget = default_budget()
    # Listings keep 3 of 10 free, downloads with time to spare 1; status checks, downloads about
    # to expire and creates may take the rest (their order is kept before the budget is asked).
    assert budget.take(Priority.LISTING, 20)[0] == 7
    assert budget.take(Priority.DOWNLOAD, 20)[0] == 2
    assert budget.take(Priority.POLL, 5)[0] == 1
    granted, wait = budget.take(Priority.URGENT, 5)
    assert granted == 0 and 55 < wait <= ratelimit.WINDOW
    assert budget.take(Priority.CREATE, 1)[0] == 0
    state = budget.state()
    assert (state.used, state.limit, state.learnt) == (10, 10, False)


def test_the_budget_switched_off_lets_everything_through_and_shares_no_pause(db, settings):
    """MUXWEB_PROVIDER_BUDGET=off: the behaviour before the budget, benchmarks/budget.py's
    baseline."""
    settings.MUXWEB_PROVIDER_RPM = 2
    settings.MUXWEB_PROVIDER_BUDGET = False
    budget = default_budget()
    assert budget.take(Priority.LISTING, 20) == (20, 0.0)
    assert budget.acquire(Priority.POLL) == 0.0
    budget.observe(429, {"Retry-After": "40", "x-ratelimit-limit-requests": "7"})
    settings.MUXWEB_PROVIDER_BUDGET = True
    state = budget.state()
    assert (state.used, state.paused_for) == (0, 0.0)


@pytest.mark.django_db(transaction=True)
def test_a_poll_is_put_off_not_failed_when_the_budget_is_used_up(member_client, settings, provider):
    job = post_create_form(member_client, "A lighthouse, polled within the budget")
    assert job.upstream_id
    settings.MUXWEB_PROVIDER_RPM = 1  # the create took the only one
    sent = len(provider.request_log)
    lifecycle.poll_jobs([job])
    job.refresh_from_db()
    assert len(provider.request_log) == sent, "nothing was sent"
    assert job.poll_failures == 0 and job.error_code == ""
    assert job.next_poll_at > timezone.now() + timedelta(seconds=50)


@pytest.mark.django_db(transaction=True)
def test_a_429_pauses_the_whole_key_not_one_job(member_client, provider):
    polled = post_create_form(member_client, "A harbour at dawn, polled into a 429")
    other = post_create_form(member_client, "A harbour at dusk, polled after it")
    provider.inject("retrieve", "429", retry_after=40)
    lifecycle.poll_jobs([polled])
    sent = len(provider.request_log)

    # The other job's poll, and a new job's create, wait for the key; neither reaches the
    # provider, and neither counts as a failure.
    lifecycle.poll_jobs([other])
    other.refresh_from_db()
    assert other.poll_failures == 0
    assert other.next_poll_at > timezone.now() + timedelta(seconds=35)
    waiting = post_create_form(member_client, "A harbour at night, created after it")
    assert waiting.status == Status.PENDING and waiting.submit_attempts == 0
    assert waiting.next_poll_at > timezone.now() + timedelta(seconds=5)
    assert len(provider.request_log) == sent
    assert provider.fault_log == [("retrieve", "429")]
    assert 35 < default_budget().state().paused_for <= 40


def test_the_limit_is_learnt_from_the_headers_and_spent_without_a_429(db, provider):
    provider.rpm_limit = 3
    client = default_client()
    client.list()
    assert default_budget().state().limit == 3
    client.list()
    # One slot is left, kept for what matters more than a listing.
    with pytest.raises(BudgetDeferred) as deferred:
        client.list()
    assert 55 < deferred.value.retry_after <= ratelimit.WINDOW
    client.list(priority=Priority.CREATE)
    # The provider said none is left: the whole key waits, whatever the priority.
    with pytest.raises(BudgetDeferred):
        client.list(priority=Priority.CREATE)
    assert provider.refusals == []
    assert provider.most_requests_in_window() <= 6
    assert default_budget().state().paused_for > 55


def test_admins_see_the_keys_budget_in_the_gallery(client, admin, member, settings):
    settings.MUXWEB_PROVIDER_RPM = 25
    default_budget().take(Priority.POLL, 12)
    client.force_login(admin)
    page = client.get(reverse("videos-gallery")).content.decode()
    assert "12 of 25 requests used this minute" in page
    client.force_login(member)
    assert "requests used this minute" not in client.get(reverse("videos-gallery")).content.decode()


@pytest.mark.worker
def test_two_worker_processes_share_one_budget_and_never_exceed_it(
    qcluster, worker_env, member, client, provider, settings
):
    """Two real clusters (three processes with this one) against a simulator allowing 6
    requests a minute: never more than 6 in any minute and no 429; a job past the minute's room
    waits in muxweb, nothing sent, and goes once the minute has passed."""
    provider.rpm_limit = 6
    settings.MUXWEB_PROVIDER_RPM = 6
    worker_env["MUXWEB_PROVIDER_RPM"] = "6"
    # The fixture's cluster was started before the limit was set: replaced by two that know it.
    stop_qcluster(qcluster)
    data_dir = Path(worker_env["MUXWEB_DATA_DIR"])
    clusters = [start_qcluster(worker_env, data_dir / f"qcluster-{n}.log") for n in (1, 2)]
    try:
        client.force_login(member)
        jobs = [post_create_form(client, f"Shared budget, job {n}") for n in range(4)]

        def created(count: int, used: int):
            def check() -> bool:
                assert all(c.poll() is None for c in clusters), "a worker process died"
                done = VideoJob.objects.filter(
                    pk__in=[j.pk for j in jobs], upstream_id__isnull=False
                )
                return done.count() == count and default_budget().state().used >= used

            return check

        try:
            # The creates, then a status check; this process takes what is left of the minute.
            wait_for(created(4, 5), timeout=60, every=0.3)
            state = default_budget().state()
            default_budget().take(Priority.CREATE, state.limit - state.used)
            late = post_create_form(client, "Shared budget, the late job")
            assert late.status == Status.WAITING, "no room: it waits in muxweb, nothing sent"
            jobs.append(late)
            wait_for(created(5, 0), timeout=90, every=0.5)
        except AssertionError:
            print(list(VideoJob.objects.values_list("status", "upstream_id", "error_message")))
            print(default_budget().state(), provider.request_log, provider.refusals)
            for n in (1, 2):
                print((data_dir / f"qcluster-{n}.log").read_text()[-3000:])
            raise
        creates = [at for at, route in provider.request_log if route == "create"]
        assert len(creates) == 5
        assert creates[-1] - creates[0] >= 59, "the late job went once the minute had passed"
    finally:
        for cluster in clusters:
            stop_qcluster(cluster)
    assert provider.refusals == []
    assert provider.most_requests_in_window() <= 6
