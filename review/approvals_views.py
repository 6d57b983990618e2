"""Setting a job's review state: a thin view over review.approvals."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_POST

from review import approvals
from review.stars_views import back_to
from videos.models import ReviewState
from videos.views import get_job_for_user


@require_POST
def review(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request, pk)
    if not approvals.may_review(request.user):
        raise PermissionDenied
    form = approvals.ReviewForm(request.POST)
    # No state at all is a broken form, not a cleared review.
    if "state" not in request.POST or not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    approvals.set_review(
        job,
        ReviewState(form.cleaned_data["state"]),
        actor=request.user,
        comment=form.cleaned_data["comment"],
    )
    if request.htmx:
        return render(request, "review/partials/approvals_job.html", {"job": job})
    return back_to(request, job)
