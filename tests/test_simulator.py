"""The simulator speaks the whole upstream contract over real HTTP, down to playable MP4s.

It announces finished jobs with signed Standard Webhooks events, caught here by a small receiver.
"""

import base64
import hashlib
import hmac
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import pytest
import requests
from PIL import Image, ImageChops, ImageStat

from tests.conftest import wait_for
from videos.upstream.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
KEY = "simulator-test-key"
RENDER_SECONDS = 1.5
QUICK_RENDER_SECONDS = 0.2
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"simulator-test-webhook-signing-key").decode()
# Several ticks of the simulator's ticker: long enough for a duplicate event to show up.
SETTLE_SECONDS = 0.3


class ApiSession(requests.Session):
    """A session that sends the simulator's key and takes paths relative to its base URL."""

    def __init__(self, base_url: str, key: str = KEY) -> None:
        super().__init__()
        self.base_url = base_url
        self.headers["Authorization"] = f"Bearer {key}"

    def request(self, method: str, path: str, *args, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.base_url + path, *args, **kwargs)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("simulator-media")


@pytest.fixture(scope="module")
def sim(media_dir) -> Iterator[Simulator]:
    simulator = Simulator(
        api_key=KEY, render_seconds=RENDER_SECONDS, poll_after_ms=250, media_dir=media_dir
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def _default_switches(sim) -> Iterator[None]:
    yield
    sim.dialect = "openai"
    sim.render_seconds = RENDER_SECONDS
    sim.offered_variants = ("video", "thumbnail", "spritesheet")


@pytest.fixture(scope="module")
def api(sim) -> Iterator[ApiSession]:
    with ApiSession(sim.base_url) as session:
        yield session


def create(api: ApiSession, **fields) -> dict:
    response = api.post("/videos", json={"prompt": "A quiet harbour", **fields})
    assert response.status_code == 200, response.text
    return response.json()


def wait_until_settled(api: ApiSession, video_id: str, timeout: float = 10) -> dict:
    def settled() -> dict | None:
        video = api.get(f"/videos/{video_id}").json()
        return video if video["status"] in ("completed", "failed") else None

    return wait_for(settled, timeout=timeout, every=0.05)


def quickly_completed(api: ApiSession, sim: Simulator, **fields) -> dict:
    sim.render_seconds = QUICK_RENDER_SECONDS
    try:
        video = create(api, **fields)
    finally:
        sim.render_seconds = RENDER_SECONDS
    return wait_until_settled(api, video["id"])


@pytest.fixture(scope="module")
def finished(api, sim) -> dict[str, dict]:
    """Completed jobs shared by the content tests: two landscape prompts and a longer portrait."""
    return {
        "lighthouse": quickly_completed(
            api, sim, prompt="A lighthouse at dusk, waves crashing", size="1280x720"
        ),
        "boats": quickly_completed(
            api, sim, prompt="Paper boats racing down a gutter", size="1280x720"
        ),
        "portrait": quickly_completed(
            api, sim, prompt="A tall waterfall", size="720x1280", seconds="8"
        ),
    }


def png(width: int, height: int, colour: str = "red", image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format=image_format)
    return buffer.getvalue()


def assert_error(response: requests.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param
    return error


# Authentication and routing


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-key", f"Basic {KEY}", "Bearer "], ids=str
)
def test_requests_without_the_right_key_get_a_401_envelope(sim, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{sim.base_url}/videos", headers=headers, timeout=5)
    error = assert_error(response, 401)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert "wrong-key" not in response.text


def test_unknown_paths_and_videos_are_404_and_wrong_methods_405(api):
    assert assert_error(api.get("/models"), 404)["code"] == "not_found"
    assert assert_error(api.get("/videos/video_nope"), 404)["code"] == "video_not_found"
    assert_error(api.delete("/videos/video_nope"), 404)
    assert_error(api.get("/videos/video_nope/content"), 404)
    wrong = api.put("/videos")
    assert assert_error(wrong, 405)["code"] == "method_not_allowed"
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "POST"}


# Create


def test_create_json_answers_a_queued_video_with_every_contract_field(api, sim):
    video = create(api, prompt="A calico cat playing a piano")
    assert set(video) == {
        "id", "object", "model", "prompt", "status", "progress", "created_at", "completed_at",
        "expires_at", "seconds", "size", "remixed_from_video_id", "error",
    }  # fmt: skip
    assert video["id"].startswith("video_")
    assert video["object"] == "video"
    assert (video["model"], video["seconds"], video["size"]) == ("sora-2", "4", "720x1280")
    assert (video["status"], video["progress"]) == ("queued", 0)
    assert isinstance(video["created_at"], int)
    assert video["completed_at"] is None and video["expires_at"] is None
    assert video["remixed_from_video_id"] is None and video["error"] is None
    assert sim.job(video["id"])["prompt"] == "A calico cat playing a piano"


def test_create_accepts_every_catalogue_value_and_seconds_as_a_number(api):
    video = create(api, model="sora-2-pro", size="1792x1024", seconds=12)
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2-pro", "1792x1024", "12")
    assert create(api, seconds=8.0)["seconds"] == "8"
    assert create(api, prompt="x" * 32_000)["status"] == "queued"


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"model": "sora-3"}, "model", "invalid_value"),
        ({"model": "sora-2", "size": "1792x1024"}, "size", "invalid_value"),
        ({"size": "640x480"}, "size", "invalid_value"),
        ({"seconds": "5"}, "seconds", "invalid_value"),
        ({"seconds": 7}, "seconds", "invalid_value"),
        ({"seconds": True}, "seconds", "invalid_type"),
        ({"prompt": ""}, "prompt", "invalid_value"),
        ({"prompt": "   "}, "prompt", "invalid_value"),
        ({"prompt": "x" * 32_001}, "prompt", "string_above_max_length"),
        ({"prompt": None}, "prompt", "missing_required_parameter"),
        ({"prompt": 42}, "prompt", "invalid_type"),
        ({"n": 2}, "n", "unknown_parameter"),
        ({"input_reference": {}}, "input_reference", "invalid_value"),
        ({"input_reference": {"image_url": "a", "file_id": "b"}}, "input_reference", None),
        ({"input_reference": "https://example.com/a.png"}, "input_reference", None),
    ],
    ids=lambda value: str(value)[:40],
)
def test_invalid_create_fields_are_400_naming_the_param(api, fields, param, code):
    before = len(api.get("/videos", params={"limit": 100}).json()["data"])
    response = api.post("/videos", json={"prompt": "A quiet harbour", **fields})
    error = assert_error(response, 400, param)
    if code:
        assert error["code"] == code
    assert len(api.get("/videos", params={"limit": 100}).json()["data"]) == before


def test_create_rejects_bodies_that_are_not_a_json_object(api):
    assert_error(
        api.post("/videos", data=b"{nope", headers={"Content-Type": "application/json"}), 400
    )
    assert_error(api.post("/videos", json=["A quiet harbour"]), 400)


@pytest.mark.parametrize(
    "reference", [{"image_url": "data:image/png;base64,AAAA"}, {"file_id": "f"}]
)
def test_json_input_reference_by_url_or_file_id_is_accepted(api, reference):
    assert create(api, input_reference=reference)["status"] == "queued"


def test_create_multipart_with_a_reference_image_of_the_requested_size(api, sim):
    response = api.post(
        "/videos",
        data={
            "prompt": "Red room, multipart",
            "model": "sora-2",
            "seconds": "4",
            "size": "1280x720",
        },
        files={"input_reference": ("ref.png", png(1280, 720), "image/png")},
    )
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["prompt"], video["size"], video["seconds"]) == (
        "Red room, multipart",
        "1280x720",
        "4",
    )
    assert sim.job(video["id"])["status"] == "queued"


def test_reference_image_becomes_the_picture(api, sim):
    sim.render_seconds = QUICK_RENDER_SECONDS
    response = api.post(
        "/videos",
        data={"prompt": "Blue screen", "size": "1280x720"},
        files={"input_reference": ("ref.webp", png(1280, 720, "blue", "WEBP"), "image/webp")},
    )
    assert response.status_code == 200, response.text
    wait_until_settled(api, response.json()["id"])
    thumbnail = api.get(f"/videos/{response.json()['id']}/content", params={"variant": "thumbnail"})
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        # The right edge, mid-height: never under the caption, the timecode or the moving disc.
        red, green, blue = image.convert("RGB").getpixel((1275, 360))
    assert blue > 200 and red < 40 and green < 40


def test_reference_image_of_another_size_is_rejected_with_the_contract_message(api):
    response = api.post(
        "/videos",
        data={"prompt": "Wrong size", "size": "1280x720"},
        files={"input_reference": ("ref.png", png(720, 1280), "image/png")},
    )
    error = assert_error(response, 400, "input_reference")
    assert error["message"] == "image must match the requested width and height"


@pytest.mark.parametrize(
    "upload",
    [
        ("notes.png", b"this is not an image", "image/png"),
        ("a.gif", png(720, 1280, image_format="GIF"), "image/gif"),
    ],
    ids=["text", "gif"],
)
def test_reference_that_is_not_a_jpeg_png_or_webp_is_rejected(api, upload):
    response = api.post("/videos", data={"prompt": "Bad file"}, files={"input_reference": upload})
    assert assert_error(response, 400, "input_reference")["code"] == "invalid_reference_image"


def test_multipart_takes_a_bracketed_reference_object_and_an_empty_file_part_as_none(api):
    response = api.post(
        "/videos",
        data={"prompt": "By file id", "input_reference[file_id]": "file_123"},
        files={"input_reference": ("", b"", "application/octet-stream")},
    )
    assert response.status_code == 200, response.text


def test_multipart_rejects_unknown_fields(api):
    response = api.post(
        "/videos", data={"prompt": "Two please", "n": "2"}, files={"input_reference": ("", b"")}
    )
    assert assert_error(response, 400, "n")["code"] == "unknown_parameter"


# Lifecycle


def test_lifecycle_goes_queued_then_in_progress_with_rising_progress_then_completed(api, sim):
    video = create(api, prompt="A slow sunrise")
    seen = []

    def completed() -> bool:
        response = api.get(f"/videos/{video['id']}")
        body = response.json()
        seen.append(
            (body["status"], body["progress"], response.headers.get("openai-poll-after-ms"))
        )
        return body["status"] == "completed"

    wait_for(completed, timeout=RENDER_SECONDS + 5, every=0.05)
    statuses = [status for status, _, _ in seen]
    assert statuses[0] == "queued"
    assert statuses.index("in_progress") < statuses.index("completed")
    progress = [p for status, p, _ in seen if status == "in_progress"]
    assert progress == sorted(progress) and len(set(progress)) >= 3
    assert all(0 <= p <= 99 for p in progress)
    assert all(hint == "250" for status, _, hint in seen if status != "completed")
    assert seen[-1][1:] == (100, None), "no poll hint once the job is finished"

    done = sim.job(video["id"])
    assert done["completed_at"] >= done["created_at"]
    assert done["expires_at"] == done["completed_at"] + 3600
    assert done["error"] is None


def test_relay_dialect_reports_processing_instead_of_in_progress(api, sim):
    sim.dialect = "relay"
    video = create(api, prompt="A relay-rendered hummingbird")
    running = wait_for(
        lambda: (v := api.get(f"/videos/{video['id']}").json())["status"] != "queued" and v,
        every=0.05,
    )
    assert running["status"] == "processing"
    assert sim.job(video["id"])["status"] == "processing"
    sim.dialect = "openai"
    assert sim.job(video["id"])["status"] == "in_progress"


def test_prompt_with_the_fail_marker_fails_with_moderation_blocked(api):
    video = create(api, prompt="Something the moderator will [FAIL] block")
    failed = wait_until_settled(api, video["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "moderation_blocked"
    assert failed["error"]["message"]
    assert 0 <= failed["progress"] < 100
    assert failed["expires_at"] is None
    response = api.get(f"/videos/{video['id']}")
    assert "openai-poll-after-ms" not in response.headers
    assert_error(api.get(f"/videos/{video['id']}/content"), 404)


# List


def test_list_pages_through_every_job_with_after_and_has_more_in_both_orders(api, sim):
    for n in range(3):
        create(api, prompt=f"Listed {n}")
    oldest_first = [job["id"] for job in sim.jobs()]

    for order, expected in (("desc", oldest_first[::-1]), ("asc", oldest_first)):
        pages, after = [], None
        while True:
            params = {"limit": 2, "order": order, **({"after": after} if after else {})}
            page = api.get("/videos", params=params).json()
            assert page["object"] == "list"
            ids = [video["id"] for video in page["data"]]
            assert (page["first_id"], page["last_id"]) == (ids[0], ids[-1])
            pages.append(ids)
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert [video_id for ids in pages for video_id in ids] == expected
        assert all(len(ids) == 2 for ids in pages[:-1])

    default = api.get("/videos").json()
    assert [video["id"] for video in default["data"]] == oldest_first[::-1][:20]
    assert default["has_more"] == (len(oldest_first) > 20)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"after": "video_unknown"}, "after"),
    ],
    ids=str,
)
def test_list_rejects_bad_limit_order_and_unknown_cursor(api, params, param):
    assert_error(api.get("/videos", params=params), 400, param)


# Delete and remix


def test_delete_removes_a_finished_job_and_its_files_but_refuses_a_running_one(api, sim, media_dir):
    running = create(api, prompt="Still going")
    refused = assert_error(api.delete(f"/videos/{running['id']}"), 400)
    assert "completed or failed" in refused["message"]

    done = quickly_completed(api, sim, prompt="Short lived")
    assert api.get(f"/videos/{done['id']}/content", params={"variant": "thumbnail"}).ok
    assert (media_dir / done["id"]).is_dir()
    response = api.delete(f"/videos/{done['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": done["id"], "object": "video.deleted", "deleted": True}
    assert not (media_dir / done["id"]).exists()
    assert_error(api.get(f"/videos/{done['id']}"), 404)
    assert_error(api.get(f"/videos/{done['id']}/content"), 404)
    assert_error(api.delete(f"/videos/{done['id']}"), 404)

    failed = quickly_completed(api, sim, prompt="[fail] on purpose")
    assert api.delete(f"/videos/{failed['id']}").json()["deleted"] is True


def test_remix_of_a_completed_job_is_a_new_job_with_the_same_shape(api, finished):
    source = finished["portrait"]
    response = api.post(f"/videos/{source['id']}/remix", json={"prompt": "Same, at night"})
    assert response.status_code == 200, response.text
    remix = response.json()
    assert remix["id"] != source["id"]
    assert remix["remixed_from_video_id"] == source["id"]
    assert remix["prompt"] == "Same, at night"
    assert (remix["status"], remix["progress"]) == ("queued", 0)
    assert (remix["model"], remix["seconds"], remix["size"]) == (
        source["model"],
        source["seconds"],
        source["size"],
    )


def test_remix_of_a_running_job_or_with_a_bad_body_is_400(api, finished):
    running = create(api, prompt="Not done yet")
    refused = assert_error(
        api.post(f"/videos/{running['id']}/remix", json={"prompt": "again"}), 400
    )
    assert "completed" in refused["message"]
    source = finished["lighthouse"]["id"]
    assert_error(api.post(f"/videos/{source}/remix", json={}), 400, "prompt")
    assert_error(
        api.post(f"/videos/{source}/remix", json={"prompt": "x", "size": "1"}), 400, "size"
    )
    assert_error(api.post("/videos/video_nope/remix", json={"prompt": "x"}), 404)


# Content


def test_content_is_404_until_completed_and_variant_must_be_known(api, finished):
    running = create(api, prompt="Not rendered yet")
    error = assert_error(api.get(f"/videos/{running['id']}/content"), 404)
    assert error["code"] == "video_not_ready"
    done = finished["lighthouse"]["id"]
    assert_error(api.get(f"/videos/{done}/content", params={"variant": "poster"}), 400, "variant")


def test_simulator_refuses_thumbnail_and_spritesheet_when_it_offers_only_the_video(
    api, sim, finished
):
    sim.offered_variants = ("video",)
    content = f"/videos/{finished['lighthouse']['id']}/content"
    for variant in ("thumbnail", "spritesheet"):
        error = assert_error(api.get(content, params={"variant": variant}), 400, "variant")
        assert error["code"] == "unsupported_variant"
        assert error["message"] == f"variant '{variant}' is not supported for this model."
    video = api.get(content)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    error = assert_error(api.get(content, params={"variant": "poster"}), 400, "variant")
    assert error["code"] == "invalid_value"


@pytest.mark.parametrize(
    ("name", "width", "height", "seconds"),
    [("lighthouse", 1280, 720, 4), ("portrait", 720, 1280, 8)],
)
def test_content_is_a_real_mp4_of_the_requested_size_and_duration(
    api, finished, tmp_path, name, width, height, seconds
):
    response = api.get(f"/videos/{finished[name]['id']}/content")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(response.content)
    data = response.content
    assert data[4:8] == b"ftyp"
    assert data.index(b"moov") < data.index(b"mdat"), "faststart: the index comes first"

    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert abs(container.duration / av.time_base - seconds) <= 2 / 24
        frames = list(container.decode(stream))
    assert abs(len(frames) - seconds * 24) <= 2
    first, last = frames[0].to_image(), frames[-1].to_image()
    assert ImageChops.difference(first, last).getbbox(), "the picture moves"


def test_thumbnail_is_webp_and_spritesheet_a_jpeg_grid(api, finished):
    video_id = finished["portrait"]["id"]
    thumbnail = api.get(f"/videos/{video_id}/content", params={"variant": "thumbnail"})
    assert thumbnail.headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert (image.format, image.size) == ("WEBP", (720, 1280))

    sheet = api.get(f"/videos/{video_id}/content", params={"variant": "spritesheet"})
    assert sheet.headers["Content-Type"] == "image/jpeg"
    assert int(sheet.headers["Content-Length"]) == len(sheet.content)
    with Image.open(io.BytesIO(sheet.content)) as image:
        assert image.format == "JPEG"
        assert image.size == (5 * 256, 2 * 455), "ten 256-px tiles in five columns"


def test_different_prompts_give_different_pictures(api, finished):
    thumbnails = []
    for name in ("lighthouse", "boats"):
        response = api.get(f"/videos/{finished[name]['id']}/content?variant=thumbnail")
        thumbnails.append(Image.open(io.BytesIO(response.content)).convert("RGB"))
    difference = ImageStat.Stat(ImageChops.difference(*thumbnails)).mean
    assert sum(difference) / 3 > 10


def test_concurrent_first_downloads_all_get_the_same_complete_file(api, sim, media_dir):
    video_id = quickly_completed(api, sim, prompt="Everyone at once", size="1280x720")["id"]
    results: list[bytes] = []

    def download() -> None:
        with ApiSession(sim.base_url) as session:
            response = session.get(f"/videos/{video_id}/content")
            assert response.status_code == 200
            results.append(response.content)

    threads = [threading.Thread(target=download) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert [p.name for p in (media_dir / video_id).iterdir()] == ["video.mp4"]


# Expiry, reset, stop and the command


def test_downloads_expire_but_the_job_stays_completed():
    simulator = Simulator(api_key=KEY, render_seconds=QUICK_RENDER_SECONDS, expires_after=1).start()
    try:
        with ApiSession(simulator.base_url) as api:
            video = wait_until_settled(api, create(api, prompt="Gone soon")["id"])
            assert video["expires_at"] == video["completed_at"] + 1
            assert api.get(f"/videos/{video['id']}/content?variant=thumbnail").status_code == 200
            expired = wait_for(
                lambda: (
                    (r := api.get(f"/videos/{video['id']}/content")).status_code == 404 and r.json()
                ),
                timeout=5,
                every=0.1,
            )
            assert expired["error"]["code"] == "video_expired"
            assert api.get(f"/videos/{video['id']}").json()["status"] == "completed"
    finally:
        simulator.stop()


def test_reset_forgets_every_job_and_stop_removes_its_own_media_directory():
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("muxweb-simulator-*"))
    simulator = Simulator(api_key=KEY, render_seconds=0).start()
    try:
        with ApiSession(simulator.base_url) as api:
            video = create(api, prompt="Instant")
            assert api.get(f"/videos/{video['id']}/content?variant=thumbnail").ok
            assert [job["id"] for job in simulator.jobs()] == [video["id"]]
            simulator.reset()
            assert simulator.jobs() == []
            assert_error(api.get(f"/videos/{video['id']}"), 404)
        made = set(temp.glob("muxweb-simulator-*")) - before
        assert len(made) == 1
    finally:
        simulator.stop()
    assert not any(path.exists() for path in made)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{simulator.base_url}/videos", timeout=2)


def test_command_prints_its_base_url_and_serves_until_terminated(receiver):
    process = subprocess.Popen(
        [
            sys.executable, "manage.py", "simulator", "--port", "0", "--api-key", "cmd-key",
            "--render-seconds", "0.5", "--dialect", "relay", "--poll-after-ms", "700",
            "--webhook-url", receiver.url, "--webhook-secret", WEBHOOK_SECRET,
            "--variants", "video,spritesheet",
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert "Simulator serving http://127.0.0.1:" in line, line
        assert f"webhooks to {receiver.url}" in line
        assert "offering only video, spritesheet" in line
        base_url = line.split()[2]
        with ApiSession(base_url, key="cmd-key") as api:
            refused = api.get("/videos/video_any/content", params={"variant": "thumbnail"})
            assert refused.json()["error"]["code"] == "unsupported_variant"
            video = create(api, prompt="From the command line")
            running = wait_for(
                lambda: (r := api.get(f"/videos/{video['id']}")).json()["status"] != "queued" and r,
                every=0.02,
            )
            assert running.json()["status"] == "processing"
            assert running.headers["openai-poll-after-ms"] == "700"
        headers, body = wait_for(lambda: receiver.deliveries and receiver.deliveries[0], timeout=5)
        assert_signed(headers, body)
        assert json.loads(body)["data"] == {"id": video["id"]}
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Simulator stopped." in output
    assert WEBHOOK_SECRET.removeprefix("whsec_") not in line + output


@pytest.mark.parametrize("source", ["flag", "setting"])
def test_command_refuses_a_variant_it_does_not_know(source, tmp_path):
    env = {**os.environ, "MUXWEB_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "manage.py", "simulator", "--port", "0"]
    if source == "flag":
        command += ["--variants", "video,thumbnial"]
    else:
        env["MUXWEB_SIMULATOR_VARIANTS"] = "video,thumbnial"
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "unknown variant 'thumbnial'" in result.stderr
    assert "Simulator serving" not in result.stdout


# Webhooks


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint: records each delivery, answers the statuses it is given, then 200s."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[Message, bytes]] = []
        self.statuses: list[int] = []
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/webhooks/videos"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.deliveries.append((self.headers, body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def hooked(receiver) -> Iterator[Simulator]:
    """A simulator of its own, so no other test's job can finish into this test's receiver."""
    simulator = Simulator(
        api_key=KEY,
        render_seconds=QUICK_RENDER_SECONDS,
        webhook_url=receiver.url,
        webhook_secret=WEBHOOK_SECRET,
        webhook_retries=3,
    ).start()
    yield simulator
    simulator.stop()


def assert_signed(headers: Message, body: bytes, secret: str = WEBHOOK_SECRET) -> None:
    """Check the signature the way any Standard Webhooks receiver would, from the secret alone."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in headers["webhook-signature"].split()
    assert abs(time.time() - int(headers["webhook-timestamp"])) < 10


def test_completed_job_sends_one_signed_video_completed_event_without_being_polled(
    hooked, receiver
):
    with ApiSession(hooked.base_url) as api:
        video = create(api, prompt="Announced when done")
        headers, body = wait_for(lambda: receiver.deliveries and receiver.deliveries[0], timeout=5)
        assert api.get(f"/videos/{video['id']}").json()["status"] == "completed"
    time.sleep(SETTLE_SECONDS)
    assert len(receiver.deliveries) == 1

    assert headers["Content-Type"] == "application/json"
    assert_signed(headers, body)
    event = json.loads(body)
    assert event == {
        "id": headers["webhook-id"],
        "object": "event",
        "created_at": event["created_at"],
        "type": "video.completed",
        "data": {"id": video["id"]},
    }
    assert event["id"].startswith("evt_")
    assert isinstance(event["created_at"], int)
    assert abs(time.time() - event["created_at"]) < 10
    assert hooked.webhook_log == [
        {
            "event_id": event["id"],
            "type": "video.completed",
            "video_id": video["id"],
            "attempt": 1,
            "status": 200,
            "error": None,
        }
    ]


def test_failed_job_sends_video_failed_and_a_bare_base64_secret_signs_the_same(hooked, receiver):
    hooked.webhook_secret = WEBHOOK_SECRET.removeprefix("whsec_")
    with ApiSession(hooked.base_url) as api:
        video = create(api, prompt="Refused [fail] by moderation")
    headers, body = wait_for(lambda: receiver.deliveries and receiver.deliveries[0], timeout=5)
    assert_signed(headers, body)
    assert json.loads(body)["type"] == "video.failed"
    assert json.loads(body)["data"] == {"id": video["id"]}


def test_receiver_errors_are_retried_with_the_same_id_and_fresh_signatures(hooked, receiver):
    receiver.statuses = [500, 500]
    with ApiSession(hooked.base_url) as api:
        video = create(api, prompt="Third time lucky")
    wait_for(lambda: len(hooked.webhook_log) == 3, timeout=10, every=0.05)
    assert len(receiver.deliveries) == 3

    ids = {headers["webhook-id"] for headers, _ in receiver.deliveries}
    assert len(ids) == 1
    assert len({body for _, body in receiver.deliveries}) == 1
    timestamps = [int(headers["webhook-timestamp"]) for headers, _ in receiver.deliveries]
    assert timestamps == sorted(timestamps) and timestamps[-1] > timestamps[0]
    for headers, body in receiver.deliveries:
        assert_signed(headers, body)
    assert [(entry["attempt"], entry["status"]) for entry in hooked.webhook_log] == [
        (1, 500),
        (2, 500),
        (3, 200),
    ]
    assert {entry["event_id"] for entry in hooked.webhook_log} == ids
    assert {entry["video_id"] for entry in hooked.webhook_log} == {video["id"]}


def test_unreachable_receiver_is_tried_webhook_retries_times_then_given_up(hooked):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    hooked.webhook_url = f"http://127.0.0.1:{port}/webhooks/videos"
    hooked.webhook_retries = 2
    with ApiSession(hooked.base_url) as api:
        create(api, prompt="Nobody listening")
    wait_for(lambda: len(hooked.webhook_log) == 2, timeout=5, every=0.05)
    # A third attempt would come one second after the second.
    time.sleep(1.3)
    assert [entry["attempt"] for entry in hooked.webhook_log] == [1, 2]
    assert all(entry["status"] is None and entry["error"] for entry in hooked.webhook_log)
    assert len({entry["event_id"] for entry in hooked.webhook_log}) == 1


def test_no_webhook_without_a_url_not_even_once_one_is_set_later(hooked, receiver):
    hooked.webhook_url = None
    with ApiSession(hooked.base_url) as api:
        wait_until_settled(api, create(api, prompt="Quietly done")["id"])
        time.sleep(SETTLE_SECONDS)
        hooked.webhook_url = receiver.url
        time.sleep(SETTLE_SECONDS)
    assert receiver.deliveries == []
    assert hooked.webhook_log == []


def test_job_forgotten_before_it_finishes_sends_nothing(hooked, receiver):
    with ApiSession(hooked.base_url) as api:
        create(api, prompt="Never finished")
    hooked.reset()
    time.sleep(QUICK_RENDER_SECONDS + SETTLE_SECONDS)
    assert receiver.deliveries == []


def test_job_deleted_as_soon_as_it_finishes_still_sends_its_event_once(hooked, receiver):
    hooked.render_seconds = 0
    with ApiSession(hooked.base_url) as api:
        video = create(api, prompt="Here and gone")
        assert api.delete(f"/videos/{video['id']}").json()["deleted"] is True
    wait_for(lambda: receiver.deliveries, timeout=5, every=0.05)
    time.sleep(SETTLE_SECONDS)
    assert [json.loads(body)["data"]["id"] for _, body in receiver.deliveries] == [video["id"]]


def test_a_secret_that_is_not_base64_is_refused_at_once():
    with pytest.raises(ValueError, match="base64"):
        Simulator(webhook_secret="whsec_not base64!")
