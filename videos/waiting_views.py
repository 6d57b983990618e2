"""Jobs waiting for a slot (videos.fairshare): cancelling one before it is sent."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from videos import fairshare
from videos.views import get_job_for_user


@require_POST
def cancel_waiting(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a job still waiting for a slot: its author or an admin (who may delete it)."""
    job = get_job_for_user(request, pk, action="delete")
    if fairshare.cancel_waiting(job, actor=request.user):
        messages.success(request, gettext("Cancelled: nothing was sent to the provider."))
    else:
        messages.error(request, gettext("This video is no longer waiting: it was sent already."))
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("videos-detail", pk=job.pk)
