"""Production security: login throttling, HTTPS-only settings and cookies, Django's deployment
checklist, the Content Security Policy, and the provider's secrets kept out of every output."""

import base64
import io
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib import admin as django_admin
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.views.debug import ExceptionReporter
from django_q.models import Schedule, Task

from muxweb.security import CONTENT_SECURITY_POLICY, client_address
from tests.conftest import ROOT, wait_for
from tests.factories import finished_job, make_job, post_create_form
from videos import lifecycle, sweep
from videos.management.commands import up
from videos.models import Status, VideoJob, WebhookEvent
from videos.upstream.client import UpstreamError, default_client
from videos.upstream.simulator import Simulator

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def bare_env(data_dir: Path, **env: str) -> dict[str, str]:
    """An environment with nothing of this test run's (no muxweb setting, no test switch such as
    DJANGO_ALLOW_ASYNC_UNSAFE) and a fresh data directory, plus `env`."""
    system = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")
    clean = {k: os.environ[k] for k in system if k in os.environ}
    clean |= {"DJANGO_SETTINGS_MODULE": "muxweb.settings", "MUXWEB_DATA_DIR": str(data_dir)}
    return clean | env


def fresh_settings(data_dir: Path, names: list[str], **env: str) -> dict:
    """Settings as a new process computes them from `env` alone."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=bare_env(data_dir, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


# Login throttling


def fail_login(client: Client, username: str, url: str = LOGIN, **extra) -> HttpResponse:
    return client.post(url, {"username": username, "password": "not-the-password"}, **extra)


def test_five_failures_lock_that_username_from_that_address_with_a_429_page(client, member):
    for attempt in range(4):
        response = fail_login(client, "mia")
        assert response.status_code == 200, attempt
        assert "Please enter a correct username and password" in response.content.decode()
    locked = fail_login(client, "mia")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page
    assert "paused for 15 minutes" in page
    assert locked["Retry-After"] == "900"
    assert locked["Content-Security-Policy"] == CONTENT_SECURITY_POLICY

    # The right password does not get through while the pause lasts.
    right = client.post(LOGIN, {"username": "mia", "password": "pw-mia"})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session

    # Only that username from that address: others log in as usual.
    elsewhere = Client(REMOTE_ADDR="10.9.8.7")
    response = elsewhere.post(LOGIN, {"username": "mia", "password": "pw-mia"})
    assert response.status_code == 302


def test_the_pause_ends_after_the_cool_off(client, member):
    for _ in range(5):
        fail_login(client, "mia")
    assert client.post(LOGIN, {"username": "mia", "password": "pw-mia"}).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    response = client.post(LOGIN, {"username": "mia", "password": "pw-mia"})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(member.pk)


def test_other_users_from_the_same_address_are_not_locked_out(client, member, viewer):
    for _ in range(5):
        fail_login(client, "mia")
    response = client.post(LOGIN, {"username": "vera", "password": "pw-vera"})
    assert response.status_code == 302


def test_a_success_clears_earlier_failures(client, member):
    for _ in range(4):
        fail_login(client, "mia")
    assert client.post(LOGIN, {"username": "mia", "password": "pw-mia"}).status_code == 302
    client.logout()
    for _ in range(4):
        assert fail_login(client, "mia").status_code == 200


def test_admin_login_is_throttled_too(client, admin):
    for _ in range(4):
        assert fail_login(client, "ada", ADMIN_LOGIN).status_code == 200
    locked = fail_login(client, "ada", ADMIN_LOGIN)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    right = client.post(ADMIN_LOGIN, {"username": "ada", "password": "pw-ada"})
    assert right.status_code == 429


def test_lockout_page_speaks_the_visitors_language(client, member):
    for _ in range(5):
        response = fail_login(client, "mia", headers={"Accept-Language": "zh-hans"})
    assert response.status_code == 429
    assert '<html lang="zh-hans">' in response.content.decode()


RIGHT = {"username": "mia", "password": "pw-mia"}
WRONG = {"username": "mia", "password": "not-the-password"}


def login_from(address: str, form: dict = RIGHT, **extra) -> HttpResponse:
    return Client(REMOTE_ADDR=address).post(LOGIN, form, **extra)


def test_the_username_ceiling_locks_it_from_every_address_until_the_cool_off(member, viewer):
    # 20 failures (the default ceiling) from 5 addresses, none of them reaching the pair limit.
    attempts = [f"10.0.0.{n}" for n in range(5) for _ in range(4)]
    for number, address in enumerate(attempts, start=1):
        response = login_from(address, WRONG)
        assert response.status_code == (429 if number == 20 else 200), number

    for n in range(8):
        fresh = Client(REMOTE_ADDR=f"10.1.0.{n}")
        right = fresh.post(LOGIN, RIGHT)
        assert right.status_code == 429, n
        assert "Too many failed logins" in right.content.decode()
        assert "_auth_user_id" not in fresh.session
    # Only that username: another user logs in from one of the same addresses.
    assert login_from("10.0.0.1", {"username": "vera", "password": "pw-vera"}).status_code == 302

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert login_from("10.1.0.0").status_code == 302


def test_below_the_ceiling_a_locked_pair_leaves_the_username_free_elsewhere(member):
    for n in range(3):
        client = Client(REMOTE_ADDR=f"10.0.0.{n}")
        for _ in range(4):
            assert fail_login(client, "mia").status_code == 200
        assert fail_login(client, "mia").status_code == 429
    assert login_from("10.0.0.1").status_code == 429
    assert login_from("10.0.0.9").status_code == 302


def test_addresses_in_one_ipv6_64_count_as_one(member):
    for n in range(1, 5):
        assert login_from(f"2001:db8:1:2::{n}", WRONG).status_code == 200
    assert login_from("2001:db8:1:2:ffff:ffff:ffff:ffff", WRONG).status_code == 429
    assert login_from("2001:db8:1:2:abcd::1").status_code == 429
    # The next /64 is another address.
    assert login_from("2001:db8:1:3::1").status_code == 302


@pytest.mark.parametrize(
    "address, counted_as",
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4 on a dual-stack socket
        ("not an address", None),
    ],
)
def test_the_address_a_login_failure_is_counted_against(address, counted_as):
    assert client_address(RequestFactory().post(LOGIN, REMOTE_ADDR=address)) == counted_as


@pytest.mark.parametrize("header", ["X-Real-IP", "X-Forwarded-For"])
def test_a_client_address_header_is_ignored_by_default(member, header):
    # Everything comes from the proxy's address: headers a client makes up change nothing.
    for n in range(4):
        assert login_from("10.0.0.1", WRONG, headers={header: f"203.0.113.{n}"}).status_code == 200
    assert login_from("10.0.0.1", WRONG, headers={header: "203.0.113.9"}).status_code == 429
    assert login_from("10.0.0.1", headers={header: "203.0.113.10"}).status_code == 429


@pytest.mark.parametrize("header", ["X-Real-IP", "X-Forwarded-For"])
def test_the_trusted_proxy_header_names_the_client(member, settings, header):
    settings.MUXWEB_TRUSTED_PROXY_HEADER = header
    for _ in range(4):
        assert login_from("10.0.0.1", WRONG, headers={header: "203.0.113.5"}).status_code == 200
    assert login_from("10.0.0.1", WRONG, headers={header: "203.0.113.5"}).status_code == 429
    # Another client behind the same proxy is another address.
    assert login_from("10.0.0.1", headers={header: "203.0.113.6"}).status_code == 302


def test_x_forwarded_for_counts_the_entry_the_proxy_appended(member, settings):
    settings.MUXWEB_TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    # The client writes what it likes on the left; the proxy appends the address it saw.
    for n in range(5):
        forwarded = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.5"}
        response = login_from("10.0.0.1", WRONG, headers=forwarded)
        assert response.status_code == (429 if n == 4 else 200), n


def test_login_throttling_defaults_and_mistakes_stop_the_start(tmp_path):
    names = ["AXES_FAILURE_LIMIT", "MUXWEB_LOGIN_USERNAME_LIMIT", "MUXWEB_TRUSTED_PROXY_HEADER"]
    assert fresh_settings(tmp_path, names) == {
        "AXES_FAILURE_LIMIT": "muxweb.security.login_failure_limit",
        "MUXWEB_LOGIN_USERNAME_LIMIT": 20,
        "MUXWEB_TRUSTED_PROXY_HEADER": "",
    }
    mistakes = {
        "MUXWEB_TRUSTED_PROXY_HEADER": {"MUXWEB_TRUSTED_PROXY_HEADER": "X-Real-IP: 1"},
        "MUXWEB_LOGIN_USERNAME_LIMIT": {
            "MUXWEB_LOGIN_FAILURE_LIMIT": "10",
            "MUXWEB_LOGIN_USERNAME_LIMIT": "8",
        },
    }
    for name, env in mistakes.items():
        with pytest.raises(subprocess.CalledProcessError) as failed:
            fresh_settings(tmp_path, names, **env)
        assert f"{name} must" in failed.value.stderr


# HTTPS-only settings and cookies

HTTPS_SETTINGS = [
    "MUXWEB_HTTPS",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "LANGUAGE_COOKIE_SECURE",
    "LANGUAGE_COOKIE_HTTPONLY",
    "LANGUAGE_COOKIE_SAMESITE",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
]


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    """The security settings with nothing set: DEBUG off."""
    return fresh_settings(tmp_path_factory.mktemp("prod"), HTTPS_SETTINGS)


def test_without_debug_everything_is_https_only(production):
    assert production == {
        "MUXWEB_HTTPS": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_REDIRECT_EXEMPT": [r"^healthz$", r"^webhooks/"],
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "LANGUAGE_COOKIE_SECURE": True,
        "LANGUAGE_COOKIE_HTTPONLY": True,
        "LANGUAGE_COOKIE_SAMESITE": "Lax",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
    }


@pytest.mark.parametrize("env", [{"DEBUG": "1"}, {"MUXWEB_HTTPS": "0"}])
def test_debug_or_muxweb_https_0_allows_plain_http(tmp_path, env):
    names = ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"]
    names += ["CSRF_COOKIE_SECURE", "LANGUAGE_COOKIE_SECURE"]
    values = fresh_settings(tmp_path, names, **env)
    assert values == dict.fromkeys(names, False) | {"SECURE_HSTS_SECONDS": 0}


def test_a_typo_in_muxweb_https_stops_the_start(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        fresh_settings(tmp_path, ["MUXWEB_HTTPS"], MUXWEB_HTTPS="yes please")
    assert "MUXWEB_HTTPS must be one of" in failed.value.stderr


def test_production_settings_pass_the_deployment_checklist_without_a_warning(tmp_path):
    # DEBUG=0 and nothing else: the secret key is the one muxweb generates into the data dir.
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=bare_env(tmp_path, DEBUG="0"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_up_serves_plain_http_on_this_machine_and_says_so(host, settings, monkeypatch):
    settings.MUXWEB_HTTPS = True
    monkeypatch.delenv("MUXWEB_HTTPS", raising=False)
    out = io.StringIO()
    up.Command(stdout=out).choose_https(host)
    assert os.environ["MUXWEB_HTTPS"] == "0"  # for the children it starts
    assert "Plain HTTP on this machine only" in out.getvalue()


def test_up_elsewhere_stays_https_only_and_explains_the_proxy(settings, monkeypatch):
    settings.MUXWEB_HTTPS = True
    monkeypatch.delenv("MUXWEB_HTTPS", raising=False)
    out = io.StringIO()
    up.Command(stdout=out).choose_https("0.0.0.0")  # noqa: S104 (a name, nothing binds)
    assert "MUXWEB_HTTPS" not in os.environ
    assert "TLS proxy" in out.getvalue()


def test_up_takes_an_empty_muxweb_https_for_unset(settings, monkeypatch):
    settings.MUXWEB_HTTPS = True
    monkeypatch.setenv("MUXWEB_HTTPS", "")
    out = io.StringIO()
    up.Command(stdout=out).choose_https("127.0.0.1")
    assert os.environ["MUXWEB_HTTPS"] == "0"
    assert "Plain HTTP on this machine only" in out.getvalue()


def test_up_leaves_an_explicit_muxweb_https_alone(settings, monkeypatch):
    settings.MUXWEB_HTTPS = True
    monkeypatch.setenv("MUXWEB_HTTPS", "1")
    out = io.StringIO()
    up.Command(stdout=out).choose_https("127.0.0.1")
    assert os.environ["MUXWEB_HTTPS"] == "1"
    assert out.getvalue() == ""


def cookie_flags(response: HttpResponse, name: str) -> dict:
    morsel = response.cookies[name]
    return {
        "secure": bool(morsel["secure"]),
        "httponly": bool(morsel["httponly"]),
        "samesite": morsel["samesite"],
    }


def test_login_over_https_sets_secure_httponly_lax_cookies_and_security_headers(
    client, member, settings, production
):
    for name, value in production.items():
        setattr(settings, name, tuple(value) if name == "SECURE_PROXY_SSL_HEADER" else value)

    form = client.get(LOGIN, secure=True)
    assert form.status_code == 200
    assert cookie_flags(form, "csrftoken") == {"secure": True, "httponly": True, "samesite": "Lax"}
    assert "Secure" in form.cookies["csrftoken"].output()

    login = client.post(
        LOGIN,
        {"username": "mia", "password": "pw-mia"},
        secure=True,
        headers={"Referer": "https://testserver/accounts/login/"},
    )
    assert login.status_code == 302
    assert cookie_flags(login, "sessionid") == {"secure": True, "httponly": True, "samesite": "Lax"}
    header = login.cookies["sessionid"].output()
    assert "; Secure" in header and "; HttpOnly" in header and "SameSite=Lax" in header
    assert login["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert login["X-Frame-Options"] == "DENY"
    assert login["Referrer-Policy"] == "same-origin"
    assert login["X-Content-Type-Options"] == "nosniff"
    assert login["Cross-Origin-Opener-Policy"] == "same-origin"
    assert login["Content-Security-Policy"] == CONTENT_SECURITY_POLICY

    language = client.post(
        reverse("set_language"),
        {"language": "zh-hans", "next": "/"},
        secure=True,
        headers={"Referer": "https://testserver/"},
    )
    assert cookie_flags(language, "django_language") == {
        "secure": True,
        "httponly": True,
        "samesite": "Lax",
    }


def test_plain_http_is_redirected_to_https_except_the_health_check(
    client, db, settings, production
):
    for name, value in production.items():
        setattr(settings, name, tuple(value) if name == "SECURE_PROXY_SSL_HEADER" else value)
    response = client.get(LOGIN)
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"
    assert client.get(reverse("healthz")).status_code == 200
    # Webhooks are signed: one over plain HTTP is checked, not redirected (and lost).
    assert client.post(reverse("webhooks-videos"), b"{}", "application/json").status_code != 301
    # Behind the TLS proxy, which says the browser's connection was HTTPS.
    proxied = client.get(LOGIN, headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=31536000")


# Content Security Policy


def test_the_policy_allows_nothing_inline_and_nothing_from_elsewhere():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert "*" not in CONTENT_SECURITY_POLICY
    for directive in ("default-src", "script-src", "style-src", "connect-src", "base-uri"):
        assert directives[directive] == "'self'", directive
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"


@pytest.fixture
def job(member) -> VideoJob:
    return make_job(member, status=Status.FAILED, prompt="A policy-abiding lighthouse")


def test_every_response_carries_the_policy(client, admin, member, job):
    anonymous = [
        client.get(LOGIN),
        client.get(reverse("healthz")),
        client.get("/no-such-page/"),
        client.get(reverse("videos-gallery")),  # the redirect to the login page
        client.post(reverse("webhooks-videos"), "{}", content_type="application/json"),
    ]
    client.force_login(admin)
    signed_in = [
        client.get(reverse("videos-gallery")),
        client.get(
            reverse("videos-gallery"), headers={"HX-Request": "true", "HX-Target": "results"}
        ),
        client.get(reverse("videos-gallery-poll") + f"?ids={job.pk}"),
        client.get(reverse("videos-detail", args=[job.pk])),
        client.get(reverse("videos-delete", args=[job.pk])),
        client.get(reverse("admin:index")),
        client.get(reverse("admin:videos_videojob_change", args=[job.pk])),
    ]
    for response in anonymous + signed_in:
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, response


def test_debug_error_pages_go_without_the_policy_for_their_inline_styles(client, settings):
    settings.DEBUG = True
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Content-Security-Policy" not in response
    assert client.get(LOGIN)["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


class InlineCode(HTMLParser):
    """Everything in a page that a policy without 'unsafe-inline' and 'unsafe-eval' blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.htmx_config: dict | None = None
        self._script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and not attributes.get("src"):
            self._script_without_src = True
        if tag == "meta" and attributes.get("name") == "htmx-config":
            self.htmx_config = json.loads(attributes["content"] or "")
        for name, value in attrs:
            if name == "style" or name.startswith(("on", "hx-on")):
                self.found.append(f"<{tag} {name}=...>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")
            if name in ("hx-vals", "hx-headers") and value and value.startswith("js:"):
                self.found.append(f"<{tag} {name}={value}>")
            if name == "hx-trigger" and value and "[" in value:
                self.found.append(f"<{tag} hx-trigger={value}> (a filter needs eval)")

    def handle_data(self, data: str) -> None:
        if self._script_without_src and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_without_src = False


def test_pages_hold_no_inline_script_style_or_handler_and_configure_htmx_for_the_policy(
    client, member, job
):
    pages = {"login": client.get(LOGIN)}
    for _ in range(5):
        pages["lockout"] = fail_login(client, "nobody")
    client.force_login(member)
    pages |= {
        "gallery": client.get(reverse("videos-gallery")),
        "results": client.get(
            reverse("videos-gallery"), headers={"HX-Request": "true", "HX-Target": "results"}
        ),
        "options": client.get(reverse("videos-compose-options"), headers={"HX-Request": "true"}),
        "detail": client.get(reverse("videos-detail", args=[job.pk])),
        "delete": client.get(reverse("videos-delete", args=[job.pk])),
    }
    for name, response in pages.items():
        assert response.status_code in (200, 429), name
        parser = InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == [], name
        if name not in ("results", "options"):
            assert parser.htmx_config == {
                "includeIndicatorStyles": False,
                "allowEval": False,
                "allowScriptTags": False,
                "attributesToSettle": ["class", "width", "height"],
                # Back loads the page again; no copy of a page is kept in the browser's storage.
                "historyCacheSize": 0,
                "refreshOnHistoryMiss": True,
            }, name


# The provider's secrets

KEY = "sk-leakcheck-" + secrets.token_hex(12)
WRONG_KEY = "sk-wrongkey-" + secrets.token_hex(12)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
# The secrets, and their random parts on their own in case a prefix is stripped on the way.
NEEDLES = {
    "API key": KEY,
    "API key body": KEY.rsplit("-", 1)[1],
    "wrong API key body": WRONG_KEY.rsplit("-", 1)[1],
    "webhook secret": WEBHOOK_SECRET,
    "webhook secret body": WEBHOOK_SECRET.removeprefix("whsec_"),
}
CAPTURED_LOGGERS = ["", "videos", "django", "django-q", "urllib3", "axes", "muxweb"]


@pytest.fixture
def keyed_provider(settings, live_server, monkeypatch, tmp_path) -> Iterator[Simulator]:
    """A provider of its own with a distinctive key, sending webhooks signed with a distinctive
    secret to the live server."""
    simulator = Simulator(
        api_key=KEY,
        render_seconds=2.5,
        poll_after_ms=300,
        media_dir=tmp_path / "provider",
        webhook_url=live_server.url + reverse("webhooks-videos"),
        webhook_secret=WEBHOOK_SECRET,
    ).start()
    settings.MUXWEB_API_BASE = simulator.base_url
    settings.MUXWEB_API_KEY = KEY
    settings.MUXWEB_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.MUXWEB_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    # This process remembers whether webhooks arrive; the test must not leave that behind.
    monkeypatch.setattr(lifecycle, "_webhooks_seen", (0.0, False))
    yield simulator
    simulator.stop()


def body(response: HttpResponse) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return f"{response.status_code} {dict(response.headers)}\n" + content.decode(errors="replace")


def context(text: str, needle: str, width: int = 120) -> str:
    """Where `needle` shows up in `text`, for the failure message."""
    at = text.index(needle)
    return text[max(at - width, 0) : at + len(needle) + 20].replace("\n", " ")


def provider_error_report(settings, user) -> str:
    """Django's technical 500 page and text report, DEBUG on, for a provider error met while
    serving a request: raised inside the provider client, whose frames hold its headers."""
    request = RequestFactory().get(reverse("videos-gallery"))
    request.user = user
    settings.DEBUG = True
    try:
        default_client().retrieve("video_that_is_not_there")
    except UpstreamError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        return reporter.get_traceback_html() + reporter.get_traceback_text()
    finally:
        settings.DEBUG = False
    raise AssertionError("the provider answered for a video it does not have")


@pytest.mark.django_db(transaction=True)
def test_the_api_key_and_webhook_secret_never_reach_a_page_log_report_or_task_result(
    keyed_provider, caplog, client, member, admin, settings
):
    provider = keyed_provider
    for name in CAPTURED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    member_client = Client()
    member_client.force_login(member)

    # A job that completes through a 500 and a 429 on the way, its end announced by webhook.
    provider.inject("retrieve", "500", times=1)
    provider.inject("content", "429", times=1, retry_after=0.1)
    done = finished_job(member_client, "A kite over the dunes")
    assert done.status == Status.COMPLETED and done.video
    wait_for(lambda: any(d["status"] == 200 for d in provider.webhook_log), timeout=15)
    # One the provider refuses, one the gateway answers with its own error page.
    blocked = finished_job(member_client, "A [fail] moderated scene")
    assert blocked.error_code == "moderation_blocked"
    provider.inject("create", "502", times=1)
    gateway = finished_job(member_client, "Through a bad gateway")
    assert gateway.is_terminal
    # A running job, polled with a key the provider does not know: the 401 shows on it.
    provider.render_seconds = 120
    running = post_create_form(member_client, "A slow glacier")
    settings.MUXWEB_API_KEY = WRONG_KEY
    VideoJob.objects.filter(pk=running.pk).update(next_poll_at=timezone.now())
    sweep.poll_due_jobs()
    running.refresh_from_db()
    assert "Incorrect API key" in running.error_message
    # A new job with that key fails at once, and so does an import.
    refused = post_create_form(member_client, "Refused at the door")
    assert refused.status == Status.FAILED and refused.error_code == "invalid_api_key"
    client.force_login(admin)
    client.post(reverse("videos-import"))
    reports = [provider_error_report(settings, admin)]
    settings.MUXWEB_API_KEY = KEY
    # Back to the right key: try the refused job again, import, and delete the finished one.
    client.post(reverse("videos-retry", args=[refused.pk]))
    client.post(reverse("videos-import"))
    # A webhook signed with another secret is refused.
    forged = Client().post(
        reverse("webhooks-videos"),
        json.dumps({"type": "video.completed", "data": {"id": done.upstream_id}}),
        content_type="application/json",
        headers={"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 400

    # Every page and partial, as an admin, and a technical 500 for a request under DEBUG.
    jobs = list(VideoJob.objects.all())
    ids = "&".join(f"ids={j.pk}" for j in jobs)
    htmx = {"HX-Request": "true"}
    pages = {
        "login (anonymous)": Client().get(LOGIN),
        "gallery": client.get(reverse("videos-gallery")),
        "gallery, failed": client.get(reverse("videos-gallery") + "?status=failed"),
        "gallery, search": client.get(reverse("videos-gallery") + "?q=kite"),
        "gallery results": client.get(
            reverse("videos-gallery"), headers={**htmx, "HX-Target": "results"}
        ),
        "gallery poll": client.get(reverse("videos-gallery-poll") + f"?{ids}&v=0", headers=htmx),
        "compose options": client.get(
            reverse("videos-compose-options") + "?model=sora-2", headers=htmx
        ),
        "export": client.get(reverse("videos-export")),
    }
    for job in jobs:
        detail = reverse("videos-detail", args=[job.pk])
        pages[f"job {job.pk}"] = client.get(detail)
        pages[f"job {job.pk} status"] = client.get(
            detail + "?v=0", headers={**htmx, "HX-Target": "job-status"}
        )
        if not job.is_active:
            pages[f"job {job.pk} delete"] = client.get(reverse("videos-delete", args=[job.pk]))
    pages["delete"] = client.post(reverse("videos-delete", args=[done.pk]), follow=True)
    pages["admin"] = client.get(reverse("admin:index"))
    for model in django_admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        pages[f"admin {info}"] = client.get(reverse("admin:{}_{}_changelist".format(*info)))
        for obj in model._default_manager.all()[:20]:
            url = reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
            pages[f"admin {info} {obj.pk}"] = client.get(url)
    for name, response in pages.items():
        assert response.status_code in (200, 204), (name, response.status_code)
    reports.append(provider_error_report(settings, admin))
    settings.DEBUG = True
    debug_404 = client.get(reverse("videos-detail", args=[10**9]))

    # Everything the run left behind: pages, logs, error reports, stored task results, rows.
    outputs = {name: body(response) for name, response in pages.items()}
    outputs["debug 404"] = body(debug_404)
    outputs["technical 500"] = "\n".join(reports)
    outputs["log"] = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    outputs["tasks"] = repr(list(Task.objects.values()))
    outputs["schedules"] = repr(list(Schedule.objects.values()))
    outputs["jobs"] = repr(list(VideoJob.objects.values()))
    outputs["webhook events"] = repr(list(WebhookEvent.objects.values()))

    # The run went where it had to: errors, webhooks and tasks were all seen and recorded.
    assert Task.objects.exists()
    assert WebhookEvent.objects.exists()
    assert "invalid_api_key" in outputs["gallery"] and "moderation_blocked" in outputs["gallery"]
    assert "Incorrect API key" in outputs[f"job {running.pk}"]
    assert "HTTP 500" in outputs["log"] and "webhook refused" in outputs["log"]
    assert "invalid_api_key" in outputs["technical 500"] and "not_found" in outputs["technical 500"]
    assert "MUXWEB_API_KEY" in outputs["technical 500"]
    leaks = [
        f"{what} in {where}: ...{context(text, needle)}..."
        for where, text in outputs.items()
        for what, needle in NEEDLES.items()
        if needle in text
    ]
    assert leaks == [], "\n".join(leaks)


def test_a_provider_errors_report_stars_the_authorization_header(settings, admin):
    settings.MUXWEB_API_KEY = WRONG_KEY
    report = provider_error_report(settings, admin)
    assert "invalid_api_key" in report
    assert "Authorization" in report and "********************" in report
    assert NEEDLES["wrong API key body"] not in report


def test_the_leak_check_hears_debug_lines_of_every_logger(caplog):
    # The check above is only worth something if a key logged anywhere, at any level, is heard.
    for name in CAPTURED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    logging.getLogger("videos.services").debug("calling with %s", KEY)
    logging.getLogger("django.request").debug("key %s", WRONG_KEY)
    assert KEY in caplog.text and WRONG_KEY in caplog.text


@pytest.mark.parametrize("login", [LOGIN, ADMIN_LOGIN])
def test_a_username_longer_than_any_account_is_refused_without_being_recorded(client, db, login):
    response = client.post(login, {"username": "x" * 100_000, "password": "pw"})
    assert response.status_code == 200
    assert "at most 150 characters" in response.content.decode()
    assert not AccessAttempt.objects.filter(username__startswith="xxxx").exists()
