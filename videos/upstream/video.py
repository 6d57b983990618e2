"""The provider's Video object, read defensively: every field typed, bounded and cleaned.

Whatever a provider (or a relay, or a signed webhook) sends is untrusted input. Numbers are taken
only when finite and clamped to what makes sense (`progress: 1e999` is 100, an `expires_at` in the
year 30,000 is unknown), text loses its control characters and any copy of the API key, and a value
our columns cannot hold (an id over 200 characters, a 21-character size) makes the whole answer a
provider error, not a database error.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from muxweb.text import without_control_characters
from videos.upstream.client import GARBLED, UpstreamError, finite_number, redact

MAX_ID_LENGTH = 200
MAX_MODEL_LENGTH = 100
MAX_SIZE_LENGTH = 20
MAX_STATUS_LENGTH = 50
MAX_CODE_LENGTH = 100
MAX_MESSAGE_LENGTH = 2000
# 2001-01-01 to 9999-12-31: a Unix time outside this is a provider's mistake, not a date.
EARLIEST_TIMESTAMP = 978307200
LATEST_TIMESTAMP = 253402300799
MAX_SECONDS = 3600


@dataclass(frozen=True)
class UpstreamVideo:
    id: str
    status: str = ""
    progress: int | None = None
    seconds: int | None = None
    model: str = ""
    size: str = ""
    prompt: str = ""
    remixed_from: str = ""
    created_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""

    @classmethod
    def parse(cls, data: object, *, secret: str = "") -> "UpstreamVideo":
        """The Video object in `data`, or UpstreamError (code `invalid_response`) saying what is
        wrong with it. `secret` (the API key) is removed from every text."""
        if not isinstance(data, dict):
            raise _garbled("the provider sent a job that is not a JSON object")
        video_id = identifier(data.get("id"))
        if not video_id:
            raise _garbled("the provider sent a job without a valid id")
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        return cls(
            id=video_id,
            status=_bounded(data.get("status"), MAX_STATUS_LENGTH, "status").lower(),
            progress=_progress(data.get("progress")),
            seconds=_seconds(data.get("seconds")),
            model=_bounded(data.get("model"), MAX_MODEL_LENGTH, "model"),
            size=_bounded(data.get("size"), MAX_SIZE_LENGTH, "size"),
            prompt=_text(data.get("prompt"), secret),
            remixed_from=identifier(data.get("remixed_from_video_id")),
            created_at=timestamp(data.get("created_at")),
            completed_at=timestamp(data.get("completed_at")),
            expires_at=timestamp(data.get("expires_at")),
            error_code=_text(error.get("code"), secret)[:MAX_CODE_LENGTH],
            error_message=_text(error.get("message"), secret)[:MAX_MESSAGE_LENGTH],
        )


def identifier(value: object) -> str:
    """A provider's id as text, or "" when it is missing or could not be ours to store."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable():
        return ""
    return text


def timestamp(value: object) -> datetime | None:
    """A Unix time as an aware datetime, or None when it is missing or absurd."""
    seconds = finite_number(value)
    if seconds is None or not EARLIEST_TIMESTAMP <= seconds <= LATEST_TIMESTAMP:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _progress(value: object) -> int | None:
    """0 to 100; an overflowing number (1e999 reads as infinity) is clamped like any other."""
    number = finite_number(value)
    if number is None and isinstance(value, float | str) and not isinstance(value, bool):
        try:
            infinite = float(value) if len(str(value)) <= 40 else None
        except ValueError:
            infinite = None
        if infinite is not None and math.isinf(infinite):
            number = infinite
    return None if number is None else int(min(max(number, 0), 100))


def _seconds(value: object) -> int | None:
    number = finite_number(value)
    if number is None or not 0 < number <= MAX_SECONDS:
        return None
    return round(number)


def _bounded(value: object, limit: int, name: str) -> str:
    """A short field: missing is "", too long or not text is the provider's error."""
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise _garbled(f"the provider sent an invalid {name}")
    text = str(value).strip()
    if len(text) > limit or not text.isprintable():
        raise _garbled(f"the provider sent an invalid {name} (unprintable, or over {limit} long)")
    return text


def _text(value: object, secret: str) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return redact(without_control_characters(str(value)), secret).strip()


def _garbled(message: str) -> UpstreamError:
    return UpstreamError(message, code=GARBLED)
