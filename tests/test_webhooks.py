"""Webhooks: Standard Webhooks signatures (vectors from the independent `standardwebhooks`
package), freshness, rotation, repeats, and the job re-fetched once one is taken."""

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from tests.conftest import wait_for
from tests.factories import post_create_form
from videos import lifecycle, sweep
from videos.models import Status, VideoJob, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


SECRET, OLD_SECRET, OTHER_SECRET = new_secret(), new_secret(), new_secret()


@pytest.fixture(autouse=True)
def configured(settings):
    settings.MUXWEB_WEBHOOK_SECRETS = [SECRET, OLD_SECRET]  # rotation: both accepted
    lifecycle._webhooks_seen = (0.0, False)


def event(video_id: str, kind: str = "video.completed", event_id: str = "evt_1") -> str:
    payload = {
        "id": event_id,
        "object": "event",
        "created_at": 1758941485,
        "type": kind,
        "data": {"id": video_id},
    }
    return json.dumps(payload)


def deliver(
    body: str,
    *,
    secret: str = SECRET,
    msg_id: str = "msg_1",
    at: datetime | None = None,
    body_sent=None,
):
    at = at or datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, at, body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    # A client that enforces CSRF, like a browser: the webhook needs none, every other POST does.
    return Client(enforce_csrf_checks=True).post(
        reverse("webhooks-videos"),
        body_sent if body_sent is not None else body,
        content_type="application/json",
        headers=headers,
    )


@pytest.fixture
def completed_upstream(member_client, provider) -> VideoJob:
    """A job the provider finished while nobody polled it."""
    job = post_create_form(member_client, "Told by webhook")
    wait_for(lambda: provider.job(job.upstream_id)["status"] == "completed", timeout=20)
    return job


def test_signed_event_is_taken_and_the_job_refetched_and_saved(completed_upstream):
    response = deliver(event(completed_upstream.upstream_id))
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    job = VideoJob.objects.get()
    assert job.status == Status.COMPLETED
    assert job.assets_fetched_at and job.video


def test_tampered_body_is_refused(completed_upstream):
    body = event(completed_upstream.upstream_id)
    response = deliver(body, body_sent=body.replace("completed", "failed"))
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
    assert VideoJob.objects.get().status != Status.COMPLETED


def test_wrong_secret_is_refused(completed_upstream):
    assert deliver(event(completed_upstream.upstream_id), secret=OTHER_SECRET).status_code == 400


@pytest.mark.parametrize("minutes", [-10, 10])
def test_timestamps_more_than_five_minutes_off_are_refused(completed_upstream, minutes):
    at = datetime.now(tz=UTC) + timedelta(minutes=minutes)
    assert deliver(event(completed_upstream.upstream_id), at=at).status_code == 400


def test_four_minutes_late_is_still_fresh(completed_upstream):
    at = datetime.now(tz=UTC) - timedelta(minutes=4)
    assert deliver(event(completed_upstream.upstream_id), at=at).status_code == 200


def test_secret_being_rotated_out_still_verifies(completed_upstream):
    assert deliver(event(completed_upstream.upstream_id), secret=OLD_SECRET).status_code == 200


def test_repeated_delivery_is_taken_once(completed_upstream, provider):
    body = event(completed_upstream.upstream_id)
    assert deliver(body, msg_id="msg_same").json() == {"status": "accepted"}
    assert deliver(body, msg_id="msg_same").json() == {"status": "duplicate"}
    assert WebhookEvent.objects.count() == 1


def test_missing_headers_malformed_json_and_unconfigured_are_refused(completed_upstream, settings):
    url = reverse("webhooks-videos")
    assert Client().post(url, "{}", content_type="application/json").status_code == 400
    assert deliver("not json").status_code == 400
    assert Client().get(url).status_code == 405
    settings.MUXWEB_WEBHOOK_SECRETS = []
    assert deliver(event(completed_upstream.upstream_id)).status_code == 400


REFUSED = (400, "application/json", b'{"error": "invalid webhook"}')


def answer(response) -> tuple[int, str, bytes]:
    return response.status_code, response["Content-Type"], response.content


def test_an_unsigned_request_gets_one_answer_whatever_the_configuration(db, settings, caplog):
    fresh = str(int(datetime.now(tz=UTC).timestamp()))
    requests = {
        "no headers": {},
        "no signature": {"webhook-id": "msg_1", "webhook-timestamp": fresh},
        "malformed timestamp": {
            "webhook-id": "msg_1",
            "webhook-timestamp": "soon",
            "webhook-signature": "v1,AAAA",
        },
        "stale": {"webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        "forged": {"webhook-id": "msg_1", "webhook-timestamp": fresh, "webhook-signature": "v1,AA"},
    }
    configurations = {
        "secrets": [SECRET, OLD_SECRET],
        "none": [],
        "not base64": ["whsec_%rotten-secret%"],
    }
    answers = {}
    for configured, secrets_ in configurations.items():
        settings.MUXWEB_WEBHOOK_SECRETS = secrets_
        for name, headers in requests.items():
            response = Client().post(
                reverse("webhooks-videos"),
                event("video_1"),
                content_type="application/json",
                headers=headers,
            )
            answers[configured, name] = answer(response)
    assert set(answers.values()) == {REFUSED}, answers
    # The reason is in the server's log, the secrets are not.
    assert "webhook refused: no webhook secret is configured" in caplog.text
    assert "webhook refused: a configured webhook secret is not base64" in caplog.text
    assert "webhook refused: missing webhook headers" in caplog.text
    for secret in (SECRET, OLD_SECRET, "whsec_%rotten-secret%"):
        assert secret.removeprefix("whsec_") not in caplog.text
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "body, msg_id",
    [
        (event("video_1", kind="video." + "x" * 45), "msg_1"),  # a 51-character type
        (event("v" * 201), "msg_1"),
        (event("video_1"), "m" * 201),
        (event(""), "msg_1"),
        (event("video\x00_1"), "msg_1"),
        (event("video_1", kind=""), "msg_1"),
        (json.dumps({"type": "video.completed", "data": {"id": 123}}), "msg_1"),
        (json.dumps({"type": ["video.completed"], "data": {"id": "video_1"}}), "msg_1"),
        (json.dumps({"type": "video.completed", "data": "video_1"}), "msg_1"),
        (json.dumps(["video.completed", "video_1"]), "msg_1"),
    ],
    ids=[
        "long type",
        "long video id",
        "long webhook id",
        "empty video id",
        "NUL in video id",
        "empty type",
        "number id",
        "list type",
        "no data object",
        "not an object",
    ],
)
def test_a_signed_event_that_does_not_fit_is_refused_and_nothing_stored(db, body, msg_id):
    assert answer(deliver(body, msg_id=msg_id)) == REFUSED
    assert not WebhookEvent.objects.exists()


def test_a_signed_event_at_the_column_limits_is_taken(db):
    response = deliver(event("v" * 200, kind="video." + "x" * 44), msg_id="m" * 200)
    assert response.json() == {"status": "accepted"}
    assert WebhookEvent.objects.get().video_id == "v" * 200


def test_event_for_an_unknown_video_is_acknowledged_and_ignored(db):
    assert deliver(event("video_not_ours")).status_code == 200
    assert VideoJob.objects.count() == 0


def test_with_webhooks_arriving_running_jobs_fall_back_to_a_slow_safety_poll(
    member_client, provider
):
    provider.render_seconds = 60
    job = post_create_form(member_client, "Slow one")
    quick = (job.next_poll_at - job.updated_at).total_seconds()
    assert quick < 5
    deliver(event("video_elsewhere"))  # webhooks are reaching us
    lifecycle._webhooks_seen = (0.0, False)
    VideoJob.objects.filter(pk=job.pk).update(next_poll_at=None)
    sweep.poll_due_jobs()
    job.refresh_from_db()
    assert (job.next_poll_at - job.updated_at).total_seconds() >= lifecycle.SAFETY_POLL_INTERVAL - 1


def test_simulator_webhook_completes_a_job_with_no_polling_at_all(
    member_client, provider, live_server
):
    provider.webhook_url = live_server.url + reverse("webhooks-videos")
    provider.webhook_secret = SECRET
    try:
        job = post_create_form(member_client, "Heard back")
        # Nothing here polls: only the provider's signed webhook can move the job on.
        wait_for(lambda: VideoJob.objects.get(pk=job.pk).assets_fetched_at is not None, timeout=30)
    finally:
        provider.webhook_url = None
    job.refresh_from_db()
    assert job.status == Status.COMPLETED and job.video
    assert job.poll_count == 2, "one look at submit, one when the webhook came"
    # The simulator logs a delivery once our answer reaches it, a moment after the job is saved.
    wait_for(
        lambda: any(d["video_id"] == job.upstream_id for d in provider.webhook_log), timeout=10
    )
    delivered = [d for d in provider.webhook_log if d["video_id"] == job.upstream_id]
    assert [d["status"] for d in delivered] == [200]
    assert (
        WebhookEvent.objects.filter(video_id=job.upstream_id, event_type="video.completed").count()
        == 1
    )
