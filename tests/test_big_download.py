"""A 500 MB video is saved with the memory a small one takes: streamed to disk, checked by its
headers and one frame, renamed into place.

The download runs in its own process (`manage.py shell`, as a worker would run the task), which
reports its peak resident memory (VmHWM) at the end; the same is measured for a small video.
"""

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django_q.brokers import get_broker
from django_q.conf import Conf

from tests.conftest import API_KEY, ROOT, wait_for
from videos import lifecycle, services
from videos.models import Status, VideoJob
from videos.probe import verify_download
from videos.upstream.simulator import Simulator

pytestmark = pytest.mark.django_db(transaction=True)

PADDING = 500_000_000
# What a streamed download may add to a worker's peak memory, whatever the file's size.
MAX_GROWTH = 64 * 1024 * 1024


def completed_not_fetched(member, catalogue, provider: Simulator, prompt: str) -> VideoJob:
    """A job the provider finished, polled as completed; its download left to the test."""
    job = services.create_job(
        author=member, spec=catalogue[0], prompt=prompt, seconds=4, size="720x1280"
    )
    job.refresh_from_db()
    wait_for(lambda: provider.job(job.upstream_id)["status"] == "completed", timeout=20)
    Conf.SYNC = False  # the download task goes to a queue no worker reads
    try:
        lifecycle.poll_jobs([job])
    finally:
        Conf.SYNC = True
    get_broker().purge_queue()
    job.refresh_from_db()
    assert job.is_fetching
    return job


def fetch_in_own_process(job: VideoJob, env: dict[str, str]) -> tuple[int, float]:
    """Run the job's download in a fresh process; its peak resident memory in bytes, and the
    seconds it took."""
    code = (
        f"from videos import downloads; downloads.fetch_assets({job.pk}); "
        "print(open('/proc/self/status').read())"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    took = time.monotonic() - started
    peak = next(line for line in result.stdout.splitlines() if line.startswith("VmHWM:"))
    return int(peak.split()[1]) * 1024, took


@pytest.fixture
def big_files_removed(worker_env) -> Iterator[None]:
    yield
    shutil.rmtree(Path(worker_env["MUXWEB_DATA_DIR"]) / "media", ignore_errors=True)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_500_mb_video_is_saved_with_flat_memory(
    member, catalogue, provider, worker_env, settings, big_files_removed
):
    small = completed_not_fetched(member, catalogue, provider, "A pebble, small file")
    big = completed_not_fetched(member, catalogue, provider, "A mountain, 500 MB of it")
    clip = requests.get(
        f"{provider.base_url}/videos/{big.upstream_id}/content",
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    ).content

    small_peak, small_took = fetch_in_own_process(small, worker_env)
    provider.inject("content", "pad", variant="video", size=PADDING)
    big_peak, big_took = fetch_in_own_process(big, worker_env)
    print(
        f"peak memory: small {small_peak / 2**20:.1f} MiB in {small_took:.1f} s, "
        f"500 MB {big_peak / 2**20:.1f} MiB in {big_took:.1f} s"
    )

    assert ("content", "pad") in provider.fault_log
    for job in (small, big):
        job.refresh_from_db()
        assert job.status == Status.COMPLETED and job.assets_fetched_at, job.fetch_error
    video = Path(settings.MEDIA_ROOT) / big.video.name
    assert video.stat().st_size == PADDING + len(clip)
    verify_download(video, "video", seconds=4, size=big.size)
    assert big_peak - small_peak < MAX_GROWTH
