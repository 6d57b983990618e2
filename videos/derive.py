"""Thumbnails and spritesheets made from a cached video, for providers that offer none.

Gateways in front of some models serve the video but refuse `variant=thumbnail` and
`variant=spritesheet`; muxweb then makes both from the video it already holds, laid out like the
provider's: the middle frame as a WebP of the video's size, and ten frames spread over the video
as 256-px tiles in a JPEG grid of five columns.

Each frame is reached by seeking to the keyframe before its moment and decoding forward from
there, so even a long video costs a few keyframe intervals of decoding, never the whole file, and
no more than one full-size frame is held at a time. Nothing here needs Django: the simulator
shares the layout.
"""

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

SPRITE_TILES = 10
SPRITE_COLUMNS = 5
SPRITE_TILE_WIDTH = 256
QUALITY = 80
# A moment this close after the frame last decoded is reached by decoding on: a seek would most
# likely land on a keyframe before that frame and decode the same stretch again.
DECODE_ON_SECONDS = 2


class DeriveError(Exception):
    """The video cannot be made into pictures; the message says why."""


def make_thumbnail(video: Path, dest: Path) -> str:
    """Write the video's middle frame to `dest` as a WebP of the video's size; its content type."""
    with _opened(video) as (container, stream):
        frame = next(_frames_at(container, stream, [Fraction(1, 2)]))
        image = frame.to_image()
    _save(image, dest, format="WEBP", quality=QUALITY)
    return "image/webp"


def make_spritesheet(video: Path, dest: Path) -> str:
    """Write frames spread over the video to `dest` as a JPEG grid; its content type.

    Tile i, row by row, shows the frame at (i + 0.5) / SPRITE_TILES of the video; a video with
    fewer frames than tiles shows some of them twice.
    """
    with _opened(video) as (container, stream):
        width, height = stream.codec_context.width, stream.codec_context.height
        tile_height = max(1, round(SPRITE_TILE_WIDTH * height / width))
        rows = math.ceil(SPRITE_TILES / SPRITE_COLUMNS)
        sheet = Image.new("RGB", (SPRITE_COLUMNS * SPRITE_TILE_WIDTH, rows * tile_height))
        shares = [Fraction(2 * tile + 1, 2 * SPRITE_TILES) for tile in range(SPRITE_TILES)]
        for tile, frame in enumerate(_frames_at(container, stream, shares)):
            # Scaled while converted, so the frame is never copied to RGB at full size.
            small = frame.reformat(
                width=SPRITE_TILE_WIDTH, height=tile_height, format="rgb24", interpolation="AREA"
            )
            row, column = divmod(tile, SPRITE_COLUMNS)
            sheet.paste(small.to_image(), (column * SPRITE_TILE_WIDTH, row * tile_height))
    _save(sheet, dest, format="JPEG", quality=QUALITY)
    return "image/jpeg"


@contextlib.contextmanager
def _opened(video: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The video's container and first video stream; PyAV's errors become DeriveError."""
    try:
        container = av.open(str(video))
    except av.FFmpegError as exc:
        raise DeriveError(f"{video.name} does not open as a video: {exc}") from None
    try:
        if not container.streams.video:
            raise DeriveError(f"{video.name} has no video stream")
        stream = container.streams.video[0]
        if not (stream.codec_context.width and stream.codec_context.height):
            raise DeriveError(f"{video.name} has no picture size")
        yield container, stream
    except av.FFmpegError as exc:
        raise DeriveError(f"{video.name} does not decode: {exc}") from None
    finally:
        container.close()


def _frames_at(
    container: InputContainer, stream: VideoStream, shares: list[Fraction]
) -> Iterator[av.VideoFrame]:
    """For each share of the video (ascending), the first frame at or after it.

    A moment past the last frame (a length that was rounded up) gets the last frame.
    """
    decode_on = math.floor(DECODE_ON_SECONDS / stream.time_base)
    frames: Iterator[av.VideoFrame] = iter(())
    frame = None
    for target in _targets(container, stream, shares):
        if frame is not None and (frame.pts is None or frame.pts >= target):
            # A short video: this moment shows the same frame as the one before.
            yield frame
            continue
        if frame is None or target - frame.pts > decode_on:
            container.seek(target, stream=stream)
            frames = container.decode(stream)
            frame = None
        for frame in frames:
            if frame.pts is None or frame.pts >= target:
                break
        if frame is None:
            seconds = float((target - (stream.start_time or 0)) * stream.time_base)
            raise DeriveError(f"no frame of the video decodes at {seconds:.2f} s")
        yield frame


def _targets(container: InputContainer, stream: VideoStream, shares: list[Fraction]) -> list[int]:
    """The timestamp of each share of the video, by its frame count or else by its length.

    Streams without a frame count (fragmented MP4, Matroska) are measured by their duration, or
    the container's when the stream has none.
    """
    rate = stream.average_rate or stream.guessed_rate
    if stream.frames and rate:
        # As the provider picks them: frame int(share * frames) of the video.
        moments = [math.floor(share * stream.frames) / rate for share in shares]
    elif (duration := _duration(container, stream)) is not None:
        moments = [share * duration for share in shares]
    else:
        raise DeriveError("the video's length is unknown")
    start = stream.start_time or 0
    return [start + math.floor(moment / stream.time_base) for moment in moments]


def _duration(container: InputContainer, stream: VideoStream) -> Fraction | None:
    if stream.duration:
        return stream.duration * stream.time_base
    if container.duration:
        return Fraction(container.duration, av.time_base)
    return None


def _save(image: Image.Image, dest: Path, **options: object) -> None:
    """Write the picture to a temporary file beside `dest` (mode 0600), then rename it there."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            image.save(out, **options)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
