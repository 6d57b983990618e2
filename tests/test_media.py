"""Cached files are served with Range support so the player can seek, and kept by the browser
only briefly: it asks again, and is refused once logged out."""

import os

import pytest
from django.urls import reverse
from django.utils.http import http_date

from tests.factories import make_job, make_person
from videos.media import parse_range, sniff_content_type
from videos.models import VideoJob

pytestmark = pytest.mark.django_db

BODY = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def job(member, settings) -> VideoJob:
    job = make_job(member)
    path = settings.MEDIA_ROOT / f"videos/{job.pk}/video.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(BODY)
    job.video.name = f"videos/{job.pk}/video.mp4"
    job.save()
    return job


def get(client, job, range_header=None, **params):
    headers = {"Range": range_header} if range_header else {}
    return client.get(reverse("videos-media", args=[job.pk, "video"]), params, headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_whole_file_with_type_length_and_accept_ranges(member_client, job):
    response = get(member_client, job)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(BODY))
    assert response["Accept-Ranges"] == "bytes"
    assert "private" in response["Cache-Control"]
    assert body(response) == BODY


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-240", 10000, 10239),
        ("bytes=10200-99999", 10200, 10239),
    ],
)
def test_range_request_gets_206_with_exactly_those_bytes(member_client, job, header, start, end):
    response = get(member_client, job, header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(BODY)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert body(response) == BODY[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-20010", "bytes=-0", "bytes=50-10"])
def test_unsatisfiable_range_gets_416(member_client, job, header):
    response = get(member_client, job, header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(BODY)}"


def test_malformed_or_multiple_ranges_get_the_whole_file(member_client, job):
    for header in ("bytes=0-1,5-6", "items=0-5", "bytes=a-b"):
        response = get(member_client, job, header)
        assert response.status_code == 200
        assert body(response) == BODY


def test_download_is_an_attachment_with_a_readable_name(member_client, job):
    response = get(member_client, job, download="1")
    assert response["Content-Disposition"] == f'attachment; filename="muxweb-{job.pk}-video.mp4"'


def test_file_missing_on_disk_is_404_not_500(member_client, job, settings):
    (settings.MEDIA_ROOT / job.video.name).unlink()
    assert get(member_client, job).status_code == 404


def test_parse_range_edges():
    assert parse_range("", 10) is None
    assert parse_range("bytes=-", 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=-20", 10) == (0, 9)


def test_parse_range_clamps_a_huge_end_or_suffix_and_refuses_a_huge_start():
    huge = "9" * 5000
    assert parse_range(f"bytes=3-{huge}", 10) == (3, 9)
    assert parse_range(f"bytes=-{huge}", 10) == (0, 9)
    assert parse_range(f"bytes={huge}-", 10) is False
    assert parse_range(f"bytes={huge}-{huge}", 10) is False
    assert parse_range("bytes=9999999999999999999-", 10) is False
    # Leading zeros do not make a number big.
    assert parse_range(f"bytes={'0' * 5000}2-{'0' * 5000}4", 10) == (2, 4)
    assert parse_range(f"bytes=-{'0' * 5000}", 10) is False


def test_parse_range_reads_ascii_digits_only():
    for header in ("bytes=٣-", "bytes=0-٥", "bytes=-²", "bytes=１-2"):
        assert parse_range(header, 10) is None, header


def media(client, job, **headers):
    """The video, with headers named as keywords: If_None_Match for If-None-Match."""
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    return client.get(reverse("videos-media", args=[job.pk, "video"]), headers=headers)


def test_cached_media_is_revalidated_not_kept_for_a_day(member_client, job, settings):
    path = settings.MEDIA_ROOT / job.video.name
    first = media(member_client, job)
    assert first["Cache-Control"] == "private, max-age=60, must-revalidate"
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"'), "a strong ETag"
    assert first["Last-Modified"] == http_date(path.stat().st_mtime)

    again = media(member_client, job, If_None_Match=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == "private, max-age=60, must-revalidate"
    since = media(member_client, job, If_Modified_Since=first["Last-Modified"])
    assert since.status_code == 304

    # Same size, written again a second later: a new ETag and the new bytes.
    path.write_bytes(BODY[::-1])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = media(member_client, job, If_None_Match=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert body(changed) == BODY[::-1]
    stale = media(member_client, job, If_Modified_Since=first["Last-Modified"])
    assert stale.status_code == 200


def test_unchanged_media_answers_304_only_after_the_access_check(client, member, job):
    client.force_login(member)
    etag = media(client, job)["ETag"]
    assert media(client, job, If_None_Match=etag).status_code == 304
    client.logout()
    anonymous = media(client, job, If_None_Match=etag)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    client.force_login(make_person("oscar"))  # in no team group
    outsider = media(client, job, If_None_Match=etag)
    assert outsider.status_code == 403
    assert "ETag" not in outsider


def test_range_with_a_stale_if_range_gets_the_whole_file(member_client, job):
    first = media(member_client, job)
    etag, last_modified = first["ETag"], first["Last-Modified"]
    for validator in (etag, last_modified):
        current = media(member_client, job, Range="bytes=0-99", If_Range=validator)
        assert current.status_code == 206
        assert body(current) == BODY[:100]
    for validator in ('"stale"', f"W/{etag}", "Thu, 01 Jan 1970 00:00:00 GMT", "nonsense"):
        stale = media(member_client, job, Range="bytes=0-99", If_Range=validator)
        assert stale.status_code == 200, validator
        assert body(stale) == BODY


def test_types_are_told_by_bytes_not_names(tmp_path):
    samples = {
        "video/mp4": b"\x00\x00\x00\x18ftypmp42",
        "image/webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF",
        "image/png": b"\x89PNG\r\n\x1a\n\x00\x00",
        None: b"<!doctype html><html>",
    }
    for expected, head in samples.items():
        path = tmp_path / "sample.mp4"
        path.write_bytes(head)
        assert sniff_content_type(path) == expected
