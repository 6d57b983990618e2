"""Thumbnails and spritesheets made from a cached video look like the provider's, at any length.

The clips here show ten colours, each for a tenth of the clip, so every picture can be checked for
the moment it shows.
"""

import colorsys
import math
import stat
from pathlib import Path

import av
import pytest
import requests
from PIL import Image, ImageChops, ImageStat

from tests.conftest import API_KEY, wait_for
from videos.derive import DeriveError, make_spritesheet, make_thumbnail
from videos.probe import verify_download

# Hues 36 degrees apart: each stays closest to itself through YUV, H.264, WebP and JPEG.
COLOURS = [tuple(round(c * 255) for c in colorsys.hsv_to_rgb(n / 10, 1.0, 1.0)) for n in range(10)]


def write_clip(
    path: Path,
    *,
    seconds: int,
    fps: int = 10,
    size: tuple[int, int] = (320, 180),
    keyframe_every: int = 250,
    container_format: str = "mp4",
) -> int:
    """A clip whose frame n shows COLOURS[n * 10 // frames]; its number of frames."""
    frames = seconds * fps
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(
            "libx264", rate=fps, options={"preset": "veryfast", "g": str(keyframe_every)}
        )
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for index in range(frames):
            image = Image.new("RGB", size, COLOURS[index * 10 // frames])
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())
    return frames


def colour_shown(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """The index of the colour in COLOURS nearest to the mean of `box`."""
    mean = ImageStat.Stat(image.convert("RGB").crop(box)).mean
    return min(range(10), key=lambda n: math.dist(mean, COLOURS[n]))


def tiles_shown(sheet: Path, tile_height: int) -> list[int]:
    with Image.open(sheet) as image:
        assert image.format == "JPEG"
        assert image.size == (5 * 256, 2 * tile_height), "ten 256-px tiles in five columns"
        return [
            colour_shown(
                image,
                (x * 256 + 8, y * tile_height + 8, (x + 1) * 256 - 8, (y + 1) * tile_height - 8),
            )
            for y in range(2)
            for x in range(5)
        ]


def tile_colours(frames: int) -> list[int]:
    """What the provider's tile i shows: frame int((i + 0.5) * frames / 10)."""
    return [int((tile + 0.5) * frames / 10) * 10 // frames for tile in range(10)]


def test_thumbnail_is_a_webp_of_the_videos_size_showing_its_middle_frame(tmp_path):
    video = tmp_path / "video.mp4"
    write_clip(video, seconds=10)
    dest = tmp_path / "thumbnail.webp"

    assert make_thumbnail(video, dest) == "image/webp"

    with Image.open(dest) as image:
        assert (image.format, image.size) == ("WEBP", (320, 180))
        # Frame 50 of 100 is the first of the sixth colour: one frame early would show the fifth.
        assert colour_shown(image, (0, 0, 320, 180)) == 5
    assert verify_download(dest, "thumbnail", seconds=10, size="320x180") == "image/webp"


@pytest.mark.parametrize(
    ("size", "tile_height"), [((320, 180), 144), ((180, 320), 455)], ids=["landscape", "portrait"]
)
def test_spritesheet_is_five_by_two_tiles_of_256_px_in_time_order(tmp_path, size, tile_height):
    video = tmp_path / "video.mp4"
    write_clip(video, seconds=10, size=size)
    dest = tmp_path / "spritesheet.jpg"

    assert make_spritesheet(video, dest) == "image/jpeg"

    assert tiles_shown(dest, tile_height) == list(range(10))
    assert verify_download(dest, "spritesheet", seconds=10, size="x".join(map(str, size)))


def test_long_video_with_frequent_keyframes_gets_each_tile_from_its_own_moment(tmp_path):
    # Tiles six seconds apart, a keyframe every two: each tile is sought, not decoded up to.
    video = tmp_path / "video.mp4"
    write_clip(video, seconds=60, fps=5, size=(160, 90), keyframe_every=10)

    make_spritesheet(video, tmp_path / "spritesheet.jpg")
    make_thumbnail(video, tmp_path / "thumbnail.webp")

    assert tiles_shown(tmp_path / "spritesheet.jpg", 144) == list(range(10))
    with Image.open(tmp_path / "thumbnail.webp") as image:
        assert colour_shown(image, (0, 0, 160, 90)) == 5


def test_video_without_a_frame_count_or_stream_duration_is_measured_by_its_container(tmp_path):
    video = tmp_path / "video.mkv"
    write_clip(video, seconds=30, keyframe_every=20, container_format="matroska")
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.frames, stream.duration) == (0, None)
        assert container.duration is not None

    make_spritesheet(video, tmp_path / "spritesheet.jpg")
    make_thumbnail(video, tmp_path / "thumbnail.webp")

    assert tiles_shown(tmp_path / "spritesheet.jpg", 144) == list(range(10))
    with Image.open(tmp_path / "thumbnail.webp") as image:
        assert colour_shown(image, (0, 0, 320, 180)) == 5


def test_one_second_video_with_fewer_frames_than_tiles_still_fills_the_grid(tmp_path):
    video = tmp_path / "video.mp4"
    frames = write_clip(video, seconds=1, fps=4)
    assert frames < 10

    make_spritesheet(video, tmp_path / "spritesheet.jpg")
    make_thumbnail(video, tmp_path / "thumbnail.webp")

    shown = tiles_shown(tmp_path / "spritesheet.jpg", 144)
    assert shown == tile_colours(frames) == [0, 0, 2, 2, 2, 5, 5, 7, 7, 7]
    with Image.open(tmp_path / "thumbnail.webp") as image:
        assert colour_shown(image, (0, 0, 320, 180)) == 5


def test_pictures_made_from_the_simulators_video_match_the_ones_it_serves(provider, tmp_path):
    provider.render_seconds = 0.2
    with requests.Session() as api:
        api.headers["Authorization"] = f"Bearer {API_KEY}"
        base = provider.base_url
        video_id = api.post(
            f"{base}/videos",
            json={"prompt": "A lighthouse at dusk", "size": "1280x720"},
            timeout=10,
        ).json()["id"]
        wait_for(
            lambda: api.get(f"{base}/videos/{video_id}", timeout=10).json()["status"] == "completed"
        )
        served = {}
        for variant, name in [
            ("video", "video.mp4"),
            ("thumbnail", "served.webp"),
            ("spritesheet", "served.jpg"),
        ]:
            response = api.get(
                f"{base}/videos/{video_id}/content", params={"variant": variant}, timeout=30
            )
            assert response.status_code == 200
            served[variant] = tmp_path / name
            served[variant].write_bytes(response.content)

    made = {
        "thumbnail": (make_thumbnail, tmp_path / "thumbnail.webp"),
        "spritesheet": (make_spritesheet, tmp_path / "spritesheet.jpg"),
    }
    for variant, (make, dest) in made.items():
        content_type = make(served["video"], dest)
        assert verify_download(dest, variant, seconds=4, size="1280x720") == content_type
        with Image.open(dest) as ours, Image.open(served[variant]) as theirs:
            assert ours.format == theirs.format
            assert ours.size == theirs.size
            # The same frames, apart from what H.264 and the picture encoders change.
            difference = ImageStat.Stat(
                ImageChops.difference(ours.convert("RGB"), theirs.convert("RGB"))
            )
            assert max(difference.mean) < 6, difference.mean


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50, "half an mp4"],
    ids=["empty", "garbage", "truncated"],
)
@pytest.mark.parametrize("make", [make_thumbnail, make_spritesheet])
def test_a_file_that_does_not_decode_raises_derive_error_and_writes_nothing(
    tmp_path, content, make
):
    video = tmp_path / "video.mp4"
    if content == "half an mp4":
        write_clip(video, seconds=4)
        data = video.read_bytes()
        content = data[: len(data) // 2]
    video.write_bytes(content)

    with pytest.raises(DeriveError, match="video.mp4"):
        make(video, tmp_path / "picture")

    assert [path.name for path in tmp_path.iterdir()] == ["video.mp4"]


def test_pictures_replace_an_older_file_whole_and_are_readable_by_the_owner_only(tmp_path):
    video = tmp_path / "video.mp4"
    write_clip(video, seconds=2)
    for make, name in [(make_thumbnail, "thumbnail.webp"), (make_spritesheet, "spritesheet.jpg")]:
        dest = tmp_path / name
        dest.write_bytes(b"an older picture")
        dest.chmod(0o644)

        make(video, dest)

        assert stat.S_IMODE(dest.stat().st_mode) == 0o600
        assert dest.read_bytes() != b"an older picture"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "spritesheet.jpg",
        "thumbnail.webp",
        "video.mp4",
    ]
