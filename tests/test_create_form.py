"""The create form: validated against the model catalogue, errors beside the fields."""

import re

import pytest
from django.urls import reverse

from tests.factories import make_job
from videos.models import Status, VideoJob

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
    assert '<p class="prompt" dir="auto" title="A fox in the snow">' in page


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


def test_prompt_of_exactly_32000_characters_is_accepted(member_client):
    response = member_client.post(reverse("videos-create"), {**VALID, "prompt": "x" * 32000})
    assert response.status_code == 302
    assert len(VideoJob.objects.get().prompt) == 32000


@pytest.mark.parametrize("prompt", ["", "   ", "\x00\x07\x1b", "\r\n\t\x0b"])
def test_empty_prompt_or_one_of_only_invisible_characters_is_refused(member_client, prompt):
    response = member_client.post(reverse("videos-create"), {**VALID, "prompt": prompt})
    page = response.content.decode()
    assert 'id="error-prompt"' in page
    assert "This field is required." in page
    assert VideoJob.objects.count() == 0


def test_too_long_prompt_is_refused_in_the_visitors_language(member_client):
    response = member_client.post(
        reverse("videos-create"),
        {**VALID, "prompt": "x" * 32001},
        headers={"Accept-Language": "zh-hans"},
    )
    page = response.content.decode()
    assert 'id="error-prompt"' in page
    assert "32000" in page and "32001" in page
    assert "Ensure this value" not in page, "Django's own translation of the limit"


def test_control_characters_are_removed_and_line_breaks_become_newlines(member_client):
    prompt = "A fox\x00 in\x07 the\x1b[0m snow\x7f\x85\r\nat dusk\rthen\x0bdawn\tend"
    response = member_client.post(reverse("videos-create"), {**VALID, "prompt": prompt})
    assert response.status_code == 302
    assert VideoJob.objects.get().prompt == "A fox in the[0m snow\nat dusk\nthen\ndawn\tend"


def test_limit_counts_the_prompt_as_kept_not_as_sent(member_client):
    # A browser sends each line break of a textarea as CRLF; its maxlength counts it as one.
    prompt = ("x" * 99 + "\r\n") * 320
    response = member_client.post(reverse("videos-create"), {**VALID, "prompt": prompt})
    assert response.status_code == 302
    assert len(VideoJob.objects.get().prompt) == 32000 - 1  # the last newline is stripped


def test_right_to_left_prompt_is_kept_intact_and_shown_with_its_own_direction(
    member_client, member
):
    prompt = "\u200fשועל בשלג \u202bعند الغروب\u202c"
    member_client.post(reverse("videos-create"), {**VALID, "prompt": prompt})
    job = VideoJob.objects.get()
    assert job.prompt == prompt
    gallery = member_client.get(reverse("videos-gallery")).content.decode()
    assert f'<p class="prompt" dir="auto" title="{prompt}">{prompt}</p>' in gallery
    detail = member_client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert f'<h1 class="prompt-full" dir="auto">{prompt}</h1>' in detail
    assert 'dir="auto"' in gallery.split('<textarea name="prompt"')[1].split(">")[0]


def test_remix_prompt_is_cleaned_and_limited_like_the_create_prompt(member_client, member):
    parent = make_job(member, status=Status.COMPLETED, prompt="Parent")
    url = reverse("videos-remix", args=[parent.pk])
    response = member_client.post(url, {"prompt": "x" * 32001})
    assert 'id="error-remix-prompt"' in response.content.decode()
    assert VideoJob.objects.count() == 1
    response = member_client.post(url, {"prompt": "At\x00 night\r\n"})
    assert response.status_code == 302
    assert VideoJob.objects.get(remix_of=parent).prompt == "At night"
