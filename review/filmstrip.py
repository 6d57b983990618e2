"""Scrubbing a card and the job page's filmstrip: how a job's spritesheet is laid out, and the
moment of the video each of its frames shows.

muxweb makes its spritesheets like the simulator's (videos.derive): ten frames spread over the
video, 256-px tiles, five columns. A provider's sheet may be laid out otherwise (the API says
nothing of it), so its grid is read from the picture's size and the video's shape.
"""

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from videos.derive import SPRITE_COLUMNS, SPRITE_TILE_WIDTH, SPRITE_TILES
from videos.models import VideoJob

# The most columns or rows a provider's sheet is taken to have.
MAX_GRID = 12
# A video of unknown shape is taken to be landscape.
DEFAULT_ASPECT = 16 / 9


@dataclass(frozen=True)
class SpriteLayout:
    """A spritesheet's grid: `tiles` frames, row by row, in `columns` x `rows` cells."""

    columns: int
    rows: int
    tiles: int


MUXWEB_LAYOUT = SpriteLayout(
    columns=SPRITE_COLUMNS, rows=math.ceil(SPRITE_TILES / SPRITE_COLUMNS), tiles=SPRITE_TILES
)


@dataclass(frozen=True)
class Frame:
    """One frame of the filmstrip: its place in the sheet and the moment it shows."""

    index: int
    column: int
    row: int
    seconds: float

    @property
    def label(self) -> str:
        return timecode(self.seconds)


def aspect_of(job: VideoJob) -> float:
    """The video's width over its height, from its size ("1280x720")."""
    width, _x, height = job.size.partition("x")
    try:
        aspect = int(width) / int(height)
    except (ValueError, ZeroDivisionError):
        return DEFAULT_ASPECT
    return aspect if aspect > 0 else DEFAULT_ASPECT


def sprite_layout(job: VideoJob) -> SpriteLayout | None:
    """The grid of the job's spritesheet, or None if it has none.

    A sheet 256-px tiles wide is muxweb's layout (or one like it with other counts): its columns
    are its width over 256, its rows its height over a tile's. Any other sheet gets the smallest
    grid whose shape, with tiles of the video's shape, is nearest the picture's. A picture that
    cannot be read is taken to be muxweb's layout.
    """
    if not job.spritesheet:
        return None
    size = _picture_size(Path(settings.MEDIA_ROOT) / job.spritesheet.name)
    if size is None:
        return MUXWEB_LAYOUT
    width, height = size
    aspect = aspect_of(job)
    if width % SPRITE_TILE_WIDTH == 0:
        columns = width // SPRITE_TILE_WIDTH
        rows = max(1, round(height / (SPRITE_TILE_WIDTH / aspect)))
    else:
        # width / height = (columns * tile) / (rows * tile / aspect): columns / rows = this.
        shape = width / (height * aspect)
        columns, rows = min(
            ((c, r) for c in range(1, MAX_GRID + 1) for r in range(1, MAX_GRID + 1)),
            key=lambda grid: (round(abs(grid[0] / grid[1] - shape) / shape, 3), grid[0] * grid[1]),
        )
    if (columns, rows) == (MUXWEB_LAYOUT.columns, MUXWEB_LAYOUT.rows):
        return MUXWEB_LAYOUT
    return SpriteLayout(columns=columns, rows=rows, tiles=columns * rows)


def frames(job: VideoJob, layout: SpriteLayout) -> list[Frame]:
    """Each frame of the sheet with the moment it shows: frame i of n is (i + 0.5) / n of the
    way through the video, as videos.derive and the simulator pick them."""
    return [
        Frame(
            index=index,
            column=index % layout.columns,
            row=index // layout.columns,
            seconds=job.seconds * (index + 0.5) / layout.tiles,
        )
        for index in range(layout.tiles)
    ]


def timecode(seconds: float) -> str:
    """0:01.2: minutes, seconds and tenths."""
    tenths = round(seconds * 10)
    minutes, tenths = divmod(tenths, 600)
    return f"{minutes}:{tenths // 10:02d}.{tenths % 10}"


def _picture_size(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return _size_of(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _size_of(path: str, _mtime_ns: int, _bytes: int) -> tuple[int, int] | None:
    """The picture's size from its header (the pixels are not read); cached while the file is
    unchanged, so a gallery page costs a stat per card."""
    try:
        with Image.open(path) as picture:
            width, height = picture.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    return (width, height) if width > 0 and height > 0 else None
