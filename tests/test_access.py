"""Everything is behind login, media files too; viewers watch, members create."""

import pytest
from django.urls import reverse

from videos.models import VideoJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(member, settings, tmp_path) -> VideoJob:
    job = VideoJob.objects.create(
        author=member, model="sora-2", prompt="A shared secret garden", seconds=4, size="1280x720"
    )
    for variant, ext in (("video", ".mp4"), ("thumbnail", ".webp"), ("spritesheet", ".jpg")):
        path = settings.MEDIA_ROOT / f"videos/{job.pk}/{variant}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00" * 100)
        job.asset(variant).name = f"videos/{job.pk}/{variant}{ext}"
    job.save()
    return job


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


def test_unknown_job_variant_and_path_tricks_are_404(member_client, job):
    assert member_client.get(reverse("videos-detail", args=[job.pk + 1000])).status_code == 404
    assert member_client.get(f"/videos/{job.pk}/media/secret").status_code == 404
    assert member_client.get(f"/videos/{job.pk}/media/..%2F..%2Fsecret_key").status_code == 404
    assert member_client.get("/videos/..%2F1/").status_code == 404


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
