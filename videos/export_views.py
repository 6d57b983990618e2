"""Zip exports: ask for one from the gallery (its filters or a selection), follow its progress,
download it. Whoever may see the gallery may export; an export is its requester's alone."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from videos import exports, media
from videos.models import ZipExport
from videos.views import require_team, selected_jobs

# The exports a person's list shows, newest first.
RECENT = 20


def get_export_for_user(request: HttpRequest, pk: int) -> ZipExport:
    """The export if this user asked for it, else 404: not even admins see another's."""
    require_team(request)
    export = ZipExport.objects.filter(pk=pk, requested_by=request.user).first()
    if export is None:
        raise Http404
    return export


@require_http_methods(["GET", "POST"])
def exports_page(request: HttpRequest) -> HttpResponse:
    """GET: my recent exports. POST: ask for a zip of the `ids` posted, or with `all=1` of every
    job the gallery's filters (posted, or in the query string) keep; `extras=1` adds the
    thumbnails and spritesheets."""
    require_team(request)
    if request.method == "POST":
        return start_export(request)
    recent = ZipExport.objects.filter(requested_by=request.user)[:RECENT]
    return render(request, "videos/exports.html", {"exports": recent})


def start_export(request: HttpRequest) -> HttpResponse:
    # The filters may ride in the address too (a plain form posting to the gallery's query).
    params = request.GET.copy()
    params.update(request.POST)
    try:
        if params.get("all") != "1" and not params.getlist("ids"):
            raise exports.ExportRefused(gettext("Choose the videos to export."))
        jobs, _filters = selected_jobs(request, params)
        export = exports.start_zip_export(
            request.user, jobs, include_extras=params.get("extras") == "1"
        )
    except exports.ExportRefused as exc:
        messages.error(request, str(exc))
        return go_to(request, reverse("videos-gallery"))
    return go_to(request, reverse("videos-zip-export", args=[export.pk]))


def go_to(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An export's progress, polled while it is built (204 while nothing changed), and its
    download link once ready."""
    export = get_export_for_user(request, pk)
    if request.htmx:
        if request.GET.get("v") == export.version:
            return HttpResponse(status=204)
        return render(request, "videos/export.html#progress", {"export": export})
    return render(request, "videos/export.html", {"export": export})


@require_GET
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The zip, to its requester, while it is kept; 410 once its time is up."""
    export = get_export_for_user(request, pk)
    if export.is_gone:
        return render(request, "videos/export.html", {"export": export}, status=410)
    if not export.is_downloadable:
        raise Http404
    day = timezone.localdate(export.finished_at).isoformat()
    try:
        response = media.serve_file(
            request,
            Path(settings.MEDIA_ROOT) / export.file_name,
            download_name=f"muxweb-videos-{day}.zip",
        )
    except FileNotFoundError:
        raise Http404 from None
    response["Content-Type"] = "application/zip"
    return response
