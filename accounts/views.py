"""The team's pages: the team (admins), the set-password page its links open, My account
(everyone) and the activity log (admins). The spend they show is made of jobs, so they read it
from videos.budgets: views are the top layer, above both apps."""

import csv
import itertools
import json
from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import team
from accounts.forms import AddPersonForm, BudgetForm, ConcurrencyForm, RoleForm
from accounts.models import Action, ActivityEntry, Profile, TeamBudget
from accounts.preferences import PreferencesForm, remember
from accounts.roles import Role, can, role_of
from muxweb.money import money
from muxweb.text import CsvLines, parse_day, parse_id, spreadsheet_cell
from videos.budgets import ZERO, allowance_for, month_by_person, spent_this_month

ACTIVITY_PAGE_SIZE = 50


def require(request: HttpRequest, action: str) -> None:
    if not can(request.user, action):
        raise PermissionDenied


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
    if (start := parse_day(filters["from"])) is not None:
        entries = entries.filter(at__gte=datetime.combine(start, time.min, tzinfo=zone))
    else:
        filters["from"] = ""
    if (end := parse_day(filters["to"])) is not None:
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
    # Django focuses the old password: here it would scroll the page past the spend on load.
    password.fields["old_password"].widget.attrs.pop("autofocus", None)
    allowance = allowance_for(request.user)
    context = {
        "preferences": preferences,
        "password": password,
        # With a budget of their own, the allowance has read their spend already.
        "spent": allowance.person.spent if allowance.person else spent_this_month(request.user.pk),
        "budget": allowance.person,
        "team_budget": allowance.team,
        "role": role_of(request.user),
    }
    return render(request, "accounts/account.html", context)


@require_GET
def team_page(request: HttpRequest) -> HttpResponse:
    require(request, "manage_team")
    return render_team(request)


def render_team(request: HttpRequest, **context) -> HttpResponse:
    """The team page. `context` carries what a POST made or refused: `add_form` with its errors,
    `budget_form` with its errors (`budget_for`: a person's id, or "team"), or `new_link`, shown
    in this one response and nowhere else."""
    month = month_by_person()
    people = team.people()
    for person in people:
        if (line := month.get(person.user.pk)) is not None:
            person.jobs, person.spent = line.jobs, line.spent
    team_budget = TeamBudget.objects.filter(pk=1).values_list("monthly_budget", flat=True).first()
    context = {
        "people": people,
        "roles": Role.choices,
        "team_budget": team_budget,
        "team_spent": sum((line.spent for line in month.values()), ZERO),
        "add_form": AddPersonForm(),
        **context,
    }
    return render(request, "accounts/team.html", context)


def team_person(request: HttpRequest, pk: int) -> AbstractUser:
    """The account `pk` names, or 404. The acting admin's own account is `request.user` itself,
    so that a change to it shows at once in what this request may still do."""
    if pk == request.user.pk:
        return request.user
    return get_object_or_404(get_user_model(), pk=pk)


@require_POST
def team_add(request: HttpRequest) -> HttpResponse:
    require(request, "manage_team")
    form = AddPersonForm(request.POST)
    if not form.is_valid():
        return render_team(request, add_form=form)
    data = form.cleaned_data
    try:
        person, path = team.add_person(request.user, data["username"], data["email"], data["role"])
    except team.UsernameTaken as exc:
        form.add_error("username", exc.message)
        return render_team(request, add_form=form)
    return render_new_link(request, person, path, added=True)


@require_POST
def team_link(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "manage_team")
    person = team_person(request, pk)
    try:
        path = team.new_password_link(request.user, person)
    except team.TeamError as exc:
        messages.error(request, exc.message)
        return redirect("accounts-team")
    return render_new_link(request, person, path, added=False)


def render_new_link(request: HttpRequest, person, path: str, *, added: bool) -> HttpResponse:
    """The team page with the link just made, emailed too when the person has an address and
    the site sends email. Never stored, never cached: a reload of /team/ does not show it."""
    url = request.build_absolute_uri(path)
    emailed, email_error = False, ""
    try:
        emailed = team.email_link(person, url)
    except team.TeamError as exc:
        email_error = exc.message
    new_link = {
        "person": person,
        "url": url,
        "added": added,
        "emailed": emailed,
        "email_error": email_error,
    }
    response = render_team(request, new_link=new_link)
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "POST"])
def team_role(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; so does a POST that lowers the role, until it is confirmed."""
    require(request, "manage_team")
    person = team_person(request, pk)
    form = RoleForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, gettext("Choose one of the roles."))
        return redirect("accounts-team")
    role = Role(form.cleaned_data["role"])
    before = team.assigned_role(person)
    demotion = team.is_demotion(before, role)
    if request.method == "GET" or (demotion and not form.cleaned_data["confirmed"]):
        return render(
            request,
            "accounts/team_confirm.html",
            {
                "kind": "role",
                "person": person,
                "before": before,
                "role": role,
                "demotion": demotion,
            },
        )
    try:
        changed = team.change_role(request.user, person, role)
    except team.TeamError as exc:
        messages.error(request, exc.message)
        return redirect("accounts-team")
    values = {"username": person.get_username(), "role": role.label}
    if changed:
        messages.success(request, gettext("%(username)s's role is now %(role)s.") % values)
    else:
        messages.info(request, gettext("%(username)s's role was %(role)s already.") % values)
    if not can(request.user, "manage_team"):
        # The admin gave up their own admin role: this page is no longer theirs.
        return redirect("videos-gallery")
    return redirect("accounts-team")


@require_http_methods(["GET", "POST"])
def team_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST deactivates. Jobs and history stay."""
    require(request, "manage_team")
    person = team_person(request, pk)
    if request.method == "GET":
        context = {"kind": "deactivate", "person": person, "role": team.assigned_role(person)}
        return render(request, "accounts/team_confirm.html", context)
    try:
        changed = team.deactivate(request.user, person)
    except team.TeamError as exc:
        messages.error(request, exc.message)
        return redirect("accounts-team")
    values = {"username": person.get_username()}
    if changed:
        messages.success(
            request,
            gettext("%(username)s is deactivated. Their videos and history stay.") % values,
        )
    else:
        messages.info(request, gettext("%(username)s was deactivated already.") % values)
    if not request.user.is_active:
        # Their own account: this session ends with it.
        return redirect("login")
    return redirect("accounts-team")


@require_POST
def team_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "manage_team")
    person = team_person(request, pk)
    values = {"username": person.get_username()}
    if team.reactivate(request.user, person):
        messages.success(request, gettext("%(username)s can log in again.") % values)
    else:
        messages.info(request, gettext("%(username)s was active already.") % values)
    return redirect("accounts-team")


@require_POST
def team_budget(request: HttpRequest) -> HttpResponse:
    require(request, "manage_team")
    return set_budget(request, None)


@require_POST
def team_person_budget(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "manage_team")
    return set_budget(request, team_person(request, pk))


def set_budget(request: HttpRequest, person) -> HttpResponse:
    """A person's monthly budget, or the team's when `person` is None; empty is no limit."""
    form = BudgetForm(request.POST)
    budget_for = "team" if person is None else person.pk
    if not form.is_valid():
        return render_team(request, budget_form=form, budget_for=budget_for)
    amount = form.cleaned_data["amount"]
    try:
        changed = team.set_budget(request.user, person, amount)
    except team.TeamError as exc:
        form.add_error("amount", exc.message)
        return render_team(request, budget_form=form, budget_for=budget_for)
    values = {"amount": money(amount)}
    if not changed:
        messages.info(request, gettext("The budget was that already."))
    elif person is None:
        messages.success(
            request,
            gettext("The team's monthly budget is now %(amount)s.") % values
            if amount is not None
            else gettext("The team has no monthly budget now."),
        )
    else:
        values["username"] = person.get_username()
        messages.success(
            request,
            gettext("%(username)s's monthly budget is now %(amount)s.") % values
            if amount is not None
            else gettext("%(username)s has no monthly budget of their own now.") % values,
        )
    return redirect("accounts-team")


@require_POST
def team_person_concurrency(request: HttpRequest, pk: int) -> HttpResponse:
    """How many of a person's videos may render at once; empty is no limit of their own."""
    require(request, "manage_team")
    person = team_person(request, pk)
    form = ConcurrencyForm(request.POST)
    if not form.is_valid():
        return render_team(request, concurrency_form=form, concurrency_for=person.pk)
    limit = form.cleaned_data["limit"]
    try:
        changed = team.set_concurrency_limit(request.user, person, limit)
    except team.TeamError as exc:
        form.add_error("limit", exc.message)
        return render_team(request, concurrency_form=form, concurrency_for=person.pk)
    values = {"username": person.get_username(), "limit": limit}
    if not changed:
        messages.info(request, gettext("The limit was that already."))
    elif limit is None:
        messages.success(
            request, gettext("%(username)s has no limit of videos at once now.") % values
        )
    else:
        messages.success(
            request,
            ngettext(
                "%(username)s may now render %(limit)s video at once.",
                "%(username)s may now render %(limit)s videos at once.",
                limit,
            )
            % values,
        )
    return redirect("accounts-team")


@method_decorator(login_not_required, name="dispatch")
class SetPasswordView(PasswordResetConfirmView):
    """The page a set-password link opens: Django's own, with muxweb's links (72 hours, the
    newest only, active accounts only). Setting the password does not log in; the person logs
    in with it next."""

    token_generator = team.set_password_links
    template_name = "registration/set_password.html"
    success_url = reverse_lazy("login")
    post_reset_login = False

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, gettext("Your password is set. Log in with it."))
        return response
