"""Telling people when their own jobs end, whatever muxweb page they have open.

Every page carries a notifier (templates/videos/partials/notifier.html) holding the ids of the
signed-in person's running jobs. While there are any it polls `poll`, which answers 204 while
nothing changed, and otherwise a new notifier (with jobs started meanwhile in other tabs, and
without a trigger once none runs) plus a toast for each watched job that ended. static/js/notify.js
turns a toast into a browser notification for people who asked for them on My account.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import Profile
from accounts.roles import can
from muxweb.text import parse_id
from videos.models import VideoJob

# The running jobs one page watches (the newest), and the most ids one poll may ask about.
MAX_WATCHED = 50
MAX_POLL_IDS = 100
# What the poll reads of a job: enough to tell whether it ended and to draw its toast.
TOAST_FIELDS = (
    "pk",
    "prompt",
    "status",
    "error_code",
    "error_message",
    "thumbnail",
    "assets_fetched_at",
    "fetch_given_up",
)


def running_ids(user: AbstractBaseUser) -> list[int]:
    """The ids of the user's own jobs that still change (files being saved included), newest
    first: one query on the author's index."""
    jobs = VideoJob.objects.filter(author=user).needing_work().order_by("-pk")
    return list(jobs.values_list("pk", flat=True)[:MAX_WATCHED])


def parse_ids(values: list[str]) -> set[int]:
    """The job ids in `ids` parameters (comma-separated, or one per parameter); others ignored."""
    parts = [part for value in values for part in value.split(",")][:MAX_POLL_IDS]
    return {number for number in map(parse_id, parts) if number is not None}


@require_GET
def poll(request: HttpRequest) -> HttpResponse:
    """The notifier's poll: 204 while the watched jobs run on and no other job of the requester's
    started; else the new notifier and a toast for each watched job that ended."""
    if not can(request.user, "view"):
        raise PermissionDenied
    watched = parse_ids(request.GET.getlist("ids"))
    # One query for both questions: which watched jobs are mine, and which of mine run now.
    # Someone else's id, or a deleted or trashed job's, matches nothing: no toast, it is dropped.
    mine = VideoJob.objects.kept().filter(author=request.user)
    rows = (mine.filter(pk__in=watched) | mine.needing_work()).order_by("-pk").only(*TOAST_FIELDS)
    jobs = list(rows[: MAX_POLL_IDS + MAX_WATCHED])
    running = [job.pk for job in jobs if job.is_active][:MAX_WATCHED]
    # A waiting job its author cancelled ended by their own hand: no "failed" toast for it.
    ended = [
        job
        for job in jobs
        if job.pk in watched and not job.is_active and job.error_code != "cancelled"
    ]
    if not ended and set(running) == watched:
        return HttpResponse(status=204)
    context = {"notifier_ids": running, "ended": ended}
    if ended:
        wants = Profile.objects.filter(user=request.user).values_list(
            "browser_notifications", flat=True
        )
        context["browser_notifications"] = bool(wants.first())
    return render(request, "videos/partials/notifications.html", context)
