"""Reference images: how many pixels one may have, flattened to RGB, fitted to the video's size."""

import re
from collections.abc import Iterable

from PIL import Image, ImageOps

from videos.models import ModelSpec

# A reference image is cropped and resized to the video's size, so a few times the largest video's
# pixels leave room for any crop; beyond that a tiny file can still decode to hundreds of megabytes
# (4 bytes a pixel once in RGB). A catalogue of small videos still gets the limit of 720p ones.
REFERENCE_PIXELS_PER_VIDEO_PIXEL = 4
MIN_REFERENCE_PIXELS = REFERENCE_PIXELS_PER_VIDEO_PIXEL * 1280 * 720
REFERENCE_FORMATS = {"JPEG", "PNG", "WEBP"}
_VIDEO_SIZE = re.compile(r"(\d+)x(\d+)")


def max_reference_pixels(specs: Iterable[ModelSpec]) -> int:
    """How many pixels a reference image may have, given the largest video these models make."""
    largest = 0
    for spec in specs:
        for size in spec.sizes:
            if match := _VIDEO_SIZE.fullmatch(str(size)):
                largest = max(largest, int(match[1]) * int(match[2]))
    return max(MIN_REFERENCE_PIXELS, REFERENCE_PIXELS_PER_VIDEO_PIXEL * largest)


def rgb_on_white(image: Image.Image) -> Image.Image:
    """A decoded image as RGB with its transparency flattened onto white. An RGB image is
    returned as it is; the other modes avoid full-size RGBA or 32-bit copies where they can."""
    if image.mode == "I;16":
        # 16-bit greyscale PNG: scaled to 8 bits (Pillow's own conversion clips all but the
        # darkest 256 levels to white).
        image = image.point(lambda value: value / 257 + 0.5).convert("L")
    if image.mode == "P":
        # Blend the palette onto white instead of the image: no RGBA copy of the pixels.
        image.apply_transparency()
        entries = image.getpalette("RGBA") or []
        palette = bytearray()
        for start in range(0, len(entries), 4):
            *colour, alpha = entries[start : start + 4]
            palette += bytes(round(c * alpha / 255 + 255 - alpha) for c in colour)
        image.putpalette(palette, "RGB")
    elif "transparency" in image.info:  # one colour of an L or RGB image marked transparent
        image = image.convert("RGBA")
    if image.mode in ("LA", "RGBA"):
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image)
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def fit_to_size(image: Image.Image, size: str) -> Image.Image:
    """Cover-crop around the centre and resize: exactly the size the provider requires."""
    width, _x, height = size.partition("x")
    return ImageOps.fit(image, (int(width), int(height)), method=Image.Resampling.LANCZOS)
