"""Repeated, late and simultaneous deliveries end in one state and one set of files.

Webhooks are posted from several threads at once to a live server; services are called from
several threads at once, each with its own database connection, the way several workers would
call them. The state always comes from the provider, whatever an event claims.
"""

import base64
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.urls import reverse
from django_q.brokers import get_broker
from django_q.conf import Conf
from standardwebhooks.webhooks import Webhook

from tests.conftest import wait_for
from videos import downloads, lifecycle, services
from videos.models import VARIANTS, Status, VideoJob, WebhookEvent
from videos.probe import verify_download
from videos.upstream.simulator import Simulator

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture(autouse=True)
def webhooks_configured(settings):
    settings.MUXWEB_WEBHOOK_SECRETS = [SECRET]
    lifecycle._webhooks_seen = (0.0, False)


def at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call on its own thread, all released together; results in the calls' order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        barrier.wait()
        try:
            return call()
        finally:
            # Each thread has its own connection; a test database cannot be dropped while open.
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result() for future in futures]


@contextmanager
def tasks_not_run() -> Iterator[None]:
    """Tasks queued meanwhile go to the broker, where no worker reads them, and are dropped."""
    sync, Conf.SYNC = Conf.SYNC, False
    try:
        yield
    finally:
        Conf.SYNC = sync
        get_broker().purge_queue()


def new_job(member, catalogue, prompt: str) -> VideoJob:
    """A job recorded but not submitted yet."""
    with tasks_not_run():
        return services.create_job(
            author=member, spec=catalogue[0], prompt=prompt, seconds=4, size="720x1280"
        )


def submitted_job(member, catalogue, prompt: str) -> VideoJob:
    """A job submitted (inline), which the provider then finishes while nobody polls it."""
    job = services.create_job(
        author=member, spec=catalogue[0], prompt=prompt, seconds=4, size="720x1280"
    )
    job.refresh_from_db()
    assert job.upstream_id and job.poll_count == 1
    return job


def finished_upstream(provider: Simulator, job: VideoJob) -> None:
    wait_for(lambda: provider.job(job.upstream_id)["status"] == "completed", timeout=20)


def completed_not_fetched(provider: Simulator, job: VideoJob) -> VideoJob:
    """The job polled as completed, its download not started."""
    finished_upstream(provider, job)
    with tasks_not_run():
        lifecycle.poll_jobs([job])
    job.refresh_from_db()
    assert job.is_fetching
    return job


def signed(video_id: str, *, kind: str, msg_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"id": msg_id, "object": "event", "type": kind, "data": {"id": video_id}}
    ).encode()
    at = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, at, body.decode()),
    }
    return body, headers


def post_webhook(url: str, video_id: str, *, kind: str = "video.completed", msg_id: str) -> str:
    body, headers = signed(video_id, kind=kind, msg_id=msg_id)
    response = requests.post(url, data=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["status"]


def assert_one_verified_set_of_files(job: VideoJob, media_root: Path) -> None:
    job.refresh_from_db()
    assert job.status == Status.COMPLETED and job.assets_fetched_at, job.fetch_error
    media_dir = downloads.job_media_dir(job)
    assert sorted(path.name for path in media_dir.iterdir()) == sorted(
        Path(job.asset(variant).name).name for variant in VARIANTS
    )
    for variant in VARIANTS:
        verify_download(media_root / job.asset(variant).name, variant, seconds=4, size=job.size)


# Webhooks.


def test_the_same_webhook_posted_twice_in_a_row_is_taken_and_acted_on_once(
    member, catalogue, provider, live_server, settings
):
    job = submitted_job(member, catalogue, "A heron fishing, announced twice")
    finished_upstream(provider, job)
    url = live_server.url + reverse("webhooks-videos")
    assert post_webhook(url, job.upstream_id, msg_id="msg_twice") == "accepted"
    assert post_webhook(url, job.upstream_id, msg_id="msg_twice") == "duplicate"
    assert WebhookEvent.objects.count() == 1
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    assert job.poll_count == 2, "one look at submit, one for the single event taken"
    assert job.fetch_attempts == 1


def test_the_same_webhook_posted_eight_times_at_once_is_taken_and_acted_on_once(
    member, catalogue, provider, live_server, settings
):
    job = submitted_job(member, catalogue, "A heron fishing, announced eight times at once")
    finished_upstream(provider, job)
    url = live_server.url + reverse("webhooks-videos")
    answers = at_once(
        [lambda: post_webhook(url, job.upstream_id, msg_id="msg_burst") for _ in range(8)]
    )
    assert sorted(answers) == ["accepted"] + ["duplicate"] * 7
    assert WebhookEvent.objects.count() == 1
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    assert job.poll_count == 2 and job.fetch_attempts == 1


def test_different_events_for_one_job_at_once_end_in_one_download(
    member, catalogue, provider, live_server, settings
):
    job = submitted_job(member, catalogue, "A heron fishing, announced by every event at once")
    finished_upstream(provider, job)
    url = live_server.url + reverse("webhooks-videos")
    # Completed and failed alike: each one only makes muxweb ask the provider.
    kinds = ["video.completed", "video.failed"] * 4
    answers = at_once(
        [
            lambda i=i: post_webhook(url, job.upstream_id, kind=kinds[i], msg_id=f"msg_{i}")
            for i in range(8)
        ]
    )
    assert answers == ["accepted"] * 8
    assert WebhookEvent.objects.count() == 8
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    assert job.fetch_attempts == 1, "one download, however many events asked for it"
    assert job.fetch_error == ""


def test_a_failed_event_is_checked_with_the_provider_before_and_after_completion(
    member, catalogue, provider, live_server, settings
):
    provider.render_seconds = 6
    job = submitted_job(member, catalogue, "A heron fishing, falsely reported failed")
    url = live_server.url + reverse("webhooks-videos")
    # Early (or lying): the provider still renders the job, so it keeps running here.
    assert post_webhook(url, job.upstream_id, kind="video.failed", msg_id="msg_early") == (
        "accepted"
    )
    job.refresh_from_db()
    assert job.status in (Status.QUEUED, Status.IN_PROGRESS) and job.poll_count == 2
    assert job.error_code == ""

    finished_upstream(provider, job)
    assert post_webhook(url, job.upstream_id, msg_id="msg_done") == "accepted"
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    # Late, out of order: a finished job is not asked about again, nor changed.
    assert post_webhook(url, job.upstream_id, kind="video.failed", msg_id="msg_late") == (
        "accepted"
    )
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    assert job.poll_count == 3 and job.error_code == "" and job.error_message == ""


def test_a_late_answer_from_a_slow_poll_does_not_take_a_finished_job_back(
    member, catalogue, provider, settings
):
    provider.render_seconds = 3
    job = submitted_job(member, catalogue, "A heron fishing, one answer late")
    # The provider answers this poll at once (still rendering) but sends it over 12 seconds.
    size = len(json.dumps(provider.job(job.upstream_id)))
    provider.inject("retrieve", "slow", rate=max(size // 12, 1))
    slow = threading.Thread(target=lambda: (lifecycle.refresh_job(job.pk), connection.close()))
    slow.start()
    wait_for(lambda: ("retrieve", "slow") in provider.fault_log, timeout=10)
    finished_upstream(provider, job)
    lifecycle.refresh_job(job.pk)  # a webhook's refresh: completed, files saved
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    assert slow.is_alive(), "the slow answer is still on its way"

    slow.join(timeout=30)
    assert not slow.is_alive()
    job.refresh_from_db()
    assert job.status == Status.COMPLETED and job.progress == 100
    assert job.next_poll_at is None and job.fetch_attempts == 1


# Tasks delivered more than once.


def test_a_download_run_from_several_threads_at_once_downloads_once(
    member, catalogue, provider, settings
):
    job = completed_not_fetched(provider, submitted_job(member, catalogue, "Tide pools, fetched"))
    at_once([lambda: downloads.fetch_assets(job.pk) for _ in range(6)])
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    assert job.fetch_attempts == 1 and job.fetch_error == ""


def test_a_download_delivered_again_while_the_first_is_under_way_leaves_it_alone(
    member, catalogue, provider, settings
):
    job = completed_not_fetched(
        provider, submitted_job(member, catalogue, "Tide pools, fetched while fetching")
    )
    provider.inject("content", "slow", variant="video", rate=100_000)
    first = threading.Thread(target=lambda: (downloads.fetch_assets(job.pk), connection.close()))
    first.start()
    media_dir = downloads.job_media_dir(job)
    wait_for(lambda: any(".staging.video." in p.name for p in media_dir.glob(".*")), timeout=20)
    # The same task again (a second enqueue, a redelivery): the download under way is left to
    # finish, not deleted as a leftover, and no second one starts.
    at_once([lambda: downloads.fetch_assets(job.pk) for _ in range(3)])
    first.join(timeout=60)
    assert not first.is_alive()
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)
    assert job.fetch_attempts == 1 and job.fetch_error == ""
    assert provider.fault_log.count(("content", "slow")) == 1


def test_a_submit_delivered_twice_at_once_creates_one_upstream_job(member, catalogue, provider):
    prompt = "Two workers, one submit"
    job = new_job(member, catalogue, prompt)
    at_once([lambda: lifecycle.submit_job(job.pk) for _ in range(4)])
    job.refresh_from_db()
    matches = [video for video in provider.jobs() if video["prompt"] == prompt]
    assert len(matches) == 1
    assert job.upstream_id == matches[0]["id"]
    assert job.submit_attempts == 1 and job.poll_count == 1


def test_a_checking_job_reconciled_from_several_workers_at_once_is_adopted_once(
    member, catalogue, provider, settings, caplog
):
    settings.MUXWEB_HTTP_TIMEOUT = (2.0, 1.0)
    provider.inject("create", "hang", seconds=3)
    prompt = "Two workers, one lost create"
    job = services.create_job(
        author=member, spec=catalogue[0], prompt=prompt, seconds=4, size="720x1280"
    )
    job.refresh_from_db()
    assert job.status == Status.CHECKING
    caplog.set_level("INFO", logger="videos.downloads")

    at_once([lambda: lifecycle.reconcile_submit(job.pk) for _ in range(4)])
    job.refresh_from_db()
    matches = [video for video in provider.jobs() if video["prompt"] == prompt]
    assert len(matches) == 1, "found, never sent again"
    assert job.upstream_id == matches[0]["id"] and job.submit_attempts == 1
    adopted = [r for r in caplog.records if "found at the provider" in r.getMessage()]
    assert len(adopted) == 1
    assert job.poll_count == 1, "the provider's answer recorded once"
