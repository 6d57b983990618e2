"""A fake `/v1/videos` provider that speaks the whole upstream contract over real HTTP.

`Simulator` wraps a stdlib `ThreadingHTTPServer` and imports nothing from Django, so tests run it
in a thread and `manage.py simulator` runs it in the foreground. Jobs live in memory and move
through their lifecycle by the clock alone. Their downloads are real files (an H.264 MP4, a WebP
thumbnail and a JPEG spritesheet) drawn from the prompt and made on first request, under
`<media_dir>/<video id>/`.

Every request goes through `Simulator.dispatch`: authentication, then the `ROUTES` table, then one
handler method that answers a `Reply` or raises `ApiError`, which becomes the contract's error
envelope. Fault injection hooks in there.

Limits, like a real key's: `rpm_limit` requests per minute (a sliding 60 s window over the
requests it admitted) and `concurrency_limit` jobs rendering at once. A request over either is
answered 429 with `Retry-After`, `retry-after-ms` and OpenAI's `x-ratelimit-*-requests` headers,
which every admitted request carries too while a per-minute limit is set (see `_admit`).

Webhooks do not wait for a request: while serving, a ticker thread notices jobs that the clock has
just finished and posts one signed Standard Webhooks event for each, from a thread of its own that
retries with backoff.
"""

import base64
import binascii
import colorsys
import contextlib
import hashlib
import hmac
import http.client
import io
import json
import logging
import math
import os
import re
import secrets
import shutil
import socket
import socketserver
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

import av
from PIL import Image, ImageDraw, ImageFont

from videos.derive import SPRITE_COLUMNS, SPRITE_TILE_WIDTH, SPRITE_TILES

log = logging.getLogger(__name__)

MODELS: dict[str, dict[str, tuple[str, ...]]] = {
    "sora-2": {
        "sizes": ("720x1280", "1280x720"),
        "seconds": ("4", "8", "12"),
    },
    "sora-2-pro": {
        "sizes": ("720x1280", "1280x720", "1024x1792", "1792x1024"),
        "seconds": ("4", "8", "12"),
    },
}
DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"
CREATE_FIELDS = frozenset({"prompt", "model", "seconds", "size", "input_reference"})
MAX_PROMPT_CHARS = 32_000
MAX_BODY_BYTES = 50 * 1024 * 1024
REFERENCE_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
BRACKET_FIELD = re.compile(r"(\w+)\[(\w+)\]")

# Shares of the render time: queued before the first, a fail-marked prompt fails at the second.
QUEUED_SHARE = 0.1
FAIL_SHARE = 0.3
MODERATION_MESSAGE = "Your request was blocked by our moderation system."
TERMINAL = frozenset({"completed", "failed"})

FPS = 24
VARIANTS: dict[str, tuple[str, str]] = {
    "video": ("video.mp4", "video/mp4"),
    "thumbnail": ("thumbnail.webp", "image/webp"),
    "spritesheet": ("spritesheet.jpg", "image/jpeg"),
}
COPY_CHUNK = 256 * 1024
# An idle keep-alive connection is dropped after this long, so handler threads do not pile up.
IDLE_TIMEOUT_SECONDS = 60

# How often the ticker looks for newly finished jobs: the delay of a webhook behind its job.
TICK_SECONDS = 0.1
WEBHOOK_TIMEOUT_SECONDS = 5
# Waits before the second, third, ... attempt: doubling from the first, capped at the last.
WEBHOOK_FIRST_BACKOFF_SECONDS = 0.5
WEBHOOK_MAX_BACKOFF_SECONDS = 30
# The window `rpm_limit` counts requests in, like a provider's "per minute".
RATE_WINDOW_SECONDS = 60.0
EVENT_TYPES = {"completed": "video.completed", "failed": "video.failed"}


class ApiError(Exception):
    """A request the provider refuses, answered with the contract's error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type
        self.headers = headers or {}

    def reply(self) -> "Reply":
        envelope = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        return Reply(status=self.status, body={"error": envelope}, headers=self.headers)


@dataclass
class ApiRequest:
    """One HTTP request, already read off the wire."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    """What to answer: a JSON body, or an open file streamed as the body."""

    status: int = 200
    body: Any = None
    file: BinaryIO | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Bytes sent as they are, instead of `body` as JSON.
    raw: bytes | None = None
    # Faults on the wire: no answer for this long, then hang up; half the body, then hang up;
    # the body at this many bytes per second; this many bytes of MP4 padding after the file.
    hang: float = 0.0
    cut: bool = False
    rate: int = 0
    padding: int = 0


@dataclass
class _Job:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    fails: bool
    # Captured at creation, so flipping the simulator's settings never rewinds a running job.
    render_seconds: float
    expires_after: int
    created_at: float  # wall clock, for the timestamps the API reports
    started: float  # monotonic clock, for the lifecycle
    remixed_from_video_id: str | None = None
    reference: Image.Image | None = None
    assets_lock: threading.Lock = field(default_factory=threading.Lock)
    # Set, under the simulator's lock, once the job's terminal state has been seen and announced.
    announced: bool = False

    def phase(self, now: float) -> tuple[str, int]:
        """Status and progress at monotonic time `now`, in the OpenAI dialect."""
        elapsed = now - self.started
        if self.fails and elapsed >= FAIL_SHARE * self.render_seconds:
            return "failed", self._progress(FAIL_SHARE * self.render_seconds)
        if elapsed >= self.render_seconds:
            return "completed", 100
        if elapsed < QUEUED_SHARE * self.render_seconds:
            return "queued", 0
        return "in_progress", self._progress(elapsed)

    def _progress(self, elapsed: float) -> int:
        rendering = (1 - QUEUED_SHARE) * self.render_seconds
        if rendering <= 0:
            return 0
        share = (elapsed - QUEUED_SHARE * self.render_seconds) / rendering
        return max(0, min(99, int(99 * share)))

    def expired(self, now: float) -> bool:
        return now - self.started >= self.render_seconds + self.expires_after


# (method, path, route name): the name is what a fault targets and the handler is `_<name>`.
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v1/videos"), "create"),
    ("GET", re.compile(r"/v1/videos"), "list"),
    ("GET", re.compile(r"/v1/videos/(?P<video_id>[^/]+)"), "retrieve"),
    ("DELETE", re.compile(r"/v1/videos/(?P<video_id>[^/]+)"), "delete"),
    ("POST", re.compile(r"/v1/videos/(?P<video_id>[^/]+)/remix"), "remix"),
    ("GET", re.compile(r"/v1/videos/(?P<video_id>[^/]+)/content"), "content"),
    # Where a `redirect` fault sends downloads: a signed link that needs no key, like a CDN's.
    ("GET", re.compile(r"/files/(?P<video_id>[^/]+)/(?P<variant>\w+)"), "signed_file"),
]
UNAUTHENTICATED_ROUTES = frozenset({"signed_file"})
SIGNED_LINK_SECONDS = 300

# Faults the simulator can inject, by kind; see `Fault`.
FAULT_STATUSES = {"429": 429, "500": 500, "502": 502, "503": 503}
FAULT_KINDS = frozenset(FAULT_STATUSES) | {
    "refuse",
    "hang",
    "cut",
    "html",
    "slow",
    "redirect",
    "vanish",
    "garbled",
    "oddcase",
    "pad",
}
FAULT_ROUTES = frozenset({"*", "create", "list", "retrieve", "delete", "remix", "content"})
ODD_CASE = {
    "queued": "Queued",
    "in_progress": "IN_PROGRESS",
    "processing": "Processing",
    "completed": "COMPLETED",
    "failed": "Failed",
}
GATEWAY_PAGE = (
    "<html><head><title>{status} Bad Gateway</title></head>"
    "<body><h1>{status} Bad Gateway</h1><hr>nginx</body></html>"
)


@dataclass
class Fault:
    """One injected misbehaviour: what goes wrong, on which route, and how many more times.

    Kinds: `429` (with Retry-After), `500`, `502` (an HTML page from a gateway), `503`;
    `refuse` (nothing listens for `seconds`: connections are refused); `hang` (the request is
    carried out but no answer comes for `seconds`, then the connection closes); `cut` (half the
    body, then the connection drops); `html` (200 with an HTML error page instead of the body);
    `slow` (the body at `rate` bytes per second); `redirect` (`content` answers 302 to a signed
    link); `vanish` (the job is forgotten: 404 from now on); `garbled` (200 with JSON cut short);
    `oddcase` (statuses in odd case, e.g. "IN_PROGRESS"); `pad` (the MP4 grows by `size` bytes of
    padding, a valid `free` box, to test big downloads).

    `times` is how many requests it hits (None: all of them); `chance` makes each hit random.
    """

    route: str
    kind: str
    times: int | None = 1
    chance: float = 1.0
    variant: str | None = None
    seconds: float = 30.0
    retry_after: float = 1.0
    rate: int = 256 * 1024
    size: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}: one of {sorted(FAULT_KINDS)}")
        if self.route not in FAULT_ROUTES:
            raise ValueError(f"unknown route {self.route!r}: one of {sorted(FAULT_ROUTES)}")
        if self.variant is not None and self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}")
        if not 0 < self.chance <= 1:
            raise ValueError("chance must be above 0 and at most 1")

    def matches(self, route: str, request: "ApiRequest") -> bool:
        if self.route not in ("*", route) or self.times == 0:
            return False
        if self.variant and request.query.get("variant", "video") != self.variant:
            return False
        return self.chance >= 1 or secrets.randbelow(10**6) < self.chance * 10**6


def parse_faults(spec: str) -> list[Fault]:
    """Faults from text, `;`-separated, each `route:kind[:option=value...]`.

    For example `create:hang:seconds=20;retrieve:503:times=3;content:cut:variant=video` or
    `*:500:times=always:chance=0.05`. Options are the fields of `Fault`.
    """
    faults = []
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        route, _, rest = item.partition(":")
        kind, *options = rest.split(":")
        values: dict[str, Any] = {}
        for option in options:
            name, sep, raw = option.partition("=")
            if not sep or name not in FAULT_OPTIONS:
                raise ValueError(f"bad fault option {option!r} in {item!r}")
            if name == "times" and raw == "always":
                values[name] = None
            elif name == "variant":
                values[name] = raw
            else:
                try:
                    values[name] = FAULT_OPTIONS[name](raw)
                except ValueError:
                    raise ValueError(f"bad value for {name} in {item!r}") from None
        faults.append(Fault(route=route.strip(), kind=kind.strip(), **values))
    return faults


def parse_variants(spec: str) -> tuple[str, ...]:
    """Content variants from text, comma-separated, e.g. `video` or `video,thumbnail`."""
    variants = tuple(dict.fromkeys(filter(None, (part.strip() for part in spec.split(",")))))
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    if not variants:
        raise ValueError(f"name at least one variant: {', '.join(VARIANTS)}")
    return variants


FAULT_OPTIONS: dict[str, Callable[[str], Any]] = {
    "times": int,
    "chance": float,
    "variant": str,
    "seconds": float,
    "retry_after": float,
    "rate": int,
    "size": int,
}


class Simulator:
    """The fake provider: its settings, its jobs, and the HTTP server that exposes them.

    `dialect`, `render_seconds`, `fail_marker`, `poll_after_ms` and `expires_after` are plain
    attributes that may be changed while serving; timing changes apply to jobs created afterwards.
    So are `webhook_url`, `webhook_secret` and `webhook_retries`: a job sends its event if a URL is
    set when it finishes, signed with the secret of that moment (unsigned if there is none).
    `webhook_log` records every delivery attempt. `offered_variants` is the content variants it
    serves; the others answer 400, as a gateway in front of a model without thumbnails and
    spritesheets does. `list_refused_with` (0: none) is the status `GET /videos` answers, 404 or
    405, as a provider or relay without the list does. `rpm_limit` and `concurrency_limit`
    (0: none) may change while serving too; `request_log` holds (monotonic time, route) of every
    API request admitted and `refusals` (route, "requests" or "concurrency") of every one refused
    by a limit.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "muxweb-simulator",
        render_seconds: float = 20.0,
        fail_marker: str = "[fail]",
        poll_after_ms: int = 2000,
        expires_after: int = 3600,
        dialect: str = "openai",
        media_dir: str | Path | None = None,
        verbose: bool = False,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_retries: int = 5,
        faults: list[Fault] | None = None,
        offered_variants: tuple[str, ...] = tuple(VARIANTS),
        rpm_limit: int = 0,
        concurrency_limit: int = 0,
        list_refused_with: int = 0,
    ) -> None:
        self.api_key = api_key
        self.list_refused_with = list_refused_with
        self.rpm_limit = rpm_limit
        self.concurrency_limit = concurrency_limit
        self.request_log: list[tuple[float, str]] = []
        self.refusals: list[tuple[str, str]] = []
        self._admitted: deque[float] = deque()
        self._limits_lock = threading.Lock()
        self.render_seconds = render_seconds
        self.fail_marker = fail_marker
        self.poll_after_ms = poll_after_ms
        self.expires_after = expires_after
        self.dialect = dialect
        self.offered_variants = offered_variants
        self.verbose = verbose
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_retries = webhook_retries
        self.webhook_log: list[dict] = []
        self._webhook_log_lock = threading.Lock()
        self._media_dir = Path(media_dir) if media_dir is not None else None
        self._owns_media_dir = False
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._server = _Server((host, port), self)
        self._address = self._server.server_address[:2]
        # Signs the links a `redirect` fault hands out.
        self._link_key = secrets.token_bytes(32)
        self._refuse_at_start = 0.0
        self.faults: list[Fault] = []
        # (route, kind) of every fault that hit, in order.
        self.fault_log: list[tuple[str, str]] = []
        self._faults_lock = threading.Lock()
        for fault in faults or []:
            self.inject(fault)

    @property
    def webhook_secret(self) -> str | None:
        return self._webhook_secret

    @webhook_secret.setter
    def webhook_secret(self, secret: str | None) -> None:
        # Decoded on assignment, so a mistyped secret fails here rather than in a delivery thread.
        self._webhook_key = _signing_key(secret) if secret else None
        self._webhook_secret = secret or None

    @property
    def base_url(self) -> str:
        host, port = self._address
        if host == "0.0.0.0":  # noqa: S104 (only naming the wildcard, not binding to it)
            host = "127.0.0.1"
        return f"http://{host}:{port}/v1"

    def start(self) -> "Simulator":
        """Serve from a daemon thread; returns self, so `Simulator(...).start()` reads well."""
        self._start_ticker()
        self._serve_in_thread()
        if self._refuse_at_start:
            self.refuse_connections(self._refuse_at_start)
            self._refuse_at_start = 0.0
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C raises KeyboardInterrupt in the calling thread)."""
        self.start()
        while not self._stopping.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop serving and announcing, drop open connections, and remove a media directory it made.

        Deliveries under way give up at their next retry.
        """
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._server.close_connections()
        if self._owns_media_dir and self._media_dir is not None:
            shutil.rmtree(self._media_dir, ignore_errors=True)

    def inject(self, fault: Fault | str, kind: str | None = None, **options: Any) -> Fault:
        """Add a fault: `inject("create", "hang", seconds=5)`, or a `Fault` made elsewhere.

        A `refuse` fault takes effect at once: nothing listens for its `seconds`.
        """
        if not isinstance(fault, Fault):
            if kind is None:
                raise TypeError("inject(route, kind, ...) needs a kind")
            fault = Fault(route=fault, kind=kind, **options)
        if fault.kind == "refuse":
            if self._thread is None:
                # Given before serving (from the command line): refused from the start.
                self._refuse_at_start = fault.seconds
            else:
                self.fault_log.append((fault.route, fault.kind))
                self.refuse_connections(fault.seconds)
            return fault
        with self._faults_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._faults_lock:
            self.faults.clear()
            self.fault_log.clear()

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for `seconds`: connections are refused, as when a server is down.

        Open keep-alive connections are dropped too. Only while serving from `start()`'s thread.
        """
        if self._thread is None:
            raise RuntimeError("the simulator is not serving")
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
        self._server.close_connections()
        self._thread = None
        timer = threading.Timer(seconds, self._listen_again)
        timer.daemon = True
        timer.start()

    def _listen_again(self) -> None:
        if self._stopping.is_set():
            return
        self._server = _Server(self._address, self)
        self._serve_in_thread()

    def _serve_in_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="muxweb-simulator",
            daemon=True,
        )
        self._thread.start()

    def _take_fault(self, route: str, request: "ApiRequest") -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.matches(route, request):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    self.fault_log.append((route, fault.kind))
                    return fault
        return None

    def job(self, video_id: str) -> dict:
        """The job as the API returns it now; KeyError if there is no such job."""
        with self._lock:
            job = self._jobs[video_id]
        return self._video(job, time.monotonic())

    def jobs(self) -> list[dict]:
        """Every job as the API returns it now, oldest first."""
        now = time.monotonic()
        with self._lock:
            jobs = list(self._jobs.values())
        return [self._video(job, now) for job in jobs]

    def reset_limits(self) -> None:
        """No limits, and no request counted against them: a fresh key."""
        with self._limits_lock:
            self.rpm_limit = self.concurrency_limit = 0
            self._admitted.clear()
            self.request_log.clear()
            self.refusals.clear()

    def most_requests_in_window(self, window: float = RATE_WINDOW_SECONDS) -> int:
        """The most requests admitted within any `window` seconds, from `request_log`."""
        with self._limits_lock:
            times = [at for at, _route in self.request_log]
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            most = max(most, end - start + 1)
        return most

    def _admit(self, route: str) -> dict[str, str]:
        """Count one API request against `rpm_limit`, or refuse it with 429.

        A sliding window: a request is admitted when fewer than `rpm_limit` were admitted in the
        last 60 s; refused ones do not count. The answer's `x-ratelimit-*` headers: the limit, the
        room left after this request, and when the oldest counted request leaves the window
        (`reset`, as OpenAI writes durations: "1.5s")."""
        now = time.monotonic()
        with self._limits_lock:
            limit = self.rpm_limit
            while self._admitted and now - self._admitted[0] >= RATE_WINDOW_SECONDS:
                self._admitted.popleft()
            if limit and len(self._admitted) >= limit:
                # Room comes back when the request `limit` places back leaves the window.
                wait = self._admitted[-limit] + RATE_WINDOW_SECONDS - now
                self.refusals.append((route, "requests"))
                headers = _limit_headers(limit, 0, wait)
                raise ApiError(
                    429,
                    f"Rate limit reached for requests: limit {limit} per minute. "
                    f"Please try again in {_duration(wait)}.",
                    code="rate_limit_exceeded",
                    error_type="requests",
                    headers={**headers, **_retry_headers(wait)},
                )
            self._admitted.append(now)
            self.request_log.append((now, route))
            if not limit:
                return {}
            reset = self._admitted[0] + RATE_WINDOW_SECONDS - now
            return _limit_headers(limit, limit - len(self._admitted), reset)

    def _check_concurrency(self, route: str) -> None:
        """Refuse a create or remix while `concurrency_limit` jobs are rendering (429)."""
        limit = self.concurrency_limit
        if not limit:
            return
        now = time.monotonic()
        with self._lock:
            running = [job for job in self._jobs.values() if job.phase(now)[0] not in TERMINAL]
        if len(running) < limit:
            return
        wait = min(job.started + job.render_seconds for job in running) - now
        with self._limits_lock:
            self.refusals.append((route, "concurrency"))
        raise ApiError(
            429,
            f"Too many concurrent jobs: at most {limit} may render at once.",
            code="too_many_concurrent_jobs",
            error_type="requests",
            headers=_retry_headers(wait),
        )

    def reset(self) -> None:
        """Forget every job and delete its files."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            self._remove_files(job)

    def dispatch(self, request: ApiRequest) -> Reply:
        """Answer one request: authenticate, count it against the limits, route, run the
        handler, map errors to envelopes."""
        limit_headers: dict[str, str] = {}
        try:
            route, request.params = self._route(request)
            if route not in UNAUTHENTICATED_ROUTES:
                self._authenticate(request)
                limit_headers = self._admit(route)
            handler = getattr(self, f"_{route}")
            if route in ("create", "remix"):
                self._check_concurrency(route)
            fault = self._take_fault(route, request)
            if fault is None:
                reply = handler(request)
            else:
                reply = self._misbehave(fault, route, request, handler)
            reply.headers = {**limit_headers, **reply.headers}
            return reply
        except ApiError as error:
            reply = error.reply()
            reply.headers = {**limit_headers, **reply.headers}
            return reply
        except Exception:
            log.exception("simulator failed on %s %s", request.method, request.path)
            return ApiError(
                500,
                "The server had an error while processing your request.",
                error_type="server_error",
                code="internal_error",
            ).reply()

    def _authenticate(self, request: ApiRequest) -> None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        # The key is never echoed back: clients must be able to log error messages safely.
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401,
                "You didn't provide an API key: send it as 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")

    def _route(self, request: ApiRequest) -> tuple[str, dict[str, str]]:
        allowed = []
        for method, pattern, name in ROUTES:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method == request.method:
                params = {key: unquote(value) for key, value in match.groupdict().items()}
                return name, params
            allowed.append(method)
        if allowed:
            self._authenticate(request)
            raise ApiError(
                405,
                f"Method {request.method} is not allowed on {request.path}.",
                code="method_not_allowed",
                headers={"Allow": ", ".join(allowed)},
            )
        raise ApiError(404, f"Unknown path: {request.path}.", code="not_found")

    def _create(self, request: ApiRequest) -> Reply:
        if request.headers.get_content_type() == "multipart/form-data":
            fields, upload = _multipart_fields(request)
        else:
            fields, upload = _json_object(request), None
        spec = _validated_create(fields)
        reference = None
        if upload is not None:
            if fields.get("input_reference") is not None:
                raise ApiError(
                    400,
                    "Send input_reference either as a file or as an object, not both.",
                    param="input_reference",
                    code="invalid_value",
                )
            reference = _reference_image(upload, spec["size"])
        elif fields.get("input_reference") is not None:
            _check_reference_object(fields["input_reference"])
        return Reply(body=self._add_job(**spec, reference=reference))

    def _list(self, request: ApiRequest) -> Reply:
        if self.list_refused_with == 405:
            raise ApiError(
                405,
                f"Method GET is not allowed on {request.path}.",
                code="method_not_allowed",
                headers={"Allow": "POST"},
            )
        if self.list_refused_with:
            raise ApiError(404, f"Unknown path: {request.path}.", code="not_found")
        limit = _limit(request.query.get("limit"))
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(
                400, "order must be 'asc' or 'desc'.", param="order", code="invalid_value"
            )
        with self._lock:
            jobs = list(self._jobs.values())
        if order == "desc":
            jobs.reverse()
        if after := request.query.get("after"):
            ids = [job.id for job in jobs]
            if after not in ids:
                raise ApiError(
                    400, f"Unknown cursor: no video '{after}'.", param="after", code="invalid_value"
                )
            jobs = jobs[ids.index(after) + 1 :]
        now = time.monotonic()
        data = [self._video(job, now) for job in jobs[:limit]]
        return Reply(
            body={
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(jobs) > limit,
            }
        )

    def _retrieve(self, request: ApiRequest) -> Reply:
        video = self._video(self._get(request.params["video_id"]), time.monotonic())
        headers = {}
        if video["status"] not in TERMINAL:
            headers["openai-poll-after-ms"] = str(self.poll_after_ms)
        return Reply(body=video, headers=headers)

    def _delete(self, request: ApiRequest) -> Reply:
        job = self._get(request.params["video_id"])
        status, _ = job.phase(time.monotonic())
        if status not in TERMINAL:
            raise ApiError(
                400,
                f"Video {job.id} is {status}: only completed or failed videos can be deleted.",
                code="invalid_state",
            )
        with self._lock:
            if self._jobs.pop(job.id, None) is None:
                raise _not_found(job.id)
            # It may have finished since the last tick, which would now never see it: announce here.
            unannounced = not job.announced
            job.announced = True
        if unannounced:
            self._announce(job, status)
        self._remove_files(job)
        return Reply(body={"id": job.id, "object": "video.deleted", "deleted": True})

    def _remix(self, request: ApiRequest) -> Reply:
        source = self._get(request.params["video_id"])
        fields = _json_object(request)
        _reject_unknown(fields, {"prompt"})
        prompt = _validated_prompt(fields.get("prompt"))
        status, _ = source.phase(time.monotonic())
        if status != "completed":
            raise ApiError(
                400,
                f"Video {source.id} is {status}: only completed videos can be remixed.",
                code="invalid_state",
            )
        video = self._add_job(
            model=source.model,
            prompt=prompt,
            seconds=source.seconds,
            size=source.size,
            reference=source.reference,
            remixed_from_video_id=source.id,
        )
        return Reply(body=video)

    def _content(self, request: ApiRequest) -> Reply:
        variant = request.query.get("variant", "video")
        if variant not in VARIANTS:
            raise ApiError(
                400,
                f"variant must be one of: {', '.join(VARIANTS)}.",
                param="variant",
                code="invalid_value",
            )
        if variant not in self.offered_variants:
            raise ApiError(
                400,
                f"variant '{variant}' is not supported for this model.",
                param="variant",
                code="unsupported_variant",
            )
        job = self._get(request.params["video_id"])
        now = time.monotonic()
        status, _ = job.phase(now)
        if status != "completed":
            raise ApiError(
                404,
                f"Video {job.id} is {status}: its content exists once it has completed.",
                code="video_not_ready",
            )
        if job.expired(now):
            raise ApiError(404, f"The content of video {job.id} has expired.", code="video_expired")
        return Reply(file=self._open_asset(job, variant), content_type=VARIANTS[variant][1])

    def _misbehave(
        self, fault: Fault, route: str, request: ApiRequest, handler: Callable[[ApiRequest], Reply]
    ) -> Reply:
        """The reply to a request a fault hit. Faults on the wire let the request do its work."""
        if status := FAULT_STATUSES.get(fault.kind):
            if status == 502:
                page = GATEWAY_PAGE.format(status=status).encode()
                return Reply(status=status, raw=page, content_type="text/html")
            headers = {"Retry-After": f"{fault.retry_after:g}"} if status == 429 else {}
            code, kind = ("rate_limit_exceeded", "requests") if status == 429 else (None, "server")
            message = "Rate limit reached." if status == 429 else "The server had an error."
            raise ApiError(status, message, code=code, error_type=kind, headers=headers)
        if fault.kind == "vanish":
            with self._lock:
                job = self._jobs.pop(request.params.get("video_id", ""), None)
            if job is not None:
                job.announced = True
                self._remove_files(job)
        if fault.kind == "redirect" and route == "content":
            reply = handler(request)
            if reply.file is not None:
                reply.file.close()
            return Reply(status=302, raw=b"", headers={"Location": self._signed_link(request)})
        reply = handler(request)
        if fault.kind == "hang":
            reply.hang = fault.seconds
        elif fault.kind == "cut":
            reply.cut = True
        elif fault.kind == "slow":
            reply.rate = fault.rate
        elif fault.kind == "pad" and reply.content_type == "video/mp4":
            reply.padding = fault.size
        elif fault.kind == "html" and reply.status == 200:
            if reply.file is not None:
                reply.file.close()
            page = b"<!DOCTYPE html><html><body><h1>Something went wrong</h1></body></html>"
            return Reply(raw=page, content_type="text/html; charset=utf-8")
        elif fault.kind == "garbled" and reply.file is None:
            text = json.dumps(reply.body).encode()
            reply.raw = text[: max(len(text) // 2, 1)]
        elif fault.kind == "oddcase" and isinstance(reply.body, dict):
            for video in reply.body.get("data") or [reply.body]:
                if isinstance(video, dict) and video.get("status") in ODD_CASE:
                    video["status"] = ODD_CASE[video["status"]]
        return reply

    def _signed_link(self, request: ApiRequest) -> str:
        video_id = request.params["video_id"]
        variant = request.query.get("variant", "video")
        expires = int(time.time()) + SIGNED_LINK_SECONDS
        signature = self._link_signature(video_id, variant, expires)
        host, port = self._address
        # Another host name for the same server: the client must not send its key along.
        other_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
        return f"http://{other_host}:{port}/files/{video_id}/{variant}?e={expires}&s={signature}"

    def _link_signature(self, video_id: str, variant: str, expires: int) -> str:
        message = f"{video_id}/{variant}/{expires}".encode()
        return hmac.new(self._link_key, message, hashlib.sha256).hexdigest()

    def _signed_file(self, request: ApiRequest) -> Reply:
        """A download through a signed link, which needs no key (and refuses one)."""
        video_id, variant = request.params["video_id"], request.params["variant"]
        try:
            expires = int(request.query.get("e", ""))
        except ValueError:
            expires = 0
        expected = self._link_signature(video_id, variant, expires)
        if not hmac.compare_digest(expected, request.query.get("s", "")) or time.time() > expires:
            raise ApiError(403, "This link is not valid.", code="invalid_signature")
        if "Authorization" in request.headers:
            raise ApiError(400, "Signed links must be fetched without credentials.")
        request.query = {"variant": variant}
        return self._content(request)

    def _get(self, video_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get(video_id)
        if job is None:
            raise _not_found(video_id)
        return job

    def _add_job(
        self,
        *,
        model: str,
        prompt: str,
        seconds: str,
        size: str,
        reference: Image.Image | None = None,
        remixed_from_video_id: str | None = None,
    ) -> dict:
        job = _Job(
            id=f"video_{secrets.token_hex(12)}",
            model=model,
            prompt=prompt,
            seconds=seconds,
            size=size,
            fails=bool(self.fail_marker) and self.fail_marker.lower() in prompt.lower(),
            render_seconds=self.render_seconds,
            expires_after=self.expires_after,
            created_at=time.time(),
            started=time.monotonic(),
            remixed_from_video_id=remixed_from_video_id,
            reference=reference,
        )
        with self._lock:
            self._jobs[job.id] = job
        return self._video(job, job.started)

    def _video(self, job: _Job, now: float) -> dict:
        status, progress = job.phase(now)
        completed_at = expires_at = None
        if status == "completed":
            completed_at = int(job.created_at + job.render_seconds)
            expires_at = completed_at + job.expires_after
        if status == "in_progress" and self.dialect == "relay":
            status = "processing"
        error = None
        if status == "failed":
            error = {"code": "moderation_blocked", "message": MODERATION_MESSAGE}
        return {
            "id": job.id,
            "object": "video",
            "model": job.model,
            "prompt": job.prompt,
            "status": status,
            "progress": progress,
            "created_at": int(job.created_at),
            "completed_at": completed_at,
            "expires_at": expires_at,
            "seconds": job.seconds,
            "size": job.size,
            "remixed_from_video_id": job.remixed_from_video_id,
            "error": error,
        }

    def _media_root(self) -> Path:
        with self._lock:
            if self._media_dir is None:
                self._media_dir = Path(tempfile.mkdtemp(prefix="muxweb-simulator-"))
                self._owns_media_dir = True
            return self._media_dir

    def _open_asset(self, job: _Job, variant: str) -> BinaryIO:
        """The variant's file, made on first request, and opened now so a delete cannot pull it."""
        filename, _ = VARIANTS[variant]
        path = self._media_root() / job.id / filename
        with job.assets_lock:
            # A delete forgets the job before taking this lock: never remake a deleted job's files.
            with self._lock:
                if self._jobs.get(job.id) is not job:
                    raise _not_found(job.id)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(f".{filename}.part")
                ASSET_WRITERS[variant](partial, _Picture(job))
                os.replace(partial, path)
            return path.open("rb")

    def _remove_files(self, job: _Job) -> None:
        if self._media_dir is None:
            return
        with job.assets_lock:
            shutil.rmtree(self._media_dir / job.id, ignore_errors=True)

    def _start_ticker(self) -> None:
        self._ticker = threading.Thread(
            target=self._tick, name="muxweb-simulator-ticker", daemon=True
        )
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            try:
                self._announce_finished()
            except Exception:
                log.exception("simulator ticker failed")

    def _announce_finished(self) -> None:
        """Announce every job that the clock has finished since the last tick, once each."""
        now = time.monotonic()
        finished = []
        with self._lock:
            for job in self._jobs.values():
                if job.announced:
                    continue
                status, _ = job.phase(now)
                if status in TERMINAL:
                    job.announced = True
                    finished.append((job, status))
        for job, status in finished:
            self._announce(job, status)

    def _announce(self, job: _Job, status: str) -> None:
        """Queue the delivery of the job's event, if webhooks are on."""
        url = self.webhook_url
        if not url:
            return
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "created_at": int(time.time()),
            "type": EVENT_TYPES[status],
            "data": {"id": job.id},
        }
        threading.Thread(
            target=self._deliver,
            args=(url, self._webhook_key, self.webhook_retries, event),
            name=f"muxweb-simulator-webhook-{job.id}",
            daemon=True,
        ).start()

    def _deliver(self, url: str, key: bytes | None, attempts: int, event: dict) -> None:
        """POST the event until a 2xx answer, at most `attempts` times, re-signed for each."""
        body = json.dumps(event).encode()
        backoff = WEBHOOK_FIRST_BACKOFF_SECONDS
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                if self._stopping.wait(backoff):
                    return
                backoff = min(2 * backoff, WEBHOOK_MAX_BACKOFF_SECONDS)
            status = error = None
            try:
                status = _post(url, body, _webhook_headers(event["id"], body, key))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._webhook_log_lock:
                self.webhook_log.append(
                    {
                        "event_id": event["id"],
                        "type": event["type"],
                        "video_id": event["data"]["id"],
                        "attempt": attempt,
                        "status": status,
                        "error": error,
                    }
                )
            if status is not None and 200 <= status < 300:
                return
            log.info(
                "webhook %s attempt %d/%d failed: %s",
                event["id"],
                attempt,
                attempts,
                error or f"HTTP {status}",
            )
        log.warning(
            "webhook %s for %s: gave up after %d attempts",
            event["id"],
            event["data"]["id"],
            attempts,
        )


def _signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after `whsec_` (or all of it)."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("webhook_secret must be whsec_ followed by base64") from None
    if not key:
        raise ValueError("webhook_secret must not be empty")
    return key


def _webhook_headers(event_id: str, body: bytes, key: bytes | None) -> dict[str, str]:
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": timestamp,
    }
    if key is not None:
        signed = f"{event_id}.{timestamp}.".encode() + body
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        headers["webhook-signature"] = f"v1,{base64.b64encode(digest).decode()}"
    return headers


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST with a short timeout and no redirects (a 3xx is a failed delivery); the status."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection_class = http.client.HTTPSConnection
    elif parts.scheme == "http":
        connection_class = http.client.HTTPConnection
    else:
        raise ValueError(f"webhook_url must be http or https, not {parts.scheme!r}")
    connection = connection_class(parts.hostname or "", parts.port, timeout=WEBHOOK_TIMEOUT_SECONDS)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _duration(seconds: float) -> str:
    """A wait as OpenAI writes it in its headers and messages: "1.5s", "250ms"."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    return f"{math.ceil(seconds * 1000) / 1000:g}s"


def _limit_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(max(remaining, 0)),
        "x-ratelimit-reset-requests": _duration(reset),
    }


def _retry_headers(wait: float) -> dict[str, str]:
    # Retry-After is whole seconds, rounded up; retry-after-ms says it exactly.
    wait = max(wait, 0.0)
    return {"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}


def _not_found(video_id: str) -> ApiError:
    return ApiError(404, f"Video '{video_id}' not found.", code="video_not_found")


def _json_object(request: ApiRequest) -> dict:
    try:
        value = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(value, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    return value


def _multipart_fields(request: ApiRequest) -> tuple[dict[str, Any], bytes | None]:
    """Text fields (bracketed names nested, as JSON would be) and the input_reference file."""
    head = f"Content-Type: {request.headers.get('Content-Type')}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.body)
    if not message.is_multipart() or message.defects:
        raise ApiError(
            400, "The multipart/form-data body could not be parsed.", code="invalid_multipart"
        )
    fields: dict[str, Any] = {}
    upload = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if not name:
            raise ApiError(400, "A multipart part has no field name.", code="invalid_multipart")
        if name == "input_reference":
            # Browsers send an empty part for a file input left blank: that is no reference.
            if payload or part.get_filename():
                upload = payload
            continue
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(
                400, f"Field '{name}' is not UTF-8 text.", param=name, code="invalid_value"
            ) from None
        if bracket := BRACKET_FIELD.fullmatch(name):
            outer, inner = bracket.groups()
            nested = fields.setdefault(outer, {})
            if not isinstance(nested, dict):
                raise ApiError(
                    400, f"'{outer}' is sent both as a value and as an object.", param=outer
                )
            nested[inner] = text
        else:
            fields[name] = text
    return fields, upload


def _reject_unknown(fields: dict, known: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ApiError(
            400, f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter"
        )


def _validated_create(fields: dict) -> dict[str, str]:
    """prompt, model, seconds and size of a create request, with defaults, or an ApiError."""
    _reject_unknown(fields, CREATE_FIELDS)
    prompt = _validated_prompt(fields.get("prompt"))
    model = _string_field(fields, "model", DEFAULT_MODEL)
    if model not in MODELS:
        raise ApiError(
            400,
            f"Invalid model '{model}'. Available models: {', '.join(MODELS)}.",
            param="model",
            code="invalid_value",
        )
    size = _string_field(fields, "size", DEFAULT_SIZE)
    if size not in MODELS[model]["sizes"]:
        raise ApiError(
            400,
            f"Invalid size '{size}' for {model}. Supported: {', '.join(MODELS[model]['sizes'])}.",
            param="size",
            code="invalid_value",
        )
    seconds = _seconds(fields.get("seconds"))
    if seconds not in MODELS[model]["seconds"]:
        raise ApiError(
            400,
            f"Invalid seconds '{seconds}' for {model}. "
            f"Supported: {', '.join(MODELS[model]['seconds'])}.",
            param="seconds",
            code="invalid_value",
        )
    return {"prompt": prompt, "model": model, "seconds": seconds, "size": size}


def _validated_prompt(value: Any) -> str:
    if value is None:
        raise ApiError(
            400,
            "Missing required parameter: 'prompt'.",
            param="prompt",
            code="missing_required_parameter",
        )
    if not isinstance(value, str):
        raise ApiError(400, "prompt must be a string.", param="prompt", code="invalid_type")
    if not value.strip():
        raise ApiError(400, "prompt must not be empty.", param="prompt", code="invalid_value")
    if len(value) > MAX_PROMPT_CHARS:
        raise ApiError(
            400,
            f"prompt is too long: {len(value)} characters, at most {MAX_PROMPT_CHARS}.",
            param="prompt",
            code="string_above_max_length",
        )
    return value


def _string_field(fields: dict, name: str, default: str) -> str:
    value = fields.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string.", param=name, code="invalid_type")
    return value


def _seconds(value: Any) -> str:
    # The contract says string, but clients send numbers too: 8 and 8.0 both mean "8".
    if value is None:
        return DEFAULT_SECONDS
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value.strip()
    raise ApiError(
        400, 'seconds must be a string such as "4".', param="seconds", code="invalid_type"
    )


def _check_reference_object(value: Any) -> None:
    """A JSON input_reference names its image by exactly one of image_url or file_id."""
    valid = False
    if isinstance(value, dict) and len(value) == 1:
        ((key, reference),) = value.items()
        valid = key in ("image_url", "file_id") and isinstance(reference, str) and reference != ""
    if not valid:
        raise ApiError(
            400,
            "input_reference must be an object with exactly one of 'image_url' or 'file_id'.",
            param="input_reference",
            code="invalid_value",
        )


def _reference_image(data: bytes, size: str) -> Image.Image:
    invalid = ApiError(
        400,
        "input_reference must be a JPEG, PNG or WebP image.",
        param="input_reference",
        code="invalid_reference_image",
    )
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        raise invalid from None
    if image.format not in REFERENCE_FORMATS:
        raise invalid
    if f"{image.width}x{image.height}" != size:
        raise ApiError(
            400,
            "image must match the requested width and height",
            param="input_reference",
            code="invalid_value",
        )
    return image.convert("RGB")


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 20
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise ApiError(
            400, "limit must be an integer from 1 to 100.", param="limit", code="invalid_value"
        )
    return limit


class _Picture:
    """The frames of one job's video: the prompt decides the colours, motion and caption.

    The background is a gradient in colours hashed from the prompt (or the reference image when
    the job has one); a disc moves across it and a timecode counts up, so every frame differs.
    """

    def __init__(self, job: _Job) -> None:
        self.width, self.height = (int(n) for n in job.size.split("x"))
        self.frame_count = int(job.seconds) * FPS
        digest = hashlib.sha256(job.prompt.encode()).digest()
        hue = digest[0] / 255
        self.disc_colour = _rgb((hue + 0.5) % 1, 0.35, 1.0)
        self.periods = (3 + digest[3] % 4, 2 + digest[4] % 3)
        self.phase = digest[5] / 255 * 2 * math.pi
        self.radius = min(self.width, self.height) // 10
        self.font = ImageFont.load_default(size=max(16, min(self.width, self.height) // 16))

        if job.reference is not None:
            self.background = job.reference.copy()
        else:
            mask = Image.linear_gradient("L")
            if digest[2] % 2:
                mask = mask.transpose(Image.Transpose.ROTATE_90)
            self.background = Image.composite(
                Image.new("RGB", (self.width, self.height), _rgb(hue, 0.7, 0.9)),
                Image.new("RGB", (self.width, self.height), _rgb((hue + 0.15) % 1, 0.8, 0.3)),
                mask.resize((self.width, self.height)),
            )
        # The caption never changes, so it is drawn once onto the background.
        margin = self.radius // 2
        self._text(ImageDraw.Draw(self.background), (margin, margin), self._caption(job.prompt))

    def frame(self, index: int) -> Image.Image:
        image = self.background.copy()
        draw = ImageDraw.Draw(image)
        t = index / FPS
        r = self.radius
        x = self.width / 2 + (self.width / 2 - 2 * r) * math.sin(
            2 * math.pi * t / self.periods[0] + self.phase
        )
        y = self.height / 2 + (self.height / 2 - 2 * r) * math.sin(
            2 * math.pi * t / self.periods[1]
        )
        draw.ellipse((x - r, y - r, x + r, y + r), fill=self.disc_colour, outline="black", width=3)
        minutes, seconds = divmod(t, 60)
        timecode = f"{int(minutes):02d}:{seconds:05.2f}"
        self._text(draw, (r // 2, self.height - r // 2), timecode, anchor="ld")
        return image

    def _caption(self, prompt: str) -> str:
        """The prompt's first words, as many as fit on one line."""
        limit = self.width - self.radius
        caption = ""
        for word in prompt.split()[:8]:
            candidate = f"{caption} {word}".strip()
            if self.font.getlength(candidate) > limit:
                break
            caption = candidate
        return caption

    def _text(self, draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, **kwargs) -> None:
        draw.text(
            xy, text, font=self.font, fill="white", stroke_width=2, stroke_fill="black", **kwargs
        )


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _write_video(path: Path, picture: _Picture) -> None:
    # faststart puts the index first, so browsers can play and seek before the download ends.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream(
            "libx264", rate=FPS, options={"preset": "ultrafast", "crf": "28"}
        )
        stream.width, stream.height, stream.pix_fmt = picture.width, picture.height, "yuv420p"
        for index in range(picture.frame_count):
            frame = av.VideoFrame.from_image(picture.frame(index))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _write_thumbnail(path: Path, picture: _Picture) -> None:
    picture.frame(picture.frame_count // 2).save(path, format="WEBP", quality=80)


def _write_spritesheet(path: Path, picture: _Picture) -> None:
    tile_height = round(SPRITE_TILE_WIDTH * picture.height / picture.width)
    rows = math.ceil(SPRITE_TILES / SPRITE_COLUMNS)
    sheet = Image.new("RGB", (SPRITE_COLUMNS * SPRITE_TILE_WIDTH, rows * tile_height))
    for tile in range(SPRITE_TILES):
        index = int((tile + 0.5) * picture.frame_count / SPRITE_TILES)
        image = picture.frame(index).resize((SPRITE_TILE_WIDTH, tile_height))
        row, column = divmod(tile, SPRITE_COLUMNS)
        sheet.paste(image, (column * SPRITE_TILE_WIDTH, row * tile_height))
    sheet.save(path, format="JPEG", quality=80)


ASSET_WRITERS: dict[str, Callable[[Path, _Picture], None]] = {
    "video": _write_video,
    "thumbnail": _write_thumbnail,
    "spritesheet": _write_spritesheet,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup of the host, which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End open keep-alive connections, so a stopped simulator really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-download are normal; only show the traceback when asked.
        if self.simulator.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing only: read the request, hand it to `Simulator.dispatch`, write the reply."""

    protocol_version = "HTTP/1.1"
    server_version = "muxweb-simulator"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in separate writes; with Nagle's algorithm on, a keep-alive client
    # waits for a delayed ACK (tens of milliseconds) before it sees the body.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.simulator.verbose:
            super().log_message(format, *args)

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ApiError as error:
            # The unread body would be taken for the next request: end the connection instead.
            self.close_connection = True
            reply = error.reply()
        else:
            url = urlsplit(self.path)
            request = ApiRequest(
                method=self.command,
                path=url.path,
                query=dict(parse_qsl(url.query)),
                headers=self.headers,
                body=body,
            )
            reply = self.server.simulator.dispatch(request)
        self._send(reply)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ApiError(411, "Send a Content-Length: chunked bodies are not supported.")
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdigit():
            raise ApiError(400, "Invalid Content-Length.")
        if int(length) > MAX_BODY_BYTES:
            raise ApiError(413, f"The request body exceeds {MAX_BODY_BYTES} bytes.")
        return self.rfile.read(int(length))

    def _send(self, reply: Reply) -> None:
        try:
            if reply.hang:
                # Carried out, never answered: the client's read timeout is all it gets.
                self.server.simulator._stopping.wait(reply.hang)
                self.close_connection = True
                return
            if reply.file is not None:
                payload = None
                length = os.fstat(reply.file.fileno()).st_size
            else:
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                length = len(payload)
            padding = _free_box_header(reply.padding) if reply.padding else b""
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(length + reply.padding))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            body = reply.file or io.BytesIO(payload or b"")
            limit = length // 2 if reply.cut else length
            self._copy(body, limit, reply.rate)
            if reply.cut:
                # The promised length never arrives: hang up mid-body.
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if padding:
                self.wfile.write(padding)
                self._copy(_Zeros(), reply.padding - len(padding), 0)
        finally:
            if reply.file is not None:
                reply.file.close()

    def _copy(self, source: BinaryIO, limit: int, rate: int) -> None:
        """Write `limit` bytes of `source`, at `rate` bytes per second when rate is set."""
        # A tenth of a second's worth at a time, so even a small file arrives at the rate.
        chunk_size = max(min(COPY_CHUNK, rate // 10), 1) if rate else COPY_CHUNK
        remaining = limit
        while remaining > 0:
            chunk = source.read(min(chunk_size, remaining))
            if not chunk:
                break
            self.wfile.write(chunk)
            remaining -= len(chunk)
            if rate and self.server.simulator._stopping.wait(len(chunk) / rate):
                break


class _Zeros(io.RawIOBase):
    """An endless run of zero bytes, read without ever holding more than one chunk."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        view[:] = bytes(len(view))
        return len(view)


def _free_box_header(size: int) -> bytes:
    # An MP4 `free` box: players skip it, so the file stays valid however big it gets.
    if size < 8 or size >= 2**32:
        raise ValueError("padding must be 8 bytes to 4 GiB")
    return size.to_bytes(4, "big") + b"free"
