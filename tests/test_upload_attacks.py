"""Hostile reference images: refused beside the field, or kept only as a clean re-encoded PNG.

The everyday cases (wrong size, text file, GIF, cut PNG, a 100-megapixel bomb) are in
test_reference_image.py; these are the files made to fool a server.
"""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, PngImagePlugin

from tests.conftest import ROOT
from videos.images import max_reference_pixels
from videos.models import ModelSpec, VideoJob

pytestmark = pytest.mark.django_db

FORM = {"prompt": "Start here", "model": "sora-2", "seconds": "4", "size": "1280x720"}
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def encoded(fmt: str, size: tuple[int, int] = (1280, 720), mode: str = "RGB", **params) -> bytes:
    buffer = io.BytesIO()
    colour = 90 if mode in ("1", "L", "I;16") else (90, 30, 200)
    Image.new(mode, size, colour).save(buffer, fmt, **params)
    return buffer.getvalue()


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Main-Class: Evil\n")
        archive.writestr("Evil.class", b"\xca\xfe\xba\xbe" + b"\x00" * 64)
    return buffer.getvalue()


def upload(content: bytes, name: str = "ref.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def upload_dir(settings, tmp_path) -> Path:
    """Where Django spools large uploads: it must be empty again after every request."""
    path = tmp_path / "uploads"
    path.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(path)
    return path


@pytest.fixture
def post(member_client, provider, settings, upload_dir, django_capture_on_commit_callbacks):
    """Post the create form with a file; returns the response and the queued tasks, and checks
    that nothing of the request stays behind in the spool directory."""
    upstream = len(provider.jobs())

    def post(file, **extra):
        with django_capture_on_commit_callbacks() as callbacks:
            response = member_client.post(
                reverse("videos-create"), {**FORM, "input_reference": file, **extra}
            )
        assert list(upload_dir.iterdir()) == [], "the spooled upload is gone"
        assert len(provider.jobs()) == upstream, "nothing sent while the test runs"
        return response, callbacks

    return post


def assert_refused(response, callbacks, settings, message: str) -> None:
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="error-input_reference"' in page
    assert message in page
    assert VideoJob.objects.count() == 0
    assert callbacks == [], "no task queued"
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*")), "no file kept"


def stored_reference(settings) -> bytes:
    job = VideoJob.objects.get()
    assert job.input_reference.name == f"videos/{job.pk}/reference.png"
    stored = (Path(settings.MEDIA_ROOT) / job.input_reference.name).read_bytes()
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (1280, 720), "RGB")
    return stored


@pytest.mark.parametrize(
    ("content", "payload"),
    [
        (encoded("PNG") + HTML, HTML),
        (encoded("JPEG") + zip_archive(), b"META-INF"),
        (encoded("WEBP") + HTML, HTML),
    ],
    ids=["png-then-html", "jpeg-then-zip", "webp-then-html"],
)
def test_data_hidden_after_the_image_does_not_survive_the_re_encoding(
    post, settings, content, payload
):
    response, callbacks = post(upload(content))
    assert response.status_code == 302
    assert len(callbacks) == 1
    assert payload not in stored_reference(settings)


def test_html_in_a_png_text_chunk_does_not_survive_the_re_encoding(post, settings):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", HTML.decode())
    info.add_itxt("XML:com.adobe.xmp", HTML.decode())
    response, _callbacks = post(upload(encoded("PNG", pnginfo=info)))
    assert response.status_code == 302
    stored = stored_reference(settings)
    assert b"<script>" not in stored
    assert b"tEXt" not in stored and b"iTXt" not in stored


def test_the_file_name_and_declared_type_are_ignored_the_bytes_decide(
    post, member_client, settings
):
    response, _callbacks = post(upload(encoded("PNG"), "evil.html", "text/html"))
    assert response.status_code == 302
    stored_reference(settings)
    job = VideoJob.objects.get()
    served = member_client.get(reverse("videos-media", args=[job.pk, "reference"]))
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("content", "name", "content_type", "message"),
    [
        (encoded("GIF") + zip_archive(), "ref.gif", "image/gif", "Use a JPEG, PNG or WebP image."),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="720">'
            b"<script>alert(1)</script></svg>",
            "ref.svg",
            "image/svg+xml",
            "not an image that can be read",
        ),
        (HTML, "ref.png", "image/png", "not an image that can be read"),
        (encoded("JPEG")[:2000], "cut.jpg", "image/jpeg", "not an image that can be read"),
        (encoded("WEBP")[:60], "cut.webp", "image/webp", "not an image that can be read"),
        (encoded("BMP", (1280, 720)), "ref.bmp", "image/bmp", "Use a JPEG, PNG or WebP image."),
        (encoded("TIFF", (1280, 720)), "ref.png", "image/png", "Use a JPEG, PNG or WebP image."),
        (zip_archive(), "ref.jpg", "image/jpeg", "not an image that can be read"),
    ],
    ids=["gifar", "svg-script", "html-named-png", "cut-jpeg", "cut-webp", "bmp", "tiff", "zip"],
)
def test_files_that_are_not_a_usable_image_are_refused_and_leave_nothing(
    post, settings, content, name, content_type, message
):
    response, callbacks = post(upload(content, name, content_type), fit_reference="on")
    assert_refused(response, callbacks, settings, message)


def test_more_pixels_than_allowed_is_refused_before_decoding(post, settings):
    # 41 megapixels: under Pillow's own bomb limit, over ours; a tiny file.
    content = encoded("PNG", (6400, 6400), mode="1")
    assert len(content) < 100_000
    response, callbacks = post(upload(content), fit_reference="on")
    assert_refused(response, callbacks, settings, "too many pixels")


# Runs in a fresh process: Pillow's pixel buffers are invisible to tracemalloc, the peak resident
# size is not. Prints how many kilobytes the peak grew by, and whether the image was refused.
MEASURE_OPENING = """
import resource, sys
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import ValidationError
from videos.forms import open_reference_image
upload = SimpleUploadedFile("ref.png", sys.stdin.buffer.read())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    open_reference_image(upload, int(sys.argv[1]))
    refused = False
except ValidationError:
    refused = True
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, refused)
"""


def test_sixteen_bit_png_of_huge_dimensions_is_refused_before_decoding(post, settings, catalogue):
    # 36 megapixels, under the old fixed limit of 40: 16-bit greyscale decodes to 72 MB, and
    # to 144 MB more as RGB, from a file of under 100 KB.
    content = encoded("PNG", (6000, 6000), mode="I;16")
    assert len(content) < 100_000
    limit = max_reference_pixels(catalogue)
    assert limit < 6000 * 6000 / 4, "far over the limit, not just over it"
    response, callbacks = post(upload(content), fit_reference="on")
    assert_refused(response, callbacks, settings, "too many pixels")

    measured = subprocess.run(
        [sys.executable, "-c", MEASURE_OPENING, str(limit)],
        input=content,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "muxweb.settings"},
    )
    assert measured.returncode == 0, measured.stderr.decode()
    growth_kb, refused = measured.stdout.decode().split()
    assert refused == "True"
    assert int(growth_kb) < 40 * 1024, "the image was never decoded"


def test_file_over_the_limit_is_refused_and_its_spooled_copy_removed(post, settings):
    content = encoded("PNG") + b"\x00" * (20 * 1024 * 1024)
    response, callbacks = post(upload(content))
    assert_refused(response, callbacks, settings, "larger than 20 MB")


def test_wrong_size_without_crop_is_refused_for_every_format(post, settings):
    for fmt in ("JPEG", "PNG", "WEBP"):
        response, callbacks = post(upload(encoded(fmt, (720, 1280))))
        assert_refused(response, callbacks, settings, "The image is 720x1280")


def test_a_model_without_reference_images_refuses_one(post, settings):
    ModelSpec.objects.filter(name="sora-2").update(can_reference=False)
    response, callbacks = post(upload(encoded("PNG")))
    assert_refused(response, callbacks, settings, "takes no reference image")


def test_transparent_and_greyscale_images_become_plain_rgb(post, settings):
    response, _callbacks = post(upload(encoded("PNG", mode="RGBA")))
    assert response.status_code == 302
    stored_reference(settings)
    VideoJob.objects.all().delete()
    response, _callbacks = post(upload(encoded("JPEG", mode="L")))
    assert response.status_code == 302
    stored_reference(settings)


def test_a_body_over_the_request_limit_is_refused_before_it_is_read(
    member_client, settings, upload_dir
):
    settings.MUXWEB_MAX_REQUEST_BYTES = 1024 * 1024
    huge = upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024 * 1024))
    response = member_client.post(reverse("videos-create"), {**FORM, "input_reference": huge})
    assert response.status_code == 400
    assert "at most 20 MB" in response.content.decode()
    assert not VideoJob.objects.exists()
    assert not list(upload_dir.iterdir()), "nothing was spooled to disk"
