"""Share links: the guest's pages (no login: the token is the key) and the team's forms to make
and revoke links.

Every guest page and file is answered with `Referrer-Policy: no-referrer` (the token must not
travel to another site in a Referer), `X-Robots-Tag: noindex` and `Cache-Control: private,
no-store`, on top of the site's Content Security Policy and other headers.
"""

from collections.abc import Callable
from functools import wraps
from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST, require_safe

from accounts.roles import can
from review import sharing
from review.models import Board, ShareLink
from review.sharing import LinkState
from videos import media
from videos.models import VARIANTS, ReviewState
from videos.views import get_job_for_user, require_team

GUEST_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "private, no-store",
}


def _with_guest_headers(response: HttpResponse) -> HttpResponse:
    for name, value in GUEST_HEADERS.items():
        response[name] = value
    return response


def _refusal(request: HttpRequest, status: int, heading: str, text: str) -> HttpResponse:
    response = render(
        request,
        "review/share_refused.html",
        {"heading": heading, "text": text},
        status=status,
    )
    if status == 429:
        response["Retry-After"] = str(sharing.MISS_WINDOW_SECONDS)
    return response


def guest_view(*, locked: str = "form") -> Callable:
    """A guest page behind a token: refused while the visitor's address has guessed too often
    (429), for an unknown token (404, counted as a miss), for an expired or revoked link (410).
    While the link has a password this browser has not given, `locked` says what happens: the
    password "form", "refuse" (403: files, comments, reviews) or "open" (the password form's own
    answer)."""

    def decorate(view: Callable) -> Callable:
        @login_not_required
        @wraps(view)
        def wrapper(request: HttpRequest, token: str, *args, **kwargs) -> HttpResponse:
            try:
                response = _guarded(request, view, token, locked, args, kwargs)
            except PermissionDenied:
                response = _refusal(
                    request, 403, gettext("Not allowed"), gettext("This link does not allow it.")
                )
            except Http404:
                response = _refusal(
                    request, 404, gettext("Not found"), gettext("This link does not show it.")
                )
            return _with_guest_headers(response)

        return wrapper

    return decorate


def _guarded(request, view, token, locked, args, kwargs) -> HttpResponse:
    if sharing.too_many_misses(request):
        return _refusal(
            request,
            429,
            gettext("Too many tries"),
            gettext(
                "Too many wrong links or passwords came from your network. "
                "Try again within %(n)d minutes."
            )
            % {"n": sharing.MISS_WINDOW_SECONDS // 60},
        )
    found = sharing.find_link(token)
    if found is None:
        sharing.count_miss(request)
        return _refusal(
            request,
            404,
            gettext("Link not found"),
            gettext("This share link does not exist. Check that it was copied whole."),
        )
    if found.state is LinkState.EXPIRED:
        return _refusal(
            request,
            410,
            gettext("This link has expired"),
            gettext("Ask whoever shared it for a new link."),
        )
    if found.state is LinkState.REVOKED:
        return _refusal(
            request,
            410,
            gettext("This link was withdrawn"),
            gettext("Whoever shared it has withdrawn it. Ask them for a new link."),
        )
    link = found.link
    if locked != "open" and sharing.needs_password(request, link):
        if locked == "form" and request.method in ("GET", "HEAD"):
            return _password_page(request, token, link, status=200)
        raise PermissionDenied
    return view(request, link, token, *args, **kwargs)


def _password_page(request, token, link, *, status: int, wrong: bool = False) -> HttpResponse:
    context = {"token": token, "link": link, "wrong": wrong, "next": request.get_full_path()}
    return render(request, "review/share_password.html", context, status=status)


def _guest_context(request: HttpRequest, link: ShareLink, token: str) -> dict:
    return {
        "link": link,
        "token": token,
        "guest_name": request.session.get("share_guest_name", ""),
        "review_states": [(state.value, state.label) for state in sharing.GUEST_REVIEW_STATES],
    }


def _job_page(request: HttpRequest, link: ShareLink, token: str, job) -> HttpResponse:
    sharing.record_view(link, request, job)
    context = {
        **_guest_context(request, link, token),
        "job": job,
        "comments": sharing.comments_of(job) if link.show_comments else [],
        "from_board": bool(link.board_id),
        "review_state": ReviewState(job.review_state),
    }
    return render(request, "review/share_job.html", context)


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


# The guest's pages


@guest_view()
@require_GET
def share_page(request: HttpRequest, link: ShareLink, token: str) -> HttpResponse:
    """The shared job, or the shared board's jobs in the board's order."""
    if link.job_id:
        return _job_page(request, link, token, link.job)
    sharing.record_view(link, request)
    context = {**_guest_context(request, link, token), "board": link.board}
    context["jobs"] = sharing.board_jobs(link)
    return render(request, "review/share_board.html", context)


@guest_view()
@require_GET
def share_job_page(request: HttpRequest, link: ShareLink, token: str, job_id: int) -> HttpResponse:
    """One job of a shared board (or the shared job itself)."""
    job = sharing.job_of(link, job_id)
    if job is None:
        raise Http404
    return _job_page(request, link, token, job)


@guest_view(locked="open")
@require_POST
def share_unlock(request: HttpRequest, link: ShareLink, token: str) -> HttpResponse:
    """The password form: a right password opens the link for this browser's session."""
    if not link.password_hash or sharing.unlock(request, link, request.POST.get("password", "")):
        return redirect(_safe_next(request, reverse("review-share", args=[token])))
    return _password_page(request, token, link, status=403, wrong=True)


@guest_view(locked="refuse")
@require_safe
def share_media(
    request: HttpRequest, link: ShareLink, token: str, job_id: int, variant: str
) -> HttpResponse:
    """A file of a job the link shows, while the link is valid, with Range for the player."""
    if variant not in VARIANTS:
        raise Http404
    job = sharing.job_of(link, job_id)
    if job is None or not job.asset(variant):
        raise Http404
    try:
        response = media.serve_file(request, Path(job.asset(variant).path))
    except FileNotFoundError:
        raise Http404 from None
    return response


class GuestNameField(forms.CharField):
    def __init__(self) -> None:
        super().__init__(label=_("Your name"), max_length=sharing.GUEST_NAME_MAX, strip=True)


class GuestCommentForm(forms.Form):
    name = GuestNameField()
    body = forms.CharField(label=_("Comment"), max_length=sharing.COMMENT_MAX, strip=True)


class GuestReviewForm(forms.Form):
    name = GuestNameField()
    state = forms.ChoiceField(choices=[(s.value, s.label) for s in sharing.GUEST_REVIEW_STATES])


def _guest_job(link: ShareLink, job_id: int):
    job = sharing.job_of(link, job_id)
    if job is None:
        raise Http404
    return job


def _back_to_job(link: ShareLink, token: str, job) -> HttpResponse:
    if link.job_id:
        return redirect("review-share", token=token)
    return redirect("review-share-job", token=token, job_id=job.pk)


@guest_view(locked="refuse")
@require_POST
def share_comment(request: HttpRequest, link: ShareLink, token: str, job_id: int) -> HttpResponse:
    if not link.allow_comments:
        raise PermissionDenied
    job = _guest_job(link, job_id)
    form = GuestCommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("Type your name and a comment."))
        return _back_to_job(link, token, job)
    request.session["share_guest_name"] = form.cleaned_data["name"]
    sharing.add_guest_comment(link, job, **form.cleaned_data)
    messages.success(request, gettext("Thank you: your comment was added."))
    return _back_to_job(link, token, job)


@guest_view(locked="refuse")
@require_POST
def share_review(request: HttpRequest, link: ShareLink, token: str, job_id: int) -> HttpResponse:
    if not link.allow_approval:
        raise PermissionDenied
    job = _guest_job(link, job_id)
    form = GuestReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("Type your name, then choose."))
        return _back_to_job(link, token, job)
    request.session["share_guest_name"] = form.cleaned_data["name"]
    sharing.set_guest_review(link, job, **form.cleaned_data)
    messages.success(request, gettext("Thank you: your review was recorded."))
    return _back_to_job(link, token, job)


# The team's side


class ShareLinkForm(forms.Form):
    days = forms.IntegerField(label=_("Valid for (days)"), min_value=1)
    password = forms.CharField(
        label=_("Password (optional)"),
        required=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    show_prompt = forms.BooleanField(label=_("Show the prompt"), required=False)
    show_comments = forms.BooleanField(label=_("Show the comments"), required=False)
    allow_comments = forms.BooleanField(label=_("Guests may comment"), required=False)
    allow_approval = forms.BooleanField(label=_("Guests may approve or reject"), required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        days, most = self.fields["days"], sharing.max_days()
        # The setting is read per form: tests and a restart may change it.
        days.validators.append(MaxValueValidator(most))
        days.widget.attrs["max"] = most
        days.initial = min(sharing.DEFAULT_DAYS, most)
        self.fields["show_prompt"].initial = True


def _make_link(request: HttpRequest, back: str, **target) -> HttpResponse:
    if not can(request.user, "share"):
        raise PermissionDenied
    form = ShareLinkForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            gettext("A share link is valid for 1 to %(n)d days.") % {"n": sharing.max_days()},
        )
        return redirect(back)
    link, token = sharing.create_link(**target, actor=request.user, **form.cleaned_data)
    url = request.build_absolute_uri(reverse("review-share", args=[token]))
    # Shown on this answer alone: the token is kept nowhere, so it cannot be shown again.
    response = render(request, "review/share_made.html", {"link": link, "url": url, "back": back})
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
def share_job(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a link to a job: members and admins."""
    job = get_job_for_user(request, pk)
    if job.trashed_at is not None:
        messages.error(request, gettext("This video is in the trash: restore it first."))
        return redirect("videos-detail", pk=job.pk)
    return _make_link(request, reverse("videos-detail", args=[job.pk]) + "#share", job=job)


@require_POST
def share_board(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a link to a board: members and admins. `next` is the board's page to go back to."""
    require_team(request)
    board = get_object_or_404(Board, pk=pk)
    return _make_link(request, _safe_next(request, reverse("videos-gallery")), board=board)


@require_POST
def revoke_link(request: HttpRequest, pk: int) -> HttpResponse:
    """End a link now: its maker or an admin."""
    require_team(request)
    link = get_object_or_404(ShareLink.objects.select_related("job", "board"), pk=pk)
    if not sharing.may_revoke(request.user, link):
        raise PermissionDenied
    if sharing.revoke(link, actor=request.user):
        messages.success(request, gettext("The share link was revoked: it no longer opens."))
    fallback = (
        reverse("videos-detail", args=[link.job_id]) + "#share"
        if link.job_id
        else reverse("videos-gallery")
    )
    return redirect(_safe_next(request, fallback))
