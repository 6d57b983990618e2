"""Memory of building a zip export of 10 and of 1,000 videos: it should not grow with the count.

    .venv/bin/python benchmarks/zip_export.py [--sizes 10,1000] [--kb 200] [--extras] [--json]
    .venv/bin/python benchmarks/zip_export.py --database-url postgres://postgres@127.0.0.1:5432/muxweb_zbench

It makes a throwaway data directory, removed after (and, with --database-url, the named
PostgreSQL database, which must not exist yet and is dropped after), migrates, and makes the
largest count of completed jobs, each with a fake video of `--kb` KB (and a thumbnail and a
spritesheet) on disk. For each count it asks for a zip of that many of the newest jobs and builds
it in a forked process, as a worker would, measuring there the peak of Python's allocations while
building (tracemalloc) and how much the process's peak resident memory grew (ru_maxrss). It
prints both for each count, with the ratio of the largest count's to the smallest's. Not part of
the test suite; its numbers are not asserted.
"""

import argparse
import json
import os
import resource
import time
import tracemalloc
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from throwaway import throwaway_database  # a sibling module

PROMPTS = ["A lighthouse at dusk", "一只猫在屋顶上睡觉", "Neon alley in the rain, 夜"]


def make_jobs(count: int, kb: int) -> None:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.utils import timezone

    from videos.models import Status, VideoJob

    author = User.objects.create_user("bench")
    now = timezone.now()
    jobs = VideoJob.objects.bulk_create(
        VideoJob(
            author=author,
            model="sora-2",
            prompt=f"{PROMPTS[n % len(PROMPTS)]} #{n}",
            seconds=4,
            size="1280x720",
            price_per_second=Decimal("0.10"),
            status=Status.COMPLETED,
            progress=100,
            upstream_id=f"video_bench_{n}",
            created_at=now - timedelta(minutes=n),
            completed_at=now - timedelta(minutes=n),
            assets_fetched_at=now,
        )
        for n in range(count)
    )
    video = b"\x00\x00\x00\x18ftypmp42" + os.urandom(kb * 1024 - 12)
    picture = os.urandom(16 * 1024)
    for job in jobs:
        folder = Path(settings.MEDIA_ROOT) / "videos" / str(job.pk)
        folder.mkdir(parents=True)
        (folder / "video.mp4").write_bytes(video)
        (folder / "thumbnail.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBP" + picture)
        (folder / "spritesheet.jpg").write_bytes(b"\xff\xd8\xff" + picture)
        job.video.name = f"videos/{job.pk}/video.mp4"
        job.thumbnail.name = f"videos/{job.pk}/thumbnail.webp"
        job.spritesheet.name = f"videos/{job.pk}/spritesheet.jpg"
    VideoJob.objects.bulk_update(jobs, ["video", "thumbnail", "spritesheet"], batch_size=500)


def build_in_child(export_id: int) -> dict:
    """Build the export in a forked process (a worker's), and what that cost it."""
    from django.db import connections

    connections.close_all()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: build, report, leave
        os.close(read_end)
        from videos import exports

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        started = time.perf_counter()
        exports.build_zip(export_id)
        seconds = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = {"seconds": seconds, "traced_peak": peak, "maxrss_growth_kb": after - before}
        with os.fdopen(write_end, "w") as out:
            json.dump(report, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        report = json.loads(answer.read())
    os.waitpid(pid, 0)
    return report


def run(options: argparse.Namespace) -> list[dict]:
    from django.contrib.auth.models import User

    from videos import exports
    from videos.models import ExportStatus, VideoJob, ZipExport

    sizes = sorted(int(size) for size in options.sizes.split(","))
    make_jobs(sizes[-1], options.kb)
    author = User.objects.get(username="bench")
    results = []
    for size in sizes:
        newest = VideoJob.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
        jobs = VideoJob.objects.filter(pk__in=list(newest[:size]))
        export = exports.start_zip_export(author, jobs, include_extras=options.extras)
        report = build_in_child(export.pk)
        export = ZipExport.objects.get(pk=export.pk)
        assert export.status == ExportStatus.READY, export.error
        results.append({"videos": size, "zip_bytes": export.bytes, **report})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,1000", help="counts of videos, comma-separated")
    parser.add_argument("--kb", type=int, default=200, help="size of each fake video")
    parser.add_argument("--extras", action="store_true", help="thumbnails and spritesheets too")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    with throwaway_database(options.database_url):
        results = run(options)
    if options.json:
        print(json.dumps(results, indent=2))
        return
    smallest = results[0]
    for result in results:
        print(
            f"zip of {result['videos']:>5,} videos ({result['zip_bytes'] / 2**20:7.1f} MB) built "
            f"in {result['seconds']:5.2f} s: tracemalloc peak "
            f"{result['traced_peak'] / 2**20:5.2f} MB "
            f"(x{result['traced_peak'] / smallest['traced_peak']:.2f}), "
            f"ru_maxrss grew {result['maxrss_growth_kb'] / 1024:5.1f} MB"
        )


if __name__ == "__main__":
    main()
