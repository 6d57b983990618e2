"""Provider faults, injected by the simulator over real HTTP, and what muxweb does about them.

Nothing is lost and nothing is paid twice: a create whose answer never came is looked for at the
provider before it is sent again; every other call retries passing trouble with backoff, waits as
long as Retry-After asks (up to a cap), and gives up with the last error shown on the job.
"""

import io
import ipaddress
import time
from datetime import timedelta
from pathlib import Path

import av
import pytest
import requests
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from tests.conftest import API_KEY, run_until_settled
from tests.factories import finished_job, post_create_form
from videos import downloads, lifecycle, sweep
from videos.models import Status, VideoJob
from videos.probe import InvalidDownload, verify_download
from videos.upstream.client import UpstreamError, VideosClient
from videos.upstream.simulator import Fault, Simulator, parse_faults

pytestmark = pytest.mark.django_db(transaction=True)


def upstream_jobs(simulator: Simulator, prompt: str) -> list[dict]:
    return [video for video in simulator.jobs() if video["prompt"] == prompt]


def make_due(job: VideoJob) -> None:
    """Skip a backoff wait: the code under test decides what happens, not how long we sleep."""
    VideoJob.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())


@pytest.fixture
def quick_reconcile(monkeypatch):
    monkeypatch.setattr(lifecycle, "RECONCILE_SETTLE", 1.0)
    monkeypatch.setattr(lifecycle, "RECONCILE_INTERVAL", 0.3)


# The simulator's faults, on the wire.


@pytest.fixture(scope="module")
def sim():
    simulator = Simulator(api_key="k", render_seconds=0.5, poll_after_ms=100).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def api(sim):
    sim.clear_faults()
    session = requests.Session()
    session.headers["Authorization"] = "Bearer k"
    yield session
    sim.clear_faults()


@pytest.fixture
def finished(sim, api) -> str:
    video_id = api.post(sim.base_url + "/videos", json={"prompt": "faults"}).json()["id"]
    time.sleep(0.6)
    return video_id


def test_simulator_answers_error_statuses_as_a_provider_or_gateway_would(sim, api, finished):
    url = f"{sim.base_url}/videos/{finished}"
    sim.inject("retrieve", "429", retry_after=7)
    limited = api.get(url)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    for status in ("500", "503"):
        sim.inject("retrieve", status)
        assert api.get(url).status_code == int(status)
    sim.inject("retrieve", "502")
    gateway = api.get(url)
    assert gateway.status_code == 502 and gateway.headers["Content-Type"] == "text/html"
    assert api.get(url).status_code == 200, "each fault hits `times` requests, then stops"
    assert [kind for _, kind in sim.fault_log] == ["429", "500", "503", "502"]


def test_simulator_garbles_json_and_reports_odd_case_statuses(sim, api, finished):
    url = f"{sim.base_url}/videos/{finished}"
    sim.inject("retrieve", "garbled")
    with pytest.raises(ValueError):
        api.get(url).json()
    sim.inject("list", "oddcase")
    listing = api.get(sim.base_url + "/videos").json()
    assert "COMPLETED" in {video["status"] for video in listing["data"]}


def test_simulator_hangs_then_drops_a_request_it_carried_out(sim, api):
    sim.inject("create", "hang", seconds=3)
    with pytest.raises(requests.ReadTimeout):
        api.post(sim.base_url + "/videos", json={"prompt": "hung create"}, timeout=0.5)
    assert len(upstream_jobs(sim, "hung create")) == 1, "the create happened; its answer did not"


def test_simulator_refuses_connections_for_a_while_then_serves_again(sim, api):
    sim.inject("*", "refuse", seconds=1)
    with pytest.raises(requests.ConnectionError, match="refused"):
        api.get(sim.base_url + "/videos")
    time.sleep(1.3)
    assert api.get(sim.base_url + "/videos").status_code == 200


def test_simulator_cuts_downloads_sends_html_or_sends_slowly(sim, api, finished):
    url = f"{sim.base_url}/videos/{finished}/content"
    whole = api.get(url).content
    sim.inject("content", "cut", variant="video")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get(url)
    sim.inject("content", "html")
    page = api.get(url)
    assert page.status_code == 200 and page.content.startswith(b"<!DOCTYPE html>")
    sim.inject("content", "slow", rate=len(whole))
    started = time.monotonic()
    assert api.get(url).content == whole
    assert time.monotonic() - started >= 0.8


def test_simulator_redirects_content_to_a_signed_link_that_refuses_the_key(sim, api, finished):
    url = f"{sim.base_url}/videos/{finished}/content"
    whole = api.get(url).content
    sim.inject("content", "redirect")
    first = api.get(url, allow_redirects=False)
    assert first.status_code == 302 and "/files/" in first.headers["Location"]
    # requests drops the Authorization header when the redirect changes host, as it must.
    link = first.headers["Location"]
    assert requests.get(link, timeout=5).content == whole
    keyed = requests.get(link, headers={"Authorization": "Bearer k"}, timeout=5)
    assert keyed.status_code == 400
    assert requests.get(link[:-1] + ("0" if link[-1] != "0" else "1"), timeout=5).status_code == 403


def test_simulator_forgets_a_vanished_job_and_pads_big_videos_validly(sim, api, finished):
    sim.inject("content", "pad", size=5_000_000)
    padded = api.get(f"{sim.base_url}/videos/{finished}/content").content
    with av.open(io.BytesIO(padded)) as container:
        assert container.streams.video[0].codec_context.width == 720
        assert len(padded) > 5_000_000
    sim.inject("retrieve", "vanish")
    assert api.get(f"{sim.base_url}/videos/{finished}").status_code == 404
    assert api.get(f"{sim.base_url}/videos/{finished}").status_code == 404


def test_faults_are_set_per_run_from_text_and_typos_are_refused():
    faults = parse_faults(
        "create:hang:seconds=20; retrieve:503:times=3;*:500:times=always:chance=0.1"
    )
    assert faults[0] == Fault(route="create", kind="hang", seconds=20.0)
    assert (faults[1].kind, faults[1].times) == ("503", 3)
    assert (faults[2].route, faults[2].times, faults[2].chance) == ("*", None, 0.1)
    for typo in ("create:hnag", "creat:503", "retrieve:503:tmes=3", "content:cut:variant=movie"):
        with pytest.raises(ValueError):
            parse_faults(typo)


# muxweb under those faults: creates.


def test_create_timing_out_after_it_was_sent_is_found_by_listing_never_sent_twice(
    member_client, provider, settings, quick_reconcile
):
    settings.MUXWEB_HTTP_TIMEOUT = (2.0, 1.0)
    provider.inject("create", "hang", seconds=5)
    prompt = "A kite over dunes, timed out on create"
    job = post_create_form(member_client, prompt)

    assert job.status == Status.CHECKING
    assert job.upstream_id is None
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "Checking with provider" in page

    job = run_until_settled(job)
    matches = upstream_jobs(provider, prompt)
    assert len(matches) == 1, "exactly one upstream job: the create was never sent again"
    assert job.upstream_id == matches[0]["id"]
    assert job.status == Status.COMPLETED and job.video
    assert job.submit_attempts == 1


def test_create_answered_500_is_sent_again_only_once_the_provider_clearly_lacks_it(
    member_client, provider, quick_reconcile
):
    provider.inject("create", "500")
    prompt = "A paper crane, refused with a 500"
    job = post_create_form(member_client, prompt)
    assert job.status == Status.CHECKING

    lifecycle.reconcile_submit(job.pk)
    job.refresh_from_db()
    assert job.status == Status.CHECKING, "one empty listing is not proof of absence"
    assert job.reconcile_attempts == 1

    job = run_until_settled(job)
    assert job.status == Status.COMPLETED
    assert len(upstream_jobs(provider, prompt)) == 1
    assert job.submit_attempts == 2


def test_two_identical_timed_out_creates_each_claim_their_own_upstream_job(
    member_client, provider, settings, quick_reconcile
):
    settings.MUXWEB_HTTP_TIMEOUT = (2.0, 1.0)
    provider.inject("create", "hang", seconds=5, times=2)
    prompt = "Twins: the same prompt sent twice"
    jobs = [post_create_form(member_client, prompt), post_create_form(member_client, prompt)]
    assert [job.status for job in jobs] == [Status.CHECKING, Status.CHECKING]

    for job in jobs:
        run_until_settled(job)
    upstream = {video["id"] for video in upstream_jobs(provider, prompt)}
    assert len(upstream) == 2
    assert {job.upstream_id for job in jobs} == upstream


def test_create_refused_before_it_was_sent_is_retried(member_client, provider):
    provider.inject("*", "refuse", seconds=1.5)
    prompt = "A lantern festival, connection refused"
    job = post_create_form(member_client, prompt)
    assert job.status == Status.PENDING
    assert job.error_message and job.submit_attempts == 1
    time.sleep(1.6)
    make_due(job)
    job = run_until_settled(job)
    assert job.status == Status.COMPLETED
    assert len(upstream_jobs(provider, prompt)) == 1


def test_rate_limited_create_waits_as_long_as_retry_after_asks_up_to_the_cap(
    member_client, provider
):
    provider.inject("create", "429", retry_after=3)
    job = post_create_form(member_client, "Rain on a tin roof, rate limited")
    assert job.status == Status.PENDING and job.error_code == "rate_limit_exceeded"
    wait = (job.next_poll_at - timezone.now()).total_seconds()
    assert 2 < wait <= 3

    provider.inject("create", "429", retry_after=86_400)
    capped = post_create_form(member_client, "Snow on a tin roof, told to wait a day")
    wait = (capped.next_poll_at - timezone.now()).total_seconds()
    assert lifecycle.MAX_RETRY_AFTER - 5 < wait <= lifecycle.MAX_RETRY_AFTER


def test_create_that_keeps_being_refused_fails_with_the_last_error(member_client, provider):
    provider.inject("create", "503", times=None)
    job = post_create_form(member_client, "A storm that never gets through")
    for _ in range(lifecycle.MAX_SUBMIT_ATTEMPTS - 1):
        make_due(job)
        sweep.poll_due_jobs()
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.submit_attempts == lifecycle.MAX_SUBMIT_ATTEMPTS
    assert "HTTP 503" in job.error_message
    page = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert "HTTP 503" in page
    assert upstream_jobs(provider, job.prompt) == []


# Polls and downloads.


def test_reads_retry_passing_trouble_within_the_call_and_honour_retry_after(provider):
    client = VideosClient(provider.base_url, API_KEY, timeout=(2, 5))
    video_id = client.create(prompt="retried reads", model="sora-2", seconds=4, size="720x1280")[
        "id"
    ]
    provider.inject("retrieve", "503", times=2)
    assert client.retrieve(video_id)[0]["id"] == video_id
    provider.inject("retrieve", "garbled")
    assert client.retrieve(video_id)[0]["id"] == video_id

    provider.inject("retrieve", "429", retry_after=1)
    started = time.monotonic()
    client.retrieve(video_id)
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"

    provider.inject("retrieve", "429", retry_after=600)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as raised:
        client.retrieve(video_id)
    assert time.monotonic() - started < 1, "a wait beyond the cap goes back to the caller"
    assert raised.value.retry_after == 600

    provider.inject("retrieve", "500", times=3)
    with pytest.raises(UpstreamError) as raised:
        client.retrieve(video_id)
    assert raised.value.status == 500, "retries are capped"


def test_job_whose_provider_keeps_failing_ends_failed_with_the_last_error(member_client, provider):
    job = post_create_form(member_client, "Northern lights, provider down")
    provider.inject("retrieve", "500", times=None)
    for _ in range(lifecycle.MAX_POLL_FAILURES):
        make_due(job)
        sweep.poll_due_jobs()
        job.refresh_from_db()
        if job.status == Status.FAILED:
            break
        assert job.is_active and job.error_message, "shown as trouble while it retries"
    assert job.status == Status.FAILED
    assert job.poll_failures == lifecycle.MAX_POLL_FAILURES
    assert "HTTP 500" in job.error_message
    assert "HTTP 500" in member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()


def test_poll_backoff_follows_retry_after_up_to_the_cap(member_client, provider):
    job = post_create_form(member_client, "Fog rolling in, rate limited polls")
    provider.inject("retrieve", "429", retry_after=40)
    make_due(job)
    sweep.poll_due_jobs()
    job.refresh_from_db()
    wait = (job.next_poll_at - timezone.now()).total_seconds()
    assert 38 < wait <= 40
    assert job.error_code == "rate_limit_exceeded"


def test_malformed_json_and_odd_case_statuses_still_reach_completion(member_client, provider):
    provider.inject("retrieve", "oddcase", times=None)
    provider.inject("retrieve", "garbled", times=3)
    job = finished_job(member_client, "A carousel, odd case statuses")
    assert job.status == Status.COMPLETED and job.video
    assert ("retrieve", "oddcase") in provider.fault_log


def test_job_that_vanishes_at_the_provider_ends_as_not_found(member_client, provider):
    job = post_create_form(member_client, "A mirage that vanishes")
    provider.inject("retrieve", "vanish")
    job = run_until_settled(job)
    assert job.status == Status.FAILED and job.error_code == "not_found"


def test_download_cut_off_or_sent_as_html_is_retried_and_never_kept(
    member_client, provider, settings
):
    provider.inject("content", "cut", variant="video")
    provider.inject("content", "html", variant="thumbnail")
    job = post_create_form(member_client, "Fireflies in a jar, bad downloads")
    for _ in range(60):
        sweep.poll_due_jobs()
        job.refresh_from_db()
        if job.status == Status.COMPLETED and job.fetch_attempts >= 1:
            break
        time.sleep(0.2)
    assert job.fetch_error and not job.video and not job.thumbnail, job.fetch_error
    media_dir = Path(settings.MEDIA_ROOT) / "videos" / str(job.pk)
    assert not [p for p in media_dir.iterdir() if p.name.startswith(".")], "no partial file"

    make_due(job)
    job = run_until_settled(job)
    # Each variant is fetched on its own: both failed in the first attempt, both came in the second.
    assert job.assets_fetched_at and job.fetch_attempts == 2
    verify_download(Path(settings.MEDIA_ROOT) / job.video.name, "video", seconds=4, size=job.size)
    assert job.thumbnail.name.endswith(".webp")


def test_redirected_and_slow_downloads_are_followed_without_sending_the_key(
    member_client, provider, settings
):
    # The simulator's signed links point at this machine: allowed on purpose, as for on-premises
    # storage (test_hostile_provider shows the refusal without the setting).
    settings.MUXWEB_REDIRECT_ALLOWED_NETWORKS = [
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    ]
    provider.inject("content", "redirect", times=None)
    provider.inject("content", "slow", variant="spritesheet", rate=100_000)
    job = finished_job(member_client, "Clouds over a city, redirected")
    assert job.assets_fetched_at and job.fetch_attempts == 1
    assert ("content", "redirect") in provider.fault_log
    # The signed link refuses a request carrying the key: success shows it was not sent.
    verify_download(Path(settings.MEDIA_ROOT) / job.video.name, "video", seconds=4, size=job.size)


def test_partial_download_left_by_a_killed_worker_is_removed_on_the_next_attempt(
    member_client, provider, settings
):
    job = finished_job(member_client, "A harbour at dawn, interrupted")
    media_dir = Path(settings.MEDIA_ROOT) / "videos" / str(job.pk)
    leftovers = [media_dir / ".staging.video.dead.download", media_dir / ".x.download.abc.part"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    VideoJob.objects.filter(pk=job.pk).update(assets_fetched_at=None, video="")
    downloads.fetch_assets(job.pk)
    assert not any(path.exists() for path in leftovers)
    job.refresh_from_db()
    assert job.assets_fetched_at and job.video


# What counts as a sound download.


def write_clip(path: Path, *, seconds: float, size: tuple[int, int]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(int(seconds * 24)):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (30, 90, 200)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_verify_download_checks_type_duration_frame_size_and_integrity(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip, seconds=2, size=(320, 240))
    assert verify_download(clip, "video", seconds=2, size="320x240") == "video/mp4"
    assert verify_download(clip, "video", seconds=None, size="") == "video/mp4"
    with pytest.raises(InvalidDownload, match="lasts"):
        verify_download(clip, "video", seconds=8, size="320x240")
    with pytest.raises(InvalidDownload, match="320x240, not 1280x720"):
        verify_download(clip, "video", seconds=2, size="1280x720")

    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(InvalidDownload):
        verify_download(truncated, "video", seconds=2, size="320x240")
    html = tmp_path / "error.mp4"
    html.write_bytes(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>" * 4)
    with pytest.raises(InvalidDownload, match="not a video file"):
        verify_download(html, "video", seconds=2, size="320x240")
    with pytest.raises(InvalidDownload, match="not a thumbnail"):
        verify_download(clip, "thumbnail", seconds=2, size="320x240")

    picture = tmp_path / "thumb.webp"
    Image.new("RGB", (64, 64), "red").save(picture, "WEBP")
    assert verify_download(picture, "thumbnail", seconds=2, size="") == "image/webp"
    cut_picture = tmp_path / "cut.jpg"
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buffer, "JPEG")
    cut_picture.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InvalidDownload, match="does not open"):
        verify_download(cut_picture, "spritesheet", seconds=2, size="")


def test_fetch_gives_up_a_bad_download_when_the_provider_copy_expires(member_client, provider):
    provider.inject("content", "html", variant="video", times=None)
    job = post_create_form(member_client, "An hourglass, always HTML")
    for _ in range(60):
        sweep.poll_due_jobs()
        job.refresh_from_db()
        if job.fetch_attempts >= 1:
            break
        time.sleep(0.2)
    VideoJob.objects.filter(pk=job.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1), next_poll_at=timezone.now()
    )
    job = run_until_settled(job)
    assert job.fetch_given_up and not job.video
    assert "not a video file" in job.fetch_error
