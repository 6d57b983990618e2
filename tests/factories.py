"""People in each role and jobs in each state, for tests to start from.

People and hand-made jobs go straight into the database: no provider is asked, no task runs. A
job a test means to have come through the create form is posted through it (`post_create_form`),
and one that should have finished is then polled to the end (`finished_job`).
"""

import itertools
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import GROUPS, Role
from videos.models import Status, VideoJob

# What the create form is filled in with unless a test says otherwise.
CREATE_FORM = {"model": "sora-2", "seconds": "4", "size": "1280x720"}

# Each file `write_files` makes: its name (as downloads name it) and its format's first bytes.
FILES = {
    "video": ("video.mp4", b"\x00\x00\x00\x18ftypmp42"),
    "thumbnail": ("thumbnail.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 "),
    "spritesheet": ("spritesheet.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF"),
    "reference": ("reference.png", b"\x89PNG\r\n\x1a\n"),
}

# Provider ids are unique in the database: every made job gets its own.
_upstream_ids = itertools.count(1)


def make_person(
    username: str, role: Role | str | None = None, *, active: bool = True, **extra
) -> User:
    """An account with `role` ("admin", "member", "viewer", or None for an account in no team
    group), as accounts.roles defines them: an admin is a superuser with the staff flag, members
    and viewers are in their group. `active=False` makes it a deactivated account; `extra` sets
    other User fields. Its password is "pw-" followed by the username."""
    role = Role(role) if role is not None else None
    if role == Role.ADMIN:
        extra = {"is_staff": True, "is_superuser": True, **extra}
    user = User.objects.create_user(username, password="pw-" + username, is_active=active, **extra)
    if role in GROUPS:
        user.groups.add(Group.objects.get(name=GROUPS[role]))
    return user


def make_job(
    author: User | None,
    *,
    status: Status | str = Status.PENDING,
    with_files: bool = False,
    **fields,
) -> VideoJob:
    """A job of `author` in `status`, with what the lifecycle gives a job in that status: a
    provider id once submitted, progress 100 and its files' saving time once completed (pass
    `assets_fetched_at=None` for one whose files are still to be downloaded), an error once
    failed. `fields` set or override any field; `with_files` writes small files for every
    variant and the reference image (see `write_files`)."""
    now = timezone.now()
    values = {"model": "sora-2", "prompt": "A lighthouse at dusk", "seconds": 4, "size": "1280x720"}
    if status in (Status.QUEUED, Status.IN_PROGRESS, Status.COMPLETED):
        values |= {"upstream_id": f"video_factory_{next(_upstream_ids)}", "submitted_at": now}
    if status == Status.COMPLETED:
        values |= {
            "progress": 100,
            "submitted_at": now - timedelta(seconds=30),
            "completed_at": now,
            "assets_fetched_at": now,
        }
    if status == Status.FAILED:
        values |= {"error_code": "moderation_blocked", "error_message": "The prompt was refused."}
    job = VideoJob.objects.create(author=author, status=status, **{**values, **fields})
    if with_files:
        write_files(job)
        job.save()
    return job


def write_files(job: VideoJob) -> None:
    """Small files in the media directory for every variant and the reference image, each
    beginning like its format, and the job's fields naming them (the caller saves the job)."""
    for variant, (name, head) in FILES.items():
        relative = f"videos/{job.pk}/{name}"
        path = Path(settings.MEDIA_ROOT) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(head.ljust(64, b"\x00"))
        job.asset(variant).name = relative


def post_create_form(client: Client, prompt: str, **overrides) -> VideoJob:
    """Post the create form as `client`, filled in with CREATE_FORM and `overrides`, and return
    the job it made. In a transactional test its submit task has run by then."""
    newest = VideoJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    data = {"prompt": prompt, **CREATE_FORM, **overrides}
    response = client.post(reverse("videos-create"), data)
    assert response.status_code == 302, response.content[:500]
    return VideoJob.objects.get(pk__gt=newest)


def finished_job(client: Client, prompt: str, **overrides) -> VideoJob:
    """A job made through the create form and polled until it needs no more work: completed
    with its files, or failed."""
    # Imported here: conftest imports this module for its fixtures' people.
    from tests.conftest import run_until_settled

    return run_until_settled(post_create_form(client, prompt, **overrides))
