"""Exports: one record per job for every export (the gallery's CSV, a zip's metadata), and zips of
videos built in the background.

A zip is written straight to disk, one chunk of one file at a time, so building it takes the
same memory for ten videos as for thousands; its entries are ZIP64 so that it may pass 4 GB.
"""

import csv
import json
import logging
import os
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django.utils.translation import gettext
from django_q.tasks import async_task

from muxweb import datadir
from muxweb.text import spreadsheet_cell
from videos import media
from videos.models import ExportStatus, VideoJob, ZipExport

log = logging.getLogger(__name__)

# The keys of a job's record, in this order: the same English words in every language, so that
# scripts built on them keep working.
RECORD_KEYS = [
    "id",
    "created",
    "completed",
    "author",
    "model",
    "seconds",
    "size",
    "status",
    "progress",
    "cost",
    "error_code",
    "error_message",
    "prompt",
    "title",
    "note",
    "review",
    "upstream_id",
    "remix_of",
]


def job_record(job: VideoJob) -> dict:
    """What every export says about a job: JSON-ready values (numbers, text, None for nothing),
    the cost as a decimal string, times in ISO 8601, the author by username, the remix's source
    by id. Select the author with the job: this reads it."""
    return {
        "id": job.pk,
        "created": job.created_at.isoformat(),
        "completed": job.completed_at.isoformat() if job.completed_at else None,
        "author": job.author.get_username() if job.author else None,
        "model": job.model,
        "seconds": job.seconds,
        "size": job.size,
        "status": job.status,
        "progress": job.display_progress,
        "cost": str(job.cost) if job.cost is not None else None,
        "error_code": job.error_code,
        "error_message": job.display_error,
        "prompt": job.prompt,
        "title": job.title,
        "note": job.note,
        "review": job.review_state,
        "upstream_id": job.upstream_id,
        "remix_of": job.remix_of_id,
    }


# What a zip's metadata adds to each record: the names of the job's files in the zip, and what
# of them it does not hold (the video, the thumbnail, the spritesheet, or the whole job if it was
# deleted after the export was asked for).
ZIP_KEYS = [*RECORD_KEYS, "video_file", "thumbnail_file", "spritesheet_file", "missing"]
EXTRAS = ("thumbnail", "spritesheet")
# The most jobs one zip may hold.
MAX_JOBS = 5000
# Jobs read from the database at a time while building.
BATCH = 25
# Bytes copied at a time: the whole of what building holds in memory, besides zipfile's list of
# the entries it has written.
COPY_CHUNK = 1024 * 1024
# Characters of the metadata copied at a time: a character of a prompt takes up to four bytes
# in Python's memory, then its UTF-8 too.
TEXT_CHUNK = 64 * 1024
# Progress is saved after this many jobs, or this many seconds, whichever comes first.
PROGRESS_EVERY_JOBS = 25
PROGRESS_EVERY_SECONDS = 1.0
# A build that has not reported for this long has stopped (its worker died): the sweep fails it.
BUILD_STALE_AFTER = timedelta(minutes=10)
# A queued export no worker has started within this long is given up.
QUEUED_GIVEN_UP_AFTER = timedelta(hours=24)
# Well above the cluster's timeout, which a big zip would overrun. A second delivery of the task
# while this one still runs finds the export claimed and does nothing.
BUILD_TIMEOUT = 6 * 3600
SLUG_LENGTH = 60
EXPORTS_DIR = "exports"


class ExportRefused(Exception):
    """The selection cannot be exported: the message says why, for the person who asked."""


def start_zip_export(actor, jobs: QuerySet[VideoJob], *, include_extras: bool = False) -> ZipExport:
    """Ask for a zip of `jobs` (the gallery's filters or a selection), in the gallery's order:
    the ids are fixed now and the zip is built in the background."""
    ordered = jobs.order_by("-created_at", "-id")
    job_ids = list(ordered.values_list("pk", flat=True)[: MAX_JOBS + 1])
    if len(job_ids) > MAX_JOBS:
        raise ExportRefused(
            gettext("A zip holds at most %(max)s videos: narrow the filters or select fewer.")
            % {"max": f"{MAX_JOBS:,}"}
        )
    if not ordered.exclude(video="").exists():
        raise ExportRefused(gettext("None of these jobs has a saved video to export."))
    export = ZipExport.objects.create(
        requested_by=actor,
        job_ids=job_ids,
        total=len(job_ids),
        include_extras=include_extras,
        time_zone=timezone.get_current_timezone_name(),
    )
    transaction.on_commit(
        lambda: async_task("videos.tasks.build_zip", export.pk, timeout=BUILD_TIMEOUT)
    )
    return export


def build_zip(export_id: int) -> None:
    """Build the zip of an export asked for; nothing if another run has it already (tasks may be
    delivered twice). Any failure marks the export failed with a message and leaves no file."""
    claimed = ZipExport.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.BUILDING,
        file_name=f"{EXPORTS_DIR}/{export_id}.zip",
        done=0,
        skipped=0,
        updated_at=timezone.now(),
    )
    if not claimed:
        return
    export = ZipExport.objects.get(pk=export_id)
    target = Path(settings.MEDIA_ROOT) / export.file_name
    partial = target.with_name(target.name + ".part")
    try:
        datadir.make_media_dir(target.parent, Path(settings.MEDIA_ROOT), settings.MEDIA_GROUP_ID)
        if not _write_zip(export, partial):
            log.info("zip export %s: no longer building, stopped", export_id)
            partial.unlink(missing_ok=True)
            return
        datadir.publish_media_file(partial, settings.MEDIA_GROUP_ID)
        # Whole or not at all: the download never sees a zip being written.
        partial.replace(target)
    except Exception as exc:
        log.exception("zip export %s failed", export_id)
        partial.unlink(missing_ok=True)
        ZipExport.objects.filter(pk=export_id, status=ExportStatus.BUILDING).update(
            status=ExportStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:500],
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        return
    finished = timezone.now()
    ready = ZipExport.objects.filter(pk=export_id, status=ExportStatus.BUILDING).update(
        status=ExportStatus.READY,
        done=export.total,
        skipped=export.skipped,
        bytes=target.stat().st_size,
        finished_at=finished,
        expires_at=finished + settings.ZIP_EXPORT_KEPT_FOR,
        updated_at=finished,
    )
    if not ready:
        target.unlink(missing_ok=True)


def _write_zip(export: ZipExport, path: Path) -> bool:
    """Write the export's zip at `path`, saving its progress as it goes; False if the export
    stopped being built meanwhile (the sweep gave up on it)."""
    zone = _zone(export.time_zone)
    variants = ("video", *EXTRAS) if export.include_extras else ("video",)
    progress = _Progress(export)
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", newline="", dir=path.parent) as json_file,
        tempfile.TemporaryFile("w+", encoding="utf-8", newline="", dir=path.parent) as csv_file,
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
    ):
        writer = csv.writer(csv_file)
        # The byte order mark tells spreadsheets the file is UTF-8.
        csv_file.write("\ufeff")
        writer.writerow(ZIP_KEYS)
        json_file.write("[")
        for index, (job_id, job) in enumerate(_jobs_in_order(export.job_ids)):
            entry = _add_job(zf, job, variants, zone) if job else _deleted(job_id, variants)
            if entry["video_file"] is None:
                export.skipped += 1
            json_file.write(",\n" if index else "\n")
            json.dump(entry, json_file, ensure_ascii=False)
            writer.writerow([_csv_cell(entry[key]) for key in ZIP_KEYS])
            if not progress.advance(index + 1):
                return False
        json_file.write("\n]\n")
        _add_text(zf, "metadata.json", json_file)
        _add_text(zf, "metadata.csv", csv_file)
    return True


class _Progress:
    """Saves `done` every few jobs or every second, not after every file; says whether the
    export is still being built."""

    def __init__(self, export: ZipExport) -> None:
        self.export = export
        self.saved_at = timezone.now()
        self.saved_done = 0

    def advance(self, done: int) -> bool:
        now = timezone.now()
        due = (now - self.saved_at).total_seconds() >= PROGRESS_EVERY_SECONDS
        if not due and done - self.saved_done < PROGRESS_EVERY_JOBS:
            return True
        self.saved_at, self.saved_done = now, done
        return bool(
            ZipExport.objects.filter(pk=self.export.pk, status=ExportStatus.BUILDING).update(
                done=done, skipped=self.export.skipped, updated_at=now
            )
        )


def _zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name) if name else timezone.get_default_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.get_default_timezone()


def _jobs_in_order(job_ids: list[int]) -> Iterator[tuple[int, VideoJob | None]]:
    """Each id of the export with its job, or None for a job deleted since: a few at a time, in
    the order the ids were fixed (the gallery's)."""
    for start in range(0, len(job_ids), BATCH):
        batch = job_ids[start : start + BATCH]
        found = {
            job.pk: job
            for job in VideoJob.objects.filter(pk__in=batch)
            .select_related("author")
            .iterator(chunk_size=BATCH)
        }
        for job_id in batch:
            yield job_id, found.pop(job_id, None)


def _add_job(zf: zipfile.ZipFile, job: VideoJob, variants: tuple, zone) -> dict:
    """Put the job's files in the zip and return its metadata entry. A file that is not saved or
    cannot be read is left out and named under "missing"; no video, no other file either."""
    entry = {**job_record(job), **{f"{variant}_file": None for variant in ("video", *EXTRAS)}}
    missing = []
    for variant in variants:
        if variant != "video" and entry["video_file"] is None:
            missing.append(variant)
            continue
        field = job.asset(variant)
        name = entry_name(job, variant, Path(field.name).suffix, zone) if field else ""
        if field and _add_file(zf, field, name, job.created_at.astimezone(zone)):
            entry[f"{variant}_file"] = name
        else:
            missing.append(variant)
    entry["missing"] = missing
    return entry


def _deleted(job_id: int, variants: tuple) -> dict:
    entry = dict.fromkeys([*RECORD_KEYS, "video_file", "thumbnail_file", "spritesheet_file"])
    return {**entry, "id": job_id, "missing": ["job", *variants]}


def _add_file(zf: zipfile.ZipFile, field: FieldFile, name: str, when: datetime) -> bool:
    """Copy a job's file into the zip in chunks, stored as it is (videos and pictures are
    compressed already); False, and nothing written, if it cannot be opened or lies outside
    the media directory."""
    try:
        source = _open_media_file(field.path)
    except (OSError, SuspiciousFileOperation) as exc:
        log.warning("zip export: leaving out %s (%s)", field.name, exc)
        return False
    with source:
        info = zipfile.ZipInfo(name, date_time=_zip_time(when))
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        # ZIP64 from the start: the size is known only once written, and may pass 4 GB.
        with zf.open(info, "w", force_zip64=True) as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)
    return True


def _open_media_file(path: str) -> BinaryIO:
    """The regular file at `path`, opened, if it (and any link on the way) lies in the media
    directory. As media.media_path, in os.path: pathlib interns every part of every path, and
    thousands of job folders would grow the interpreter's table of them."""
    root = os.path.realpath(settings.MEDIA_ROOT)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise SuspiciousFileOperation(f"{path} is outside MEDIA_ROOT")
    source = open(real, "rb")  # noqa: SIM115 (the caller closes it)
    if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
        source.close()
        raise FileNotFoundError(f"{path} is not a regular file")
    return source


def _add_text(zf: zipfile.ZipFile, name: str, text_file) -> None:
    text_file.seek(0)
    info = zipfile.ZipInfo(name, date_time=_zip_time(timezone.localtime()))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as target:
        while chunk := text_file.read(TEXT_CHUNK):
            target.write(chunk.encode())


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    # Zip's clock starts in 1980.
    return max(when.timetuple()[:6], (1980, 1, 1, 0, 0, 0))


def _csv_cell(value: object) -> str:
    if isinstance(value, list):
        value = " ".join(value)
    return spreadsheet_cell(value)


VARIANT_SUFFIXES = {"video": ".mp4", "thumbnail": ".webp", "spritesheet": ".jpg"}


def entry_name(job: VideoJob, variant: str, suffix: str, zone) -> str:
    """A file's name in the zip: "2025-06-01_0930_a-lighthouse-at-dusk_42.mp4", with
    "_thumbnail"/"_spritesheet" before the extension for those. Unique by the job's id, with no
    folder and nothing but letters, digits, "-" and "_" before the extension."""
    created = job.created_at.astimezone(zone).strftime("%Y-%m-%d_%H%M")
    tail = "" if variant == "video" else f"_{variant}"
    suffix = suffix.lower() if suffix.lower() in media.CONTENT_TYPES else ""
    return (
        f"{created}_{prompt_slug(job.prompt)}_{job.pk}{tail}{suffix or VARIANT_SUFFIXES[variant]}"
    )


def prompt_slug(prompt: str) -> str:
    """The prompt's start as a file name's part: ASCII letters and digits (accents dropped) and
    Chinese, Japanese and Korean characters, the rest "-"; at most SLUG_LENGTH characters."""
    parts = []
    for char in unicodedata.normalize("NFKC", prompt):
        if char.isascii():
            parts.append(char.lower() if char.isalnum() else "-")
        elif _is_cjk(char):
            parts.append(char)
        else:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            parts.append(plain.lower() if plain.isalnum() else "-")
        if len(parts) >= SLUG_LENGTH * 2:
            break
    slug = "-".join(filter(None, "".join(parts).split("-")))
    return slug[:SLUG_LENGTH].strip("-") or "video"


# Unicode blocks of CJK ideographs, kana and hangul.
_CJK_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x2FA1F),  # CJK Extensions B onwards
)


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def remove_expired_exports() -> int:
    """Remove the files of the exports whose time is up, and give up on builds that stopped;
    returns how many exports it closed. Safe to run at any time, in several places at once."""
    now = timezone.now()
    closed = 0
    for export in ZipExport.objects.filter(status=ExportStatus.READY, expires_at__lte=now):
        _remove_files(export)
        closed += ZipExport.objects.filter(pk=export.pk, status=ExportStatus.READY).update(
            status=ExportStatus.EXPIRED, updated_at=now
        )
    stopped = ZipExport.objects.filter(
        status=ExportStatus.BUILDING,
        updated_at__lt=now - BUILD_STALE_AFTER,
    ) | ZipExport.objects.filter(
        status=ExportStatus.QUEUED,
        updated_at__lt=now - QUEUED_GIVEN_UP_AFTER,
    )
    for export in stopped:
        closed += ZipExport.objects.filter(pk=export.pk, status=export.status).update(
            status=ExportStatus.FAILED,
            error="stopped: no word from its worker",
            finished_at=now,
            updated_at=now,
        )
        _remove_files(export)
    return closed


def _remove_files(export: ZipExport) -> None:
    if not export.file_name:
        return
    target = Path(settings.MEDIA_ROOT) / export.file_name
    target.unlink(missing_ok=True)
    target.with_name(target.name + ".part").unlink(missing_ok=True)
