"""Everything is behind login, media files too; viewers watch, members create."""

import pytest
from django.urls import reverse

from tests.factories import make_job
from videos.models import VideoJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(member) -> VideoJob:
    return make_job(member, prompt="A shared secret garden", with_files=True)


def urls(job: VideoJob) -> list[tuple[str, str]]:
    return [
        ("get", reverse("videos-gallery")),
        ("get", reverse("videos-gallery-poll") + f"?ids={job.pk}"),
        ("get", reverse("videos-compose-options")),
        ("post", reverse("videos-create")),
        ("get", reverse("videos-detail", args=[job.pk])),
        *[
            ("get", reverse("videos-media", args=[job.pk, v]))
            for v in ("video", "thumbnail", "spritesheet")
        ],
        ("get", reverse("videos-media", args=[job.pk, "video"]) + "?download=1"),
        ("post", reverse("videos-import")),
        ("post", reverse("videos-remix", args=[job.pk])),
        ("post", reverse("videos-retry", args=[job.pk])),
        ("get", reverse("videos-delete", args=[job.pk])),
        ("post", reverse("videos-delete", args=[job.pk])),
        ("get", reverse("admin:index")),
    ]


def test_anonymous_visitor_is_sent_to_login_from_every_page_and_file(client, job):
    for method, url in urls(job):
        response = getattr(client, method)(url, {"prompt": "x"} if method == "post" else None)
        assert response.status_code == 302, url
        assert (
            response["Location"].startswith("/accounts/login/")
            or "/admin/login/" in response["Location"]
        )


def test_health_check_needs_no_login(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("persona", ["viewer", "member", "other_member", "admin"])
def test_every_team_member_sees_the_shared_history_and_its_files(client, job, persona, request):
    client.force_login(request.getfixturevalue(persona))
    assert "A shared secret garden" in client.get(reverse("videos-gallery")).content.decode()
    assert client.get(reverse("videos-detail", args=[job.pk])).status_code == 200
    assert client.get(reverse("videos-media", args=[job.pk, "video"])).status_code == 200


ID_TRICKS = [
    "{pk}%00",
    "%00{pk}",
    "..%2F{pk}",
    "{pk}%2F..",
    "%2e%2e",
    "-{pk}",
    "+{pk}",
    "%20{pk}",
    "{pk}%20",
    "0{pk}",
    "000{pk}",
    "0",
    "{pk}.0",
    "0x{pk}",
    "{pk}e0",
    "%D9%A1",  # ARABIC-INDIC DIGIT ONE
    "%C2%B9",  # SUPERSCRIPT ONE
    "%EF%BC%91",  # FULLWIDTH DIGIT ONE
    "9223372036854775807",  # the largest bigint: a valid id that names no job
    "9223372036854775808",
    "99999999999999999999",
    "9" * 5000,
]
JOB_URLS = ["/videos/{id}/", "/videos/{id}/media/video", "/videos/{id}/delete"]
POST_URLS = ["/videos/{id}/remix", "/videos/{id}/retry", "/videos/{id}/delete"]


@pytest.mark.parametrize("trick", ID_TRICKS)
def test_any_other_spelling_of_a_job_id_is_404(member_client, job, trick):
    job_id = trick.format(pk=job.pk)
    for url in JOB_URLS:
        assert member_client.get(url.format(id=job_id)).status_code == 404, url
    for url in POST_URLS:
        assert member_client.post(url.format(id=job_id)).status_code == 404, url
    assert VideoJob.objects.filter(pk=job.pk).exists()


@pytest.mark.parametrize(
    "variant",
    [
        "secret",
        "VIDEO",
        "Video",
        "video.mp4",
        "video%00.mp4",
        "video%00",
        "video%20",
        "video/",
        "video%2F",
        "..",
        "%2e%2e",
        "..%2F..%2Fsecret_key",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "../../secret_key",
        "reference%2F..%2Fvideo",
        "input_reference",
        "thumbnail.webp",
    ],
)
def test_unknown_or_disguised_variant_is_404_and_nothing_outside_media_is_served(
    member_client, job, settings, variant
):
    (settings.MEDIA_ROOT / "secret_key").write_text("do-not-serve")
    response = member_client.get(f"/videos/{job.pk}/media/{variant}")
    assert response.status_code == 404
    assert b"do-not-serve" not in response.content


def test_trailing_slash_variations(member_client, job):
    response = member_client.get(f"/videos/{job.pk}")
    assert response.status_code == 301, "the canonical address, with its slash"
    assert response["Location"] == reverse("videos-detail", args=[job.pk])
    for url in (
        f"/videos/{job.pk}//",
        f"/videos//{job.pk}/",
        f"/videos/{job.pk}/media/video/",
        f"/videos/{job.pk}/media//video",
        f"/videos/{job.pk}/delete/",
    ):
        assert member_client.get(url).status_code == 404, url
    assert member_client.post(f"/videos/{job.pk}/delete/").status_code == 404
    assert VideoJob.objects.filter(pk=job.pk).exists()


def test_a_stored_file_name_leading_outside_the_media_directory_is_never_served(
    member_client, job, settings
):
    outside = settings.MEDIA_ROOT.parent / "outside.mp4"
    outside.write_bytes(b"private bytes")
    VideoJob.objects.filter(pk=job.pk).update(video="../outside.mp4")
    response = member_client.get(reverse("videos-media", args=[job.pk, "video"]))
    assert response.status_code in (400, 404)
    assert b"private bytes" not in response.content


def test_csrf_is_enforced_on_create(member, catalogue):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post(
        reverse("videos-create"),
        {"prompt": "x", "model": "sora-2", "seconds": "4", "size": "1280x720"},
    )
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()
    assert VideoJob.objects.count() == 0
