"""Comments on a job's page, and the mentions they bring: the "For you" page and its poll.

Every form posts as a plain form (the answer sends the browser back to the job page) and, with
htmx, swaps only the comments (templates/review/partials/comments_job.html).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import can
from review import mentions
from review.comments import (
    CommentError,
    add_comment,
    comments_of,
    delete_comment,
    edit_comment,
    may_change,
    may_comment,
    may_delete,
)
from review.models import Comment
from videos.models import VideoJob
from videos.views import get_job_for_user, require_team

SECTION = "review/partials/comments_job.html#section"
ITEM = "review/partials/comments_job.html#comment"


def section_context(request: HttpRequest, job: VideoJob, **extra) -> dict:
    """What the comments of a job's page show: every comment with what the reader may do to it.
    One query whatever their number (role_of is remembered on the user)."""
    comments = list(comments_of(job))
    for comment in comments:
        comment.may_change = may_change(request.user, comment)
        comment.may_delete = may_delete(request.user, comment)
    return {
        "job": job,
        "comments": comments,
        "pins": [comment for comment in comments if comment.at_seconds is not None],
        "may_comment": may_comment(request.user),
        "has_player": bool(job.video),
        "request": request,
        **extra,
    }


def job_anchor(job_id: int, comment_id: int | None = None) -> str:
    anchor = f"#comment-{comment_id}" if comment_id else "#comments"
    return reverse("videos-detail", args=[job_id]) + anchor


def get_comment(request: HttpRequest, pk: int) -> Comment:
    require_team(request)
    comment = Comment.objects.select_related("author", "job").filter(pk=pk).first()
    if comment is None:
        raise Http404
    return comment


@require_POST
def comment_add(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request, pk)
    if not may_comment(request.user):
        raise PermissionDenied
    body = request.POST.get("body", "")
    at = request.POST.get("at_seconds") if request.POST.get("pin") else None
    try:
        comment = add_comment(job, body, author=request.user, at_seconds=at)
    except CommentError as error:
        if request.htmx:
            context = section_context(request, job, error=error.message, draft=body)
            return render(request, SECTION, context, status=422)
        messages.error(request, error.message)
        return redirect(job_anchor(job.pk))
    if request.htmx:
        return render(request, SECTION, section_context(request, job, added=comment.pk))
    return redirect(job_anchor(job.pk, comment.pk))


@require_http_methods(["GET", "POST"])
def comment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    comment = get_comment(request, pk)
    if not may_change(request.user, comment):
        raise PermissionDenied
    context = {"comment": comment, "job": comment.job}
    if request.method == "POST":
        try:
            edit_comment(comment, request.POST.get("body", ""), actor=request.user)
        except CommentError as error:
            context |= {"error": error.message, "draft": request.POST.get("body", "")}
            template = (
                "review/comment_edit.html#form" if request.htmx else "review/comment_edit.html"
            )
            return render(request, template, context, status=422)
        if request.htmx:
            comment.may_change = True
            comment.may_delete = True
            return render(request, ITEM, context)
        return redirect(job_anchor(comment.job_id, comment.pk))
    if request.htmx:
        return render(request, "review/comment_edit.html#form", context)
    return render(request, "review/comment_edit.html", context)


@require_GET
def comment_show(request: HttpRequest, pk: int) -> HttpResponse:
    """One comment as the job page draws it: what Cancel brings back in place of the edit form."""
    comment = get_comment(request, pk)
    if not request.htmx:
        return redirect(job_anchor(comment.job_id, comment.pk))
    comment.may_change = may_change(request.user, comment)
    comment.may_delete = may_delete(request.user, comment)
    return render(request, ITEM, {"comment": comment, "job": comment.job})


@require_POST
def comment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    comment = get_comment(request, pk)
    if not may_delete(request.user, comment):
        raise PermissionDenied
    delete_comment(comment, actor=request.user)
    if request.htmx:
        job = VideoJob.objects.get(pk=comment.job_id)
        return render(request, SECTION, section_context(request, job))
    return redirect(job_anchor(comment.job_id))


@require_GET
def for_you(request: HttpRequest) -> HttpResponse:
    """My mentions, newest first; those shown are seen from now on."""
    require_team(request)
    page = mentions.for_you_page(request.user, request.GET.get("older", ""))
    return render(request, "review/for_you.html", {"page": page})


@require_GET
def mentions_poll(request: HttpRequest) -> HttpResponse:
    """Every page's ask for new mentions: 204 while the count it shows (`n`) still holds and no
    mention is new to this session; else the menu's count and a toast for each new one."""
    if not can(request.user, "view"):
        raise PermissionDenied
    count = request.GET.get("n", "")
    shown = int(count) if count.isascii() and count.isdigit() and len(count) < 4 else None
    notices = mentions.notices(request.user, mentions.toasted_upto(request.session))
    if not notices.new and shown == notices.unseen:
        return HttpResponse(status=204)
    mentions.remember_toasted(request.session, notices.new)
    return render(
        request,
        "review/partials/mentions_notifier.html",
        {"mention_notices": notices, "toasts": notices.new, "oob": True},
    )
