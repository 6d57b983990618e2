"""The create form's reference image: validated, fitted to the video's size, re-encoded, sent."""

import io

import av
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from tests.conftest import run_until_settled
from videos.models import Status, VideoJob

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
