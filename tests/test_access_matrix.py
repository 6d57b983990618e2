"""Every URL pattern, walked as every persona, against an explicit table of expected statuses.

A new URL pattern fails `test_every_url_pattern_has_a_row` until it gets a row here: access is
decided deliberately, never by accident. Each request is rolled back (a delete deletes, an import
imports), so every persona meets the same data.
"""

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task

from accounts.models import Action, ActivityEntry
from review import sharing
from review.comments import add_comment
from review.models import Board, BoardItem
from tests.factories import make_job, make_person, write_files
from videos import exports
from videos.models import VARIANTS, ModelSpec, Status, VideoJob

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "outsider", "viewer", "member", "other_member", "admin")
CSRF_TOKEN = "m" * 32  # a CSRF secret as Django makes them: 32 letters and digits
# The one view that takes a POST without a CSRF token: the provider signs its webhooks instead.
CSRF_EXEMPT = {"webhooks-videos"}


def walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    """Every URL pattern with its key: the namespaced name, or the full route if unnamed."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace or ""]))
            yield from walk(entry.url_patterns, route, inner)
        elif entry.name:
            yield ":".join(filter(None, [namespace, entry.name])), entry
        else:
            yield route, entry


@dataclass
class World:
    """The rows every URL is built from: one of each kind, all belonging to `member`."""

    job: VideoJob
    failed_job: VideoJob
    users: dict[str, object]
    ids: dict[str, object]


@dataclass
class Row:
    """Where a pattern is reached, and what each persona gets for a GET and for a POST that
    carries a CSRF token. "L" is a redirect to a login page."""

    url: Callable[[World], str]
    get: str
    post: str


def admin_only(get: str, post: str) -> dict[str, str]:
    """An admin view: everyone else is sent to a login page."""
    return {"get": "L L L L L " + get, "post": "L L L L L " + post}


def url(name: str, *args: Callable[[World], object]) -> Callable[[World], str]:
    return lambda world: reverse(name, args=[arg(world) for arg in args])


def job_id(world: World) -> int:
    """Member's completed job, with all its files."""
    return world.job.pk


def obj(key: str) -> Callable[[World], object]:
    return lambda world: world.ids[key]


def admin_model(app: str, model: str, key: str, statuses: dict[str, dict[str, str]]) -> dict:
    """The six URLs of one model's admin, each with its own statuses for the admin."""
    prefix = f"admin:{app}_{model}"
    rows = {
        f"{prefix}_changelist": Row(url(f"{prefix}_changelist"), **statuses["list"]),
        f"{prefix}_add": Row(url(f"{prefix}_add"), **statuses["add"]),
    }
    for action in ("history", "delete", "change"):
        rows[f"{prefix}_{action}"] = Row(url(f"{prefix}_{action}", obj(key)), **statuses[action])
    # Unnamed: the object's bare URL, which redirects to its change page.
    rows[f"admin/{app}/{model}/<path:object_id>/"] = Row(
        lambda world: f"/admin/{app}/{model}/{world.ids[key]}/", **statuses["redirect"]
    )
    return rows


# What an admin gets on each of a model's admin URLs, for a model admins edit ...
EDITABLE = {
    "list": admin_only("200", "200"),
    "add": admin_only("200", "200"),
    "history": admin_only("200", "200"),
    "delete": admin_only("200", "200"),
    "change": admin_only("200", "200"),
    "redirect": admin_only("302", "302"),
}
# ... for one whose rows only the application writes (posting its change form changes nothing),
VIEW_ONLY = {**EDITABLE, "add": admin_only("403", "403"), "change": admin_only("200", "302")}
# ... and for django-q2's queue, whose rows may be edited but not added by hand.
QUEUE = {**EDITABLE, "add": admin_only("403", "403")}
# ... and for the activity log and the people (managed on the Team page), which nobody may add
# to, change or delete from in the admin.
READ_ONLY = {
    **EDITABLE,
    "add": admin_only("403", "403"),
    "delete": admin_only("403", "403"),
    "change": admin_only("200", "403"),
}

# Columns: anonymous, outsider, viewer, member, other member, admin. The job is member's.
EXPECTED: dict[str, Row] = {
    "videos-gallery": Row(
        url("videos-gallery"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-gallery-poll": Row(
        url("videos-gallery-poll"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-export": Row(
        url("videos-export"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-create": Row(
        url("videos-create"), get="L 405 405 405 405 405", post="L 403 403 200 200 200"
    ),
    "videos-import": Row(
        url("videos-import"), get="L 405 405 405 405 405", post="L 403 403 403 403 302"
    ),
    # Admins only: the staff flag alone is not enough (test_the_staff_flag_alone_does_not_import).
    "videos-import-status": Row(
        url("videos-import-status"), get="L 403 403 403 403 200", post="L 405 405 405 405 405"
    ),
    "videos-compose-options": Row(
        url("videos-compose-options"), get="L 403 403 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-detail": Row(
        url("videos-detail", job_id), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-media": Row(
        url("videos-media", job_id, lambda world: "video"),
        get="L 403 200 200 200 200",
        post="L 405 405 405 405 405",
    ),
    "videos-remix": Row(
        url("videos-remix", job_id), get="L 405 405 405 405 405", post="L 403 403 200 200 200"
    ),
    "videos-retry": Row(
        url("videos-retry", lambda world: world.failed_job.pk),
        get="L 405 405 405 405 405",
        post="L 403 403 302 302 302",
    ),
    "videos-delete": Row(
        url("videos-delete", job_id), get="L 403 403 200 403 200", post="L 403 403 302 403 302"
    ),
    # Bulk actions: counting what matches is for the whole team (it leads to a zip); moving a
    # selection to the trash for those who may delete (an empty selection: "nothing to move").
    "videos-select-all": Row(
        url("videos-select-all"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-bulk-trash": Row(
        url("videos-bulk-trash"), get="L 405 405 405 405 405", post="L 403 403 200 200 200"
    ),
    # The trash: the whole team sees it; the author or an admin restores; admins empty it.
    "videos-trash": Row(
        url("videos-trash"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-restore": Row(
        url("videos-restore", obj("trashed")),
        get="L 405 405 405 405 405",
        post="L 403 403 302 403 302",
    ),
    "videos-trash-empty": Row(
        url("videos-trash-empty"), get="L 403 403 403 403 200", post="L 403 403 403 403 302"
    ),
    # Zip exports: anyone in the team asks for one (an empty request is refused back to the
    # gallery); an export is its requester's alone, not even an admin's to see.
    "videos-zip-exports": Row(
        url("videos-zip-exports"), get="L 403 200 200 200 200", post="L 403 302 302 302 302"
    ),
    "videos-zip-export": Row(
        url("videos-zip-export", obj("export")),
        get="L 403 404 200 404 404",
        post="L 405 405 405 405 405",
    ),
    "videos-zip-export-download": Row(
        url("videos-zip-export-download", obj("export")),
        get="L 403 404 200 404 404",
        post="L 405 405 405 405 405",
    ),
    # Review. Comments: the whole team writes them; the author edits; the author or an admin
    # deletes (the comment is member's). "For you" is everyone's own.
    "review-comment-add": Row(
        url("review-comment-add", job_id), get="L 405 405 405 405 405", post="L 403 302 302 302 302"
    ),
    "review-comment": Row(
        url("review-comment", obj("comment")),
        get="L 403 302 302 302 302",
        post="L 405 405 405 405 405",
    ),
    "review-comment-edit": Row(
        url("review-comment-edit", obj("comment")),
        get="L 403 403 200 403 403",
        post="L 403 403 422 403 403",
    ),
    "review-comment-delete": Row(
        url("review-comment-delete", obj("comment")),
        get="L 405 405 405 405 405",
        post="L 403 403 302 403 302",
    ),
    "review-for-you": Row(
        url("review-for-you"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "review-mentions-poll": Row(
        url("review-mentions-poll"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    # Stars are everyone's own; a title and note are the author's (member) or an admin's; a
    # review is any member's or admin's (posting no state is a 400).
    "review-star": Row(
        url("review-star", job_id), get="L 405 405 405 405 405", post="L 403 302 302 302 302"
    ),
    "review-describe": Row(
        url("review-describe", job_id), get="L 403 403 200 403 200", post="L 403 403 302 403 302"
    ),
    "review-set": Row(
        url("review-set", job_id), get="L 405 405 405 405 405", post="L 403 403 400 400 400"
    ),
    # Boards: the whole team sees them; members and admins make them and change what is on them;
    # renaming and deleting is for the board's maker (member) or an admin.
    "review-boards": Row(
        url("review-boards"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "review-board-create": Row(
        url("review-board-create"), get="L 405 405 405 405 405", post="L 403 403 400 400 400"
    ),
    "review-boards-add-selection": Row(
        url("review-boards-add-selection"),
        get="L 405 405 405 405 405",
        post="L 403 403 200 200 200",
    ),
    "review-board": Row(
        url("review-board", obj("board")), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "review-board-move": Row(
        url("review-board-move", obj("board")),
        get="L 405 405 405 405 405",
        post="L 403 403 400 400 400",
    ),
    "review-board-remove": Row(
        url("review-board-remove", obj("board")),
        get="L 405 405 405 405 405",
        post="L 403 403 302 302 302",
    ),
    "review-board-rename": Row(
        url("review-board-rename", obj("board")),
        get="L 403 403 200 403 200",
        post="L 403 403 200 403 200",
    ),
    "review-board-delete": Row(
        url("review-board-delete", obj("board")),
        get="L 403 403 200 403 200",
        post="L 403 403 302 403 302",
    ),
    "review-job-boards": Row(
        url("review-job-boards", job_id), get="L 403 403 200 200 200", post="L 403 403 200 200 200"
    ),
    # Compare two jobs side by side: the whole team; posting no selection is a 400.
    "review-compare": Row(
        lambda world: f"{reverse('review-compare')}?ids={world.job.pk}&ids={world.failed_job.pk}",
        get="L 403 200 200 200 200",
        post="L 403 400 400 400 400",
    ),
    # Share links. Making one: members and admins; revoking: its maker (member) or an admin.
    "review-share-create": Row(
        url("review-share-create", job_id),
        get="L 405 405 405 405 405",
        post="L 403 403 302 302 302",
    ),
    "review-share-board": Row(
        url("review-share-board", obj("board")),
        get="L 405 405 405 405 405",
        post="L 403 403 302 302 302",
    ),
    "review-share-revoke": Row(
        url("review-share-revoke", obj("link")),
        get="L 405 405 405 405 405",
        post="L 403 403 302 403 302",
    ),
    # A valid link's pages are anyone's who holds it, signed in or not; what the link does not
    # allow is refused to everyone alike.
    "review-share": Row(
        url("review-share", obj("token")),
        get="200 200 200 200 200 200",
        post="405 405 405 405 405 405",
    ),
    "review-share-unlock": Row(
        url("review-share-unlock", obj("token")),
        get="405 405 405 405 405 405",
        post="302 302 302 302 302 302",
    ),
    "review-share-job": Row(
        url("review-share-job", obj("token"), job_id),
        get="200 200 200 200 200 200",
        post="405 405 405 405 405 405",
    ),
    "review-share-comment": Row(
        url("review-share-comment", obj("token"), job_id),
        get="405 405 405 405 405 405",
        post="302 302 302 302 302 302",
    ),
    "review-share-review": Row(
        url("review-share-review", obj("token"), job_id),
        get="405 405 405 405 405 405",
        post="302 302 302 302 302 302",
    ),
    "review-share-media": Row(
        url("review-share-media", obj("token"), job_id, lambda world: "video"),
        get="200 200 200 200 200 200",
        post="405 405 405 405 405 405",
    ),
    # Asking the provider again about a job muxweb gave up on: its author (member) or an admin.
    # This failed job was failed by the provider, so the answer is only a message.
    "videos-check-again": Row(
        url("videos-check-again", lambda world: world.failed_job.pk),
        get="L 405 405 405 405 405",
        post="L 403 403 302 403 302",
    ),
    # Cancelling a job that waits for a slot: its author (member) or an admin, like deleting.
    "videos-cancel": Row(
        url("videos-cancel", job_id), get="L 405 405 405 405 405", post="L 403 403 302 403 302"
    ),
    # Usage: the whole team (each sees their own lines and the team's total; admins everyone's).
    "videos-usage": Row(
        url("videos-usage"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    "videos-usage-csv": Row(
        url("videos-usage-csv"), get="L 403 200 200 200 200", post="L 405 405 405 405 405"
    ),
    # The toasts' poll: whoever has a role (it only ever speaks of the asker's own jobs).
    "videos-notifications": Row(
        url("videos-notifications"), get="L 403 204 204 204 204", post="L 405 405 405 405 405"
    ),
    # My account: everyone signed in, an account in no team group too (its password is its own).
    "accounts-account": Row(
        url("accounts-account"), get="L 200 200 200 200 200", post="L 302 302 302 302 302"
    ),
    # The Team page and its changes: admins only. A GET of a change that takes something away
    # (a demotion, a deactivation) is its confirmation page; the others are POST only.
    "accounts-team": Row(
        url("accounts-team"), get="L 403 403 403 403 200", post="L 405 405 405 405 405"
    ),
    "accounts-team-add": Row(
        url("accounts-team-add"), get="L 405 405 405 405 405", post="L 403 403 403 403 200"
    ),
    "accounts-team-budget": Row(
        url("accounts-team-budget"), get="L 405 405 405 405 405", post="L 403 403 403 403 302"
    ),
    "accounts-team-role": Row(
        url("accounts-team-role", obj("user")),
        get="L 403 403 403 403 302",
        post="L 403 403 403 403 302",
    ),
    "accounts-team-deactivate": Row(
        url("accounts-team-deactivate", obj("user")),
        get="L 403 403 403 403 200",
        post="L 403 403 403 403 302",
    ),
    "accounts-team-reactivate": Row(
        url("accounts-team-reactivate", obj("user")),
        get="L 405 405 405 405 405",
        post="L 403 403 403 403 302",
    ),
    "accounts-team-link": Row(
        url("accounts-team-link", obj("user")),
        get="L 405 405 405 405 405",
        post="L 403 403 403 403 200",
    ),
    "accounts-team-person-budget": Row(
        url("accounts-team-person-budget", obj("user")),
        get="L 405 405 405 405 405",
        post="L 403 403 403 403 302",
    ),
    "accounts-team-person-concurrency": Row(
        url("accounts-team-person-concurrency", obj("user")),
        get="L 405 405 405 405 405",
        post="L 403 403 403 403 302",
    ),
    # A set-password link works without login, for whoever holds it; a made-up one says so.
    "accounts-set-password": Row(
        url("accounts-set-password", lambda world: "MQ", lambda world: "abc-123"),
        get="200 200 200 200 200 200",
        post="200 200 200 200 200 200",
    ),
    # The activity log: admins only.
    "accounts-activity": Row(
        url("accounts-activity"), get="L 403 403 403 403 200", post="L 405 405 405 405 405"
    ),
    "accounts-activity-csv": Row(
        url("accounts-activity-csv"), get="L 403 403 403 403 200", post="L 405 405 405 405 405"
    ),
    "login": Row(url("login"), get="200 200 200 200 200 200", post="200 200 200 200 200 200"),
    "logout": Row(url("logout"), get="L 405 405 405 405 405", post="L L L L L L"),
    "set_language": Row(
        url("set_language"), get="302 302 302 302 302 302", post="302 302 302 302 302 302"
    ),
    "healthz": Row(url("healthz"), get="200 200 200 200 200 200", post="405 405 405 405 405 405"),
    # Unsigned, so refused whoever sends it.
    "webhooks-videos": Row(
        url("webhooks-videos"), get="405 405 405 405 405 405", post="400 400 400 400 400 400"
    ),
    "admin:index": Row(url("admin:index"), **admin_only("200", "200")),
    "admin:login": Row(
        url("admin:login"), get="200 200 200 200 200 302", post="200 200 200 200 200 200"
    ),
    # Non-staff accounts are sent to the admin index, and from there to its login page.
    "admin:logout": Row(
        url("admin:logout"), get="L 302 302 302 302 405", post="L 302 302 302 302 L"
    ),
    "admin:password_change": Row(url("admin:password_change"), **admin_only("200", "200")),
    "admin:password_change_done": Row(
        url("admin:password_change_done"), **admin_only("200", "405")
    ),
    "admin:autocomplete": Row(url("admin:autocomplete"), **admin_only("403", "405")),
    "admin:jsi18n": Row(url("admin:jsi18n"), **admin_only("200", "405")),
    # Jobs have no page outside the dashboard for the admin to link to.
    "admin:view_on_site": Row(
        url("admin:view_on_site", obj("videojob_type"), job_id), **admin_only("404", "404")
    ),
    "admin:app_list": Row(lambda world: "/admin/videos/", **admin_only("200", "200")),
    "admin/(?P<url>.*)$": Row(lambda world: "/admin/nothing-here/", **admin_only("404", "404")),
    # People are managed on the Team page; the admin only shows them.
    "admin:auth_user_password_change": Row(
        url("admin:auth_user_password_change", obj("user")), **admin_only("403", "403")
    ),
    **admin_model("auth", "group", "group", EDITABLE),
    **admin_model("auth", "user", "user", READ_ONLY),
    **admin_model("axes", "accessattempt", "accessattempt", VIEW_ONLY),
    **admin_model("axes", "accesslog", "accesslog", VIEW_ONLY),
    **admin_model("axes", "accessfailurelog", "accessfailurelog", VIEW_ONLY),
    **admin_model("django_q", "schedule", "schedule", EDITABLE),
    **admin_model("django_q", "success", "success", VIEW_ONLY),
    **admin_model("django_q", "failure", "failure", VIEW_ONLY),
    **admin_model("django_q", "ormq", "ormq", QUEUE),
    **admin_model("videos", "modelspec", "modelspec", EDITABLE),
    **admin_model("videos", "videojob", "job", VIEW_ONLY),
    **admin_model("accounts", "activityentry", "activityentry", READ_ONLY),
}
# django-q2 lists its queue in the admin only when the database is the broker (not with Redis).
if not admin.site.is_registered(OrmQ):
    EXPECTED = {
        key: row
        for key, row in EXPECTED.items()
        if "django_q_ormq" not in key and "django_q/ormq" not in key
    }


@pytest.fixture
def world(member, other_member, viewer, admin, settings) -> World:
    # Webhooks configured: an unsigned POST is then refused for its signature.
    settings.MUXWEB_WEBHOOK_SECRETS = ["whsec_" + base64.b64encode(b"k" * 24).decode()]
    outsider = make_person("olga")  # in no team group
    job = make_job(member, status=Status.COMPLETED, prompt="Everyone's business", with_files=True)
    failed_job = make_job(member, status=Status.FAILED, prompt="Failed once")
    now = timezone.now()
    task = {"func": "math.floor", "started": now, "stopped": now}
    trashed = make_job(member, status=Status.COMPLETED, trashed_at=now, trashed_by=member)
    export = exports.start_zip_export(member, VideoJob.objects.filter(pk=job.pk))
    exports.build_zip(export.pk)
    board = Board.objects.create(name="Client A", created_by=member)
    BoardItem.objects.create(board=board, job=job, position=1)
    link, token = sharing.create_link(
        job=job, actor=member, allow_comments=True, allow_approval=True
    )
    comment = add_comment(job, "Lovely light", author=member)
    ids = {
        "board": board.pk,
        "link": link.pk,
        "token": token,
        "comment": comment.pk,
        "job": job.pk,
        "trashed": trashed.pk,
        "export": export.pk,
        "user": member.pk,
        "group": Group.objects.get(name="Members").pk,
        "schedule": Schedule.objects.first().pk,
        "success": Task.objects.create(id="s" * 32, name="ok", success=True, **task).pk,
        "failure": Task.objects.create(id="f" * 32, name="ko", success=False, **task).pk,
        "ormq": OrmQ.objects.create(key="muxweb", payload="x", lock=now).pk,
        "modelspec": ModelSpec.objects.first().pk,
        "videojob_type": ContentType.objects.get_for_model(VideoJob).pk,
        "activityentry": ActivityEntry.objects.create(actor=member, action=Action.CREATE).pk,
        **{
            name: model.objects.create(
                username="someone", ip_address="192.0.2.1", path_info="/", **fields
            ).pk
            for name, model, fields in (
                ("accessattempt", AccessAttempt, {"failures_since_start": 1}),
                ("accesslog", AccessLog, {}),
                ("accessfailurelog", AccessFailureLog, {}),
            )
        },
    }
    users = {
        "anonymous": None,
        "outsider": outsider,
        "viewer": viewer,
        "member": member,
        "other_member": other_member,
        "admin": admin,
    }
    return World(job=job, failed_job=failed_job, users=users, ids=ids)


def request(world: World, persona: str, method: str, path: str, *, csrf: bool):
    """One request in a fresh browser, rolled back afterwards with everything it changed."""
    client = Client(enforce_csrf_checks=True)
    if world.users[persona] is not None:
        client.force_login(world.users[persona])
    headers = {}
    if csrf:
        client.cookies["csrftoken"] = CSRF_TOKEN
        headers["X-CSRFToken"] = CSRF_TOKEN
    savepoint = transaction.savepoint()
    try:
        return getattr(client, method)(path, headers=headers)
    finally:
        transaction.savepoint_rollback(savepoint)


def outcome(response) -> str:
    location = response.get("Location", "")
    if response.status_code == 302 and (
        "/accounts/login/" in location or "/admin/login/" in location
    ):
        return "L"
    return str(response.status_code)


def test_every_url_pattern_has_a_row():
    patterns = {key for key, _pattern in walk(get_resolver().url_patterns)}
    missing, stale = sorted(patterns - EXPECTED.keys()), sorted(EXPECTED.keys() - patterns)
    assert not missing, "give these new URL patterns a row in EXPECTED:\n" + "\n".join(missing)
    assert not stale, "these rows are for URL patterns that no longer exist:\n" + "\n".join(stale)


def test_only_the_webhook_is_exempt_from_csrf():
    exempt = {
        key
        for key, pattern in walk(get_resolver().url_patterns)
        if getattr(pattern.callback, "csrf_exempt", False)
    }
    assert exempt == CSRF_EXEMPT


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_url_answers_each_persona_as_the_table_says(world, persona, method):
    wrong = wrong_answers(world, persona, method, column=PERSONAS.index(persona))
    assert not wrong, "\n".join(wrong)


def wrong_answers(world: World, persona: str, method: str, *, column: int) -> list[str]:
    """Every URL asked by `persona`, against the table's `column`: what did not match."""
    wrong = []
    for key, row in EXPECTED.items():
        path = row.url(world)
        write_files(world.job)  # a delete removes them with the job
        got = outcome(request(world, persona, method, path, csrf=True))
        expected = getattr(row, method).split()[column]
        if got != expected:
            wrong.append(f"{method.upper()} {path} ({key}): expected {expected}, got {got}")
    return wrong


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_deactivated_account_gets_what_an_anonymous_visitor_gets(world, method):
    """A member deactivated while signed in: their open session is worth nothing from the next
    request on, on every URL."""
    world.users["deactivated"] = make_person("dora", "member")
    world.users["deactivated"].is_active = False
    world.users["deactivated"].save()
    wrong = wrong_answers(world, "deactivated", method, column=PERSONAS.index("anonymous"))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_post_without_a_csrf_token_is_refused(world, settings, persona):
    allowed = []
    for key, row in EXPECTED.items():
        if key in CSRF_EXEMPT:
            continue
        response = request(world, persona, "post", row.url(world), csrf=False)
        if response.status_code != 403:
            allowed.append(f"{row.url(world)} ({key}): {response.status_code}")
    assert not allowed, "\n".join(allowed)
    assert VideoJob.objects.filter(pk=world.job.pk).exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_another_users_media_obeys_the_same_rules_as_their_job_page(world, persona):
    """Every file of member's job, plain and as a download, for each persona (other_member is
    the other user here; the whole team shares one history, outsiders and strangers get none)."""
    job = world.job
    page = outcome(
        request(world, persona, "get", reverse("videos-detail", args=[job.pk]), csrf=False)
    )
    for variant in (*VARIANTS, "reference"):
        for query in ("", "?download=1"):
            path = reverse("videos-media", args=[job.pk, variant]) + query
            assert outcome(request(world, persona, "get", path, csrf=False)) == page, path
