"""`manage.py up` starts everything on a fresh data directory, and Ctrl-C stops it all."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import gunicorn.config
import pytest
import requests

from tests.conftest import ROOT, wait_for
from videos.management.commands import up

pytestmark = pytest.mark.worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def test_up_runs_web_worker_and_simulator_then_stops_them_on_ctrl_c(tmp_path):
    port, sim_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "MUXWEB_API_BASE", "MUXWEB_API_KEY")
    }
    env.update(
        MUXWEB_DATA_DIR=str(tmp_path / "data"),
        MUXWEB_SIMULATOR_PORT=str(sim_port),
        MUXWEB_SIMULATOR_RENDER_SECONDS="3",
        PYTHONUNBUFFERED="1",
    )
    env.pop("MUXWEB_WEBHOOK_SECRET", None)  # `up` makes one up for the simulator and the server
    output = tmp_path / "up.log"
    with open(output, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: "muxweb is running at" in output.read_text(), timeout=90, every=0.3)
        text = output.read_text()
        assert f"http://localhost:{port}/" in text
        password = re.search(r"Username: admin  Password: (\S+)", text).group(1)

        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        login = requests.get(f"{base}/", timeout=5)
        assert login.url.startswith(f"{base}/accounts/login/")
        css = re.search(r'href="(/static/css/muxweb\.[0-9a-f]+\.css)"', login.text)
        assert css, "static files are collected and served with hashed names"
        assert requests.get(base + css.group(1), timeout=5).status_code == 200
        assert (
            requests.get(
                f"http://127.0.0.1:{sim_port}/v1/videos",
                headers={"Authorization": "Bearer muxweb-simulator"},
                timeout=5,
            ).status_code
            == 200
        )

        session = requests.Session()
        session.get(f"{base}/accounts/login/", timeout=5)
        response = session.post(
            f"{base}/accounts/login/",
            data={
                "username": "admin",
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=5,
        )
        assert response.url == f"{base}/"
        assert 'id="composer"' in response.text

        # A job goes round the whole loop, and the simulator's signed webhook comes back to us.
        token = session.cookies["csrftoken"]
        form = {"prompt": "Round trip", "model": "sora-2", "seconds": "4", "size": "720x1280"}
        created = session.post(
            f"{base}/videos/new",
            data={**form, "csrfmiddlewaretoken": token},
            headers={"Referer": base},
            timeout=10,
        )
        assert created.status_code == 200
        job_url = re.search(r'href="(/videos/\d+/)"', created.text).group(1)
        wait_for(
            lambda: 'class="player"' in session.get(base + job_url, timeout=5).text, timeout=60
        )
        events = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from videos.models import WebhookEvent; print(WebhookEvent.objects.count())"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert events.stdout.strip().endswith("1"), events.stdout
    finally:
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = process.wait(timeout=30)
    assert time.monotonic() - started < 20
    assert code == 0, output.read_text()[-2000:]
    assert "Stopped." in output.read_text()
    for port_ in (port, sim_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port_)) != 0, "children are gone"


def test_a_second_start_keeps_the_admin_and_prints_no_password(tmp_path):
    env = {**os.environ, "MUXWEB_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    from_scratch = [sys.executable, "manage.py", "migrate", "-v0"]
    subprocess.run(from_scratch, cwd=ROOT, env=env, check=True)
    script = "from django.contrib.auth.models import User; User.objects.create_user('someone')"
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    env["MUXWEB_SIMULATOR_PORT"] = str(free_port())
    process = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=90)
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert "muxweb is running at" in out
    assert "Password:" not in out


def test_gunicorn_gets_a_control_socket_of_its_own_in_the_data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    command = up.gunicorn_command("127.0.0.1", 8000, 2)
    assert command[:4] == [sys.executable, "-m", "gunicorn", "muxweb.wsgi:application"]
    # Read as gunicorn reads it: not the one path per user that another `up` would take over.
    parsed = gunicorn.config.Config().parser().parse_args(command[3:])
    assert parsed.control_socket == str(tmp_path / "gunicorn.ctl")
    assert parsed.bind == ["127.0.0.1:8000"] and parsed.workers == 2


def test_a_gunicorn_without_a_control_socket_is_not_given_the_option(settings, monkeypatch):
    # gunicorn before 25.1, which pyproject.toml still allows, has no such option.
    older = [s for s in gunicorn.config.KNOWN_SETTINGS if not s.name.startswith("control_socket")]
    monkeypatch.setattr(gunicorn.config, "KNOWN_SETTINGS", older)
    command = up.gunicorn_command("127.0.0.1", 8000, 2)
    assert not [arg for arg in command if "control-socket" in arg]
    parsed = gunicorn.config.Config().parser().parse_args(command[3:])
    assert parsed.bind == ["127.0.0.1:8000"]
