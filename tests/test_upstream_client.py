"""The upstream client against the simulator over HTTP: calls, typed errors, atomic downloads."""

import io
import logging
import socket
import time

import pytest
from PIL import Image

from tests.conftest import API_KEY, wait_for
from videos.upstream.client import UpstreamError, UpstreamUnreachable, VideosClient


@pytest.fixture
def client(provider) -> VideosClient:
    return VideosClient(provider.base_url, API_KEY, timeout=(2, 10))


def test_create_retrieve_list_and_poll_hint(client):
    video = client.create(prompt="A kite over dunes", model="sora-2", seconds=4, size="1280x720")
    assert video["status"] == "queued"
    fetched, poll_after = client.retrieve(video["id"])
    assert fetched["id"] == video["id"]
    assert poll_after == pytest.approx(0.3)
    listed = client.list(limit=100)
    assert video["id"] in [v["id"] for v in listed["data"]]


def test_provider_errors_carry_status_code_param_and_message(client):
    with pytest.raises(UpstreamError) as bad_size:
        client.create(prompt="x", model="sora-2", seconds=4, size="1792x1024")
    assert bad_size.value.status == 400
    assert bad_size.value.param == "size"
    assert bad_size.value.message
    assert not bad_size.value.is_transient

    with pytest.raises(UpstreamError) as missing:
        client.retrieve("video_does_not_exist")
    assert missing.value.status == 404


def test_wrong_key_is_a_401_and_the_key_never_shows(provider, caplog):
    secret = "sk-very-secret-value"
    client = VideosClient(provider.base_url, secret)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(UpstreamError) as error:
        client.list()
    assert error.value.status == 401
    assert error.value.code == "invalid_api_key"
    for text in (str(error.value), repr(error.value), repr(client), caplog.text):
        assert secret not in text


def test_unreachable_provider_is_known_not_to_have_received_the_request():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = VideosClient(f"http://127.0.0.1:{port}/v1", API_KEY, timeout=(1, 1))
    with pytest.raises(UpstreamUnreachable) as error:
        client.create(prompt="x", model="sora-2", seconds=4, size="1280x720")
    assert error.value.sent is False
    assert error.value.is_transient


def test_download_writes_the_whole_file_into_place_and_nothing_else(client, provider, tmp_path):
    provider.render_seconds = 0.5
    video = client.create(prompt="A short one", model="sora-2", seconds=4, size="720x1280")
    wait_for(lambda: client.retrieve(video["id"])[0]["status"] == "completed", timeout=10)
    dest = tmp_path / "out" / "video.mp4"
    size = client.download(video["id"], "video", dest)
    assert dest.stat().st_size == size > 1000
    assert dest.read_bytes()[4:8] == b"ftyp"
    assert [p.name for p in dest.parent.iterdir()] == ["video.mp4"]


def test_download_of_an_unfinished_job_fails_and_leaves_no_file(client, tmp_path):
    video = client.create(prompt="Still rendering", model="sora-2", seconds=4, size="720x1280")
    dest = tmp_path / "video.mp4"
    with pytest.raises(UpstreamError) as error:
        client.download(video["id"], "video", dest)
    assert error.value.status == 404
    assert list(tmp_path.iterdir()) == []


def test_remix_and_delete(client, provider):
    provider.render_seconds = 0.5
    video = client.create(prompt="Original", model="sora-2", seconds=4, size="720x1280")
    wait_for(lambda: client.retrieve(video["id"])[0]["status"] == "completed", timeout=10)
    remix = client.remix(video["id"], "Same, but at night")
    assert remix["remixed_from_video_id"] == video["id"]
    time.sleep(0.6)
    assert client.delete(video["id"])["deleted"] is True
    with pytest.raises(UpstreamError):
        client.retrieve(video["id"])


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_create_with_a_reference_image_goes_as_multipart(client, provider):
    video = client.create(
        prompt="Start from this frame",
        model="sora-2",
        seconds=4,
        size="720x1280",
        input_reference=("frame.png", png(720, 1280), "image/png"),
    )
    assert provider.job(video["id"])["prompt"] == "Start from this frame"
    with pytest.raises(UpstreamError) as error:
        client.create(
            prompt="Wrong size",
            model="sora-2",
            seconds=4,
            size="720x1280",
            input_reference=("frame.png", png(640, 480), "image/png"),
        )
    assert error.value.status == 400
    assert error.value.message == "image must match the requested width and height"
