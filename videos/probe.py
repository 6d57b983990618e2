"""What a downloaded file really is, checked before it is kept as a job's result.

A provider (or a proxy in front of it) may answer 200 with an HTML error page, a file cut short,
or a video of the wrong length. Each download is checked by its bytes: the type by its magic
bytes, pictures by decoding them, and videos by opening them with PyAV and comparing duration and
frame size with what the job asked for. Only headers and one frame are read, whatever the size.
"""

from pathlib import Path

import av
from PIL import Image

from videos.media import expected_types, sniff_content_type

# Encoders round a clip's length to whole frames and sometimes a little more.
DURATION_TOLERANCE = 0.5
MIN_BYTES = 64


class InvalidDownload(Exception):
    """The file is not the variant it should be; the message says why."""


def verify_download(path: Path, variant: str, *, seconds: int | None, size: str) -> str:
    """The file's content type if it is a sound `variant` for this job, else InvalidDownload.

    `seconds` and `size` ("1280x720") are what the job asked for; either may be unknown (an
    imported job), and is then not checked.
    """
    length = path.stat().st_size
    if length < MIN_BYTES:
        raise InvalidDownload(f"the {variant} is only {length} bytes")
    content_type = sniff_content_type(path)
    if content_type not in expected_types(variant):
        found = content_type or "unknown type"
        raise InvalidDownload(f"the {variant} is not a {variant} file ({found})")
    if variant == "video":
        _verify_video(path, seconds=seconds, size=size)
    else:
        _verify_picture(path, variant)
    return content_type


def _verify_video(path: Path, *, seconds: int | None, size: str) -> None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InvalidDownload("the video has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            duration = _duration(container, stream)
            # One decoded frame proves the stream is more than a plausible header.
            next(container.decode(stream))
    except (av.FFmpegError, StopIteration, ValueError) as exc:
        raise InvalidDownload(f"the video does not play ({type(exc).__name__})") from None
    if size and f"{width}x{height}" != size:
        raise InvalidDownload(f"the video is {width}x{height}, not {size}")
    if seconds and (duration is None or abs(duration - seconds) > DURATION_TOLERANCE):
        found = "unknown" if duration is None else f"{duration:.2f} s"
        raise InvalidDownload(f"the video lasts {found}, not {seconds} s")


def _duration(container: av.container.InputContainer, stream: av.video.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _verify_picture(path: Path, variant: str) -> None:
    try:
        with Image.open(path) as image:
            # Decodes every pixel: a truncated file fails here. Pillow refuses bombs itself.
            image.load()
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidDownload(f"the {variant} does not open ({type(exc).__name__})") from None
