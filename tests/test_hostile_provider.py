"""A provider (or relay, or gateway) that misleads muxweb on purpose, and team members who try
what they should not: what a review found, each shown to fail before its fix.

The hostile relay here is a real HTTP server on this machine that answers each route as a test
says; the simulator plays a gateway that serves only the video.
"""

import ipaddress
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import API_KEY, ROOT, run_until_settled, wait_for
from tests.factories import finished_job, make_job, make_person, post_create_form
from videos import downloads, lifecycle, services, sweep
from videos.models import ImportRun, ModelSpec, Status, VideoJob
from videos.probe import verify_download
from videos.upstream.client import UpstreamError, VideosClient, redirect_session
from videos.upstream.redirects import RedirectRefused, check_target

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_PAGE = "internal admin console: TOP-SECRET-7731"


class Server:
    """An HTTP server answering each (method, path) with what `routes` says; records requests."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, dict, bytes]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                server.requests.append((self.command, path, dict(self.headers)))
                status, headers, body = server.routes.get(
                    (self.command, path), (404, {}, b'{"error": {"message": "no such route"}}')
                )
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def on(self, method: str, path: str, status: int = 200, body=b"", **headers: str) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.routes[(method, path)] = (
            status,
            {k.replace("_", "-"): v for k, v in headers.items()},
            body,
        )

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def internal() -> Iterator[Server]:
    """A service on this machine that must never be reached through muxweb."""
    server = Server()
    server.on("GET", "/secret", 200, SECRET_PAGE.encode(), Content_Type="text/plain")
    server.on("GET", "/v1/videos", 200, {"data": [], "has_more": False})
    yield server
    server.stop()


@pytest.fixture
def relay(settings) -> Iterator[Server]:
    """A hostile relay, configured as muxweb's provider."""
    server = Server()
    settings.MUXWEB_API_BASE = server.url + "/v1"
    yield server
    server.stop()


def completed_job(author) -> VideoJob:
    """Completed at the relay, its files not downloaded yet."""
    return make_job(
        author,
        status=Status.COMPLETED,
        prompt="A relay's video",
        upstream_id="video_relay1",
        assets_fetched_at=None,
    )


def video_json(video_id: str, **fields) -> dict:
    return {
        "id": video_id,
        "object": "video",
        "status": "in_progress",
        "progress": 10,
        "model": "sora-2",
        "seconds": "4",
        "size": "1280x720",
        "created_at": int(timezone.now().timestamp()),
        **fields,
    }


# 1. Redirects.


def test_a_create_answered_with_a_redirect_is_not_sent_on_and_fails_visibly(
    member_client, relay, internal
):
    relay.on("POST", "/v1/videos", 307, b"", Location=internal.url + "/v1/videos")
    job = post_create_form(member_client, "Redirected create")
    assert job.status == Status.FAILED
    assert "HTTP 307" in job.error_message and "not followed" in job.error_message
    assert internal.requests == [], "the create body never reached the redirect target"


def test_api_reads_do_not_follow_redirects(relay, internal):
    relay.on("GET", "/v1/videos/video_x", 302, b"", Location=internal.url + "/secret")
    relay.on("GET", "/v1/videos", 301, b"", Location=internal.url + "/v1/videos")
    client = VideosClient(relay.url + "/v1", API_KEY)
    with pytest.raises(UpstreamError, match="HTTP 302"):
        client.retrieve("video_x")
    with pytest.raises(UpstreamError, match="HTTP 301"):
        client.list()
    assert internal.requests == []


@pytest.mark.parametrize("target", ["open", "closed"])
def test_content_redirect_to_an_internal_address_is_refused_and_never_shown(
    member, member_client, relay, internal, target
):
    port = internal.port
    if target == "closed":
        internal.stop()  # the same message for a closed port: no port scan through muxweb
    relay.on(
        "GET",
        "/v1/videos/video_relay1/content",
        302,
        b"",
        Location=f"http://127.0.0.1:{port}/secret",
    )
    job = completed_job(member)
    downloads.fetch_assets(job.pk)
    job.refresh_from_db()
    assert not job.video
    assert "MUXWEB_REDIRECT_ALLOWED_NETWORKS" in job.fetch_error
    assert "private or local address" in job.fetch_error
    assert str(port) not in job.fetch_error
    assert target == "closed" or internal.requests == []
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "TOP-SECRET" not in page and "MUXWEB_REDIRECT_ALLOWED_NETWORKS" in page


def test_allowed_storage_network_is_followed_without_the_key_and_its_answer_is_not_kept(
    member, relay, internal, settings
):
    settings.MUXWEB_REDIRECT_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    internal.on("GET", "/broken", 500, SECRET_PAGE.encode(), Content_Type="text/plain")
    relay.on("GET", "/v1/videos/video_relay1/content", 302, b"", Location=internal.url + "/broken")
    job = completed_job(member)
    downloads.fetch_assets(job.pk)
    job.refresh_from_db()
    assert internal.requests, "the allowed target was asked"
    assert all("Authorization" not in headers for _m, _p, headers in internal.requests)
    assert "HTTP 500" in job.fetch_error
    assert "TOP-SECRET" not in job.fetch_error


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/file",
        "https://127.0.0.1/file",
        "https://[::1]/file",
        "https://[::ffff:127.0.0.1]/file",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/file",
        "https://[fe80::1]/file",
        "https://100.64.0.1/file",
        "http://93.184.216.34/file",  # public, but plain HTTP to another host
        "ftp://93.184.216.34/file",
    ],
)
def test_redirect_targets_that_are_refused(url):
    with pytest.raises(RedirectRefused):
        check_target(url, provider_url="https://relay.example/v1", allowed=[])


def test_redirect_targets_that_are_followed():
    check_target("https://93.184.216.34/file?sig=1", provider_url="http://x.example/v1", allowed=[])
    storage = [ipaddress.ip_network("10.20.0.0/16")]
    check_target("http://10.20.0.5:9000/bucket/v.mp4", provider_url="https://r/v1", allowed=storage)
    with pytest.raises(RedirectRefused):
        check_target("http://10.21.0.5:9000/v.mp4", provider_url="https://r/v1", allowed=storage)


def test_the_connection_itself_is_checked_so_a_name_rebound_to_loopback_gets_nowhere(internal):
    with pytest.raises(RedirectRefused):
        redirect_session([]).get(internal.url + "/secret", timeout=5)
    assert internal.requests == []


# 4. Odd numbers and over-long values.


def test_absurd_numbers_and_over_long_values_never_stop_the_poll_sweep(member, relay, settings):
    odd = make_job(member, status=Status.IN_PROGRESS, prompt="odd", upstream_id="video_odd")
    garbled = make_job(
        member, status=Status.IN_PROGRESS, prompt="garbled", upstream_id="video_garbled"
    )
    fine = make_job(member, status=Status.IN_PROGRESS, prompt="fine", upstream_id="video_fine")
    # json.loads reads 1e999 as inf; these are what a broken relay really sends.
    relay.on(
        "GET",
        "/v1/videos/video_odd",
        200,
        b'{"id": "video_odd", "status": "in_progress", "progress": 1e999, '
        b'"expires_at": 1e300, "created_at": 99999999999999999999999}',
        openai_poll_after_ms="inf",
    )
    relay.on("GET", "/v1/videos/video_garbled", 200, video_json("x" * 300, size="1" * 21))
    relay.on("GET", "/v1/videos/video_fine", 200, video_json("video_fine", progress=40))
    sweep.poll_due_jobs()
    odd.refresh_from_db()
    garbled.refresh_from_db()
    fine.refresh_from_db()
    assert fine.progress == 40 and fine.poll_failures == 0
    assert odd.status == Status.IN_PROGRESS and odd.progress == 100 and odd.expires_at is None
    assert odd.next_poll_at > timezone.now()
    assert garbled.poll_failures == 1 and garbled.error_code == "invalid_response"
    assert "valid id" in garbled.error_message
    assert garbled.next_poll_at > timezone.now(), "backed off, not hit by every sweep"


@pytest.mark.parametrize("retry_after", ["inf", "nan", "1e999", "9" * 5000, "-5"])
def test_absurd_retry_after_is_clamped(member, relay, retry_after):
    job = make_job(member, status=Status.IN_PROGRESS, prompt="limited", upstream_id="video_limited")
    relay.on("GET", "/v1/videos/video_limited", 429, {"error": {"message": "slow"}},
             Retry_After=retry_after)  # fmt: skip
    sweep.poll_due_jobs()
    job.refresh_from_db()
    assert job.poll_failures == 1
    wait = (job.next_poll_at - timezone.now()).total_seconds()
    assert 0 < wait <= lifecycle.MAX_POLL_BACKOFF + 1


def test_the_api_key_echoed_by_a_provider_is_never_stored_logged_or_shown(
    member_client, relay, settings, caplog
):
    settings.MUXWEB_API_KEY = key = "sk-live-0123456789abcdef"
    echo = {"error": {"message": f"Bad key {key} for model", "code": f"bad_{key}"}}
    relay.on("POST", "/v1/videos", 400, echo)
    job = post_create_form(member_client, "Echoed key")
    assert job.status == Status.FAILED
    assert key not in job.error_message and key not in job.error_code
    assert "[redacted]" in job.error_message
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert key not in page and key not in caplog.text
    # A failed job's own error, sent in a Video object, too.
    running = make_job(job.author, status=Status.IN_PROGRESS, upstream_id="video_echo")
    error = {"code": "x", "message": f"key {key} refused"}
    relay.on(
        "GET", "/v1/videos/video_echo", 200, video_json("video_echo", status="failed", error=error)
    )
    sweep.poll_due_jobs()
    running.refresh_from_db()
    assert running.status == Status.FAILED and key not in running.error_message


def test_an_import_skips_jobs_whose_values_no_column_could_hold(admin, relay):
    relay.on("GET", "/v1/videos", 200, {
        "data": [
            video_json("v" * 201, status="completed"),
            video_json("video_ok1", status="completed", size="1" * 21),
            video_json("video_ok2", status="completed", model="m" * 101),
            video_json("video_ok3", status="completed", progress="nan", seconds="1e999"),
        ],
        "has_more": False,
    })  # fmt: skip
    assert services.import_upstream_jobs() == 1
    job = VideoJob.objects.get()
    assert job.upstream_id == "video_ok3" and job.seconds == 0


# 5. Import: admins only, in the background, with its progress shown.


def test_the_staff_flag_alone_does_not_import(client, member, catalogue):
    staff = make_person("stan", "member", is_staff=True)
    client.force_login(staff)
    assert client.post(reverse("videos-import")).status_code == 403
    assert client.get(reverse("videos-import-status")).status_code == 403
    gallery = client.get(reverse("videos-gallery")).content.decode()
    assert reverse("videos-import") not in gallery
    assert not ImportRun.objects.exists()


def test_import_runs_in_the_background_and_says_when_it_is_done(
    client, admin, provider, monkeypatch
):
    monkeypatch.setattr(services, "IMPORT_SLICE_SECONDS", 0.0)  # one page per task
    api = VideosClient(provider.base_url, API_KEY)
    provider.reset()
    for i in range(3):
        api.create(prompt=f"Made elsewhere {i}", model="sora-2", seconds=4, size="720x1280")
    client.force_login(admin)
    gallery = client.get(reverse("videos-gallery")).content.decode()
    assert reverse("videos-import") in gallery
    monkeypatch.setattr(services, "_import_page", _small_pages(services._import_page))
    assert client.post(reverse("videos-import")).status_code == 302
    run = ImportRun.objects.get()
    assert run.finished_at and run.added == 3 and run.seen == 3 and run.pages == 3
    status = client.get(reverse("videos-import-status"))
    assert "Import finished: 3 jobs added, 3 checked." in status.content.decode()
    assert client.get(reverse("videos-import-status"), {"v": run.version}).status_code == 204
    zh = client.get(reverse("videos-import-status"), headers={"accept-language": "zh-hans"})
    assert "导入完成" in zh.content.decode()
    # Again: nothing twice.
    client.post(reverse("videos-import"))
    assert ImportRun.objects.latest("pk").added == 0 and VideoJob.objects.count() == 3


def _small_pages(import_page):
    def one_at_a_time(client, specs, page_size, after):
        return import_page(client, specs, 1, after)

    return one_at_a_time


def test_an_import_in_progress_is_shown_and_polled(client, admin):
    run = ImportRun.objects.create(started_by=admin, pages=2, seen=200, added=7)
    client.force_login(admin)
    html = client.get(reverse("videos-gallery")).content.decode()
    assert "200 jobs checked, 7 added so far" in html
    assert f'hx-get="{reverse("videos-import-status")}?v={run.version}"' in html
    # Clicking again while it runs starts no second import.
    client.post(reverse("videos-import"))
    assert ImportRun.objects.count() == 1


# 6. Every path that creates a job goes through the catalogue.


def test_retry_and_remix_of_a_disabled_model_make_no_paid_job(member_client, member, provider):
    done = finished_job(member_client, "Soon disabled", size="720x1280")
    failed = make_job(member, status=Status.FAILED, prompt="failed", size="720x1280")
    ModelSpec.objects.filter(name="sora-2").update(enabled=False)
    upstream_before = len(provider.jobs())
    jobs_before = VideoJob.objects.count()

    retried = member_client.post(reverse("videos-retry", args=[failed.pk]), follow=True)
    assert "is not offered any more" in retried.content.decode()
    remixed = member_client.post(
        reverse("videos-remix", args=[done.pk]), {"prompt": "again"}, follow=True
    )
    assert remixed.status_code == 200
    assert VideoJob.objects.count() == jobs_before
    assert len(provider.jobs()) == upstream_before
    page = member_client.get(reverse("videos-detail", args=[done.pk])).content.decode()
    assert reverse("videos-remix", args=[done.pk]) not in page, "no remix form for it"


def test_retry_of_a_size_the_catalogue_no_longer_offers_is_refused(member_client, member):
    failed = make_job(member, status=Status.FAILED, prompt="old size", size="1792x1024")
    response = member_client.post(reverse("videos-retry", args=[failed.pk]), follow=True)
    assert "makes videos of size" in response.content.decode()
    assert VideoJob.objects.count() == 1


# 8. The admin's delete follows the job page's rules.


@pytest.mark.parametrize("status", [Status.SUBMITTING, Status.IN_PROGRESS, Status.COMPLETED])
def test_the_admin_cannot_delete_a_job_still_running_or_downloading(client, admin, status):
    job = make_job(admin, status=status, prompt="busy", assets_fetched_at=None)
    client.force_login(admin)
    client.post(reverse("admin:videos_videojob_delete", args=[job.pk]), {"post": "yes"})
    client.post(
        reverse("admin:videos_videojob_changelist"),
        {"action": "delete_selected", "_selected_action": [job.pk], "post": "yes"},
    )
    assert VideoJob.objects.filter(pk=job.pk).exists()
    with pytest.raises(services.JobBusy):
        services.delete_job(job)


# 10. A gateway that offers the video only.


def test_a_gateway_without_thumbnails_still_gives_a_playable_video_and_all_three_files(
    member_client, provider, settings
):
    provider.offered_variants = ("video",)
    job = finished_job(member_client, "Only the video")
    assert job.assets_fetched_at and job.fetch_attempts == 1 and not job.fetch_error
    assert sorted(job.variants_not_offered) == ["spritesheet", "thumbnail"]
    media = Path(settings.MEDIA_ROOT)
    verify_download(media / job.video.name, "video", seconds=4, size="1280x720")
    assert verify_download(media / job.thumbnail.name, "thumbnail", seconds=4, size="") == (
        "image/webp"
    )
    assert verify_download(media / job.spritesheet.name, "spritesheet", seconds=4, size="") == (
        "image/jpeg"
    )
    response = member_client.get(reverse("videos-media", args=[job.pk, "video"]))
    assert response.status_code == 200 and response["Content-Type"] == "video/mp4"


def test_one_variant_failing_never_holds_back_the_video(member_client, provider):
    provider.inject("content", "500", variant="thumbnail", times=None)
    job = post_create_form(member_client, "Thumbnail trouble")

    def fetched_once() -> bool:
        sweep.poll_due_jobs()
        job.refresh_from_db()
        return job.fetch_attempts > 0

    wait_for(fetched_once)
    assert job.video and job.spritesheet and not job.thumbnail
    assert "thumbnail" in job.fetch_error and not job.fetch_given_up
    # Its copy expiring, the thumbnail is made from the video: the job ends with all three.
    provider.clear_faults()
    VideoJob.objects.filter(pk=job.pk).update(
        expires_at=timezone.now(), next_poll_at=timezone.now()
    )
    provider.inject("content", "500", variant="thumbnail", times=None)
    job = run_until_settled(job)
    assert job.thumbnail and job.assets_fetched_at and not job.fetch_error


# 2. The data directory belongs to muxweb alone.


def test_files_muxweb_writes_are_private_and_an_old_install_is_tightened_at_start(tmp_path):
    data = tmp_path / "old-install"
    (data / "media" / "videos" / "1").mkdir(parents=True)
    for path in (data, data / "media", data / "media" / "videos", data / "media" / "videos" / "1"):
        path.chmod(0o755)
    for name in ("muxweb.sqlite3", "secret_key", "media/videos/1/video.mp4"):
        (data / name).write_bytes(b"x")
        (data / name).chmod(0o644)
    env = {**os.environ, "MUXWEB_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "muxweb.settings"}
    env.pop("DATABASE_URL", None)
    script = (
        "import os, django; os.umask(0o022); django.setup();"
        "from pathlib import Path; from django.conf import settings; from muxweb import datadir;"
        "datadir.tighten_media(Path(settings.MEDIA_ROOT), settings.MEDIA_GROUP_ID);"
        "open(settings.DATA_DIR / 'new-file', 'w').close()"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)

    def mode(name: str) -> int:
        return stat.S_IMODE((data / name).stat().st_mode)

    assert mode("") == 0o700
    assert mode("muxweb.sqlite3") == mode("secret_key") == mode("new-file") == 0o600
    assert mode("media") == mode("media/videos/1") == 0o700
    assert mode("media/videos/1/video.mp4") == 0o600


def test_downloaded_files_are_private_or_readable_by_the_media_group(
    member_client, settings, provider
):
    job = finished_job(member_client, "Private files")
    media = Path(settings.MEDIA_ROOT)
    for variant in ("video", "thumbnail", "spritesheet"):
        assert stat.S_IMODE((media / job.asset(variant).name).stat().st_mode) == 0o600
    assert stat.S_IMODE(downloads.job_media_dir(job).stat().st_mode) == 0o700

    settings.MEDIA_GROUP_ID = os.getgid()
    job = finished_job(member_client, "Files for nginx")
    video = media / job.video.name
    assert stat.S_IMODE(video.stat().st_mode) == 0o640
    assert stat.S_IMODE(video.parent.stat().st_mode) == 0o2750
    assert video.stat().st_gid == os.getgid()
