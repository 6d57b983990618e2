"""The create form's reference image: validated, fitted to the video's size, re-encoded, sent."""

import io

import av
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from tests.conftest import run_until_settled
from videos.models import ModelSpec, Status, VideoJob

pytestmark = pytest.mark.django_db(transaction=True)

FORM = {"prompt": "Start here", "model": "sora-2", "seconds": "4", "size": "1280x720"}


def image_file(
    width: int, height: int, fmt: str = "PNG", colour=(220, 20, 20)
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, fmt)
    return SimpleUploadedFile(
        f"ref.{fmt.lower()}", buffer.getvalue(), content_type=f"image/{fmt.lower()}"
    )


def post(client, **extra):
    return client.post(reverse("videos-create"), {**FORM, **extra})


def test_reference_of_the_right_size_becomes_the_videos_first_frame(member_client, settings):
    response = post(member_client, input_reference=image_file(1280, 720, "JPEG"))
    assert response.status_code == 302
    job = VideoJob.objects.get()
    stored = settings.MEDIA_ROOT / job.input_reference.name
    with Image.open(stored) as image:
        assert (image.format, image.size) == ("PNG", (1280, 720)), "re-encoded, never as uploaded"
    job = run_until_settled(job)
    assert job.status == Status.COMPLETED
    with av.open(str(settings.MEDIA_ROOT / job.video.name)) as container:
        frame = next(container.decode(video=0)).to_image().resize((16, 9))
    red, green, blue = frame.convert("RGB").getpixel((8, 6))
    assert red > 150 and green < 90 and blue < 90, "the provider received our red image"


def test_wrong_size_without_fit_is_refused_beside_the_field(member_client):
    response = post(member_client, input_reference=image_file(800, 600))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="error-input_reference"' in page
    assert "The image is 800x600 but the video is 1280x720" in page
    assert VideoJob.objects.count() == 0


def test_wrong_size_with_fit_is_cropped_and_resized_and_accepted(member_client, settings, provider):
    response = post(member_client, input_reference=image_file(800, 800), fit_reference="on")
    assert response.status_code == 302
    job = VideoJob.objects.get()
    with Image.open(settings.MEDIA_ROOT / job.input_reference.name) as image:
        assert image.size == (1280, 720)
    assert job.upstream_id and job.status != Status.FAILED, (job.error_code, job.error_message)


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile("notes.txt", b"hello, not an image", content_type="text/plain"),
            "not an image",
        ),
        (image_file(1280, 720, "GIF"), "Use a JPEG, PNG or WebP image."),
        (
            SimpleUploadedFile(
                "cut.png", image_file(1280, 720).read()[:300], content_type="image/png"
            ),
            "not an image",
        ),
    ],
)
def test_unreadable_or_wrong_format_uploads_get_a_form_error(member_client, upload, message):
    response = post(member_client, input_reference=upload, fit_reference="on")
    page = response.content.decode()
    assert 'id="error-input_reference"' in page
    assert message in page
    assert VideoJob.objects.count() == 0


def test_decompression_bomb_is_refused_without_decoding_it(member_client):
    buffer = io.BytesIO()
    Image.new("1", (10000, 10000)).save(buffer, "PNG")  # tiny file, 100 million pixels
    upload = SimpleUploadedFile("bomb.png", buffer.getvalue(), content_type="image/png")
    response = post(member_client, input_reference=upload, fit_reference="on")
    assert "too many pixels" in response.content.decode()
    assert VideoJob.objects.count() == 0


def test_limit_on_pixels_follows_the_largest_video_in_the_catalogue(member_client):
    def upload() -> SimpleUploadedFile:
        buffer = io.BytesIO()
        Image.new("1", (3000, 3000), 1).save(buffer, "PNG")  # 9 megapixels, a small file
        return SimpleUploadedFile("ref.png", buffer.getvalue(), content_type="image/png")

    # The largest video so far is 1792x1024: four times its pixels is 7.3 megapixels.
    response = post(member_client, input_reference=upload(), fit_reference="on")
    assert "too many pixels" in response.content.decode()
    assert VideoJob.objects.count() == 0

    ModelSpec.objects.create(
        name="sora-3", sizes=["3840x2160"], seconds=[4], prices={"3840x2160": "1.00"}, position=2
    )
    response = post(member_client, input_reference=upload(), fit_reference="on")
    assert response.status_code == 302
    assert VideoJob.objects.count() == 1


def test_a_phone_photo_larger_than_needed_is_decoded_smaller_not_refused(member_client, settings):
    # 12 megapixels, over the limit of 7.3: a JPEG is decoded at half its size instead.
    response = post(
        member_client, input_reference=image_file(4032, 3024, "JPEG"), fit_reference="on"
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = VideoJob.objects.get()
    with Image.open(settings.MEDIA_ROOT / job.input_reference.name) as image:
        assert image.size == (1280, 720)
        red, green, blue = image.getpixel((640, 360))
        assert red > 200 and green < 40 and blue < 40


def png_16_bit_grey() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("I;16", (1280, 720), 32768).save(buffer, "PNG")  # mid-grey on a 0-65535 scale
    return SimpleUploadedFile("grey.png", buffer.getvalue(), content_type="image/png")


def png_palette_with_transparency() -> SimpleUploadedFile:
    image = Image.new("P", (1280, 720), 0)
    image.putpalette([0, 0, 0, 220, 20, 20])  # entry 0 (black) is the transparent one
    image.paste(1, (640, 0, 1280, 720))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    return SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")


def jpeg_cmyk() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("CMYK", (1280, 720), (0, 255, 255, 0)).save(buffer, "JPEG")  # magenta and yellow ink
    return SimpleUploadedFile("print.jpg", buffer.getvalue(), content_type="image/jpeg")


@pytest.mark.parametrize(
    ("upload", "pixels"),
    [
        (png_16_bit_grey, {(640, 360): (128, 128, 128)}),
        (png_palette_with_transparency, {(10, 360): (255, 255, 255), (1270, 360): (220, 20, 20)}),
        (jpeg_cmyk, {(640, 360): (255, 0, 0)}),
    ],
    ids=["16-bit-grey-png", "palette-png-with-transparency", "cmyk-jpeg"],
)
def test_sixteen_bit_palette_and_cmyk_images_are_kept_in_the_colours_they_show(
    member_client, settings, upload, pixels
):
    response = post(member_client, input_reference=upload())
    assert response.status_code == 302
    job = VideoJob.objects.get()
    with Image.open(settings.MEDIA_ROOT / job.input_reference.name) as stored:
        assert stored.mode == "RGB"
        for xy, expected in pixels.items():
            actual = stored.getpixel(xy)
            assert all(abs(a - e) <= 3 for a, e in zip(actual, expected, strict=True)), (xy, actual)


def test_reference_is_shown_on_the_job_page_behind_login(member_client):
    post(member_client, input_reference=image_file(1280, 720))
    job = VideoJob.objects.get()
    url = reverse("videos-media", args=[job.pk, "reference"])
    assert url in member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert member_client.get(url)["Content-Type"] == "image/png"
    assert Client().get(url).status_code == 302


def test_retry_keeps_the_reference(member_client):
    post(member_client, input_reference=image_file(1280, 720), prompt="Blocked [fail]")
    failed = run_until_settled(VideoJob.objects.get())
    member_client.post(reverse("videos-retry", args=[failed.pk]))
    again = VideoJob.objects.exclude(pk=failed.pk).get()
    assert again.input_reference and again.input_reference.name != failed.input_reference.name
