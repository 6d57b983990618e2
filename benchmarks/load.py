"""Load run: simulated users browsing, creating and streaming against `manage.py up`.

    .venv/bin/python benchmarks/load.py [--users 30] [--duration 120] [--render 10] [--json]
    .venv/bin/python benchmarks/load.py \\
        --database-url postgres://postgres@127.0.0.1:5432/muxweb_load \\
        --redis-url redis://127.0.0.1:6379/5

It starts `manage.py up` in a temporary data directory (free ports, the built-in simulator with
short renders), makes one Members account per simulated user, and lets each user log in through
the login form and then, with think time between steps, do what a browser does: open the gallery
and poll it every 2 s like htmx, search and filter, open a job and poll its status, create a few
jobs through the create form, and play finished videos with Range requests. It prints, per page,
the request count, p50/p95/max latency and errors, the "database is locked", Traceback and ERROR
lines of up's log (kept in the data directory), and how many jobs completed or failed.

With --database-url, the named PostgreSQL database is created for the run and dropped after; it
must not exist yet. With --redis-url, that Redis database must be empty and is emptied after.
Not part of the test suite; its numbers are not asserted.
"""

import argparse
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
PASSWORD = "load-run-password-7421"  # noqa: S105  (throwaway accounts in a throwaway database)
POLL_SECONDS = 2  # what the pages' hx-trigger says
REQUEST_TIMEOUT = 30
PAGES = [
    "login",
    "gallery",
    "gallery poll",
    "search",
    "job detail",
    "status poll",
    "create",
    "video range",
    "thumbnail",
]
# The status codes each page answers when all is well; anything else is an error.
EXPECTED = {
    "login": {302},
    "gallery": {200},
    "gallery poll": {200, 204},
    "search": {200},
    "job detail": {200},
    "status poll": {200, 204},
    "create": {200},
    "video range": {206},
    "thumbnail": {200},
}
PROMPTS = [
    "A slow dolly shot through a rain-soaked neon alley at night, reflections on the puddles",
    "Aerial view of a lighthouse on a cliff at sunrise, waves breaking below, warm light",
    "Close-up of a barista pouring latte art in a sunlit cafe, shallow depth of field",
    "A red fox trotting through fresh snow in a birch forest, handheld tracking shot",
    "Time-lapse of clouds rolling over a mountain ridge, golden hour, wide lens",
    "A paper boat drifting down a gutter stream after a storm, low angle, 35mm film look",
    "Two astronauts playing chess on the moon, Earth rising behind them, static wide shot",
    "A street market in Marrakech at dusk, lanterns swaying, slow pan from left to right",
]
SEARCH_WORDS = ["fox", "lighthouse", "rain", "moon", "market", "cafe", "clouds", "boat", "zzz"]
# What the browser reads of the first, open-ended range before it seeks.
FIRST_RANGE_BYTES = 512 * 1024

CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')
CSRF_IN_FORM = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
FORM_TOKEN = re.compile(r'name="token" value="([0-9a-f]+)"')
CARD = re.compile(r'<article id="job-(\d+)" class="job-card status-(\w+)"')
POLL_ID = re.compile(r'class="poll-id" name="ids" value="(\d+)"')
POLL_VERSION = re.compile(r'id="poll-version" name="v" value="([^"]*)"')
POLLER_ACTIVE = re.compile(r'<div id="poller"[^>]*hx-get=')
THUMBNAIL = re.compile(r'src="(/videos/\d+/media/thumbnail)"')
OLDER_LINK = re.compile(r'<a href="(\?[^"]*older=[^"]+)" rel="next"')
STATUS_VERSION = re.compile(r'id="job-status"[^>]*hx-get="[^"?]*\?v=([^"]+)"')
VIDEO = re.compile(r'<video class="player"[^>]*src="(/videos/\d+/media/video)"')
CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")
LOG_PATTERNS = {
    "database is locked": re.compile(r"database is locked", re.IGNORECASE),
    "Traceback": re.compile(r"Traceback \(most recent call last\)"),
    "ERROR": re.compile(r"\bERROR\b|\[ERROR\]|\[CRITICAL\]"),
}


class Stats:
    """Latencies and errors per page, shared by all simulated users."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.error_samples: Counter[str] = Counter()

    def record(self, page: str, seconds: float | None, error: str | None) -> None:
        """A request's latency (None when it never got an answer) and what went wrong, if any."""
        with self.lock:
            if seconds is not None:
                self.latencies[page].append(seconds)
            if error:
                self.errors[page] += 1
                self.error_samples[f"{page}: {error}"] += 1


def describe_exception(exc: Exception) -> str:
    """The exception and its innermost cause: "ConnectionError" alone does not say who hung up."""
    cause: BaseException = exc
    while (inner := cause.__cause__ or cause.__context__) is not None:
        cause = inner
    text = f"{type(exc).__name__} ({type(cause).__name__}: {cause})"
    return text if len(text) < 160 else text[:157] + "..."


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(int(round(share * len(sorted_values) + 0.5)) - 1, 0)
    return sorted_values[min(rank, len(sorted_values) - 1)]


class Browser:
    """One simulated user: a cookie jar, the page it has open and what that page would poll."""

    def __init__(self, base: str, username: str, stats: Stats, seed: int) -> None:
        self.base = base
        self.username = username
        self.stats = stats
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.csrf = ""
        self.form_token = ""
        self.current_url = base + "/"
        self.cards: dict[int, str] = {}  # job id -> status, from the last gallery seen
        self.active_ids: list[int] = []
        self.version = ""
        self.thumbnails: list[str] = []
        self.created = 0

    def fetch(
        self,
        page: str,
        method: str,
        path: str,
        *,
        htmx_target: str | None = None,
        read_limit: int | None = None,
        **kwargs,
    ) -> requests.Response | None:
        """One timed request; the body is read (up to `read_limit`) before the clock stops."""
        headers = kwargs.pop("headers", {})
        if htmx_target is not None:
            # What htmx sends: the page's CSRF header (from <body hx-headers>) and its own.
            headers.update({"HX-Request": "true", "HX-Current-URL": self.current_url})
            if htmx_target:
                headers["HX-Target"] = htmx_target
            if self.csrf:
                headers["X-CSRFToken"] = self.csrf
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                self.base + path,
                headers=headers,
                timeout=REQUEST_TIMEOUT,
                allow_redirects=False,
                stream=read_limit is not None,
                **kwargs,
            )
            if read_limit is not None:
                # Like a player: take the start of an open-ended range, then hang up.
                read = 0
                for chunk in response.iter_content(64 * 1024):
                    read += len(chunk)
                    if read >= read_limit:
                        break
                response.close()
        except requests.RequestException as exc:
            self.stats.record(page, time.perf_counter() - started, describe_exception(exc))
            return None
        elapsed = time.perf_counter() - started
        error = None
        if response.status_code not in EXPECTED[page]:
            error = f"HTTP {response.status_code} {method} {urlsplit(path).path}"
        self.stats.record(page, elapsed, error)
        return None if error else response

    def think(self, deadline: float, low: float = 0.5, high: float = 2.0) -> None:
        time.sleep(max(min(self.rng.uniform(low, high), deadline - time.monotonic()), 0))

    def login(self) -> bool:
        try:
            page = self.session.get(self.base + "/accounts/login/", timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            self.stats.record("login", None, f"login page: {type(exc).__name__}")
            return False
        match = CSRF_IN_FORM.search(page.text)
        data = {
            "csrfmiddlewaretoken": match.group(1) if match else "",
            "username": self.username,
            "password": PASSWORD,
            "next": "",
        }
        return self.fetch("login", "POST", "/accounts/login/", data=data) is not None

    def read_gallery(self, html: str) -> None:
        """What the gallery page (or its results region) tells the browser."""
        if match := CSRF_IN_PAGE.search(html):
            self.csrf = match.group(1)
        if match := FORM_TOKEN.search(html):
            self.form_token = match.group(1)
        cards = {int(pk): status for pk, status in CARD.findall(html)}
        self.cards.update(cards)
        self.active_ids = [int(pk) for pk in POLL_ID.findall(html)]
        match = POLL_VERSION.search(html)
        self.version = match.group(1) if match else ""
        self.thumbnails = THUMBNAIL.findall(html)
        match = OLDER_LINK.search(html)
        self.older = "/" + match.group(1).replace("&amp;", "&") if match else None

    def open_gallery(self, deadline: float) -> None:
        path = "/"
        if getattr(self, "older", None) and self.rng.random() < 0.25:
            path = self.older  # the Older link of the last gallery read
        response = self.fetch("gallery", "GET", path)
        if response is None:
            return
        self.current_url = self.base + path
        self.read_gallery(response.text)
        # The first row of lazy thumbnails is in view.
        for thumbnail in self.thumbnails[:6]:
            self.fetch("thumbnail", "GET", thumbnail)
        self.stay_on_gallery(deadline, self.rng.randint(1, 5))

    def stay_on_gallery(self, deadline: float, polls: int) -> None:
        """Keep the gallery open: one poll every 2 s while a card on it runs."""
        for _ in range(polls):
            if not self.active_ids or time.monotonic() + POLL_SECONDS > deadline:
                return
            time.sleep(POLL_SECONDS)
            params = [("ids", pk) for pk in self.active_ids] + [("v", self.version)]
            response = self.fetch(
                "gallery poll",
                "GET",
                "/videos/poll",
                params=params,
                htmx_target="poller",
                headers={"HX-Trigger": "poller"},
            )
            if response is None or response.status_code == 204:
                continue
            # The answer redraws every polled card; those still running carry a poll-id again.
            self.cards.update({int(pk): status for pk, status in CARD.findall(response.text)})
            still_running = [int(pk) for pk in POLL_ID.findall(response.text)]
            match = POLL_VERSION.search(response.text)
            self.version = match.group(1) if match else ""
            self.active_ids = still_running if POLLER_ACTIVE.search(response.text) else []

    def search(self, deadline: float) -> None:
        params = {
            "q": self.rng.choice(SEARCH_WORDS) if self.rng.random() < 0.7 else "",
            "status": self.rng.choice(["", "", "running", "completed", "failed"]),
            "author": self.rng.choice(["", "", "me"]),
            "model": self.rng.choice(["", "", "sora-2", "sora-2-pro"]),
        }
        response = self.fetch("search", "GET", "/", params=params, htmx_target="results")
        if response is None:
            return
        self.read_gallery(response.text)
        for thumbnail in self.thumbnails[:3]:
            self.fetch("thumbnail", "GET", thumbnail)
        self.stay_on_gallery(deadline, self.rng.randint(0, 3))

    def open_job(self, deadline: float) -> None:
        if not self.cards:
            return
        # Finished videos draw more clicks than running ones.
        done = [pk for pk, status in self.cards.items() if status == "completed"]
        pool = done if done and self.rng.random() < 0.7 else list(self.cards)
        pk = self.rng.choice(pool)
        path = f"/videos/{pk}/"
        response = self.fetch("job detail", "GET", path)
        if response is None:
            return
        self.current_url = self.base + path
        html = response.text
        if match := CSRF_IN_PAGE.search(html):
            self.csrf = match.group(1)
        polls = self.rng.randint(2, 6)
        while (match := STATUS_VERSION.search(html)) and polls > 0:
            if time.monotonic() + POLL_SECONDS > deadline:
                return
            polls -= 1
            time.sleep(POLL_SECONDS)
            response = self.fetch(
                "status poll",
                "GET",
                path,
                params={"v": match.group(1)},
                htmx_target="job-status",
                headers={"HX-Trigger": "job-status"},
            )
            if response is not None and response.status_code == 200:
                html = response.text
        if match := VIDEO.search(html):
            self.cards[pk] = "completed"
            self.play(match.group(1), f"/videos/{pk}/media/thumbnail")

    def play(self, video: str, thumbnail: str) -> None:
        """The player: the poster, the start of the file, then a seek to the middle."""
        self.fetch("thumbnail", "GET", thumbnail)
        response = self.fetch(
            "video range", "GET", video, headers={"Range": "bytes=0-"}, read_limit=FIRST_RANGE_BYTES
        )
        if response is None:
            return
        match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not match:
            self.stats.record("video range", None, "206 without a Content-Range")
            return
        size = int(match.group(1))
        start = self.rng.randint(size // 4, max(size * 3 // 4, size // 4))
        self.fetch(
            "video range",
            "GET",
            video,
            headers={"Range": f"bytes={start}-"},
            read_limit=FIRST_RANGE_BYTES,
        )

    def create(self) -> None:
        if not self.form_token:
            return
        data = {
            "csrfmiddlewaretoken": self.csrf,
            "token": self.form_token,
            "prompt": self.rng.choice(PROMPTS),
            "model": "sora-2",
            "seconds": str(self.rng.choice([4, 8])),
            "size": self.rng.choice(["1280x720", "720x1280"]),
            "fit_reference": "on",
        }
        # An empty file input, as a browser sends it: the form is multipart.
        files = {"input_reference": ("", b"", "application/octet-stream")}
        response = self.fetch(
            "create", "POST", "/videos/new", data=data, files=files, htmx_target="composer"
        )
        if response is None:
            return
        new_card = CARD.search(response.text)
        if new_card is None:
            # 200 with the form again: it was refused.
            self.stats.record("create", None, "the form came back with errors")
            return
        self.created += 1
        self.cards[int(new_card.group(1))] = new_card.group(2)
        if match := FORM_TOKEN.search(response.text):
            self.form_token = match.group(1)
        self.active_ids = sorted({*self.active_ids, int(new_card.group(1))})
        self.version = "new"

    def run(self, started: float, deadline: float, creates: int) -> None:
        """Log in, then browse until the deadline, creating jobs at spread-out moments."""
        duration = deadline - started
        create_at = sorted(
            started + self.rng.uniform(0.05, 0.75) * duration for _ in range(creates)
        )
        # Users arrive over the first few seconds, not all in the same instant.
        time.sleep(self.rng.uniform(0, min(5.0, duration / 10)))
        if not self.login():
            return
        self.open_gallery(deadline)
        while time.monotonic() < deadline:
            self.think(deadline)
            if time.monotonic() >= deadline:
                break
            if create_at and time.monotonic() >= create_at[0]:
                create_at.pop(0)
                if self.rng.random() < 0.5:
                    # Back to the gallery first, where the form is.
                    self.open_gallery(deadline)
                self.create()
                self.stay_on_gallery(deadline, self.rng.randint(1, 4))
                continue
            action = self.rng.choices(
                [self.open_gallery, self.search, self.open_job], weights=[3, 2, 5]
            )[0]
            action(deadline)
        self.session.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_postgres_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"pick a plain database name for the load run, not {name!r}")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            raise SystemExit(f"database {name} exists: the load run makes its own; drop it first")
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url)


def child_environment(data_dir: str, sim_port: int, args: argparse.Namespace) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        # The run is self-contained: no provider, secret or database from this shell.
        if not key.startswith("MUXWEB_")
        and key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="muxweb.settings",
        MUXWEB_DATA_DIR=data_dir,
        MUXWEB_SIMULATOR_PORT=str(sim_port),
        MUXWEB_SIMULATOR_RENDER_SECONDS=str(args.render),
        PYTHONUNBUFFERED="1",
    )
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


def manage_shell(env: dict, code: str) -> str:
    done = subprocess.run(
        [sys.executable, MANAGE, "shell", "--verbosity", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"manage.py shell failed:\n{done.stderr}")
    return done.stdout


CREATE_USERS = """
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
password = make_password({password!r})
users = User.objects.bulk_create(
    User(username=f"load{{i:02d}}", password=password) for i in range({count})
)
Group.objects.get(name="Members").user_set.add(*User.objects.filter(username__startswith="load"))
"""

JOB_COUNTS = """
import json
from videos.models import Status, VideoJob
jobs = VideoJob.objects.all()
print(json.dumps({
    "created": jobs.count(),
    "completed": jobs.filter(status=Status.COMPLETED).count(),
    "with video": jobs.filter(status=Status.COMPLETED).exclude(video="").count(),
    "failed": jobs.filter(status=Status.FAILED).count(),
    "files given up": jobs.filter(fetch_given_up=True).count(),
    "running": jobs.needing_work().count(),
}))
"""


def start_up(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")  # noqa: SIM115  (kept open for the child's whole life)
    # Its own session, so a Ctrl-C here reaches this script only; up then gets a clean SIGTERM.
    return subprocess.Popen(
        [sys.executable, MANAGE, "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until_healthy(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"manage.py up exited with {process.returncode}; see {log_path}")
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"manage.py up did not answer within 180 s; see {log_path}")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (up's children live in sessions of their own)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_up(process: subprocess.Popen) -> None:
    """SIGTERM, as up expects: it stops its children itself. If it hangs, it and they are killed."""
    if process.poll() is not None:
        return
    below = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in [process.pid, *below]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


def scan_log(log_path: Path) -> tuple[dict[str, int], list[str]]:
    counts = dict.fromkeys(LOG_PATTERNS, 0)
    samples: list[str] = []
    for line in log_path.read_text(errors="replace").splitlines():
        for name, pattern in LOG_PATTERNS.items():
            if pattern.search(line):
                counts[name] += 1
                if len(samples) < 10 and line not in samples:
                    samples.append(line)
    return counts, samples


def load_average() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def simulate(base: str, users: int, duration: float, stats: Stats) -> int:
    started = time.monotonic()
    deadline = started + duration
    browsers = [Browser(base, f"load{i:02d}", stats, seed=i) for i in range(users)]
    threads = []
    for browser in browsers:
        # About three creates per user in two minutes, fewer in a shorter run.
        creates = max(round(browser.rng.randint(2, 4) * duration / 120), 1)
        thread = threading.Thread(target=browser.run, args=(started, deadline, creates))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return sum(browser.created for browser in browsers)


def wait_for_jobs(env: dict, settle: float) -> dict:
    """Give jobs created near the end time to finish, then count them."""
    deadline = time.monotonic() + settle
    while True:
        counts = json.loads(manage_shell(env, JOB_COUNTS))
        if not counts["running"] or time.monotonic() > deadline:
            return counts
        time.sleep(3)


def report(result: dict) -> str:
    lines = [
        f"{result['backend']}: {result['users']} users x {result['duration']:g} s, "
        f"renders of {result['render']:g} s, {result['started']}",
        f"load before: {result['uptime before']}",
        f"load after:  {result['uptime after']}",
        "",
        f"{'page':<14}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'errors':>8}",
    ]
    for page in PAGES:
        row = result["pages"][page]
        lines.append(
            f"{page:<14}{row['count']:>7}{row['p50 ms']:>9.0f}{row['p95 ms']:>9.0f}"
            f"{row['max ms']:>9.0f}{row['errors']:>8}"
        )
    total = result["total"]
    lines.append(f"{'all':<14}{total['count']:>7}{'':>27}{total['errors']:>8}")
    lines.append("")
    for text, count in result["error samples"].items():
        lines.append(f"  error x{count}: {text}")
    log = result["log lines"]
    lines.append(
        f"up log ({result['log']}): {log['database is locked']} 'database is locked', "
        f"{log['Traceback']} Traceback, {log['ERROR']} ERROR lines"
    )
    lines.extend(f"  {line}" for line in result["log samples"])
    jobs = result["jobs"]
    lines.append(
        f"jobs: {result['creates answered']} creates answered; {jobs['created']} in the database, "
        f"{jobs['completed']} completed ({jobs['with video']} with their video saved), "
        f"{jobs['failed']} failed, {jobs['files given up']} whose files were given up, "
        f"{jobs['running']} still running or saving "
        f"{result['settle']:g} s after the end"
    )
    return "\n".join(lines)


def summarize(stats: Stats) -> dict:
    pages = {}
    for page in PAGES:
        values = sorted(stats.latencies.get(page, []))
        pages[page] = {
            "count": len(values),
            "p50 ms": percentile(values, 0.50) * 1000,
            "p95 ms": percentile(values, 0.95) * 1000,
            "max ms": (values[-1] if values else 0.0) * 1000,
            "errors": stats.errors.get(page, 0),
        }
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--render", type=float, default=10.0, help="simulator seconds per video")
    parser.add_argument(
        "--settle", type=float, default=60.0, help="seconds to wait after the load for jobs to end"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL database to create for the run and drop after (default: SQLite)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", ""),
        help="an empty Redis database for the broker and cache, emptied after",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="muxweb-load-")
    log_path = Path(data_dir) / "up.log"
    web_port, sim_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    env = child_environment(data_dir, sim_port, args)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    if args.redis_url:
        if redis_client(args.redis_url).dbsize():
            raise SystemExit(f"{args.redis_url} is not empty: the load run needs its own database")
        backend += " + Redis"
    if args.database_url:
        create_postgres_database(args.database_url)
    process = None
    try:
        process = start_up(env, web_port, log_path)
        wait_until_healthy(process, base, log_path)
        manage_shell(env, CREATE_USERS.format(password=PASSWORD, count=args.users))
        uptime_before = load_average()
        started = datetime.now(tz=UTC)
        print(
            f"{backend}: {args.users} users for {args.duration:g} s against {base} "
            f"(log: {log_path})",
            file=sys.stderr,
        )
        stats = Stats()
        creates = simulate(base, args.users, args.duration, stats)
        uptime_after = load_average()
        jobs = wait_for_jobs(env, args.settle)
    finally:
        if process is not None:
            stop_up(process)
        if args.database_url:
            drop_postgres_database(args.database_url)
        if args.redis_url:
            redis_client(args.redis_url).flushdb()
    log_counts, log_samples = scan_log(log_path)
    pages = summarize(stats)
    result = {
        "backend": backend,
        "users": args.users,
        "duration": args.duration,
        "render": args.render,
        "started": f"{started:%Y-%m-%d %H:%M} UTC",
        "uptime before": uptime_before,
        "uptime after": uptime_after,
        "pages": pages,
        "total": {
            "count": sum(row["count"] for row in pages.values()),
            "errors": sum(row["errors"] for row in pages.values()),
        },
        "error samples": dict(stats.error_samples.most_common(10)),
        "log": str(log_path),
        "log lines": log_counts,
        "log samples": log_samples,
        "creates answered": creates,
        "jobs": jobs,
        "settle": args.settle,
    }
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
