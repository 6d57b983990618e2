"""`manage.py up`: everything muxweb needs, in one command, stopped together by Ctrl-C.

Migrates, collects static files, creates the first admin on an empty database, then runs the
simulator (when no provider is configured), the django-q2 cluster and gunicorn as child processes.
"""

import base64
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import gunicorn.config
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from muxweb import datadir

STOP_GRACE_SECONDS = 10


class Command(BaseCommand):
    help = "Run muxweb: web server, background worker and (without an API base) the simulator."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument("--port", type=int, default=8000, help="Port of the web server.")
        parser.add_argument(
            "--web-workers", type=int, default=2, help="gunicorn worker processes (8 threads each)."
        )

    def handle(self, *args, host: str, port: int, web_workers: int, **options) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        # Files cached before permissions were tightened (settings.py did the top folder).
        datadir.tighten_media(Path(settings.MEDIA_ROOT), settings.MEDIA_GROUP_ID)
        self.create_first_admin()
        self.choose_https(host)

        manage = str(Path(settings.BASE_DIR) / "manage.py")
        if settings.MUXWEB_USE_SIMULATOR:
            # The simulator's webhooks come back to this server, signed with a secret all the
            # children share (one made up for this run unless one is configured).
            os.environ["MUXWEB_SIMULATOR_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/webhooks/videos"
            if not settings.MUXWEB_WEBHOOK_SECRETS:
                os.environ["MUXWEB_WEBHOOK_SECRET"] = (
                    "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
                )
            self.start("simulator", [sys.executable, manage, "simulator"])
            self.stdout.write(f"Simulator: {settings.MUXWEB_API_BASE} (no MUXWEB_API_BASE set)")
        else:
            self.stdout.write(f"Provider: {settings.MUXWEB_API_BASE}")
        self.start("worker", [sys.executable, manage, "qcluster"])
        self.start("web", gunicorn_command(host, port, web_workers))
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        everywhere = host in ("0.0.0.0", "::")  # noqa: S104
        url = f"http://{'localhost' if everywhere or host == '127.0.0.1' else host}:{port}/"
        self.wait_until_up(f"http://127.0.0.1:{port}/healthz" if everywhere else f"{url}healthz")
        self.stdout.write(self.style.SUCCESS(f"muxweb is running at {url}  (Ctrl-C stops it)"))
        self.supervise()

    def create_first_admin(self) -> None:
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", password=password)
        self.stdout.write(
            self.style.WARNING(
                f"Created the first account. Username: admin  Password: {password}\n"
                "This password is shown only once: log in and change it on My account (/account/)."
            )
        )

    def choose_https(self, host: str) -> None:
        """gunicorn speaks plain HTTP. Listening on this machine alone, that is safe: unless
        MUXWEB_HTTPS is set, the children run without the HTTPS-only settings. Listening
        elsewhere, they stay on and a TLS proxy in front must carry the traffic."""
        # Empty is unset, as for every boolean setting.
        if os.environ.get("MUXWEB_HTTPS", "").strip() or not settings.MUXWEB_HTTPS:
            return
        if is_loopback(host):
            os.environ["MUXWEB_HTTPS"] = "0"
            self.stdout.write(
                "Plain HTTP on this machine only: HTTPS redirects and secure cookies are off "
                "(MUXWEB_HTTPS=0)."
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    "HTTPS only: serve muxweb through a TLS proxy that sets X-Forwarded-Proto, "
                    "or set MUXWEB_HTTPS=0 to allow plain HTTP."
                )
            )

    def start(self, name: str, command: list[str]) -> None:
        # Own process group: Ctrl-C reaches only this process, which then stops the children.
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=os.environ.copy(), start_new_session=True
        )
        self.children.append((name, process))

    def wait_until_up(self, health_url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            try:
                if requests.get(health_url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop_all()
        raise CommandError(f"the web server did not answer at {health_url}")

    def check_children(self) -> None:
        for name, process in self.children:
            if process.poll() is not None and not self.stopping:
                self.stop_all()
                raise CommandError(
                    f"{name} exited with code {process.returncode}; stopped everything"
                )

    def supervise(self) -> None:
        while not self.stopping:
            self.check_children()
            time.sleep(0.5)
        self.stop_all()

    def on_signal(self, signum, frame) -> None:
        self.stopping = True

    def stop_all(self) -> None:
        self.stopping = True
        for _name, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for _name, process in self.children:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stdout.write("Stopped.")


def gunicorn_command(host: str, port: int, web_workers: int) -> list[str]:
    """The web server's command line."""
    command = [
        sys.executable, "-m", "gunicorn", "muxweb.wsgi:application",
        "--bind", f"{host}:{port}",
        "--workers", str(web_workers),
        "--worker-class", "gthread",
        "--threads", "8",
        "--timeout", "120",
        # Above the pages' 2 s poll: with gunicorn's default of 2 s, a poll often met
        # its connection being closed (a reset, or a new connection per poll).
        "--keep-alive", "5",
        "--graceful-timeout", str(STOP_GRACE_SECONDS - 2),
    ]  # fmt: skip
    # gunicorn 25.1 and later open a control socket at one path per user, which a second muxweb
    # on the machine would take over (each removes the other's at start and stop): each data
    # directory gets its own. Asked of gunicorn's settings because older ones have no such option.
    if any(option.name == "control_socket" for option in gunicorn.config.KNOWN_SETTINGS):
        command += ["--control-socket", str(settings.DATA_DIR / "gunicorn.ctl")]
    return command


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
