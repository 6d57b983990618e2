"""The team's pages: the activity log (admins) and My account (everyone)."""

import csv
import itertools
import json
from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from accounts.models import Action, ActivityEntry, Profile
from accounts.preferences import PreferencesForm, remember
from accounts.roles import can, role_of
from muxweb.text import CsvLines, parse_id, spreadsheet_cell

ACTIVITY_PAGE_SIZE = 50


def require(request: HttpRequest, action: str) -> None:
    if not can(request.user, action):
        raise PermissionDenied


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value.isascii() and len(value) == 10 else None
    except ValueError:
        return None


def activity_filters(request: HttpRequest) -> tuple[QuerySet[ActivityEntry], dict]:
    """The entries the query string asks for (person, action, from, to), and those filters as
    understood: a value that makes no sense is dropped, never an error."""
    filters = {
        "person": request.GET.get("person", ""),
        "action": request.GET.get("action", ""),
        "from": request.GET.get("from", ""),
        "to": request.GET.get("to", ""),
    }
    entries = ActivityEntry.objects.all()
    if (person := parse_id(filters["person"])) is not None:
        entries = entries.filter(actor_id=person)
    else:
        filters["person"] = ""
    if filters["action"] in Action.values:
        entries = entries.filter(action=filters["action"])
    else:
        filters["action"] = ""
    zone = timezone.get_current_timezone()
    if (start := _day(filters["from"])) is not None:
        entries = entries.filter(at__gte=datetime.combine(start, time.min, tzinfo=zone))
    else:
        filters["from"] = ""
    if (end := _day(filters["to"])) is not None:
        next_day = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
        entries = entries.filter(at__lt=next_day)
    else:
        filters["to"] = ""
    return entries, filters


@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    """The activity log, newest first, a page at a time by cursor (the id of the last entry
    shown): no COUNT, no OFFSET, the same cost at a million entries."""
    require(request, "view_activity")
    entries, filters = activity_filters(request)
    older, newer = parse_id(request.GET.get("older", "")), parse_id(request.GET.get("newer", ""))
    if newer is not None:
        page = list(entries.filter(id__gt=newer).order_by("id")[: ACTIVITY_PAGE_SIZE + 1])
        has_newer = len(page) > ACTIVITY_PAGE_SIZE
        page = page[:ACTIVITY_PAGE_SIZE][::-1]
        has_older = bool(page)
    else:
        if older is not None:
            entries = entries.filter(id__lt=older)
        page = list(entries.order_by("-id")[: ACTIVITY_PAGE_SIZE + 1])
        has_older = len(page) > ACTIVITY_PAGE_SIZE
        page = page[:ACTIVITY_PAGE_SIZE]
        has_newer = older is not None and bool(page)
    query = "&".join(f"{key}={value}" for key, value in filters.items() if value)
    return render(
        request,
        "accounts/activity.html",
        {
            "entries": page,
            "filters": filters,
            "filter_query": query,
            "older_cursor": page[-1].pk if page and has_older else None,
            "newer_cursor": page[0].pk if page and has_newer else None,
            "actions": Action.choices,
            "people": get_user_model().objects.order_by("username").only("pk", "username"),
        },
    )


ACTIVITY_COLUMNS = ["id", "at", "who", "action", "video", "details"]


@require_GET
def activity_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered log as CSV, streamed from one query however long it is."""
    require(request, "view_activity")
    entries, _filters = activity_filters(request)
    writer = csv.writer(CsvLines())
    rows = itertools.chain(
        ["\ufeff" + writer.writerow(ACTIVITY_COLUMNS)],
        (
            writer.writerow(
                [
                    spreadsheet_cell(value)
                    for value in (
                        entry.pk,
                        entry.at.isoformat(),
                        entry.actor_name,
                        entry.action,
                        entry.job_id,
                        json.dumps(entry.subject, ensure_ascii=False, sort_keys=True),
                    )
                ]
            )
            for entry in entries.order_by("-id").iterator(chunk_size=2000)
        ),
    )
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    filename = f"muxweb-activity-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def account(request: HttpRequest) -> HttpResponse:
    """My account, for everyone signed in: password, language, time zone, browser
    notifications, and what I spent this month against my budget."""
    # Imported here: the spend is made of jobs, and the videos app builds on this one.
    from videos.budgets import allowance_for, spent_this_month

    profile = Profile.of(request.user)
    preferences = PreferencesForm(instance=profile)
    password = PasswordChangeForm(request.user, prefix="password")
    if request.method == "POST" and "password-old_password" in request.POST:
        password = PasswordChangeForm(request.user, request.POST, prefix="password")
        if password.is_valid():
            password.save()
            # Changing the password signs out every other session, not this one.
            update_session_auth_hash(request, password.user)
            messages.success(request, gettext("Your password was changed."))
            return redirect("accounts-account")
    elif request.method == "POST":
        preferences = PreferencesForm(request.POST, instance=profile)
        if preferences.is_valid():
            profile = preferences.save()
            remember(request, profile)
            translation.activate(profile.language or request.LANGUAGE_CODE)
            messages.success(request, gettext("Your preferences were saved."))
            return redirect("accounts-account")
    elif request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    allowance = allowance_for(request.user)
    context = {
        "preferences": preferences,
        "password": password,
        "spent": spent_this_month(request.user.pk),
        "budget": allowance.person,
        "team_budget": allowance.team,
        "role": role_of(request.user),
    }
    return render(request, "accounts/account.html", context)
