"""Pages of the dashboard: parse the request, check access, call a service, render.

Regions that htmx refreshes are inline partials of the page templates ("page.html#region").
"""

import csv
import hashlib
import itertools
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from accounts import team
from accounts.roles import can, deletable, may_delete_some
from muxweb.text import (
    CsvLines,
    parse_day,
    parse_id,
    spreadsheet_cell,
    without_control_characters,
)
from videos import budgets, exports, live, media, queue, recheck, services, trash
from videos.forms import CreateJobForm, RemixForm
from videos.models import (
    NEEDING_WORK,
    VARIANTS,
    ImportRun,
    ModelSpec,
    ModelUnavailable,
    Status,
    VideoJob,
)
from videos.paging import (
    Page,
    cursor_at,
    cursor_for,
    newer_than,
    newest_position,
    older_than,
    page_of,
)
from videos.upstream.ratelimit import default_budget
from videos.usage import chart_bars, month_usage, parse_month, this_month

POLL_SECONDS = 2
# While none of its cards runs, the gallery's first page still asks for new jobs, less often.
IDLE_POLL_SECONDS = 5
POLL_TIMING = {"poll_seconds": POLL_SECONDS, "idle_poll_seconds": IDLE_POLL_SECONDS}
# The most job ids one gallery poll may ask about (a page shows paging.PAGE_SIZE cards).
MAX_POLL_IDS = 100


def require_team(request: HttpRequest) -> None:
    """The history is the team's: members, viewers and admins see all of it; an account in no
    team group sees nothing until an admin adds it."""
    if not can(request.user, "view"):
        raise PermissionDenied(gettext("Ask an admin to add your account to the team."))


def get_job_for_user(request: HttpRequest, pk: int, *, action: str = "view") -> VideoJob:
    """The job if this user may see it (the whole team sees the whole history), else 404;
    403 if they may see it but not do `action` (accounts.roles.can: "create" from it, or
    "delete" it)."""
    require_team(request)
    job = VideoJob.objects.for_cards().filter(pk=pk).first()
    if job is None:
        raise Http404
    if not can(request.user, action, job):
        raise PermissionDenied
    return job


def catalogue() -> list[ModelSpec]:
    return list(ModelSpec.objects.filter(enabled=True))


# A size filter looks like the catalogue's sizes: "1280x720".
SIZE = re.compile(r"[0-9]{1,5}x[0-9]{1,5}")
# The longest duration the seconds column holds.
MAX_SECONDS = 32767
REFERENCE = {"with": True, "without": False}
# The review filter's values: a review state, or "none" for the jobs not reviewed yet.
REVIEW = {
    "approved": "approved",
    "changes_requested": "changes_requested",
    "rejected": "rejected",
    "none": "",
}


def filtered_jobs(request: HttpRequest, params=None) -> tuple[QuerySet[VideoJob], dict]:
    """The gallery's jobs for the filters in the query string (or in `params`, a bulk action's
    form), and those filters as understood: a value that makes no sense is dropped, never an
    error. The gallery, its pages, the CSV export and the bulk actions all read them here."""
    params = request.GET if params is None else params
    filters = {
        # Prompts hold no control characters (and PostgreSQL refuses NUL in a query).
        "q": without_control_characters(params.get("q", "")).strip()[:200],
        "status": params.get("status", ""),
        "author": params.get("author", ""),
        "model": without_control_characters(params.get("model", ""))[:100],
        "size": params.get("size", ""),
        "seconds": params.get("seconds", ""),
        "reference": params.get("reference", ""),
        "remixes": params.get("remixes", ""),
        "from": params.get("from", ""),
        "to": params.get("to", ""),
        "starred": params.get("starred", ""),
        "review": params.get("review", ""),
    }
    if filters["status"] not in ("running", Status.WAITING, Status.COMPLETED, Status.FAILED):
        filters["status"] = ""
    author_id = request.user.pk if filters["author"] == "me" else parse_id(filters["author"])
    if author_id is None:
        filters["author"] = ""
    if not SIZE.fullmatch(filters["size"]):
        filters["size"] = ""
    seconds = parse_id(filters["seconds"])
    if seconds is None or seconds > MAX_SECONDS:
        seconds, filters["seconds"] = None, ""
    if filters["reference"] not in REFERENCE:
        filters["reference"] = ""
    if filters["remixes"] != "1":
        filters["remixes"] = ""
    if filters["starred"] != "1":
        filters["starred"] = ""
    if filters["review"] not in REVIEW:
        filters["review"] = ""
    # Days as the viewer's calendar has them: the time zone of their profile.
    start, end = parse_day(filters["from"]), parse_day(filters["to"])
    if start is None:
        filters["from"] = ""
    if end is None:
        filters["to"] = ""
    jobs = VideoJob.objects.kept().matching(
        text=filters["q"],
        status=filters["status"],
        author_id=author_id,
        model=filters["model"],
        size=filters["size"],
        seconds=seconds,
        reference=REFERENCE.get(filters["reference"]),
        remixes_only=bool(filters["remixes"]),
        created_from=midnight(start) if start else None,
        created_before=midnight(end + timedelta(days=1)) if end else None,
        starred_by=request.user.pk if filters["starred"] else None,
        review_state=REVIEW.get(filters["review"]),
    )
    return jobs, filters


def midnight(day: date) -> datetime:
    """The moment `day` begins in the viewer's time zone."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def filter_choices(specs: list[ModelSpec], filters: dict) -> dict:
    """The sizes and durations the filters offer: the catalogue's, and the one filtered by if the
    catalogue no longer has it (the select shows what the page is filtered by)."""
    sizes = [size for spec in specs for size in spec.sizes]
    durations = [str(seconds) for spec in specs for seconds in spec.seconds]
    if filters["size"]:
        sizes.append(filters["size"])
    if filters["seconds"]:
        durations.append(filters["seconds"])
    return {
        "sizes": list(dict.fromkeys(sizes)),
        # Shorter first, so whole numbers come as numbers do: 4, 8, 12.
        "durations": sorted(set(durations), key=lambda n: (len(n), n)),
    }


def gallery_context(request: HttpRequest, form: CreateJobForm | None = None) -> dict:
    jobs, filters = filtered_jobs(request)
    page = page_of(
        jobs.for_cards(), older=request.GET.get("older", ""), newer=request.GET.get("newer", "")
    )
    specs = catalogue()
    if form is None and can(request.user, "create"):
        form = CreateJobForm(specs=specs, initial=duplicate_of(request))
    return {
        **(composer_context(request, form) if form is not None else {}),
        "page": page,
        "jobs": page.jobs,
        "filters": filters,
        "filtered": any(filters.values()),
        **gallery_links(filters, page),
        "form": form,
        "may_trash": may_delete_some(request.user),
        "authors": team.roster(),
        "models": specs,
        **filter_choices(specs, filters),
        "statuses": [
            ("running", gettext("Running")),
            (Status.WAITING, Status.WAITING.label),
            (Status.COMPLETED, Status.COMPLETED.label),
            (Status.FAILED, Status.FAILED.label),
        ],
        **import_context(request),
        **poller_context(page.jobs),
        **watch_context(page, filters),
    }


def gallery_links(filters: dict, page: Page) -> dict:
    """The pager's links and the export's, each keeping the filters."""
    kept = {key: value for key, value in filters.items() if value}

    def link(name: str, **cursor: str) -> str:
        query = urlencode({**kept, **cursor})
        return f"{reverse(name)}?{query}" if query else reverse(name)

    return {
        "filters_url": link("videos-gallery"),
        "newest_url": None if page.first else link("videos-gallery"),
        "newer_url": link("videos-gallery", newer=page.newer) if page.newer else None,
        "older_url": link("videos-gallery", older=page.older) if page.older else None,
        "export_url": link("videos-export"),
        "select_all_url": link("videos-select-all"),
        # The bulk bar posts the filters along, for "all matching".
        "kept_filters": kept,
        # A card's link carries the filters, so its job's page knows its neighbours.
        "card_query": f"?{urlencode(kept)}" if kept else "",
    }


def gallery_neighbours(request: HttpRequest, job: VideoJob) -> dict:
    """The newer and older jobs next to `job` in the gallery it was opened from (the filters
    ride in the job page's query string), for the page's Newer/Older links and ←/→. Two
    index-ordered queries that stop at the first row."""
    jobs, filters = filtered_jobs(request)
    kept = {key: value for key, value in filters.items() if value}
    query = f"?{urlencode(kept)}" if kept else ""
    newer = jobs.filter(newer_than(job.created_at, job.pk)).order_by("created_at", "id")
    older = jobs.filter(older_than(job.created_at, job.pk)).order_by("-created_at", "-id")
    newer_pk = newer.values_list("pk", flat=True).first()
    older_pk = older.values_list("pk", flat=True).first()
    return {
        "gallery_url": reverse("videos-gallery") + query,
        "newer_job_url": reverse("videos-detail", args=[newer_pk]) + query if newer_pk else None,
        "older_job_url": reverse("videos-detail", args=[older_pk]) + query if older_pk else None,
    }


def import_context(request: HttpRequest) -> dict:
    """For admins: the import button, and the latest import while it runs or just after."""
    if not can(request.user, "import"):
        return {}
    run = ImportRun.latest()
    recent = run is not None and (
        run.is_running or timezone.now() - (run.finished_at or run.updated_at) < IMPORT_SHOWN_FOR
    )
    # The provider key's request budget, shared by the team (upstream/ratelimit.py).
    return {"import_run": run if recent else None, "provider_budget": default_budget().state()}


# A finished import's result stays on the gallery this long.
IMPORT_SHOWN_FOR = timedelta(hours=1)


def duplicate_of(request: HttpRequest) -> dict:
    """The create form's starting values: those of the job named by ?duplicate=, if any."""
    # Links made before the date filter took ?from= named the job there.
    source = parse_id(request.GET.get("duplicate") or request.GET.get("from", ""))
    job = VideoJob.objects.kept().filter(pk=source).first() if source else None
    if job is None:
        return {}
    return {"prompt": job.prompt, "model": job.model, "seconds": job.seconds, "size": job.size}


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    require_team(request)
    if "page" in request.GET:
        # Pages were numbered once; the numbers shifted with every new job anyway, and serving a
        # deep one would mean the OFFSET scan that cursors avoid. An old link opens the newest
        # page, with its filters.
        query = request.GET.copy()
        del query["page"]
        gallery_url = reverse("videos-gallery")
        return redirect(f"{gallery_url}?{query.urlencode()}" if query else gallery_url)
    context = gallery_context(request)
    queue.enqueue_missing_spritesheets(context["jobs"])
    if request.htmx and request.htmx.target == "results":
        # The filter form sends every field; the address it pushes keeps only those in use.
        response = render(request, "videos/gallery.html#results", context)
        return push_url(response, context["filters_url"])
    return render(request, "videos/gallery.html", context)


EXPORT_COLUMNS = [
    "id",
    "created",
    "author",
    "model",
    "seconds",
    "size",
    "status",
    "progress",
    "cost",
    "error_code",
    "error_message",
    "prompt",
    "upstream_id",
    "remix_of",
]


def export_row(job: VideoJob) -> list[str]:
    record = exports.job_record(job)
    return [spreadsheet_cell(record[column]) for column in EXPORT_COLUMNS]


@require_GET
def export_jobs(request: HttpRequest) -> StreamingHttpResponse:
    """The team's history, filtered like the gallery, as CSV for cost accounting.

    Streamed from one query however many rows there are. The column names stay the same in every
    language, so a spreadsheet or script built on them keeps working.
    """
    require_team(request)
    jobs, _filters = filtered_jobs(request)
    writer = csv.writer(CsvLines())
    rows = itertools.chain(
        # The byte order mark tells spreadsheets the file is UTF-8.
        ["\ufeff" + writer.writerow(EXPORT_COLUMNS)],
        (
            writer.writerow(export_row(job))
            for job in jobs.select_related("author").iterator(chunk_size=2000)
        ),
    )
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    filename = f"muxweb-videos-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def poller_context(jobs) -> dict:
    active = [job for job in jobs if job.is_active]
    return {
        "active_ids": ",".join(str(job.pk) for job in active),
        "version": version_of(active),
        **POLL_TIMING,
    }


def watch_context(page: Page, filters: dict) -> dict:
    """What the first page's poller watches for new jobs with (videos.live): the place of its
    newest card, or of the newest job of all when no card matches (so that the first poll does
    not look through a history that matched nothing), and its filters. Older pages do not
    watch, nor a gallery whose "to" day is over."""
    end = parse_day(filters["to"])
    if not page.first or (end and midnight(end + timedelta(days=1)) <= timezone.now()):
        return {"watching": False}
    if page.jobs:
        newest = cursor_for(page.jobs[0])
    else:
        position = newest_position()
        newest = cursor_at(*position) if position else ""
    return {
        "watching": True,
        "newest": newest,
        "watch_empty": not page.jobs,
        "watched_filters": [(name, value) for name, value in filters.items() if value],
        "shown": [],
    }


def version_of(jobs) -> str:
    """A short token that changes whenever any of these jobs changes."""
    digest = hashlib.blake2s(digest_size=8)
    for job in sorted(jobs, key=lambda job: job.pk):
        digest.update(f"{job.pk}:{job.updated_at.timestamp()};".encode())
    return digest.hexdigest()


@require_GET
def gallery_poll(request: HttpRequest) -> HttpResponse:
    """Refresh the running cards of an open gallery and, on its first page, bring the new jobs
    that match its filters (videos.live). 204 when nothing changed and nothing is new, after
    reading the running cards' stamps and one row of an index."""
    require_team(request)
    # htmx sends one `ids` per running card; a comma-separated list works too.
    raw_ids = [part for value in request.GET.getlist("ids") for part in value.split(",")]
    ids = [i for i in map(parse_id, raw_ids) if i is not None][:MAX_POLL_IDS]
    stamps = list(
        VideoJob.objects.kept().filter(pk__in=ids).order_by("pk").only("pk", "updated_at")
    )
    changed = version_of(stamps) != request.GET.get("v")
    watch = live.watch_of(request.GET)
    latest = live.newest_beyond(watch) if watch else None
    if not changed and latest is None:
        return HttpResponse(status=204)
    new = None
    if latest is not None:
        # Only now the filters: a search reads its index as soon as it is asked.
        jobs, filters = filtered_jobs(request)
        new = live.arrivals(watch, jobs, latest=latest, present=ids)
    cards = list(VideoJob.objects.kept().for_cards().filter(pk__in=ids)) if changed else []
    # Unchanged, the stamps are those of cards that still run.
    running = [job for job in cards if job.is_active] if changed else stamps
    context = {"jobs": cards, "watching": watch is not None, **POLL_TIMING}
    if new is not None:
        running += [job for job in new.jobs if job.is_active]
        page = Page(new.jobs, older=None, newer=None, first=True)
        context |= {
            "arrivals": new,
            "page": page,
            "filters": filters,
            **gallery_links(filters, page),
            "newest": new.newest,
            "watch_empty": new.empty,
            "watched_filters": [(name, value) for name, value in filters.items() if value],
            "shown": new.shown,
        }
    context |= {
        "active_ids": ",".join(str(job.pk) for job in running),
        "version": version_of(running),
    }
    return render(request, "videos/partials/poll.html", context)


def composer_context(
    request: HttpRequest, form: CreateJobForm, *, refused: str | None = None
) -> dict:
    """The create form with what is left of this month's budgets: the estimate beside the
    Generate button says what is left, and warns before a create that would not fit."""
    allowance = budgets.allowance_for(request.user)
    return {
        "form": form,
        "allowance": allowance,
        "budget_refusal": refused or allowance.refusal(form.estimated_cost()),
        "budget_refused": refused is not None,
    }


@require_GET
def compose_options(request: HttpRequest) -> HttpResponse:
    """The model-dependent part of the create form, redrawn when the model, length or size
    changes: its estimate and what is left of the budgets follow the choices."""
    if not can(request.user, "create"):
        raise PermissionDenied
    form = CreateJobForm.for_choices(catalogue(), request.GET)
    return render(request, "videos/gallery.html#compose-options", composer_context(request, form))


@require_POST
def create_job(request: HttpRequest) -> HttpResponse:
    if not can(request.user, "create"):
        raise PermissionDenied
    if request.POST.get("refresh"):
        # Without JavaScript, "Update choices" redraws the form for the chosen model.
        form = CreateJobForm.for_choices(catalogue(), request.POST)
        return render(request, "videos/gallery.html", gallery_context(request, form))
    form = CreateJobForm(request.POST, request.FILES, specs=catalogue())
    if not form.is_valid():
        if request.htmx:
            return render(request, "videos/gallery.html#composer", composer_context(request, form))
        # Without JavaScript: the whole page again, errors beside their fields.
        return render(request, "videos/gallery.html", gallery_context(request, form))
    data = form.cleaned_data
    try:
        job = services.create_job(
            author=request.user,
            spec=data["spec"],
            prompt=data["prompt"],
            seconds=data["seconds"],
            size=data["size"],
            client_token=data["token"] or None,
            reference=data.get("input_reference"),
        )
    except budgets.OverBudget as exc:
        # Beside the Generate button, saying what is left; nothing was made or sent.
        context = composer_context(request, form, refused=" ".join(exc.messages))
        if request.htmx:
            return render(request, "videos/gallery.html#composer", context)
        return render(request, "videos/gallery.html", {**gallery_context(request, form), **context})
    except ModelUnavailable as exc:
        # The catalogue changed since the form was checked (an admin disabled the model).
        form.add_error("model", exc)
        if request.htmx:
            return render(request, "videos/gallery.html#composer", composer_context(request, form))
        return render(request, "videos/gallery.html", gallery_context(request, form))
    if not request.htmx:
        return redirect("videos-gallery")
    fresh_form = CreateJobForm(
        specs=list(form.specs.values()),
        initial={k: data[k] for k in ("model", "seconds", "size")},
    )
    context = {
        **composer_context(request, fresh_form),
        "new_job": VideoJob.objects.for_cards().get(pk=job.pk),
        **POLL_TIMING,
    }
    return render(request, "videos/partials/created.html", context)


def job_context(request: HttpRequest, job: VideoJob, remix_form: RemixForm | None = None) -> dict:
    spec = ModelSpec.named(job.model)
    may_remix = (
        can(request.user, "create")
        and job.trashed_at is None
        and job.status == Status.COMPLETED
        and bool(job.upstream_id)
        and spec.can_remix
        and spec.enabled
        and spec.pk is not None
    )
    return {
        "job": job,
        "spec": spec,
        "version": version_of([job]),
        "may_delete": can(request.user, "delete", job),
        "may_check_again": recheck.may_check_again(job) and can(request.user, "check_again", job),
        "remix_form": (remix_form or RemixForm()) if may_remix else None,
        "remix_tree": job.remix_tree() if job.remix_of_id or job.remixes.exists() else [],
    }


@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request, pk)
    if request.htmx and request.htmx.target == "job-status":
        if request.GET.get("v") == version_of([job]):
            return HttpResponse(status=204)
        return render(request, "videos/job_detail.html#status", job_context(request, job))
    queue.enqueue_missing_spritesheets([job])
    context = {**job_context(request, job), **gallery_neighbours(request, job)}
    return render(request, "videos/job_detail.html", context)


@require_POST
def remix_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request, pk, action="create")
    if job.trashed_at is not None:
        return refuse_trashed(request, job)
    context = job_context(request, job, RemixForm(request.POST))
    form = context["remix_form"]
    if form is None:
        messages.error(request, gettext("Only a completed video can be remixed."))
        return redirect("videos-detail", pk=job.pk)
    if not form.is_valid():
        return render(request, "videos/job_detail.html", context)
    try:
        remix = services.create_job(
            author=request.user,
            spec=context["spec"],
            prompt=form.cleaned_data["prompt"],
            seconds=job.seconds,
            size=job.size,
            remix_of=job,
        )
    except ModelUnavailable as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("videos-detail", pk=job.pk)
    return redirect("videos-detail", pk=remix.pk)


def require_import(request: HttpRequest) -> None:
    require_team(request)
    if not can(request.user, "import"):
        raise PermissionDenied


@require_POST
def import_jobs(request: HttpRequest) -> HttpResponse:
    """Admins bring in the jobs started elsewhere with the same provider key, in the background;
    the gallery shows its progress and says when it is done."""
    require_import(request)
    run = services.start_import(request.user)
    if request.htmx:
        return render(request, "videos/gallery.html#import-status", {"import_run": run})
    return redirect("videos-gallery")


@require_GET
def import_status(request: HttpRequest) -> HttpResponse:
    """The import's progress, polled while it runs: 204 while nothing changed."""
    require_import(request)
    run = ImportRun.latest()
    if run is not None and request.GET.get("v") == run.version:
        return HttpResponse(status=204)
    return render(request, "videos/gallery.html#import-status", {"import_run": run})


@require_POST
def retry_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_job_for_user(request, pk, action="create")
    if job.trashed_at is not None:
        return refuse_trashed(request, job)
    if job.status != Status.FAILED:
        messages.error(request, gettext("Only a failed job can be tried again."))
        return redirect("videos-detail", pk=job.pk)
    try:
        new_job = services.resubmit_job(job, author=request.user)
    except ModelUnavailable as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("videos-detail", pk=job.pk)
    return redirect("videos-detail", pk=new_job.pk)


@require_POST
def check_again(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the provider once about a job muxweb gave up on: its author or an admin."""
    job = get_job_for_user(request, pk, action="check_again")
    outcome, error = recheck.check_again(job, actor=request.user)
    if outcome == recheck.Outcome.RESUMED:
        messages.success(request, gettext("The provider has this job: muxweb follows it again."))
    elif outcome == recheck.Outcome.NOT_THERE:
        messages.error(request, gettext("The provider does not have this job."))
    elif outcome == recheck.Outcome.STILL_RUNNING:
        messages.info(
            request,
            gettext(
                "The provider is still rendering this job, past the 3-hour limit: check later."
            ),
        )
    elif outcome == recheck.Outcome.UNREACHABLE:
        messages.error(
            request,
            gettext("The provider could not be asked (%(error)s). Try again later.")
            % {"error": error},
        )
    else:
        messages.info(request, gettext("Only a job muxweb gave up on can be checked again."))
    return redirect("videos-detail", pk=job.pk)


def refuse_trashed(request: HttpRequest, job: VideoJob) -> HttpResponse:
    messages.error(request, gettext("This video is in the trash: restore it first."))
    return redirect("videos-detail", pk=job.pk)


def delete_job(request: HttpRequest, pk: int) -> HttpResponse:
    """Move to trash: GET asks for confirmation; POST moves the job to the trash and deletes it
    at the provider. It can be restored from the Trash until it is removed for good."""
    job = get_job_for_user(request, pk, action="delete")
    if job.trashed_at is not None:
        messages.info(request, gettext("This video is in the trash already."))
        return redirect("videos-detail", pk=job.pk)
    if job.is_active:
        messages.error(
            request, gettext("This job is still running; delete it once it has finished.")
        )
        return redirect("videos-detail", pk=job.pk)
    if request.method != "POST":
        return render(request, "videos/job_delete.html", {"job": job, **trash_days()})
    try:
        upstream_gone = trash.trash_job(job, actor=request.user)
    except services.JobBusy:
        messages.error(
            request, gettext("This job is still running; delete it once it has finished.")
        )
        return redirect("videos-detail", pk=job.pk)
    moved = (
        gettext("Moved to the trash. Restore it from the Trash within %(days)d days.")
        % trash_days()
    )
    messages.success(
        request,
        format_html(
            '{} <a href="{}">{}</a>', moved, reverse("videos-trash"), gettext("Open Trash")
        ),
    )
    if not upstream_gone:
        messages.warning(
            request,
            gettext("The provider could not be reached; its copy expires on its own."),
        )
    return redirect("videos-gallery")


def trash_days() -> dict:
    return {"days": settings.MUXWEB_TRASH_DAYS}


@require_POST
def restore_job(request: HttpRequest, pk: int) -> HttpResponse:
    """Bring a job back from the trash: its author or an admin, like deleting."""
    job = get_job_for_user(request, pk, action="delete")
    if trash.restore_job(job, actor=request.user):
        messages.success(request, gettext("Restored: the video is back in the gallery."))
    else:
        messages.info(request, gettext("This video is not in the trash."))
    if request.POST.get("back") == "trash":
        return redirect("videos-trash")
    return redirect("videos-detail", pk=job.pk)


@require_GET
def trash_list(request: HttpRequest) -> HttpResponse:
    """The team's trash, the most recently trashed first: whoever sees the gallery sees it."""
    require_team(request)
    page = trash.trash_page(older=request.GET.get("older", ""))
    trash_url = reverse("videos-trash")
    context = {
        "rows": [(job, can(request.user, "delete", job)) for job in page.jobs],
        "page": page,
        "newest_url": None if page.first else trash_url,
        "older_url": f"{trash_url}?{urlencode({'older': page.older})}" if page.older else None,
        **trash_days(),
    }
    return render(request, "videos/trash.html", context)


def empty_trash(request: HttpRequest) -> HttpResponse:
    """Admins remove everything in the trash for good: GET asks, POST does it."""
    require_team(request)
    if not can(request.user, "empty_trash"):
        raise PermissionDenied
    if request.method != "POST":
        return render(request, "videos/trash_empty.html")
    purged = trash.empty_trash(request.user)
    messages.success(
        request,
        ngettext("%(n)d video was removed for good.", "%(n)d videos were removed for good.", purged)
        % {"n": purged},
    )
    return redirect("videos-trash")


@require_GET
def job_media(request: HttpRequest, pk: int, variant: str) -> HttpResponse:
    """A cached file of a job, behind login, with Range support so the player can seek."""
    if variant not in (*VARIANTS, "reference"):
        raise Http404
    job = get_job_for_user(request, pk)
    field = job.asset(variant)
    if not field:
        raise Http404
    try:
        path = Path(field.path)
        download = None
        if request.GET.get("download"):
            download = f"muxweb-{job.pk}-{variant}{path.suffix}"
        return media.serve_file(request, path, download_name=download)
    except FileNotFoundError:
        raise Http404 from None


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """A month's generated seconds and cost per member, model and day, with a chart. Admins see
    everyone; members and viewers see their own lines and the team's total."""
    require_team(request)
    context = usage_context(request)
    return render(request, "videos/usage.html", context)


def usage_context(request: HttpRequest) -> dict:
    month = parse_month(request.GET.get("month", ""))
    everyone = can(request.user, "view_team_usage")
    report = month_usage(month, only_author_id=None if everyone else request.user.pk)
    bars, peak = chart_bars(report.days)
    previous = (month - timedelta(days=1)).replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return {
        "report": report,
        "everyone": everyone,
        "bars": bars,
        "peak": peak,
        "month_value": month.strftime("%Y-%m"),
        "previous_month": previous.strftime("%Y-%m"),
        "next_month": following.strftime("%Y-%m") if following <= this_month() else None,
    }


USAGE_COLUMNS = ["month", "breakdown", "key", "jobs", "seconds", "cost"]


@require_GET
def usage_csv(request: HttpRequest) -> HttpResponse:
    """The usage page's numbers, the same rows as its tables."""
    require_team(request)
    context = usage_context(request)
    report, month = context["report"], context["month_value"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="muxweb-usage-{month}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(USAGE_COLUMNS)
    lines = [("team", [report.total])]
    lines += [("member", report.members), ("model", report.models), ("day", report.days)]
    for breakdown, rows in lines:
        for line in rows:
            writer.writerow(
                [month, breakdown, spreadsheet_cell(line.key), line.jobs, line.seconds, line.cost]
            )
    return response


# The most jobs one bulk action takes: more than any real selection, and a bound on the work one
# request starts. "Select all matching" says so when the filters match more.
MAX_SELECTION = 10_000


def selected_jobs(request: HttpRequest, params) -> tuple[QuerySet[VideoJob], dict]:
    """The jobs a bulk action is about, and the gallery's filters sent with it: every job
    matching the filters (all=1), or the ticked ids (at most MAX_SELECTION), on whatever pages
    they were ticked."""
    jobs, filters = filtered_jobs(request, params)
    if params.get("all") == "1":
        return jobs, filters
    ids = [i for part in params.getlist("ids") for i in map(parse_id, part.split(","))]
    ids = [i for i in ids if i is not None][:MAX_SELECTION]
    return VideoJob.objects.kept().filter(pk__in=ids), filters


def count_of(jobs: QuerySet[VideoJob]) -> tuple[int, bool]:
    """How many jobs, counting no further than MAX_SELECTION; and whether there are more."""
    count = jobs.order_by()[: MAX_SELECTION + 1].count()
    return min(count, MAX_SELECTION), count > MAX_SELECTION


def selection_context(request: HttpRequest, params) -> dict:
    jobs, filters = selected_jobs(request, params)
    count, more = count_of(jobs)
    kept = {key: value for key, value in filters.items() if value}
    return {
        "jobs": jobs,
        "count": count,
        "more": more,
        "all_matching": params.get("all") == "1",
        "ids": [] if params.get("all") == "1" else list(jobs.values_list("pk", flat=True)),
        "kept_filters": kept,
        "gallery_url": reverse("videos-gallery") + (f"?{urlencode(kept)}" if kept else ""),
        "extras": params.get("extras") == "1",
        "may_trash": may_delete_some(request.user),
        "trash_days": settings.MUXWEB_TRASH_DAYS,
    }


@require_GET
def select_all(request: HttpRequest) -> HttpResponse:
    """ "Select all matching": how many jobs the gallery's filters match. The bulk bar shows it in
    place; without JavaScript it is a page with the bulk actions for all of them."""
    require_team(request)
    params = request.GET.copy()
    params["all"] = "1"
    context = selection_context(request, params)
    if request.htmx:
        return render(request, "videos/bulk.html#all-matching", context)
    return render(request, "videos/bulk.html", context)


@require_POST
def bulk_trash(request: HttpRequest) -> HttpResponse:
    """Move a selection to the trash. The first post asks for confirmation on a page of its own
    (it works without JavaScript) saying how many of the selected this person may move; the
    confirmed post moves them."""
    require_team(request)
    if not may_delete_some(request.user):
        raise PermissionDenied
    context = selection_context(request, request.POST)
    # Running jobs stay: deleting them would leave a paid video nobody tracks.
    movable = deletable(request.user, context["jobs"]).exclude(NEEDING_WORK)
    if not request.POST.get("confirmed"):
        count, _more = count_of(movable)
        sample = list(movable.order_by("-created_at", "-id")[:SAMPLE_SIZE])
        return render(
            request,
            "videos/bulk.html",
            {
                **context,
                "confirm_trash": True,
                "movable": count,
                "kept_back": context["count"] - count,
                "sample": sample,
                "more_than_sample": count - len(sample),
            },
        )
    # All matching: the newest MAX_SELECTION of them (the page said so).
    newest = context["jobs"].order_by("-created_at", "-id").values("pk")[:MAX_SELECTION]
    result = trash.trash_jobs(VideoJob.objects.filter(pk__in=Subquery(newest)), actor=request.user)
    for level, text in bulk_trash_messages(result):
        messages.add_message(request, level, text)
    return redirect(context["gallery_url"])


def bulk_trash_messages(result: trash.TrashResult) -> list[tuple[int, str]]:
    """What a bulk move to the trash tells: how many moved, and why the others did not."""
    told = [
        (
            messages.SUCCESS,
            ngettext(
                "%(n)s video moved to the trash. Restore it from the Trash within %(days)s days.",
                "%(n)s videos moved to the trash. Restore them from the Trash within %(days)s "
                "days.",
                result.trashed,
            )
            % {"n": result.trashed, "days": settings.MUXWEB_TRASH_DAYS},
        )
    ]
    kept = result.not_allowed + result.running
    if kept:
        told.append(
            (
                messages.WARNING,
                ngettext(
                    "%(n)s video stayed: it is someone else's or still running.",
                    "%(n)s videos stayed: they are someone else's or still running.",
                    kept,
                )
                % {"n": kept},
            )
        )
    if result.provider_failed:
        told.append(
            (
                messages.WARNING,
                gettext(
                    "The provider could not be reached for some of them; its copies expire "
                    "on their own."
                ),
            )
        )
    return told


# How many of the selected prompts the confirmation page lists.
SAMPLE_SIZE = 8
