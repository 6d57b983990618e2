"""HTML and script in anything a user or the provider wrote are shown as text, everywhere.

The payloads go in through the same paths as real data (the create form, the provider's answer,
the login form) and every page, partial and message that shows them is checked.
"""

import re

import pytest
from django.urls import reverse

from tests.factories import make_job, make_person, post_create_form
from videos import lifecycle
from videos.models import Status, VideoJob

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOAD = SCRIPT + ATTRIBUTE
# What would run if any of it reached a page unescaped.
LIVE = ("<script>alert(1)", "<img src=x onerror")
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
ESCAPED_ATTRIBUTE = "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"


def assert_inert(page: str, where: str) -> None:
    for live in LIVE:
        assert live not in page, f"{live!r} unescaped in {where}"


@pytest.fixture
def mallory(catalogue):
    """A member whose very name is a payload."""
    return make_person(ATTRIBUTE, "member")


@pytest.fixture
def jobs(client, mallory) -> dict[str, VideoJob]:
    """Mallory's jobs, made through the create form, then told by the provider how they went."""
    client.force_login(mallory)
    failed = post_create_form(client, PAYLOAD)
    running = post_create_form(client, "running " + PAYLOAD)
    failed.upstream_id = "video_payload"
    lifecycle.apply_upstream(
        failed, {"status": "failed", "error": {"code": ATTRIBUTE, "message": PAYLOAD}}
    )
    VideoJob.objects.filter(pk=running.pk).update(
        status=Status.IN_PROGRESS, error_code="retrying", error_message=PAYLOAD, fetch_error=PAYLOAD
    )
    remix = make_job(mallory, status=Status.COMPLETED, prompt="remix " + PAYLOAD, remix_of=failed)
    return {"failed": failed, "running": running, "remix": remix}


def test_team_pages_and_partials_show_payloads_as_text(client, mallory, viewer, jobs):
    failed, running = jobs["failed"], jobs["running"]
    detail = reverse("videos-detail", args=[failed.pk])
    htmx = {"HX-Request": "true"}
    for user in (mallory, viewer):
        client.force_login(user)
        pages = {
            "gallery": client.get(reverse("videos-gallery")),
            "gallery search": client.get(reverse("videos-gallery"), {"q": PAYLOAD}),
            "gallery results": client.get(
                reverse("videos-gallery"),
                {"author": str(mallory.pk)},
                headers={**htmx, "HX-Target": "results"},
            ),
            "poll": client.get(reverse("videos-gallery-poll"), {"ids": running.pk, "v": "old"}),
            "job page": client.get(detail),
            "job status": client.get(detail, headers={**htmx, "HX-Target": "job-status"}),
            "running job": client.get(reverse("videos-detail", args=[running.pk])),
            "remix": client.get(reverse("videos-detail", args=[jobs["remix"].pk])),
        }
        for where, response in pages.items():
            assert response.status_code == 200, where
            assert_inert(response.content.decode(), where)
        assert ESCAPED_SCRIPT in pages["gallery"].content.decode(), "the prompt is on the page"
        assert ESCAPED_ATTRIBUTE in pages["gallery"].content.decode(), "so is its author"
        job_page = pages["job page"].content.decode()
        title = re.search(r"<title>(.*?)</title>", job_page, re.S).group(1)
        assert title.startswith(f"#{failed.pk} &lt;script&gt;alert(1)")
        assert job_page.count(ESCAPED_SCRIPT) >= 2, "the prompt and the provider's message"
        assert ESCAPED_ATTRIBUTE in job_page, "the provider's error code"
        running_page = pages["running job"].content.decode()
        assert running_page.count(ESCAPED_SCRIPT) >= 3, "prompt, provider trouble, download note"


def test_forms_that_show_a_payload_again_escape_it(client, mallory, jobs):
    client.force_login(mallory)
    failed = jobs["failed"]
    bad_size = {"prompt": PAYLOAD, "model": "sora-2", "seconds": "4", "size": "1x1"}
    pages = {
        "duplicate": client.get(reverse("videos-gallery"), {"duplicate": failed.pk}),
        "create errors": client.post(reverse("videos-create"), bad_size),
        "create errors (htmx)": client.post(
            reverse("videos-create"), bad_size, headers={"HX-Request": "true"}
        ),
        "update choices": client.post(reverse("videos-create"), {**bad_size, "refresh": "1"}),
        "delete confirmation": client.get(reverse("videos-delete", args=[failed.pk])),
    }
    for where, response in pages.items():
        assert response.status_code == 200, where
        page = response.content.decode()
        assert_inert(page, where)
        assert ESCAPED_SCRIPT in page, where
    created = client.post(
        reverse("videos-create"),
        {**bad_size, "size": "1280x720"},
        headers={"HX-Request": "true"},
    )
    assert_inert(created.content.decode(), "the new card")
    assert ESCAPED_SCRIPT in created.content.decode()


def test_remix_form_errors_escape_the_prompt(client, mallory, catalogue):
    client.force_login(mallory)
    parent = make_job(mallory, status=Status.COMPLETED, prompt="Parent")
    response = client.post(
        reverse("videos-remix", args=[parent.pk]), {"prompt": PAYLOAD + "x" * 32_000}
    )
    page = response.content.decode()
    assert 'id="error-remix-prompt"' in page
    assert_inert(page, "remix errors")
    assert ESCAPED_SCRIPT in page


def test_a_providers_html_error_page_in_a_message_is_text(
    client, admin, provider, django_capture_on_commit_callbacks
):
    provider.inject("list", "502", times=None)
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):  # the import task, run inline
        client.post(reverse("videos-import"))
    response = client.get(reverse("videos-gallery"))
    page = response.content.decode()
    assert "The import stopped" in page
    assert "&lt;h1&gt;502 Bad Gateway&lt;/h1&gt;" in page
    assert "<h1>502 Bad Gateway</h1>" not in page


def test_login_page_escapes_what_was_typed_and_where_it_leads(client, db):
    response = client.post(
        reverse("login") + "?next=" + PAYLOAD, {"username": PAYLOAD, "password": "x"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'class="form-error"' in page
    assert_inert(page, "login")
    assert ESCAPED_SCRIPT in page


def test_admin_lists_and_pages_escape_prompts_and_names(client, admin, mallory, jobs):
    client.force_login(admin)
    failed = jobs["failed"]
    pages = {
        "job list": client.get(reverse("admin:videos_videojob_changelist")),
        "job search": client.get(reverse("admin:videos_videojob_changelist"), {"q": PAYLOAD}),
        "job": client.get(reverse("admin:videos_videojob_change", args=[failed.pk])),
        "user list": client.get(reverse("admin:auth_user_changelist")),
        "user": client.get(reverse("admin:auth_user_change", args=[mallory.pk])),
    }
    for where, response in pages.items():
        assert response.status_code == 200, where
        assert_inert(response.content.decode(), where)
    assert ESCAPED_SCRIPT in pages["job"].content.decode()
    assert ESCAPED_ATTRIBUTE in pages["user list"].content.decode()
