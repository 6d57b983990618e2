"""The compare page: two to four jobs side by side, their prompts diffed against the first."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from review.compare import MAX_JOBS, MIN_JOBS, jobs_in_order, parse_ids, prompt_diff
from videos.models import VideoJob
from videos.views import require_team, selected_jobs


def compare_url(ids: list[int]) -> str:
    return reverse("review-compare") + "?" + urlencode({"ids": ids}, doseq=True)


@require_http_methods(["GET", "POST"])
def compare(request: HttpRequest) -> HttpResponse:
    """GET ?ids=1&ids=2: the jobs side by side. POST from the gallery's bulk bar: the selection
    (ticked ids, or all matching), oldest first, sent on to the GET address."""
    require_team(request)
    if request.method == "POST":
        jobs, _filters = selected_jobs(request, request.POST)
        ids = list(jobs.order_by("created_at", "id").values_list("pk", flat=True)[: MAX_JOBS + 1])
        if MIN_JOBS <= len(ids) <= MAX_JOBS:
            return redirect(compare_url(ids))
        return refuse(request)
    ids = parse_ids(request.GET.getlist("ids"))
    if ids is None or not MIN_JOBS <= len(ids) <= MAX_JOBS:
        return refuse(request)
    jobs = jobs_in_order(ids)
    if len(jobs) != len(ids):
        missing = ", ".join(f"#{pk}" for pk in ids if pk not in {job.pk for job in jobs})
        message = gettext("These videos are not in the gallery (deleted or in the trash): %(ids)s.")
        return render(
            request, "review/compare.html", {"problem": message % {"ids": missing}}, status=404
        )
    return render(request, "review/compare.html", {"sides": sides(jobs)})


def refuse(request: HttpRequest) -> HttpResponse:
    message = gettext("Pick two to four videos to compare.")
    return render(request, "review/compare.html", {"problem": message}, status=400)


def sides(jobs: list[VideoJob]) -> list[dict]:
    """Each job with its prompt as HTML: the first as written, the others against the first."""
    first = jobs[0]
    return [
        {
            "job": job,
            "prompt": prompt_diff(first.prompt, job.prompt) if index else None,
            "leader": index == 0,
        }
        for index, job in enumerate(jobs)
    ]
