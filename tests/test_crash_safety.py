"""A worker killed with SIGKILL mid-submit, mid-poll and mid-download, then started again.

Each test runs a real `manage.py qcluster`, waits until it is inside the provider call (held
there by a simulator fault), kills its whole process group as the OOM killer would, starts a new
cluster and checks that the job still ends right: one upstream job, one verified set of files,
no partial file left behind. The queue is no help here: the Redis broker loses a task whose
worker died and the ORM broker hands it out again only after `retry` seconds, so recovery comes
from muxweb's own leases: a create's, the sweep's and a download's `Lease` know their holder
(videos.holders), and the restarted cluster, seeing the holder gone, takes the work over at once,
with nothing moved by hand.
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import start_qcluster, stop_qcluster, wait_for
from videos import downloads, holders, queue, services
from videos.models import VARIANTS, Lease, Status, VideoJob
from videos.probe import verify_download
from videos.upstream.simulator import Simulator

pytestmark = pytest.mark.worker


@pytest.fixture
def crash_and_restart(
    qcluster: subprocess.Popen, worker_env: dict[str, str]
) -> Iterator[Callable[[], subprocess.Popen]]:
    """SIGKILL the running cluster (every process of it) and start a fresh one."""
    started: list[subprocess.Popen] = []
    log = Path(worker_env["MUXWEB_DATA_DIR"]) / "qcluster-restarted.log"

    def crash_and_restart() -> subprocess.Popen:
        os.killpg(qcluster.pid, signal.SIGKILL)
        qcluster.wait()
        started.append(start_qcluster(worker_env, log))
        return started[-1]

    yield crash_and_restart
    for process in started:
        stop_qcluster(process)
    if started and os.environ.get("MUXWEB_SHOW_WORKER_LOG"):
        print(log.read_text())


# Work a killed process held is taken over this soon after the restart.
RESUMED_WITHIN = 30


def new_job(member, catalogue, prompt: str) -> VideoJob:
    # Submitted by the cluster: the task goes through the broker once the row is committed.
    return services.create_job(
        author=member, spec=catalogue[0], prompt=prompt, seconds=4, size="720x1280"
    )


def upstream_jobs(provider: Simulator, prompt: str) -> list[dict]:
    return [video for video in provider.jobs() if video["prompt"] == prompt]


def partial_files(media_root: Path) -> list[Path]:
    return [path for path in media_root.rglob("*") if path.name.startswith(".")]


def wait_until_saved(job: VideoJob, cluster: subprocess.Popen, timeout: float = 90) -> VideoJob:
    def saved() -> bool:
        assert cluster.poll() is None, "the restarted cluster died"
        job.refresh_from_db()
        return job.status == Status.FAILED or job.assets_fetched_at is not None

    wait_for(saved, timeout=timeout, every=0.3)
    assert job.status == Status.COMPLETED, (job.error_code, job.error_message)
    return job


def assert_one_verified_set_of_files(job: VideoJob, media_root: Path) -> None:
    media_dir = downloads.job_media_dir(job)
    assert sorted(path.name for path in media_dir.iterdir()) == sorted(
        Path(job.asset(variant).name).name for variant in VARIANTS
    )
    for variant in VARIANTS:
        verify_download(media_root / job.asset(variant).name, variant, seconds=4, size=job.size)
    assert partial_files(media_root) == []


def test_worker_killed_inside_a_create_leaves_the_job_checked_for_never_sent_twice(
    qcluster, crash_and_restart, member, catalogue, provider, client, settings
):
    provider.inject("create", "hang", seconds=20)
    prompt = "A glacier calving, the worker killed mid-create"
    job = new_job(member, catalogue, prompt)
    # The provider has made the job; its answer is what the worker is waiting for.
    wait_for(lambda: upstream_jobs(provider, prompt), timeout=60)
    job.refresh_from_db()
    assert job.status == Status.SUBMITTING and job.upstream_id is None

    job.refresh_from_db()
    assert job.next_poll_at > timezone.now() + queue.TASK_LEASE / 2, "claimed for 6 minutes"

    cluster = crash_and_restart()
    restarted = time.monotonic()

    def checking() -> bool:
        job.refresh_from_db()
        return job.status == Status.CHECKING

    # Nothing is made to run out: the create's lease names the dead worker.
    wait_for(checking, timeout=RESUMED_WITHIN)
    assert time.monotonic() - restarted < RESUMED_WITHIN
    client.force_login(member)
    page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Checking with provider" in page

    job = wait_until_saved(job, cluster)
    matches = upstream_jobs(provider, prompt)
    assert len(matches) == 1, "the create was looked for, never sent again"
    assert job.upstream_id == matches[0]["id"]
    assert job.submit_attempts == 1
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)


def test_worker_killed_inside_a_poll_leaves_no_sweep_lock_behind_for_good(
    qcluster, crash_and_restart, member, catalogue, provider, settings
):
    provider.inject("retrieve", "hang", seconds=30)
    prompt = "Swallows over a barn, the worker killed mid-poll"
    job = new_job(member, catalogue, prompt)
    wait_for(lambda: ("retrieve", "hang") in provider.fault_log, timeout=60)
    assert Lease.is_held(queue.SWEEP_LEASE), "the sweep holding its lock is what dies here"

    holder = Lease.objects.get(name=queue.SWEEP_LEASE).holder
    assert holder and not holders.is_gone(holder)

    cluster = crash_and_restart()
    # The sweep's holder died with the cluster (SIGKILL takes a moment to land everywhere).
    wait_for(lambda: holders.is_gone(holder), timeout=5, every=0.05)
    # No lease is made to run out: the restarted cluster frees the dead sweep's lock by itself.
    job = wait_until_saved(job, cluster, timeout=RESUMED_WITHIN)
    assert [video["id"] for video in upstream_jobs(provider, prompt)] == [job.upstream_id]
    assert job.submit_attempts == 1 and job.fetch_attempts == 1
    assert_one_verified_set_of_files(job, settings.MEDIA_ROOT)


def test_worker_killed_inside_a_download_is_resumed_within_seconds_with_one_set_of_files(
    qcluster, crash_and_restart, member, catalogue, provider, settings
):
    # About 14 seconds for the video: long enough to be caught in the middle.
    provider.inject("content", "slow", variant="video", rate=20_000)
    prompt = "A paper boat in a gutter, the worker killed mid-download"
    job = new_job(member, catalogue, prompt)
    media_root = Path(settings.MEDIA_ROOT)

    def video_under_way() -> list[Path]:
        # The client reads 1 MB at a time, so this small video's partial file stays empty until
        # its last byte: it is its existence that shows the download is under way.
        return [path for path in partial_files(media_root) if ".staging.video." in path.name]

    leftovers = wait_for(video_under_way, timeout=60, every=0.1)
    job.refresh_from_db()
    assert job.status == Status.COMPLETED and job.fetch_attempts == 1
    assert not job.assets_fetched_at and not job.video

    lock = Lease.objects.get(name=f"{holders.FETCH_PREFIX}{job.pk}")
    assert lock.expires_at - timezone.now() <= holders.STALE_AFTER, "a heartbeat, not 4 minutes"

    cluster = crash_and_restart()
    restarted = time.monotonic()
    assert all(path.exists() for path in leftovers), "the dead worker cleaned nothing up"
    # Nothing is made to run out: the job is due minutes from now, its lock is the dead worker's.
    job.refresh_from_db()
    assert job.next_poll_at > timezone.now() + queue.TASK_LEASE / 2

    job = wait_until_saved(job, cluster, timeout=RESUMED_WITHIN)
    assert time.monotonic() - restarted < RESUMED_WITHIN
    assert not any(path.exists() for path in leftovers), "the next attempt removed the leftover"
    assert job.fetch_attempts == 2, "one attempt killed, one that saved the files"
    assert job.fetch_error == ""
    assert [video["id"] for video in upstream_jobs(provider, prompt)] == [job.upstream_id]
    assert_one_verified_set_of_files(job, media_root)
