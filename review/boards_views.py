"""The boards' pages: the list, a board (its jobs in its order, moved by buttons or by dragging),
renaming and deleting, and adding jobs from a card, the job page or the gallery's selection."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from muxweb.text import parse_id, without_control_characters
from review import boards
from review.models import Board
from videos.models import VideoJob
from videos.views import (
    MAX_SELECTION,
    get_job_for_user,
    require_team,
    selection_context,
)

# Cards on one page of a board; boards on one page of the list.
BOARD_PAGE_SIZE = 48
BOARDS_PAGE_SIZE = 48


class BoardForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(label=_("Description"), max_length=500, required=False)

    def clean_name(self) -> str:
        name = without_control_characters(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError(gettext("Give the board a name."))
        return name

    def clean_description(self) -> str:
        return without_control_characters(self.cleaned_data["description"]).strip()


class AddToBoardForm(forms.Form):
    """An existing board, or the name of a new one."""

    board = forms.TypedChoiceField(label=_("Board"), required=False, coerce=int, empty_value=None)
    new_name = forms.CharField(label=_("Or a new board named"), max_length=120, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.boards = list(Board.objects.only("pk", "name").order_by("name", "id"))
        self.fields["board"].choices = [("", "—")] + [(b.pk, b.name) for b in self.boards]

    def clean(self) -> dict:
        data = super().clean()
        data["new_name"] = without_control_characters(data.get("new_name") or "").strip()
        if data.get("board") is None and not data["new_name"]:
            raise forms.ValidationError(gettext("Choose a board or name a new one."))
        return data

    def target(self, actor) -> Board:
        """The chosen board, or the new one made now."""
        if self.cleaned_data["new_name"]:
            return boards.create_board(self.cleaned_data["new_name"], actor=actor)
        return next(b for b in self.boards if b.pk == self.cleaned_data["board"])


def get_board(request: HttpRequest, pk: int) -> Board:
    """The board, for anyone in the team; 404 if there is none."""
    require_team(request)
    board = Board.objects.select_related("created_by").filter(pk=pk).first()
    if board is None:
        raise Http404
    return board


def require_change(request: HttpRequest) -> None:
    require_team(request)
    if not boards.may_change_boards(request.user):
        raise PermissionDenied


def board_link(board: Board) -> str:
    return format_html('<a href="{}">{}</a>', reverse("review-board", args=[board.pk]), board.name)


@require_GET
def board_list(request: HttpRequest) -> HttpResponse:
    require_team(request)
    return render(request, "review/boards.html", list_context(request, BoardForm()))


def list_context(request: HttpRequest, form: BoardForm) -> dict:
    after, before = request.GET.get("after", ""), request.GET.get("before", "")
    page = boards.boards_page(after=after, before=before, size=BOARDS_PAGE_SIZE)
    url = reverse("review-boards")
    return {
        "boards": page["boards"],
        "later_page": page["later"],
        "next_url": f"{url}?{urlencode({'after': page['after']})}" if page["after"] else None,
        "previous_url": f"{url}?{urlencode({'before': page['before']})}"
        if page["before"]
        else None,
        "form": form,
        "may_change": boards.may_change_boards(request.user),
    }


@require_POST
def board_create(request: HttpRequest) -> HttpResponse:
    require_change(request)
    form = BoardForm(request.POST)
    if not form.is_valid():
        return render(request, "review/boards.html", list_context(request, form), status=400)
    board = boards.create_board(
        form.cleaned_data["name"], description=form.cleaned_data["description"], actor=request.user
    )
    return redirect("review-board", pk=board.pk)


def board_context(request: HttpRequest, board: Board, params) -> dict:
    after, before = params.get("after", ""), params.get("before", "")
    page = boards.page_items(board, after=after, before=before, size=BOARD_PAGE_SIZE)
    url = reverse("review-board", args=[board.pk])
    return {
        "board": board,
        "page": page,
        # The cursor of this page, sent with each move so the page comes back the same.
        "page_cursor": {"after": after} if after else ({"before": before} if before else {}),
        "older_url": f"{url}?{urlencode({'after': page['after']})}" if page["after"] else None,
        "newer_url": f"{url}?{urlencode({'before': page['before']})}" if page["before"] else None,
        "may_change": boards.may_change_boards(request.user),
        "may_manage": boards.may_manage(request.user, board),
    }


@require_GET
def board_detail(request: HttpRequest, pk: int) -> HttpResponse:
    board = get_board(request, pk)
    return render(request, "review/board.html", board_context(request, board, request.GET))


def back_to_board(request: HttpRequest, board: Board) -> HttpResponse:
    """The same page of the board again: its region for htmx, else the page by redirect."""
    if request.htmx:
        context = board_context(request, board, request.POST)
        return render(request, "review/board.html#items", context)
    cursor = {k: request.POST[k] for k in ("after", "before") if request.POST.get(k)}
    url = reverse("review-board", args=[board.pk])
    return redirect(f"{url}?{urlencode(cursor)}" if cursor else url)


@require_POST
def board_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a job up or down one place, or just before or after another job (a drag)."""
    board = get_board(request, pk)
    require_change(request)
    job_id = parse_id(request.POST.get("job", ""))
    direction = request.POST.get("direction", "")
    place = boards.Place(
        before=parse_id(request.POST.get("before_job", "")),
        after=parse_id(request.POST.get("after_job", "")),
        step={"up": -1, "down": 1}.get(direction, 0),
    )
    given = [place.before is not None, place.after is not None, place.step != 0]
    if job_id is None or given.count(True) != 1:
        return HttpResponse(gettext("Say which job goes where."), status=400)
    job = VideoJob.objects.filter(pk=job_id).first()
    if job is not None:
        boards.move(board, job, place, actor=request.user)
    return back_to_board(request, board)


@require_POST
def board_remove(request: HttpRequest, pk: int) -> HttpResponse:
    board = get_board(request, pk)
    require_change(request)
    job = VideoJob.objects.filter(pk=parse_id(request.POST.get("job", "")) or 0).first()
    if job is not None and boards.remove_job(board, job, actor=request.user) and not request.htmx:
        messages.success(
            request,
            gettext("Removed #%(id)s from the board; the video itself stays.") % {"id": job.pk},
        )
    return back_to_board(request, board)


def board_rename(request: HttpRequest, pk: int) -> HttpResponse:
    """Its maker or an admin renames a board (and changes its description)."""
    board = get_board(request, pk)
    if not boards.may_manage(request.user, board):
        raise PermissionDenied
    if request.method == "POST":
        form = BoardForm(request.POST)
        if form.is_valid():
            boards.rename_board(
                board,
                form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
            )
            return redirect("review-board", pk=board.pk)
    else:
        form = BoardForm(initial={"name": board.name, "description": board.description})
    return render(request, "review/board_rename.html", {"board": board, "form": form})


def board_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Its maker or an admin deletes a board: GET asks, POST does it. The jobs stay."""
    board = get_board(request, pk)
    if not boards.may_manage(request.user, board):
        raise PermissionDenied
    if request.method != "POST":
        count = boards.kept_items(board).count()
        return render(request, "review/board_delete.html", {"board": board, "count": count})
    boards.delete_board(board, actor=request.user)
    messages.success(
        request, gettext("Board “%(name)s” deleted; its videos stay.") % {"name": board.name}
    )
    return redirect("review-boards")


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def job_boards(request: HttpRequest, pk: int) -> HttpResponse:
    """Add one job to a board: a small page of its own (from a card), or the same form inline
    on the job page, which posts here."""
    job = get_job_for_user(request, pk)
    require_change(request)
    if job.trashed_at is not None:
        messages.error(request, gettext("This video is in the trash: restore it first."))
        return redirect("videos-detail", pk=job.pk)
    form = AddToBoardForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        board = form.target(request.user)
        if boards.add_jobs(board, [job], actor=request.user):
            text = gettext("Added to the board {}.")
        else:
            text = gettext("It was on the board {} already.")
        messages.success(request, format_html(text, board_link(board)))
        return redirect(safe_next(request, reverse("videos-detail", args=[job.pk])))
    context = {
        "job": job,
        "form": form,
        "on_boards": list(boards.boards_of(job)),
        "next": safe_next(request, ""),
    }
    return render(request, "review/job_boards.html", context)


@require_POST
def add_selection(request: HttpRequest) -> HttpResponse:
    """The gallery's selection onto a board: the first post (from the bulk bar) asks which
    board, the second adds them, in the gallery's order, after the board's last job."""
    require_change(request)
    context = selection_context(request, request.POST)
    form = AddToBoardForm(request.POST if request.POST.get("confirmed") else None)
    if not form.is_valid():
        return render(request, "review/boards_add.html", {**context, "form": form})
    board = form.target(request.user)
    newest = context["jobs"].order_by("-created_at", "-id").values("pk")[:MAX_SELECTION]
    jobs = VideoJob.objects.filter(pk__in=Subquery(newest)).order_by("-created_at", "-id")
    added = boards.add_jobs(board, jobs, actor=request.user)
    messages.success(
        request,
        format_html(
            "{} {}",
            ngettext("%(n)s video added to the board:", "%(n)s videos added to the board:", added)
            % {"n": added},
            board_link(board),
        ),
    )
    return redirect(context["gallery_url"])
