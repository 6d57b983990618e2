"""The create form: validated against the model catalogue, errors beside the fields."""

import re

import pytest
from django.urls import reverse

from videos.models import VideoJob

pytestmark = pytest.mark.django_db

VALID = {"prompt": "A fox in the snow", "model": "sora-2", "seconds": "8", "size": "720x1280"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "This field is required."),
        ({"prompt": "x" * 32001}, "prompt", "at most 32000 characters"),
        ({"model": "sora-9"}, "model", "Select a valid choice."),
        ({"size": "1792x1024"}, "size", "makes videos of size 1280x720, 720x1280"),
        ({"seconds": "5"}, "seconds", "Select a valid choice."),
        ({"seconds": "eight"}, "seconds", "Select a valid choice."),
    ],
)
def test_invalid_choice_shows_an_error_beside_its_field_and_creates_nothing(
    member_client, change, field, message
):
    response = member_client.post(reverse("videos-create"), {**VALID, **change})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="error-{field}"' in page
    assert message in page
    assert VideoJob.objects.count() == 0


def test_pro_sizes_are_accepted_for_the_pro_model(member_client, provider):
    response = member_client.post(
        reverse("videos-create"), {**VALID, "model": "sora-2-pro", "size": "1792x1024"}
    )
    assert response.status_code == 302
    job = VideoJob.objects.get()
    assert (job.model, job.size, job.seconds) == ("sora-2-pro", "1792x1024", 8)


def test_htmx_post_with_errors_returns_only_the_composer(member_client):
    response = member_client.post(
        reverse("videos-create"), {**VALID, "prompt": ""}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<section id="composer"')
    assert 'id="error-prompt"' in page


def test_htmx_post_returns_a_fresh_form_the_new_card_and_a_running_poller(member_client):
    response = member_client.post(reverse("videos-create"), VALID, headers={"HX-Request": "true"})
    job = VideoJob.objects.get()
    page = response.content.decode()
    assert f'id="job-{job.pk}"' in page
    assert 'hx-swap-oob="afterbegin:#cards"' in page
    assert 'id="poller" hx-swap-oob="true" hx-get=' in page
    assert re.search(r'<textarea name="prompt"[^>]*>\s*</textarea>', page), "the prompt is cleared"
    assert 'value="720x1280" selected' in page, "the other choices are kept for the next job"
    assert '<p class="prompt" title="A fox in the snow">' in page


def test_model_choice_redraws_sizes_and_seconds_with_a_cost_estimate(member_client):
    url = reverse("videos-compose-options")
    response = member_client.get(url, {"model": "sora-2-pro", "seconds": "12", "size": "720x1280"})
    page = response.content.decode()
    assert 'value="1792x1024"' in page
    assert "$3.60" in page  # 12 s at $0.30
    response = member_client.get(url, {"model": "sora-2", "seconds": "4", "size": "1792x1024"})
    page = response.content.decode()
    assert 'value="1792x1024"' not in page
    assert "$0.40" in page  # size falls back to one sora-2 offers


def test_viewer_cannot_create(client, viewer):
    client.force_login(viewer)
    assert client.post(reverse("videos-create"), VALID).status_code == 403
    assert 'id="composer"' not in client.get(reverse("videos-gallery")).content.decode()
    assert VideoJob.objects.count() == 0
