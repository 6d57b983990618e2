"""Zip exports: built in the background from real files, named by date and prompt, with the
same records as every other export; downloadable by the requester alone, for a while."""

import csv
import io
import json
import re
import struct
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS
from tests.factories import make_job, make_person
from videos import exports
from videos.models import ExportStatus, Status, VideoJob, ZipExport


@pytest.fixture
def outsider(catalogue):
    return make_person("olga")


def ask_for_zip(client, django_capture_on_commit_callbacks, **data) -> ZipExport:
    """Post the gallery's Export zip form; the build task runs inline once the request commits."""
    newest = ZipExport.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("videos-zip-exports"), data)
    assert response.status_code == 302, response.content[:500]
    export = ZipExport.objects.get(pk__gt=newest)
    assert response["Location"] == reverse("videos-zip-export", args=[export.pk])
    return export


def download(client, export: ZipExport) -> zipfile.ZipFile:
    response = client.get(reverse("videos-zip-export-download", args=[export.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    day = timezone.localdate(export.finished_at).isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="muxweb-videos-{day}.zip"'
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def metadata(zf: zipfile.ZipFile) -> tuple[list[dict], list[dict]]:
    records = json.loads(zf.read("metadata.json"))
    text = zf.read("metadata.csv").decode("utf-8")
    assert text.startswith("\ufeff"), "a byte order mark, so that spreadsheets read UTF-8"
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    return records, rows


def finished(author, prompt: str, **fields) -> VideoJob:
    return make_job(author, status=Status.COMPLETED, with_files=True, prompt=prompt, **fields)


def test_member_gets_a_zip_of_the_filtered_videos_named_by_date_and_prompt(
    member_client, member, other_member, django_capture_on_commit_callbacks
):
    source = finished(
        member,
        "A lighthouse at dusk",
        price_per_second=Decimal("0.10"),
        title="Take 3",
        note="The client's pick",
        review_state="approved",
    )
    remix = finished(other_member, "灯塔 lighthouse at night, 雨", remix_of=source)
    failed = make_job(member, status=Status.FAILED, prompt="A lighthouse refused")
    make_job(member, status=Status.COMPLETED, with_files=True, prompt="A red kite")

    export = ask_for_zip(member_client, django_capture_on_commit_callbacks, all="1", q="lighthouse")
    export.refresh_from_db()
    assert export.status == ExportStatus.READY
    assert export.job_ids == [failed.pk, remix.pk, source.pk], "the gallery's order, newest first"
    assert (export.done, export.total, export.skipped) == (3, 3, 1)
    assert export.expires_at == export.finished_at + timedelta(hours=24)

    zf = download(member_client, export)
    assert zf.testzip() is None
    day = timezone.localtime(source.created_at).strftime("%Y-%m-%d_%H%M")
    source_name = f"{day}_a-lighthouse-at-dusk_{source.pk}.mp4"
    remix_name = f"{day}_灯塔-lighthouse-at-night-雨_{remix.pk}.mp4"
    assert zf.namelist() == [remix_name, source_name, "metadata.json", "metadata.csv"]
    assert zf.read(source_name) == Path(source.video.path).read_bytes()
    assert zf.getinfo(source_name).compress_type == zipfile.ZIP_STORED
    assert export.bytes == Path(settings.MEDIA_ROOT, export.file_name).stat().st_size

    records, rows = metadata(zf)
    for job in (failed, remix, source):
        job.refresh_from_db()
    assert [record["id"] for record in records] == [failed.pk, remix.pk, source.pk]
    assert records[2] == {
        **exports.job_record(source),
        "video_file": source_name,
        "thumbnail_file": None,
        "spritesheet_file": None,
        "missing": [],
    }
    assert records[2]["cost"] == "0.40"
    assert records[2]["created"] == source.created_at.isoformat()
    assert records[2]["completed"] == source.completed_at.isoformat()
    assert records[2]["author"] == "mia"
    assert (records[2]["title"], records[2]["note"]) == ("Take 3", "The client's pick")
    assert records[2]["review"] == "approved"
    assert records[1]["remix_of"] == source.pk
    assert records[0]["video_file"] is None
    assert records[0]["missing"] == ["video"]
    assert list(rows[0]) == exports.ZIP_KEYS
    assert rows[1]["prompt"] == "灯塔 lighthouse at night, 雨"
    assert rows[1]["remix_of"] == str(source.pk)
    assert rows[0]["missing"] == "video"
    assert rows[2]["cost"] == "0.40"


def test_thumbnails_and_spritesheets_come_along_when_asked(
    member_client, member, django_capture_on_commit_callbacks
):
    job = finished(member, "A fox in the snow")
    export = ask_for_zip(member_client, django_capture_on_commit_callbacks, all="1", extras="1")
    zf = download(member_client, export)
    stem = f"{timezone.localtime(job.created_at):%Y-%m-%d_%H%M}_a-fox-in-the-snow_{job.pk}"
    assert zf.namelist()[:3] == [
        f"{stem}.mp4",
        f"{stem}_thumbnail.webp",
        f"{stem}_spritesheet.jpg",
    ]
    records, _rows = metadata(zf)
    assert records[0]["spritesheet_file"] == f"{stem}_spritesheet.jpg"


def test_a_selection_by_ids_holds_those_jobs_only(
    client, viewer, member, django_capture_on_commit_callbacks
):
    first, second, _third = (finished(member, f"Shot {n}") for n in range(3))
    client.force_login(viewer)
    export = ask_for_zip(
        client, django_capture_on_commit_callbacks, ids=[str(first.pk), f"{second.pk},x"]
    )
    assert export.job_ids == [second.pk, first.pk]
    assert export.requested_by == viewer
    records, _rows = metadata(download(client, export))
    assert [record["id"] for record in records] == [second.pk, first.pk]


def test_a_missing_file_or_a_deleted_job_is_listed_never_a_crash(
    member_client, member, django_capture_on_commit_callbacks, settings
):
    gone = finished(member, "File gone from disk")
    deleted = finished(member, "Deleted after asking")
    kept = finished(member, "Still here")
    Path(gone.video.path).unlink()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        member_client.post(reverse("videos-zip-exports"), {"all": "1"})
    deleted_pk = deleted.pk
    deleted.delete()
    for callback in callbacks:
        callback()
    export = ZipExport.objects.get()
    assert export.status == ExportStatus.READY
    assert export.skipped == 2
    zf = download(member_client, export)
    assert [name for name in zf.namelist() if name.endswith(".mp4")] == [
        f"{timezone.localtime(kept.created_at):%Y-%m-%d_%H%M}_still-here_{kept.pk}.mp4"
    ]
    records, _rows = metadata(zf)
    by_id = {record["id"]: record for record in records}
    assert by_id[gone.pk]["missing"] == ["video"]
    assert by_id[gone.pk]["prompt"] == "File gone from disk"
    assert by_id[deleted_pk]["missing"] == ["job", "video"]
    assert by_id[deleted_pk]["prompt"] is None


def test_a_file_outside_the_media_directory_is_never_read(
    member_client, member, django_capture_on_commit_callbacks, tmp_path
):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    job = finished(member, "Points elsewhere")
    VideoJob.objects.filter(pk=job.pk).update(video=str(secret))
    finished(member, "A fine one")
    export = ask_for_zip(member_client, django_capture_on_commit_callbacks, all="1")
    zf = download(member_client, export)
    assert all(zf.read(name) != b"not yours" for name in zf.namelist())
    assert json.loads(zf.read("metadata.json"))[1]["missing"] == ["video"]


def test_building_twice_is_safe_and_a_failure_says_why(member, settings, monkeypatch):
    finished(member, "Once")
    export = exports.start_zip_export(member, VideoJob.objects.all())
    exports.build_zip(export.pk)
    export.refresh_from_db()
    path = Path(settings.MEDIA_ROOT) / export.file_name
    built = path.read_bytes()
    exports.build_zip(export.pk)
    assert path.read_bytes() == built
    assert ZipExport.objects.get(pk=export.pk).status == ExportStatus.READY

    def disk_full(*args) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exports.shutil, "copyfileobj", disk_full)
    broken = exports.start_zip_export(member, VideoJob.objects.all())
    exports.build_zip(broken.pk)
    broken.refresh_from_db()
    assert broken.status == ExportStatus.FAILED
    assert "No space left on device" in broken.error
    assert list((Path(settings.MEDIA_ROOT) / "exports").iterdir()) == [path]


def test_entries_are_zip64_so_a_zip_may_pass_4_gb(member, settings):
    finished(member, "Big one day")
    export = exports.start_zip_export(member, VideoJob.objects.all(), include_extras=True)
    exports.build_zip(export.pk)
    export.refresh_from_db()
    path = Path(settings.MEDIA_ROOT) / export.file_name
    with zipfile.ZipFile(path) as zf, path.open("rb") as raw:
        assert zf.testzip() is None
        for info in zf.infolist():
            raw.seek(info.header_offset)
            header = raw.read(30)
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            raw.seek(name_length, io.SEEK_CUR)
            extra = raw.read(extra_length)
            # The ZIP64 extra field (id 1) carries the sizes; the 32-bit fields say "see there".
            assert extra[:2] == b"\x01\x00", info.filename
            assert struct.unpack("<II", header[18:26]) == (0xFFFFFFFF, 0xFFFFFFFF)


def test_too_big_a_selection_is_refused_with_a_message(
    member_client, member, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(exports, "MAX_JOBS", 2)
    for n in range(3):
        finished(member, f"Shot {n}")
    response = member_client.post(reverse("videos-zip-exports"), {"all": "1"}, follow=True)
    assert "A zip holds at most 2 videos" in response.content.decode()
    assert not ZipExport.objects.exists()
    nothing = member_client.post(reverse("videos-zip-exports"), {"all": "1", "q": "nothing"})
    assert nothing.status_code == 302
    assert not ZipExport.objects.exists()


def test_only_the_requester_downloads_it(
    client, member, other_member, admin, viewer, outsider, django_capture_on_commit_callbacks
):
    finished(member, "Mine")
    client.force_login(member)
    export = ask_for_zip(client, django_capture_on_commit_callbacks, all="1")
    urls = [
        reverse("videos-zip-export", args=[export.pk]),
        reverse("videos-zip-export-download", args=[export.pk]),
    ]
    for person in (other_member, admin, viewer):
        client.force_login(person)
        assert [client.get(url).status_code for url in urls] == [404, 404], person
    client.force_login(outsider)
    assert [client.get(url).status_code for url in urls] == [403, 403]
    assert client.post(reverse("videos-zip-exports"), {"all": "1"}).status_code == 403
    client.logout()
    for url in [*urls, reverse("videos-zip-exports")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_list_shows_my_exports_only(
    client, member, other_member, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    finished(member, "Shot")
    client.force_login(other_member)
    theirs = ask_for_zip(client, django_capture_on_commit_callbacks, all="1")
    client.force_login(member)
    mine = ask_for_zip(client, django_capture_on_commit_callbacks, all="1")
    with django_assert_max_num_queries(8):
        page = client.get(reverse("videos-zip-exports")).content.decode()
    assert reverse("videos-zip-export-download", args=[mine.pk]) in page
    assert reverse("videos-zip-export", args=[theirs.pk]) not in page


def test_the_progress_poll_answers_204_until_something_changes_and_stops_when_done(
    member_client, member, settings
):
    finished(member, "Shot")
    export = exports.start_zip_export(member, VideoJob.objects.all())
    url = reverse("videos-zip-export", args=[export.pk])
    htmx = {"HX-Request": "true"}
    page = member_client.get(url).content.decode()
    assert f'hx-get="{url}?v={export.version}"' in page
    assert member_client.get(url, {"v": export.version}, headers=htmx).status_code == 204
    exports.build_zip(export.pk)
    export.refresh_from_db()
    done = member_client.get(url, {"v": "queued-0-0"}, headers=htmx)
    assert done.status_code == 200
    fragment = done.content.decode()
    assert "hx-get" not in fragment, "polling stops once built"
    assert reverse("videos-zip-export-download", args=[export.pk]) in fragment


def test_after_its_time_the_file_is_removed_and_the_link_is_gone(
    member_client, member, django_capture_on_commit_callbacks, settings
):
    finished(member, "Shot")
    export = ask_for_zip(member_client, django_capture_on_commit_callbacks, all="1")
    export.refresh_from_db()
    path = Path(settings.MEDIA_ROOT) / export.file_name
    assert path.exists()
    assert exports.remove_expired_exports() == 0
    ZipExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    url = reverse("videos-zip-export-download", args=[export.pk])
    assert member_client.get(url).status_code == 410, "gone, even before the sweep"
    assert exports.remove_expired_exports() == 1
    assert not path.exists()
    assert ZipExport.objects.get(pk=export.pk).status == ExportStatus.EXPIRED
    response = member_client.get(url)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert exports.remove_expired_exports() == 0


def test_a_build_whose_worker_died_is_given_up_by_the_sweep(member, settings):
    finished(member, "Shot")
    export = exports.start_zip_export(member, VideoJob.objects.all())
    ZipExport.objects.filter(pk=export.pk).update(
        status=ExportStatus.BUILDING,
        file_name=f"exports/{export.pk}.zip",
        updated_at=timezone.now() - timedelta(minutes=11),
    )
    partial = Path(settings.MEDIA_ROOT) / "exports" / f"{export.pk}.zip.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half a zip")
    assert exports.remove_expired_exports() == 1
    assert ZipExport.objects.get(pk=export.pk).status == ExportStatus.FAILED
    assert not partial.exists()


def test_the_sweep_is_scheduled(catalogue):
    from django_q.models import Schedule

    assert Schedule.objects.get(name="videos: remove expired exports").func == (
        "videos.tasks.remove_expired_exports"
    )


def test_the_csv_export_reads_the_same_job_record(member_client, member, monkeypatch):
    make_job(member, prompt="Plain")
    real = exports.job_record
    monkeypatch.setattr(exports, "job_record", lambda job: {**real(job), "prompt": "from record"})
    body = b"".join(member_client.get(reverse("videos-export")).streaming_content).decode()
    assert "from record" in body


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [
        ("A lighthouse at dusk!", "a-lighthouse-at-dusk"),
        ("../../etc/passwd", "etc-passwd"),
        ("C:\\Windows\\system32", "c-windows-system32"),
        ("Café crème — à la plage", "cafe-creme-a-la-plage"),
        ("一只猫在屋顶上睡觉", "一只猫在屋顶上睡觉"),
        ("東京の夜 ネオン", "東京の夜-ネオン"),
        ("🐱🐱🐱", "video"),
        ("", "video"),
        ("word " * 40, ("word-" * 12)[:-1]),
    ],
)
def test_prompt_slugs_are_safe_file_names(prompt, slug):
    assert exports.prompt_slug(prompt) == slug
    assert re.fullmatch(r"[\w-]{1,60}", exports.prompt_slug(prompt))


@pytest.mark.browser
@pytest.mark.worker
def test_member_exports_the_gallery_as_a_zip_and_downloads_it(page, qcluster, member, settings):
    for n in range(3):
        finished(member, f"Harbour shot {n}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto("/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "pw-mia")
    page.click("main button[type=submit]")
    expect(page.locator("#export-zip")).to_be_visible()
    page.check("#export-zip input[name=extras]")
    page.click("#export-zip button[type=submit]")
    expect(page).to_have_url(re.compile(r"/exports/\d+/$"))
    expect(page.locator("#export-progress progress")).to_be_visible()
    # The worker builds it; the page's poll brings the link.
    link = page.locator("#export-download")
    expect(link).to_be_visible(timeout=30_000)
    page.screenshot(path=ARTIFACTS / "zip-export.png")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert re.fullmatch(r"muxweb-videos-\d{4}-\d{2}-\d{2}\.zip", download.suggested_filename)
    with zipfile.ZipFile(download.path()) as zf:
        assert zf.testzip() is None
        assert len([name for name in zf.namelist() if name.endswith(".mp4")]) == 3
        assert len(json.loads(zf.read("metadata.json"))) == 3
    trouble = page.console_messages + page.policy_violations
    assert trouble == [], "\n".join(trouble)
