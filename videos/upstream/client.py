"""HTTP client for an OpenAI-compatible `/v1/videos` provider (the real one or the simulator).

One pooled `requests.Session` per process, a timeout on every call, and provider errors raised as
`UpstreamError` carrying the HTTP status and the error envelope's code and message. The API key
goes into the Authorization header and nowhere else: not into exceptions, reprs or logs.

With a `Budget` (ratelimit.py, as `default_client()` gives), every request to the provider first
claims a slot of the key's shared budget, at the priority of what it is for, and every answer
tells the budget what the provider said of its limits.
"""

import contextlib
import logging
import math
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from videos.upstream.ratelimit import Budget, Priority, default_budget
from videos.upstream.redirects import (
    IPNetwork,
    RedirectRefused,
    check_target,
    checked_session,
)

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK = 1024 * 1024
# Reads and deletes are safe to repeat, so a provider's passing trouble (429, 5xx, a refused
# connection, a garbled answer) is retried within the call: this many more times, waiting
# `RETRY_BACKOFF` × 2ⁿ (with jitter) or what Retry-After asks, up to `MAX_RETRY_WAIT`.
# A provider that asks for longer gets the error back, and the caller schedules a later try.
# Creates and remixes are never repeated here: they may already be paid generations.
RETRY_METHODS = frozenset({"GET", "DELETE"})
RETRIES = 2
RETRY_BACKOFF = 0.5
MAX_RETRY_WAIT = 10.0
MAX_REDIRECTS = 5

_session: requests.Session | None = None
_session_lock = threading.Lock()


def pooled_session() -> requests.Session:
    """The process-wide session: keeps connections to the provider open between calls."""
    global _session
    with _session_lock:
        if _session is None:
            session = requests.Session()
            # Connections the provider closed while idle are retried at once: for every call when
            # nothing was sent yet, for reads only when something was (a create is never resent).
            retries = Retry(
                total=2,
                connect=2,
                read=1,
                status=0,
                other=0,
                allowed_methods=frozenset({"GET", "HEAD", "DELETE"}),
                backoff_factor=0.1,
                raise_on_status=False,
            )
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=retries)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _session = session
        return _session


_redirect_sessions: dict[tuple, requests.Session] = {}


def redirect_session(allowed_networks: list[IPNetwork]) -> requests.Session:
    """The process-wide session for download redirect targets (see redirects.py)."""
    key = tuple(str(network) for network in allowed_networks)
    with _session_lock:
        if key not in _redirect_sessions:
            _redirect_sessions[key] = checked_session(allowed_networks)
        return _redirect_sessions[key]


REDACTED = "[redacted]"


def redact(text: str, secret: str) -> str:
    """`text` without `secret`: a provider's error message may echo the key it was sent."""
    if secret and len(secret) >= 4:
        return text.replace(secret, REDACTED)
    return text


class UpstreamError(Exception):
    """The provider answered with an error, or could not be reached.

    `sent` tells whether the request may have reached the provider: a create that failed with
    `sent=False` can be retried safely; with `sent=True` it may already be a paid generation.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or ""
        self.error_type = error_type or ""
        self.param = param
        self.retry_after = retry_after
        self.sent = sent

    def __str__(self) -> str:
        where = " ".join(filter(None, [f"HTTP {self.status}" if self.status else "", self.code]))
        return f"{where or 'no response'}: {self.message}"

    @property
    def is_transient(self) -> bool:
        """Worth trying again later: no answer, rate limited, the provider's own trouble, or an
        answer garbled on the way."""
        if self.code == REDIRECT_REFUSED:
            return False
        return (
            self.status is None or self.status == 429 or self.status >= 500 or self.code == GARBLED
        )


# The code of an UpstreamError for a 2xx answer that was not the JSON object promised.
GARBLED = "invalid_response"
# The code of an UpstreamError for a redirect muxweb does not follow (see redirects.py).
REDIRECT_REFUSED = "redirect_refused"


class UpstreamUnreachable(UpstreamError):
    """No connection could be made: the request was never sent."""


class UpstreamTimeout(UpstreamError):
    """The request was sent but no answer came in time: its outcome is unknown."""


BUDGET_DEFERRED = "budget_deferred"


class BudgetDeferred(UpstreamError):
    """Not sent: the key's request budget had no room for this call in the time it may wait.
    `retry_after` says when room is expected; the caller puts the work off until then without
    counting it as a failure."""

    def __init__(self, wait: float) -> None:
        super().__init__(
            "the provider key's requests for this minute are used up",
            code=BUDGET_DEFERRED,
            retry_after=wait,
            sent=False,
        )


# The longest wait a provider's header is taken for; anything longer (or inf) is clamped to it.
MAX_HEADER_WAIT = 24 * 3600.0


def header_seconds(value: str | None, *, scale: float = 1.0) -> float | None:
    """A number of seconds from a provider's header: None unless a finite number, clamped to
    [0, MAX_HEADER_WAIT]. `inf`, `nan`, `1e999` and 5,000 digits all stay harmless."""
    number = finite_number(value)
    if number is None:
        return None
    return min(max(number * scale, 0.0), MAX_HEADER_WAIT)


def finite_number(value: object) -> float | None:
    """`value` as a finite float, or None: never raises, whatever a provider sent."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and len(value) > 40:
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _retry_after(response: requests.Response) -> float | None:
    if (wait := header_seconds(response.headers.get("retry-after-ms"), scale=0.001)) is not None:
        return wait
    return header_seconds(response.headers.get("Retry-After"))


def error_from_response(response: requests.Response) -> UpstreamError:
    """An UpstreamError from a non-2xx response, reading the contract's error envelope."""
    error: dict[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except ValueError:
        pass
    message = str(error.get("message") or "").strip()
    if not message:
        text = response.text.strip() if "text" in response.headers.get("Content-Type", "") else ""
        message = text[:300] or response.reason or f"HTTP {response.status_code}"
    return UpstreamError(
        message,
        status=response.status_code,
        code=str(error.get("code") or ""),
        error_type=str(error.get("type") or ""),
        param=error.get("param"),
        retry_after=_retry_after(response),
    )


class VideosClient:
    """The calls of the contract, each returning the provider's JSON as a dict."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5.0, 60.0),
        session: requests.Session | None = None,
        retries: int = RETRIES,
        max_retry_wait: float = MAX_RETRY_WAIT,
        budget: Budget | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self._prepaid = threading.local()
        self._api_key = api_key
        self.timeout = timeout
        self.session = session or pooled_session()
        self.retries = retries
        self.max_retry_wait = max_retry_wait

    def __repr__(self) -> str:
        return f"<VideosClient {self.base_url}>"

    def with_read_timeout(self, seconds: float) -> "VideosClient":
        """The same client, waiting at most `seconds` for an answer (never longer than now)."""
        timeout = (self.timeout[0], min(self.timeout[1], seconds))
        return VideosClient(
            self.base_url,
            self._api_key,
            timeout=timeout,
            session=self.session,
            retries=self.retries,
            max_retry_wait=self.max_retry_wait,
            budget=self.budget,
        )

    @contextlib.contextmanager
    def prepaid(self) -> Iterator[None]:
        """The next request on this thread takes a slot already claimed (`Budget.take`); a retry
        within the call claims its own."""
        self._prepaid.slots = 1
        try:
            yield
        finally:
            self._prepaid.slots = 0

    def _request(
        self, method: str, path: str, priority: Priority, **kwargs: Any
    ) -> requests.Response:
        return self._retrying(method, lambda: self._send(method, path, priority, **kwargs))

    def _retrying(self, method: str, call: Any) -> Any:
        """`call()`, repeated on passing trouble when `method` is safe to repeat."""
        attempt = 0
        trouble: UpstreamError | None = None
        while True:
            try:
                return call()
            except BudgetDeferred:
                # A retry the key's budget puts off (a 429 paused the key): the caller gets the
                # trouble that called for the retry, and schedules its next try by that.
                if trouble is not None:
                    raise trouble from None
                raise
            except UpstreamError as exc:
                attempt += 1
                wait = self._retry_wait(exc, attempt) if method in RETRY_METHODS else None
                if wait is None:
                    raise
                trouble = exc
                log.info("provider %s failed (%s), trying again in %.1fs", method, exc, wait)
                time.sleep(wait)

    def _retry_wait(self, exc: UpstreamError, attempt: int) -> float | None:
        # A read timeout already cost a whole timeout: the caller's own backoff handles it, and
        # a call the budget put off is the caller's to schedule.
        if (
            attempt > self.retries
            or not exc.is_transient
            or isinstance(exc, UpstreamTimeout | BudgetDeferred)
        ):
            return None
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= self.max_retry_wait else None
        backoff = RETRY_BACKOFF * 2 ** (attempt - 1)
        return min(backoff * random.uniform(0.5, 1.0), self.max_retry_wait)

    def _send(self, method: str, path: str, priority: Priority, **kwargs: Any) -> requests.Response:
        if getattr(self._prepaid, "slots", 0):
            self._prepaid.slots -= 1
        elif self.budget is not None and (wait := self.budget.acquire(priority)):
            raise BudgetDeferred(wait)
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"Bearer {self._api_key}"
        url = f"{self.base_url}{path}"
        try:
            # Never followed by requests: a JSON call takes no redirect at all (a 307 would
            # re-POST a create anywhere), and a download's is followed by `_follow`, checked.
            response = self.session.request(
                method, url, headers=headers, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.ConnectTimeout:
            raise UpstreamUnreachable(
                "the provider could not be reached (timeout)", sent=False
            ) from None
        except requests.ReadTimeout:
            raise UpstreamTimeout("the provider did not answer in time") from None
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise UpstreamUnreachable("the provider could not be reached", sent=False) from None
            raise UpstreamTimeout("the connection to the provider broke") from None
        except requests.RequestException as exc:
            # Its message may quote a header, the key among them: only the type is kept.
            raise UpstreamError(f"the request failed ({type(exc).__name__})") from None
        if self.budget is not None:
            self.budget.observe(response.status_code, response.headers)
        if response.status_code >= 400:
            try:
                error = error_from_response(response)
            finally:
                response.close()
            error.message = redact(error.message, self._api_key)
            error.code = redact(error.code, self._api_key)[:100]
            raise error
        return response

    def _json(
        self, method: str, path: str, priority: Priority, **kwargs: Any
    ) -> tuple[dict, requests.Response]:
        # Read and parsed inside the retries: a garbled answer to a read is asked again.
        return self._retrying(method, lambda: self._json_once(method, path, priority, **kwargs))

    def _json_once(
        self, method: str, path: str, priority: Priority, **kwargs: Any
    ) -> tuple[dict, requests.Response]:
        response = self._send(method, path, priority, **kwargs)
        if 300 <= response.status_code < 400:
            response.close()
            raise UpstreamError(
                f"the provider answered with a redirect (HTTP {response.status_code}), "
                "which is not followed for API calls",
                status=response.status_code,
                code=REDIRECT_REFUSED,
            )
        try:
            body = response.json()
        except ValueError:
            raise UpstreamError(
                "the provider sent a response that is not JSON",
                status=response.status_code,
                code=GARBLED,
            ) from None
        if not isinstance(body, dict):
            raise UpstreamError(
                "the provider sent an unexpected response",
                status=response.status_code,
                code=GARBLED,
            )
        return body, response

    def create(
        self,
        *,
        prompt: str,
        model: str,
        seconds: int | str,
        size: str,
        input_reference: tuple[str, bytes, str] | None = None,
    ) -> dict:
        """Start a generation. `input_reference` is (filename, bytes, content type)."""
        fields = {"prompt": prompt, "model": model, "seconds": str(seconds), "size": size}
        if input_reference is None:
            body, _ = self._json("POST", "/videos", Priority.CREATE, json=fields)
        else:
            files = {"input_reference": input_reference}
            body, _ = self._json("POST", "/videos", Priority.CREATE, data=fields, files=files)
        return body

    def retrieve(self, video_id: str) -> tuple[dict, float | None]:
        """The job, and how many seconds the provider asks us to wait before asking again."""
        body, response = self._json("GET", f"/videos/{_quote(video_id)}", Priority.POLL)
        return body, header_seconds(response.headers.get("openai-poll-after-ms"), scale=0.001)

    def list(
        self,
        *,
        limit: int = 100,
        after: str | None = None,
        order: str = "desc",
        priority: Priority = Priority.LISTING,
    ) -> dict:
        params: dict[str, Any] = {"limit": limit, "order": order}
        if after:
            params["after"] = after
        body, _ = self._json("GET", "/videos", priority, params=params)
        return body

    def delete(self, video_id: str) -> dict:
        body, _ = self._json("DELETE", f"/videos/{_quote(video_id)}", Priority.LISTING)
        return body

    def remix(self, video_id: str, prompt: str) -> dict:
        body, _ = self._json(
            "POST", f"/videos/{_quote(video_id)}/remix", Priority.CREATE, json={"prompt": prompt}
        )
        return body

    def _follow(self, url: str) -> requests.Response:
        """One hop of a download's redirect, checked (redirects.py) and sent without the key.

        What the target answers is its own business: only the status code is ever kept, so a
        redirect to an internal page can never show that page's text on a job."""
        from django.conf import settings

        allowed = settings.MUXWEB_REDIRECT_ALLOWED_NETWORKS
        try:
            check_target(url, provider_url=self.base_url, allowed=allowed)
            response = redirect_session(allowed).get(
                url, timeout=self.timeout, stream=True, allow_redirects=False
            )
        except RedirectRefused as exc:
            raise UpstreamError(str(exc), code=REDIRECT_REFUSED) from None
        except requests.ReadTimeout:
            raise UpstreamTimeout("the download link did not answer in time") from None
        except requests.RequestException:
            raise UpstreamError(
                "the download link the provider redirected to could not be reached"
            ) from None
        if response.status_code >= 400:
            response.close()
            raise UpstreamError(
                f"the download link the provider redirected to answered HTTP "
                f"{response.status_code}",
                status=response.status_code,
                retry_after=_retry_after(response),
            )
        return response

    def download(
        self, video_id: str, variant: str, dest: Path, *, priority: Priority = Priority.DOWNLOAD
    ) -> int:
        """Stream one content variant into `dest`, whole or not at all; returns its size in bytes.

        The bytes go to a temporary file beside `dest`, renamed into place only once complete, so a
        reader never sees half a file.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        response = self._request(
            "GET",
            f"/videos/{_quote(video_id)}/content",
            priority,
            params={"variant": variant},
            stream=True,
        )
        for _hop in range(MAX_REDIRECTS + 1):
            if not (response.is_redirect and response.headers.get("Location")):
                break
            response.close()
            target = requests.compat.urljoin(response.url, response.headers["Location"])
            response = self._retrying("GET", lambda url=target: self._follow(url))
        else:
            response.close()
            raise UpstreamError(
                f"the provider redirected the download more than {MAX_REDIRECTS} times",
                code=REDIRECT_REFUSED,
            )
        if not 200 <= response.status_code < 300:
            response.close()
            raise UpstreamError(
                f"the provider answered the download of {variant} with HTTP {response.status_code}",
                status=response.status_code,
            )
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        written = 0
        try:
            with response, os.fdopen(fd, "wb") as out:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            expected = response.headers.get("Content-Length")
            if (
                expected
                and expected.isdigit()
                and int(expected) != written
                and not _encoded(response)
            ):
                raise UpstreamError(
                    f"download of {variant} stopped after {written} of {expected} bytes",
                    status=response.status_code,
                )
            os.replace(tmp_name, dest)
        except requests.RequestException:
            Path(tmp_name).unlink(missing_ok=True)
            raise UpstreamTimeout(f"download of {variant} was cut off") from None
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return written


def _encoded(response: requests.Response) -> bool:
    # requests decompresses gzip bodies, so their length differs from Content-Length.
    return bool(response.headers.get("Content-Encoding", "").strip())


def _quote(video_id: str) -> str:
    return requests.utils.quote(video_id, safe="")


def _never_connected(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, NewConnectionError) or "Connection refused" in str(exc)


def default_client() -> VideosClient:
    """The client for the configured provider (or the built-in simulator), within the key's
    shared budget."""
    from django.conf import settings

    return VideosClient(
        settings.MUXWEB_API_BASE,
        settings.MUXWEB_API_KEY,
        timeout=settings.MUXWEB_HTTP_TIMEOUT,
        budget=default_budget(),
    )
