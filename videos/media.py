"""Our cached media files: what type their bytes are, and serving them with HTTP Range support.

Files live under MEDIA_ROOT, which no public URL maps to: they reach a browser only through the
login-protected view that calls `serve_file`. That view is the only gate; after it, the file is sent
by Django itself or, with MUXWEB_MEDIA_SERVING, handed to the web server in front (nginx's
X-Accel-Redirect into an `internal` location, or X-Sendfile for Apache and lighttpd).
"""

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe

EXTENSIONS = {
    "video/mp4": ".mp4",
    "image/webp": ".webp",
    "image/jpeg": ".jpg",
    "image/png": ".png",
}
CONTENT_TYPES = {ext: content_type for content_type, ext in EXTENSIONS.items()}
CHUNK = 256 * 1024
# ASCII digits only: \d would also take "٣", which int() reads as 3.
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# Enough digits for the size of any file (below 10**18 bytes, an exabyte). A longer number is past
# the end of every file, so it never reaches int(), which is slow on thousands of digits and
# refuses them past 4,300.
MAX_DIGITS = 18
BEYOND_ANY_FILE = 10**MAX_DIGITS
# Short, then asked again: after logout, or once the job is deleted, a shared computer's browser
# must not go on replaying its copy. Only this browser's user may keep it.
CACHE_CONTROL = "private, max-age=60, must-revalidate"


def expected_types(variant: str) -> tuple[str, ...]:
    """What a provider may send for a variant; any image format is fine for the pictures."""
    if variant == "video":
        return ("video/mp4",)
    return ("image/webp", "image/jpeg", "image/png")


def sniff_content_type(path: Path) -> str | None:
    """The type of a file by its first bytes, whatever the provider's header said."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video/mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def _byte_pos(digits: str) -> int:
    """The number, or BEYOND_ANY_FILE when it has more digits than any file's size."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_DIGITS else BEYOND_ANY_FILE


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """The (first, last) byte of a single `bytes=` range; None to serve the whole file (no range,
    one we do not support, or a malformed one); False when the range is unsatisfiable.

    As RFC 9110 has it, a last byte past the end means up to the end, and a suffix longer than
    the file is the whole file; a first byte past the end is unsatisfiable, however long.
    """
    match = _RANGE.fullmatch(header.strip())
    if not match or not any(match.groups()):
        return None
    first, last = match.groups()
    if first == "":
        # A suffix range: the last N bytes.
        length = _byte_pos(last)
        if length == 0:
            return False
        return max(size - length, 0), size - 1
    start = _byte_pos(first)
    end = _byte_pos(last) if last else size - 1
    if start >= size or end < start:
        return False
    return start, min(end, size - 1)


def _read_range(path: Path, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def media_path(path: Path) -> tuple[Path, Path]:
    """The file's real absolute path and its path relative to MEDIA_ROOT.

    Raises FileNotFoundError when it is missing or not a regular file, and SuspiciousFileOperation
    when it (or a symlink on the way) leads outside MEDIA_ROOT: the web server in front would send
    whatever it is pointed at.
    """
    root = Path(settings.MEDIA_ROOT).resolve()
    real = Path(path).resolve(strict=True)
    try:
        relative = real.relative_to(root)
    except ValueError:
        raise SuspiciousFileOperation(f"{path} is outside MEDIA_ROOT") from None
    if not real.is_file():
        raise FileNotFoundError(f"{path} is not a regular file")
    return real, relative


def serve_file(
    request: HttpRequest, path: Path, *, download_name: str | None = None
) -> HttpResponse:
    """The file, sent the way MUXWEB_MEDIA_SERVING says; call it only once access is checked."""
    real, relative = media_path(path)
    content_type = CONTENT_TYPES.get(real.suffix, "application/octet-stream")
    mode = settings.MUXWEB_MEDIA_SERVING
    if mode == "nginx":
        # An empty answer: nginx serves the file from its internal location, Range requests and
        # all, and keeps the Content-Type, Content-Disposition and Cache-Control given here. It
        # URL-decodes the header, so odd characters in a name survive the trip quoted.
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MUXWEB_MEDIA_ACCEL_PREFIX + quote(
            relative.as_posix(), safe="/"
        )
    elif mode == "sendfile":
        # mod_xsendfile (XSendFileUnescape, on by default) and lighttpd URL-decode the path too.
        response = HttpResponse(content_type=content_type)
        response["X-Sendfile"] = quote(str(real), safe="/")
    else:
        response = _django_response(request, real, content_type)
    # In the nginx and sendfile modes the web server adds ETag and Last-Modified, and answers the
    # conditional requests itself.
    response["Cache-Control"] = CACHE_CONTROL
    if download_name:
        response["Content-Disposition"] = content_disposition_header(True, download_name)
    return response


def _if_range_passes(header: str, etag: str, last_modified: int) -> bool:
    """Whether a Range may be honoured under this If-Range (RFC 9110 13.1.5): the validator must
    match exactly; a weak or unreadable one never does, and the whole file is sent instead."""
    header = header.strip()
    if header.startswith('"'):
        return header == etag
    return parse_http_date_safe(header) == last_modified


def _django_response(request: HttpRequest, path: Path, content_type: str) -> HttpResponse:
    """The file, or the byte range the request asks for (206), or 416 when that is out of bounds;
    304 when the browser's copy is still current."""
    stat = path.stat()
    size = stat.st_size
    etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
    last_modified = int(stat.st_mtime)
    response = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if response is not None:
        return _with_validators(response, etag, last_modified)
    range_header = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range")
    if if_range is not None and not _if_range_passes(if_range, etag, last_modified):
        range_header = ""
    byte_range = parse_range(range_header, size) if size else None
    if byte_range is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    elif byte_range is None:
        # FileResponse closes the file when the response is done.
        response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115
        response["Content-Length"] = str(size)
    else:
        start, end = byte_range
        response = StreamingHttpResponse(
            _read_range(path, start, end), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return _with_validators(response, etag, last_modified)


def _with_validators(response: HttpResponse, etag: str, last_modified: int) -> HttpResponse:
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    return response
