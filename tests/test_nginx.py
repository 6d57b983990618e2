"""Debian's nginx, running docs/nginx.conf, in front of a live server in MUXWEB_MEDIA_SERVING=nginx
mode: the app checks access, nginx sends the video, Range requests and all."""

import io
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import av
import pytest
import requests
from django.urls import reverse

from review import sharing
from tests.conftest import ROOT, run_until_settled
from tests.factories import make_person
from videos import services
from videos.models import ModelSpec, Status, VideoJob

pytestmark = [pytest.mark.nginx, pytest.mark.django_db(transaction=True)]

NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "docs" / "nginx.conf"
# What Debian's /etc/nginx/nginx.conf gives a site file, with every path inside the test's folder
# and one foreground process that the test owns.
MAIN = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
lock_file {dir}/nginx.lock;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/muxweb.conf;
}}
"""


class Proxy(NamedTuple):
    url: str  # https://127.0.0.1:<port>
    http_url: str
    cert: Path
    access_log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def site_config(replacements: dict[str, str]) -> str:
    """docs/nginx.conf as documented, with only its placeholders filled in for this machine."""
    text = SITE.read_text()
    for placeholder, value in replacements.items():
        assert placeholder in text, f"docs/nginx.conf lost {placeholder!r}: update this test"
        text = text.replace(placeholder, value)
    return text


def wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nginx did not listen on {port}:\n{log.read_text()}")


@pytest.fixture
def nginx(live_server, settings, tmp_path: Path) -> Iterator[Proxy]:
    """nginx with docs/nginx.conf on free ports, proxying to the live server in nginx mode."""
    if not NGINX.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's nginx (see .ci/run)")
        pytest.skip("needs Debian's nginx at /usr/sbin/nginx (apt-get install nginx-light)")
    directory = tmp_path / "nginx"
    directory.mkdir()
    cert, key = self_signed_certificate(directory)
    https_port, http_port = free_port(), free_port()
    app_port = urlsplit(live_server.url).port
    url = f"https://127.0.0.1:{https_port}"
    # The data directory whose media/ the location aliases: the test's MEDIA_ROOT's parent.
    data_dir = Path(settings.MEDIA_ROOT).parent
    site = site_config(
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen [::]:80;": "",
            "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
            "listen [::]:443 ssl;": "",
            "/etc/letsencrypt/live/videos.example.com/fullchain.pem": str(cert),
            "/etc/letsencrypt/live/videos.example.com/privkey.pem": str(key),
            "alias /srv/muxweb/data/media/;": f"alias {data_dir}/media/;",
            "/var/log/nginx/access.log muxweb;": f"{directory}/muxweb-access.log muxweb;",
        }
    )
    (directory / "muxweb.conf").write_text(site)
    (directory / "nginx.conf").write_text(MAIN.format(dir=directory))
    settings.MUXWEB_MEDIA_SERVING = "nginx"
    # As the README asks of a deployment behind a proxy: the origin the browser sees.
    settings.CSRF_TRUSTED_ORIGINS = [url]
    output = open(directory / "stderr.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf")],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening(process, https_port, directory / "stderr.log")
        yield Proxy(url, f"http://127.0.0.1:{http_port}", cert, directory / "muxweb-access.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


@pytest.fixture
def video_job(member) -> VideoJob:
    """A job the simulator rendered and muxweb saved: a real H.264 MP4 in MEDIA_ROOT."""
    job = services.create_job(
        author=member,
        spec=ModelSpec.objects.get(name="sora-2"),
        prompt="A kite over the dunes",
        seconds=4,
        size="1280x720",
    )
    job = run_until_settled(job)
    assert job.status == Status.COMPLETED and job.video
    return job


class Browser(requests.Session):
    def request(self, *args, **kwargs) -> requests.Response:
        # A hung proxy fails the test instead of stalling the run.
        kwargs.setdefault("timeout", 30)
        return super().request(*args, **kwargs)


def browser(proxy: Proxy) -> requests.Session:
    session = Browser()
    # Only our certificate, and no proxy: REQUESTS_CA_BUNDLE or HTTPS_PROXY would override them.
    session.trust_env = False
    session.verify = str(proxy.cert)
    return session


def log_in(proxy: Proxy, username: str) -> requests.Session:
    """Through nginx, as a browser does: the form, its CSRF token, Origin and Referer."""
    session = browser(proxy)
    login = proxy.url + reverse("login")
    page = session.get(login)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        login,
        data={"username": username, "password": "pw-" + username, "csrfmiddlewaretoken": token},
        headers={"Origin": proxy.url, "Referer": login},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    return session


def video_bytes(job: VideoJob) -> bytes:
    return Path(job.video.path).read_bytes()


def media_url(proxy: Proxy, job: VideoJob, variant: str = "video") -> str:
    return proxy.url + reverse("videos-media", args=[job.pk, variant])


def test_anonymous_visitor_is_sent_to_login_not_given_the_file(nginx, video_job):
    response = browser(nginx).get(
        media_url(nginx, video_job), headers={"Range": "bytes=0-"}, allow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("login") + "?next=")
    assert response.content == b""
    assert "X-Accel-Redirect" not in response.headers


def test_range_request_through_nginx_gets_exactly_those_bytes(nginx, video_job):
    data = video_bytes(video_job)
    assert len(data) > 1100
    session = log_in(nginx, "mia")
    response = session.get(media_url(nginx, video_job), headers={"Range": "bytes=100-1099"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert response.headers["Content-Length"] == "1000"
    assert response.content == data[100:1100]
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Cache-Control"] == "private, max-age=60, must-revalidate"
    assert "X-Accel-Redirect" not in response.headers, "nginx consumes it"
    # In nginx mode Django sends no ETag: this one is nginx's, which sent the bytes from disk.
    assert "ETag" in response.headers
    out_of_bounds = session.get(
        media_url(nginx, video_job), headers={"Range": f"bytes={len(data)}-"}
    )
    assert out_of_bounds.status_code == 416


def test_the_player_plays_and_the_download_downloads_through_nginx(nginx, video_job):
    data = video_bytes(video_job)
    session = log_in(nginx, "mia")
    # What a <video> element asks first, then the whole file as a plain GET.
    first = session.get(media_url(nginx, video_job), headers={"Range": "bytes=0-"})
    assert first.status_code == 206
    assert first.headers["Content-Range"] == f"bytes 0-{len(data) - 1}/{len(data)}"
    assert first.content == data
    whole = session.get(media_url(nginx, video_job))
    assert whole.status_code == 200
    assert whole.headers["Content-Length"] == str(len(data))
    assert whole.content == data
    with av.open(io.BytesIO(whole.content)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (1280, 720)
    download = session.get(media_url(nginx, video_job) + "?download=1")
    assert download.content == data
    assert download.headers["Content-Disposition"] == (
        f'attachment; filename="muxweb-{video_job.pk}-video.mp4"'
    )
    thumbnail = session.get(media_url(nginx, video_job, "thumbnail"))
    assert thumbnail.status_code == 200
    assert thumbnail.headers["Content-Type"] == "image/webp"
    assert thumbnail.content == Path(video_job.thumbnail.path).read_bytes()


def test_a_file_with_an_odd_name_comes_through_nginx_intact(nginx, video_job, settings):
    data = video_bytes(video_job)
    name = f"videos/{video_job.pk}/clip 1 ü #2 100%?;&+.mp4"
    Path(video_job.video.path).rename(Path(settings.MEDIA_ROOT) / name)
    VideoJob.objects.filter(pk=video_job.pk).update(video=name)
    session = log_in(nginx, "mia")
    response = session.get(media_url(nginx, video_job), headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == data[10:20]


def test_the_internal_location_cannot_be_fetched_directly(nginx, video_job):
    direct = f"{nginx.url}/protected-media/{video_job.video.name}"
    assert browser(nginx).get(direct).status_code == 404
    assert log_in(nginx, "mia").get(direct, headers={"Range": "bytes=0-"}).status_code == 404


def test_an_account_in_no_team_group_gets_no_file_through_nginx(nginx, video_job):
    make_person("oscar")
    response = log_in(nginx, "oscar").get(media_url(nginx, video_job))
    assert response.status_code == 403
    assert not response.content.startswith(video_bytes(video_job)[:12])


def test_plain_http_is_sent_to_https(nginx):
    response = browser(nginx).get(nginx.http_url + "/videos/1/", allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == "https://127.0.0.1/videos/1/"


def test_the_access_log_masks_a_share_links_token(nginx, video_job, member):
    _link, token = sharing.create_link(job=video_job, actor=member)
    response = browser(nginx).get(f"{nginx.url}/s/{token}/")
    assert response.status_code == 200
    logged = nginx.access_log.read_text()
    assert token not in logged
    assert '"GET /s/-/ HTTP/1.1" 200' in logged
