"""Starring a job, and giving it a title and a note: thin views over review.stars. Each answers
htmx with the fragment it changed, and a plain form with a redirect back to the page it came
from."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from review import stars
from videos.views import get_job_for_user


def back_to(request: HttpRequest, job) -> HttpResponse:
    """Where a plain form returns: the page it was posted from (its `next`), or the job's page."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("videos-detail", args=[job.pk])
    return redirect(target)


@require_POST
def star(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request, pk)
    starred = stars.toggle_star(job, user=request.user)
    mine = stars.starred_ids(request)
    if starred:
        mine.add(job.pk)
    else:
        mine.discard(job.pk)
    if request.htmx:
        context = {"job": job, "next": request.POST.get("next", "")}
        return render(request, "review/partials/star.html", context)
    return back_to(request, job)


@require_http_methods(["GET", "POST"])
def describe(request: HttpRequest, pk: int) -> HttpResponse:
    """The title and note form: inline on the job page through htmx, or a page of its own."""
    job = get_job_for_user(request, pk)
    if not stars.may_describe(request.user, job):
        raise PermissionDenied
    if request.method == "POST":
        form = stars.DescribeForm(request.POST)
        if form.is_valid():
            stars.describe(job, actor=request.user, **form.cleaned_data)
            if request.htmx:
                return render(request, "review/partials/describe_job.html", {"job": job})
            return redirect("videos-detail", pk=job.pk)
    else:
        form = stars.DescribeForm(initial={"title": job.title, "note": job.note})
    context = {"job": job, "form": form}
    if request.htmx:
        return render(request, "review/describe.html#form", context)
    return render(request, "review/describe.html", context)
