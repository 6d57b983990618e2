"""The provider's webhooks: Standard Webhooks signatures checked, each event taken once.

The payload is thin (an event type and a video id), so the receiver only records the event and
queues a re-fetch of the job: the answer goes back at once, the provider is asked in the
background. Every refusal looks the same to the sender, whatever the reason and however the
secrets are configured; the reason goes to the server's log.
"""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_q.tasks import async_task

from videos.models import VideoJob, WebhookEvent

log = logging.getLogger(__name__)

# Signatures older or newer than this are refused: a captured request cannot be replayed later.
TOLERANCE_SECONDS = 300


class InvalidWebhook(Exception):
    """The request is not a genuine, fresh webhook from the provider."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise InvalidWebhook("a configured webhook secret is not base64") from None


def verify(secrets: list[str], headers, body: bytes, now: float | None = None) -> str:
    """Check a delivery's signature against every configured secret; returns its webhook-id."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (webhook_id and timestamp and signatures):
        raise InvalidWebhook("missing webhook headers")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise InvalidWebhook("malformed timestamp") from None
    if abs((now or time.time()) - sent_at) > TOLERANCE_SECONDS:
        raise InvalidWebhook("timestamp too far from now")
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = [
        base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()) for s in secrets
    ]
    for signature in signatures.split():
        version, _comma, value = signature.partition(",")
        if version == "v1" and any(hmac.compare_digest(value.encode(), e) for e in expected):
            return webhook_id
    raise InvalidWebhook("no signature matches")


def event_fields(webhook_id: str, body: bytes) -> tuple[str, str]:
    """A verified delivery's event type and video id, each, like its webhook-id, a non-empty
    string that fits its WebhookEvent column: PostgreSQL answers a longer one, or a NUL
    character, with an error (SQLite would store it)."""
    try:
        event = json.loads(body)
        values = {
            "webhook_id": webhook_id,
            "event_type": event["type"],
            "video_id": event["data"]["id"],
        }
    except (ValueError, KeyError, TypeError):
        raise InvalidWebhook("malformed event") from None
    for name, value in values.items():
        limit = WebhookEvent._meta.get_field(name).max_length
        if not (isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value):
            raise InvalidWebhook(f"{name} is not a string of 1 to {limit} characters, NUL-free")
    return values["event_type"], values["video_id"]


@csrf_exempt  # the signature is what proves the sender; there is no session to forge
@login_not_required
@require_POST
def receive_video_event(request: HttpRequest) -> HttpResponse:
    try:
        secrets = settings.MUXWEB_WEBHOOK_SECRETS
        if not secrets:
            raise InvalidWebhook("no webhook secret is configured (MUXWEB_WEBHOOK_SECRET)")
        webhook_id = verify(secrets, request.headers, request.body)
        event_type, video_id = event_fields(webhook_id, request.body)
    except InvalidWebhook as exc:
        log.warning("webhook refused: %s", exc)
        # One answer for every refusal: a sender learns nothing of how the secret is configured.
        return JsonResponse({"error": "invalid webhook"}, status=400)
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                webhook_id=webhook_id, event_type=event_type, video_id=video_id
            )
    except IntegrityError:
        # Delivered again (the sender retries until it sees a 2xx): taken once already.
        return JsonResponse({"status": "duplicate"})
    job = VideoJob.objects.filter(upstream_id=video_id).only("pk").first()
    if job is not None:
        transaction.on_commit(lambda: async_task("videos.tasks.refresh_job", job.pk))
    return JsonResponse({"status": "accepted"})
