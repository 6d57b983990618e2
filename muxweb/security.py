"""What the settings point at for security: the Content Security Policy, the login form, how
failed logins are counted and the lockout page, the cap on request bodies, and the filter that
keeps secrets out of error reports."""

import ipaddress
import math
from collections.abc import Callable
from urllib.parse import urlencode

from axes.attempts import get_cool_off_threshold
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.core.validators import MaxLengthValidator
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.views.debug import SafeExceptionReporterFilter
from django_htmx.http import HttpResponseClientRedirect

# Nothing inline and nothing from another origin: scripts and styles are files under /static/,
# htmx reads its configuration from a <meta> (no eval, no injected <style>), and blob: is the
# preview of a reference image before it is uploaded. The admin needs nothing more.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def content_security_policy(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: every response carries CONTENT_SECURITY_POLICY."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        # Django's debug error pages are built with inline styles and scripts.
        if not (settings.DEBUG and response.status_code >= 400):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return middleware


def client_address(request: HttpRequest) -> str | None:
    """The address django-axes counts a login failure against (AXES_CLIENT_IP_CALLABLE).

    REMOTE_ADDR, unless MUXWEB_TRUSTED_PROXY_HEADER names the header the proxy in front puts the
    client's address in; of a list (X-Forwarded-For) the right-most entry, the one the proxy
    appended, since a client can send whatever it likes on the left. An IPv6 address counts by
    its /64, the block a single subscriber is given: addresses rotated inside it are one address.
    """
    raw = request.META.get("REMOTE_ADDR", "")
    if header := settings.MUXWEB_TRUSTED_PROXY_HEADER:
        forwarded = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        raw = forwarded.rsplit(",", 1)[-1].strip() or raw
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped:  # IPv4 on a dual-stack socket
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network((address, 64), strict=False).network_address)


def login_failure_limit(request: HttpRequest, credentials: dict | None) -> int:
    """django-axes' failure limit (AXES_FAILURE_LIMIT): MUXWEB_LOGIN_FAILURE_LIMIT for a username
    from one address, or none left once that username has failed MUXWEB_LOGIN_USERNAME_LIMIT times
    from all addresses together within the cool-off.

    Axes can count several sets of lockout parameters at once (`[["username", "ip_address"],
    ["username"]]`), but it compares the largest count with a single limit and does not tell this
    callable which set it is checking: two limits cannot be expressed that way. So the username's
    own count is taken here, from the same AccessAttempt rows axes keeps per username and address.
    """
    username = get_client_username(request, credentials)
    if username:
        failures = AccessAttempt.objects.filter(
            username=username, attempt_time__gte=get_cool_off_threshold(request)
        ).aggregate(total=Sum("failures_since_start"))["total"]
        if (failures or 0) >= settings.MUXWEB_LOGIN_USERNAME_LIMIT:
            return 0
    return settings.MUXWEB_LOGIN_FAILURE_LIMIT


def lockout_response(
    request: HttpRequest, response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """django-axes' answer to a login it refused: a page that says for how long, status 429."""
    seconds = settings.AXES_COOLOFF_TIME.total_seconds()
    lockout = render(
        request,
        "registration/locked_out.html",
        {"minutes": max(math.ceil(seconds / 60), 1)},
        status=429,
    )
    lockout["Retry-After"] = str(math.ceil(seconds))
    return lockout


class ErrorReportFilter(SafeExceptionReporterFilter):
    """Error reports (the DEBUG page, and those mailed or logged) show each frame's variables
    starred as Django stars settings: a name like a secret's (`api_key`, `secrets`) or a dict
    entry like `Authorization`, with DEBUG on too. Django alone shows them all, so the report
    of a provider error would print the request headers, API key included."""

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame) -> list:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self.cleanse_setting(name, value)) for name, value in variables]


class RequestSizeLimit(FileUploadHandler):
    """Upload handler: refuse a request body over MUXWEB_MAX_REQUEST_BYTES before reading it.

    Django caps form fields but not files, and the CSRF check reads the whole body: without this
    a multi-gigabyte upload would be spooled to disk before the form could say "too big".
    """

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None) -> None:
        if content_length > settings.MUXWEB_MAX_REQUEST_BYTES:
            raise _too_big()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        # A body sent without Content-Length is counted as it arrives.
        if start + len(raw_data) > settings.MUXWEB_MAX_REQUEST_BYTES:
            raise _too_big()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _too_big() -> RequestDataTooBig:
    megabytes = settings.MUXWEB_MAX_REQUEST_BYTES // (1024 * 1024)
    return RequestDataTooBig(f"The request is larger than {megabytes} MB.")


class BoundedUsername:
    """Login forms refusing a username longer than any account's before checking it.

    Django's own limit is only an HTML attribute: a 100,000-character name went on to the failed
    login records, a 500 on PostgreSQL.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


class LoginForm(BoundedUsername, AuthenticationForm):
    pass


class AdminLoginForm(BoundedUsername, AdminAuthenticationForm):
    pass


class LoginRequired(LoginRequiredMiddleware):
    """Django's LoginRequiredMiddleware, but an htmx request from a page whose session ended
    (signed out in another tab, deactivated) sends the whole page to the login page, instead of
    swapping the login form into a card or a poller."""

    def handle_no_permission(self, request: HttpRequest, view_func) -> HttpResponse:
        htmx = getattr(request, "htmx", None)
        if not htmx:
            return super().handle_no_permission(request, view_func)
        page = htmx.current_url_abs_path or "/"
        login = resolve_url(self.get_login_url(view_func))
        return HttpResponseClientRedirect(f"{login}?{urlencode({'next': page})}")
