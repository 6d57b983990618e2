"""MUXWEB_MEDIA_SERVING: after the access check, Django sends a file itself or hands it to nginx
(X-Accel-Redirect) or Apache/lighttpd (X-Sendfile), with the right headers and a quoted path that
never leads outside MEDIA_ROOT."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.core import checks
from django.core.exceptions import SuspiciousFileOperation
from django.test import RequestFactory
from django.urls import reverse

from tests.conftest import ROOT
from tests.factories import make_job, make_person
from videos.media import serve_file
from videos.models import VideoJob

pytestmark = pytest.mark.django_db

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
ODD_NAME = 'clip 1 "ü" #2 100%?;&+.mp4'


@pytest.fixture
def job(member, settings) -> VideoJob:
    job = make_job(member)
    store(job, f"videos/{job.pk}/video.mp4", settings)
    return job


def store(job: VideoJob, name: str, settings) -> Path:
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(BODY)
    job.video.name = name
    job.save()
    return path


def get(client, job, range_header=None, **params):
    headers = {"Range": range_header} if range_header else {}
    return client.get(reverse("videos-media", args=[job.pk, "video"]), params, headers=headers)


def test_default_mode_is_django_sending_the_bytes_itself(member_client, job, settings):
    assert settings.MUXWEB_MEDIA_SERVING == "django"
    response = get(member_client, job, "bytes=0-9")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == BODY[:10]
    assert "X-Accel-Redirect" not in response and "X-Sendfile" not in response


def test_nginx_mode_answers_empty_with_the_internal_location_and_headers(
    member_client, job, settings
):
    settings.MUXWEB_MEDIA_SERVING = "nginx"
    response = get(member_client, job, "bytes=100-199")
    # nginx answers the Range itself once it follows the redirect.
    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/videos/{job.pk}/video.mp4"
    assert response["Content-Type"] == "video/mp4"
    assert response["Cache-Control"] == "private, max-age=60, must-revalidate"
    assert "Content-Range" not in response and "Content-Disposition" not in response


def test_nginx_mode_uses_the_configured_prefix_and_keeps_the_download_name(
    member_client, job, settings
):
    settings.MUXWEB_MEDIA_SERVING = "nginx"
    settings.MUXWEB_MEDIA_ACCEL_PREFIX = "/internal/muxweb/"
    response = get(member_client, job, download="1")
    assert response["X-Accel-Redirect"] == f"/internal/muxweb/videos/{job.pk}/video.mp4"
    assert response["Content-Disposition"] == f'attachment; filename="muxweb-{job.pk}-video.mp4"'


def test_sendfile_mode_names_the_absolute_path(member_client, job, settings):
    settings.MUXWEB_MEDIA_SERVING = "sendfile"
    response = get(member_client, job, download="1")
    assert response.status_code == 200
    assert response.content == b""
    path = (Path(settings.MEDIA_ROOT) / job.video.name).resolve()
    assert response["X-Sendfile"] == str(path)
    assert response["Content-Type"] == "video/mp4"
    assert response["Cache-Control"] == "private, max-age=60, must-revalidate"
    assert response["Content-Disposition"] == f'attachment; filename="muxweb-{job.pk}-video.mp4"'


@pytest.mark.parametrize(
    ("mode", "header"), [("nginx", "X-Accel-Redirect"), ("sendfile", "X-Sendfile")]
)
def test_web_server_modes_leave_validators_and_304s_to_the_server(
    member_client, job, settings, mode, header
):
    settings.MUXWEB_MEDIA_SERVING = mode
    response = member_client.get(
        reverse("videos-media", args=[job.pk, "video"]),
        headers={"If-None-Match": "*", "If-Range": '"stale"', "Range": "bytes=0-9"},
    )
    assert response.status_code == 200
    assert header in response
    assert response["Cache-Control"] == "private, max-age=60, must-revalidate"
    assert "ETag" not in response and "Last-Modified" not in response


@pytest.mark.parametrize(
    ("mode", "header"), [("nginx", "X-Accel-Redirect"), ("sendfile", "X-Sendfile")]
)
def test_odd_file_names_are_quoted_into_one_safe_header_value(
    member_client, job, settings, mode, header
):
    settings.MUXWEB_MEDIA_SERVING = mode
    path = store(job, f"videos/{job.pk}/{ODD_NAME}", settings)
    value = get(member_client, job)[header]
    assert value.isascii() and " " not in value and "?" not in value and "#" not in value
    expected = f"/protected-media/videos/{job.pk}/{ODD_NAME}" if mode == "nginx" else str(path)
    assert unquote(value) == expected


def test_a_name_leading_outside_media_root_is_refused(member_client, job, settings):
    settings.MUXWEB_MEDIA_SERVING = "nginx"
    outside = Path(settings.MEDIA_ROOT).parent / "secret_key"
    outside.write_text("not for browsers")
    VideoJob.objects.filter(pk=job.pk).update(video="../secret_key")
    response = get(member_client, job)
    assert response.status_code == 400
    assert "X-Accel-Redirect" not in response


@pytest.mark.parametrize("mode", ["django", "nginx", "sendfile"])
def test_a_symlink_out_of_media_root_is_refused(member_client, job, settings, mode):
    settings.MUXWEB_MEDIA_SERVING = mode
    outside = Path(settings.MEDIA_ROOT).parent / "elsewhere.mp4"
    outside.write_bytes(BODY)
    link = Path(settings.MEDIA_ROOT) / job.video.name
    link.unlink()
    link.symlink_to(outside)
    response = get(member_client, job)
    assert response.status_code == 400
    assert "X-Accel-Redirect" not in response and "X-Sendfile" not in response


def test_serve_file_refuses_a_path_outside_media_root_whatever_the_caller(settings, tmp_path):
    settings.MUXWEB_MEDIA_SERVING = "sendfile"
    stray = tmp_path / "stray.mp4"
    stray.write_bytes(BODY)
    with pytest.raises(SuspiciousFileOperation):
        serve_file(RequestFactory().get("/"), stray)


@pytest.mark.parametrize("mode", ["nginx", "sendfile"])
def test_file_missing_on_disk_is_our_404_not_the_servers(member_client, job, settings, mode):
    settings.MUXWEB_MEDIA_SERVING = mode
    (Path(settings.MEDIA_ROOT) / job.video.name).unlink()
    response = get(member_client, job)
    assert response.status_code == 404
    assert "X-Accel-Redirect" not in response and "X-Sendfile" not in response


def test_a_download_name_with_odd_characters_is_a_valid_content_disposition(settings, job):
    settings.MUXWEB_MEDIA_SERVING = "nginx"
    path = Path(settings.MEDIA_ROOT) / job.video.name
    response = serve_file(RequestFactory().get("/"), path, download_name='a "b" ü.mp4')
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''a%20%22b%22%20%C3%BC.mp4"
    )


@pytest.mark.parametrize("mode", ["nginx", "sendfile"])
def test_the_access_check_still_gates_every_mode(client, job, settings, mode):
    settings.MUXWEB_MEDIA_SERVING = mode
    anonymous = get(client, job)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    client.force_login(make_person("oscar"))  # in no team group
    outsider = get(client, job)
    assert outsider.status_code == 403
    for response in (anonymous, outsider):
        assert "X-Accel-Redirect" not in response and "X-Sendfile" not in response


def media_errors() -> list[str]:
    return [message.id for message in checks.run_checks() if message.id.startswith("muxweb.E01")]


def test_system_check_reports_a_bad_mode_or_prefix(settings):
    assert media_errors() == []
    settings.MUXWEB_MEDIA_SERVING = "apache"
    assert media_errors() == ["muxweb.E010"]
    settings.MUXWEB_MEDIA_SERVING = "nginx"
    for prefix in ("protected-media/", "/protected-media", "/", "/a b/", "/../", "/x/%41/"):
        settings.MUXWEB_MEDIA_ACCEL_PREFIX = prefix
        assert media_errors() == ["muxweb.E011"], prefix
    settings.MUXWEB_MEDIA_ACCEL_PREFIX = "/internal/media-1.0/"
    assert media_errors() == []


def settings_run(value: str, data_dir: Path) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings as s; "
    code += "print(s.MUXWEB_MEDIA_SERVING)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUXWEB_")}
    env.update(
        DJANGO_SETTINGS_MODULE="muxweb.settings",
        MUXWEB_DATA_DIR=str(data_dir),
        MUXWEB_MEDIA_SERVING=value,
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_a_typo_in_the_mode_stops_the_start_with_a_clear_error(tmp_path):
    result = settings_run("ngnix", tmp_path)
    assert result.returncode != 0
    assert "MUXWEB_MEDIA_SERVING must be one of django, nginx, sendfile; got 'ngnix'" in (
        result.stderr
    )
    assert settings_run("NGINX", tmp_path).stdout.strip() == "nginx"
    assert settings_run("", tmp_path).stdout.strip() == "django"
