"""Shared fixtures: the simulator over real HTTP, the team's personas, real worker processes and
the browser."""

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from django_q.brokers import get_broker
from django_q.conf import Conf
from playwright.sync_api import Browser, Page, sync_playwright

from accounts.apps import ensure_role_groups
from tests.factories import make_person
from videos import sweep
from videos.apps import ensure_schedule
from videos.models import ModelSpec, VideoJob
from videos.upstream.ratelimit import default_budget
from videos.upstream.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
API_KEY = "test-key"
RENDER_SECONDS = 2.5


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(api_key=API_KEY, render_seconds=RENDER_SECONDS, poll_after_ms=300).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session", autouse=True)
def _plain_http() -> Iterator[None]:
    """DEBUG is off here, so the HTTPS-only settings are on; the test client and live_server
    speak plain HTTP. (test_security checks those settings in a fresh process.)"""
    with override_settings(
        MUXWEB_HTTPS=False,
        SECURE_SSL_REDIRECT=False,
        SECURE_HSTS_SECONDS=0,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        LANGUAGE_COOKIE_SECURE=False,
    ):
        yield


@pytest.fixture(scope="session", autouse=True)
def _tasks_run_inline() -> Iterator[None]:
    # Unit tests run django-q2 tasks in the calling process; the worker tests switch this off.
    Conf.SYNC = True
    yield


@pytest.fixture(autouse=True)
def provider(simulator: Simulator, settings, tmp_path: Path) -> Iterator[Simulator]:
    """Every test talks to the simulator, with its own media directory and a fresh provider."""
    settings.MUXWEB_API_BASE = simulator.base_url
    settings.MUXWEB_API_KEY = API_KEY
    settings.MEDIA_ROOT = tmp_path / "media"
    # No collectstatic in tests: plain storage, files found where they are.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    simulator.dialect = "openai"
    simulator.offered_variants = ("video", "thumbnail", "spritesheet")
    simulator.list_refused_with = 0
    simulator.render_seconds = RENDER_SECONDS
    simulator.clear_faults()
    simulator.reset_limits()
    if settings.REDIS_URL:
        # The key's budget outlives a test in Redis (the database's is rolled back): a pause one
        # test's 429 caused must not slow the next.
        default_budget().forget()
    yield simulator
    simulator.clear_faults()
    simulator.reset_limits()


@pytest.fixture
def catalogue(db) -> list[ModelSpec]:
    """The default model catalogue (a transactional test's flush removes migration data)."""
    seed = importlib.import_module("videos.migrations.0002_default_catalogue")
    for entry in seed.DEFAULTS:
        ModelSpec.objects.get_or_create(name=entry["name"], defaults=entry)
    ensure_role_groups()
    ensure_schedule()
    return list(ModelSpec.objects.all())


@pytest.fixture
def member(catalogue) -> User:
    return make_person("mia", "member")


@pytest.fixture
def other_member(catalogue) -> User:
    return make_person("otto", "member")


@pytest.fixture
def viewer(catalogue) -> User:
    return make_person("vera", "viewer")


@pytest.fixture
def admin(catalogue) -> User:
    return make_person("ada", "admin")


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


# Browser tests (test_browser.py and others): one headless Chromium for the whole session.

CHROMIUM = Path("/usr/bin/chromium")
# Quiet, offline-safe flags for a sandboxed root session (see Debian's chromium package).
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium package")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Runs in every page before its own scripts: reports what the policy blocked back to the test.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportPolicyViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline code"} ` +
    `in ${event.sourceFile || event.documentURI}:${event.lineNumber}`
  );
});
"""


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    page = context.new_page()
    # Every console message, every policy violation, and every answer from the server that a
    # policy applies to (pages and htmx requests) with its Content-Security-Policy header.
    page.console_messages = []
    page.policy_violations = []
    page.answers = []
    page.on("console", lambda msg: page.console_messages.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: page.console_messages.append(f"pageerror: {exc}"))
    context.expose_function(
        "reportPolicyViolation", lambda text: page.policy_violations.append(text)
    )
    context.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "response",
        lambda response: (
            response.request.resource_type in ("document", "xhr", "fetch")
            and page.answers.append(response)
        ),
    )
    yield page
    context.close()


def wait_for(condition: Callable[[], object], timeout: float = 30, every: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def run_until_settled(job: VideoJob, timeout: float = 30) -> VideoJob:
    """Drive the poll sweep by hand (tasks run inline) until the job needs no more work."""

    def settled() -> bool:
        sweep.poll_due_jobs()
        job.refresh_from_db()
        return not job.is_active

    wait_for(settled, timeout=timeout, every=0.25)
    return job


def database_url() -> str:
    """A DATABASE_URL naming the database this test run uses (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_env(simulator: Simulator, settings, tmp_path: Path) -> dict[str, str]:
    """Environment for a child process that shares this test's database, media and provider."""
    data_dir = tmp_path / "worker-data"
    data_dir.mkdir()
    settings.MEDIA_ROOT = data_dir / "media"
    env = os.environ.copy()
    env.update(
        DATABASE_URL=database_url(),
        # Tasks are signed with the secret key: every process of one site shares it.
        SECRET_KEY=settings.SECRET_KEY,
        MUXWEB_DATA_DIR=str(data_dir),
        MUXWEB_API_BASE=simulator.base_url,
        MUXWEB_API_KEY=API_KEY,
        MUXWEB_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_qcluster(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A real `manage.py qcluster` process, in its own process group, writing to `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_qcluster(process: subprocess.Popen) -> None:
    """Stop a cluster, and whatever of its process group is left."""
    if process.poll() is None:
        # The cluster stops its own workers; a SIGTERM to each of them too makes it wait.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def qcluster(transactional_db, catalogue, worker_env, monkeypatch) -> Iterator[subprocess.Popen]:
    """A real `manage.py qcluster` process; tasks from this process go through the broker to it."""
    monkeypatch.setattr(Conf, "SYNC", False)
    get_broker().purge_queue()
    log = Path(worker_env["MUXWEB_DATA_DIR"]) / "qcluster.log"
    process = start_qcluster(worker_env, log)
    yield process
    stop_qcluster(process)
    if os.environ.get("MUXWEB_SHOW_WORKER_LOG"):
        print(log.read_text())
