"""Boards: named collections of jobs (a client, a campaign, a shot list), each in its own order.

Anyone in the team sees every board; members and admins make boards and add, remove and reorder
their jobs; the board's maker or an admin renames or deletes it. A job may be on several boards.
A job in the trash stays on its boards but shows on none until it is restored.

The order is BoardItem.position, smaller first, with gaps of STEP between neighbours: moving a job
writes its own row only, between the two it goes between. When two neighbours have no gap left,
that board alone is renumbered (one row per item of that board, never the others).

Every change writes a BOARD_CHANGE entry to the activity log in its transaction, with the board's
name as it was, so the entry reads the same after the board is renamed or deleted.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.activity import record
from accounts.models import Action
from accounts.roles import Role, role_of
from muxweb.text import parse_id
from review.models import Board, BoardItem
from videos.models import VideoJob

# The room between neighbours when a board is (re)numbered.
STEP = 1024
# Positions are a 32-bit integer column: a move that would leave it renumbers the board.
LIMIT = 2**31 - 1
# The most job ids one activity entry lists (a bulk add names the first ones and counts all).
SNAPSHOT_IDS = 50


def may_change_boards(user) -> bool:
    """Members and admins make boards and change what is on them; viewers only look."""
    return role_of(user) in (Role.ADMIN, Role.MEMBER)


def may_manage(user, board: Board) -> bool:
    """Renaming and deleting a board: its maker (while still a member) or an admin."""
    role = role_of(user)
    return role == Role.ADMIN or (role == Role.MEMBER and board.created_by_id == user.pk)


def _require_change(user) -> None:
    if not may_change_boards(user):
        raise PermissionDenied


def _require_manage(user, board: Board) -> None:
    if not may_manage(user, board):
        raise PermissionDenied


def _record(actor, board: Board, change: str, *, job: VideoJob | None = None, **details) -> None:
    record(
        actor,
        Action.BOARD_CHANGE,
        job=job,
        board_id=board.pk,
        board=board.name,
        change=change,
        **details,
    )


def kept_items(board: Board) -> QuerySet[BoardItem]:
    """The board's items whose job is not in the trash, in the board's order."""
    return board.items.filter(job__trashed_at__isnull=True).order_by("position", "id")


def boards_for_list() -> QuerySet[Board]:
    """Every board with its count of jobs (the trash left out) and the id of its cover: its first
    job. Two subqueries per board row in one query: a page of boards costs the same whatever the
    boards hold."""
    first = (
        BoardItem.objects.filter(board=OuterRef("pk"), job__trashed_at__isnull=True)
        .order_by("position", "id")
        .values("job_id")[:1]
    )
    counted = (
        BoardItem.objects.filter(board=OuterRef("pk"), job__trashed_at__isnull=True)
        .order_by()
        .values("board")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Board.objects.select_related("created_by")
        .annotate(job_count=Coalesce(Subquery(counted), 0), cover_id=Subquery(first))
        .order_by("name", "id")
    )


def boards_page(*, after: str = "", before: str = "", size: int) -> dict:
    """One page of the boards by name, with their covers: the `size` after the cursor `after`,
    or before `before`, or the first. A cursor names a place in the order, (name, id), so a
    board renamed or deleted meanwhile does not move the pages. Along the board_name index: the
    thousandth board costs what the first does."""
    backward = parse_name_cursor(before)
    forward = parse_name_cursor(after)
    found, more_before, more_after = keyset_page(
        boards_for_list(),
        before=None if backward is None else _name_before(*backward),
        after=None if forward is None else _name_after(*forward),
        backwards=["-name", "-id"],
        size=size,
    )
    return {
        "boards": with_covers(found),
        "after": name_cursor(found[-1]) if found and more_after else None,
        "before": name_cursor(found[0]) if found and more_before else None,
        "later": forward is not None or backward is not None,
    }


# Bounded on the name first, so that PostgreSQL starts the board_name index scan there.
def _name_before(name: str, pk: int) -> Q:
    return Q(name__lte=name) & (Q(name__lt=name) | Q(id__lt=pk))


def _name_after(name: str, pk: int) -> Q:
    return Q(name__gte=name) & (Q(name__gt=name) | Q(id__gt=pk))


def name_cursor(board: Board) -> str:
    """The cursor naming `board`'s place in the list: "<id>_<name>"."""
    return f"{board.pk}_{board.name}"


def parse_name_cursor(value: str) -> tuple[str, int] | None:
    """The (name, id) a cursor names, or None for anything that is not a cursor."""
    head, sep, name = value.partition("_")
    pk = parse_id(head)
    too_long = len(name) > Board._meta.get_field("name").max_length
    # Control characters (NUL above all) are in no board's name, and PostgreSQL refuses NUL.
    if not sep or pk is None or too_long or any(ord(c) < 32 for c in name):
        return None
    return name, pk


def with_covers(boards: Iterable[Board]) -> list[Board]:
    """`boards` (from boards_for_list) with `cover`, the first job, read in one query."""
    boards = list(boards)
    covers = VideoJob.objects.in_bulk([b.cover_id for b in boards if b.cover_id])
    for board in boards:
        board.cover = covers.get(board.cover_id)
    return boards


def create_board(name: str, *, actor, description: str = "") -> Board:
    _require_change(actor)
    with transaction.atomic():
        board = Board.objects.create(
            name=name.strip(), description=description.strip(), created_by=actor
        )
        _record(actor, board, "created")
    return board


def rename_board(board: Board, name: str, *, actor, description: str | None = None) -> None:
    _require_manage(actor, board)
    before = board.name
    board.name = name.strip()
    fields = ["name", "updated_at"]
    if description is not None:
        board.description = description.strip()
        fields.append("description")
    with transaction.atomic():
        board.save(update_fields=fields)
        _record(actor, board, "renamed", before=before)


def delete_board(board: Board, *, actor) -> None:
    """Delete the board and its places in the order; the jobs stay where they are."""
    _require_manage(actor, board)
    with transaction.atomic():
        count = board.items.count()
        _record(actor, board, "deleted", count=count)
        board.delete()


def _locked(board: Board) -> Board:
    """The board's row, locked until the transaction ends (PostgreSQL; SQLite's write
    transactions take the whole database), so that two changes to one order take turns."""
    return Board.objects.select_for_update().get(pk=board.pk)


def add_jobs(board: Board, jobs: Iterable[VideoJob] | QuerySet[VideoJob], *, actor) -> int:
    """Put the jobs at the end of the board's order, in the order given; the ones already on it
    stay where they are. Returns how many were added. Jobs in the trash are not added."""
    _require_change(actor)
    if isinstance(jobs, QuerySet):
        ids = list(jobs.filter(trashed_at__isnull=True).values_list("pk", flat=True))
    else:
        ids = [job.pk for job in jobs if job.trashed_at is None]
    ids = list(dict.fromkeys(ids))
    with transaction.atomic():
        board = _locked(board)
        on_board = set(board.items.filter(job_id__in=ids).values_list("job_id", flat=True))
        new = [pk for pk in ids if pk not in on_board]
        if not new:
            return 0
        start = _end(board)
        if start + len(new) * STEP > LIMIT:
            _renumber(board)
            start = _end(board)
        BoardItem.objects.bulk_create(
            BoardItem(board=board, job_id=pk, position=start + i * STEP, added_by=actor)
            for i, pk in enumerate(new)
        )
        board.save(update_fields=["updated_at"])
        job = VideoJob.objects.filter(pk=new[0]).select_related("author").first()
        _record(
            actor,
            board,
            "added",
            job=job if len(new) == 1 else None,
            count=len(new),
            job_ids=new[:SNAPSHOT_IDS],
        )
    return len(new)


def _end(board: Board) -> int:
    """The position after the board's last item."""
    last = board.items.order_by("-position").values_list("position", flat=True).first()
    return (last if last is not None else 0) + STEP


def remove_job(board: Board, job: VideoJob, *, actor) -> bool:
    """Take the job off the board; False if it was not on it."""
    _require_change(actor)
    with transaction.atomic():
        board = _locked(board)
        removed, _ = board.items.filter(job=job).delete()
        if removed:
            board.save(update_fields=["updated_at"])
            _record(actor, board, "removed", job=job)
    return bool(removed)


@dataclass(frozen=True)
class Place:
    """Where a job goes in the order: just before or just after another job of the board, or one
    step up or down among the jobs the board shows."""

    before: int | None = None
    after: int | None = None
    step: int = 0


def move(board: Board, job: VideoJob, place: Place, *, actor) -> bool:
    """Move the job to `place` in the board's order. False if nothing moved: the job or the
    other job is not on the board (or in the trash), or the job is at that end already."""
    _require_change(actor)
    with transaction.atomic():
        board = _locked(board)
        items = kept_items(board)
        item = items.filter(job=job).first()
        if item is None:
            return False
        lower, upper = _neighbours(items, item, place)
        if lower is False:
            return False
        position = _between(lower, upper)
        if position is None:
            _renumber(board)
            item.refresh_from_db()
            lower, upper = _neighbours(kept_items(board), item, place)
            position = _between(lower, upper)
        BoardItem.objects.filter(pk=item.pk).update(position=position)
        board.save(update_fields=["updated_at"])
        _record(actor, board, "moved", job=job)
    return True


def _neighbours(items: QuerySet[BoardItem], item: BoardItem, place: Place):
    """The two items the job goes between (None past either end), or (False, None) if there is
    no such place. Items are compared by (position, id), the page's order; the job's own row is
    left out."""
    others = items.exclude(pk=item.pk)
    if place.step:
        here = (item.position, item.pk)
        if place.step < 0:
            above = others.filter(_before(*here)).order_by("-position", "-id")[:2]
            above = list(above)
            if not above:
                return False, None
            return (above[1] if len(above) > 1 else None), above[0]
        below = list(others.filter(_after(*here)).order_by("position", "id")[:2])
        if not below:
            return False, None
        return below[0], (below[1] if len(below) > 1 else None)
    target_id = place.before if place.before is not None else place.after
    target = others.filter(job_id=target_id).first()
    if target is None:
        return False, None
    at = (target.position, target.pk)
    if place.before is not None:
        lower = others.filter(_before(*at)).order_by("-position", "-id").first()
        return lower, target
    upper = others.filter(_after(*at)).order_by("position", "id").first()
    return target, upper


def _before(position: int, pk: int) -> Q:
    return Q(position__lt=position) | Q(position=position, id__lt=pk)


def _after(position: int, pk: int) -> Q:
    return Q(position__gt=position) | Q(position=position, id__gt=pk)


def _between(lower: BoardItem | None, upper: BoardItem | None) -> int | None:
    """A position strictly between the two neighbours, or None when they have no room left."""
    if lower is None and upper is None:
        return STEP
    if lower is None:
        position = upper.position - STEP
    elif upper is None:
        position = lower.position + STEP
    elif upper.position - lower.position < 2:
        return None
    else:
        position = (lower.position + upper.position) // 2
    return position if abs(position) <= LIMIT else None


def _renumber(board: Board) -> None:
    """Give this board's items positions STEP apart again, in their present order (the ones in
    the trash keep their place among the others)."""
    items = list(board.items.order_by("position", "id").only("pk", "position"))
    for i, item in enumerate(items, start=1):
        item.position = i * STEP
    BoardItem.objects.bulk_update(items, ["position"], batch_size=500)


def keyset_page(
    rows: QuerySet, *, before: Q | None, after: Q | None, backwards: list[str], size: int
) -> tuple[list, bool, bool]:
    """`size` of `rows` (in their order) from the place `before` or `after` selects, or the
    first: the rows, whether more lie before them and whether more lie after. Before a place
    they are read backwards (`backwards`, the order reversed) and turned round."""
    if before is not None:
        found = list(rows.filter(before).order_by(*backwards)[: size + 1])
        return found[:size][::-1], len(found) > size, True
    if after is not None:
        rows = rows.filter(after)
    found = list(rows[: size + 1])
    return found[:size], after is not None, len(found) > size


def page_items(board: Board, *, after: str = "", before: str = "", size: int) -> dict:
    """One page of the board's jobs by position cursor ("<position>_<item id>"): the `size`
    after `after`, or before `before`, or the first. One query for the items with their jobs,
    authors and parents; whatever the board holds."""
    items = kept_items(board).select_related("job", "job__author", "job__remix_of")
    backward = parse_position(before)
    forward = parse_position(after)
    rows, more_before, more_after = keyset_page(
        items,
        before=None if backward is None else _before(*backward),
        after=None if forward is None else _after(*forward),
        backwards=["-position", "-id"],
        size=size,
    )
    return {
        "items": rows,
        "after": position_cursor(rows[-1]) if rows and more_after else None,
        "before": position_cursor(rows[0]) if rows and more_before else None,
        "first": not (more_before and rows),
    }


def position_cursor(item: BoardItem) -> str:
    return f"{item.position}_{item.pk}"


def parse_position(value: str) -> tuple[int, int] | None:
    head, sep, tail = value.partition("_")
    try:
        position, pk = int(head), int(tail)
    except ValueError:
        return None
    if not sep or len(value) > 40 or pk < 1 or abs(position) > LIMIT:
        return None
    return position, pk


def boards_of(job: VideoJob) -> QuerySet[Board]:
    """The boards the job is on, by name."""
    return Board.objects.filter(items__job=job).order_by("name", "id")
