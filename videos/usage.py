"""What the team generated in a month, and what it cost: per member, per model and per day.

Only completed jobs count, at the cost fixed when they completed (`VideoJob.final_cost`); a
failed job costs nothing. A job belongs to the month, in TIME_ZONE, in which it completed. A job
removed for good still counts, through the `PurgedCost` row it left.
"""

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from videos.models import PurgedCost, Status, VideoJob


@dataclass
class Line:
    key: str
    jobs: int = 0
    seconds: int = 0
    cost: Decimal = Decimal("0.00")


@dataclass
class MonthUsage:
    month: date
    total: Line
    members: list[Line] = field(default_factory=list)
    models: list[Line] = field(default_factory=list)
    days: list[Line] = field(default_factory=list)


def parse_month(value: str) -> date:
    """The first day of the month `value` names ("2026-11"), or of this month."""
    try:
        year, month = (int(part) for part in value.split("-")) if len(value) == 7 else (0, 0)
        return date(year, month, 1)
    except ValueError:
        return this_month()


def this_month() -> date:
    """The first day of the current month in TIME_ZONE (not the reader's own time zone: the
    team's months are the same for everyone)."""
    return timezone.localdate(timezone=timezone.get_default_timezone()).replace(day=1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    zone = timezone.get_default_timezone()
    days = calendar.monthrange(month.year, month.month)[1]
    start = datetime.combine(month, time.min, tzinfo=zone)
    return start, datetime.combine(month + timedelta(days=days), time.min, tzinfo=zone)


def completed_in(month: date) -> QuerySet[VideoJob]:
    start, end = month_bounds(month)
    return VideoJob.objects.filter(
        status=Status.COMPLETED, completed_at__gte=start, completed_at__lt=end
    )


def purged_in(month: date) -> QuerySet[PurgedCost]:
    """The costs of the month's completed jobs that have since been removed for good."""
    start, end = month_bounds(month)
    return PurgedCost.objects.filter(completed_at__gte=start, completed_at__lt=end)


def _lines(sources: list[QuerySet], key: str) -> list[Line]:
    """One line per value of `key`, summed over `sources` (jobs and purged costs: both have
    the fields counted here), in one query (UNION ALL of each source's groups)."""
    grouped = [
        rows.values(key)
        .annotate(n=Count("id"), seconds=Sum("seconds"), cost=Sum("final_cost"))
        .order_by()
        for rows in sources
    ]
    lines: dict[str, Line] = {}
    for row in grouped[0].union(*grouped[1:], all=True):
        name = "" if row[key] is None else str(row[key])
        line = lines.setdefault(name, Line(name))
        line.jobs += row["n"]
        line.seconds += row["seconds"] or 0
        line.cost = (line.cost + (row["cost"] or Decimal("0"))).quantize(Decimal("0.01"))
    # By name as people read it; the unnamed line (imported jobs, former accounts) last.
    return [lines[name] for name in sorted(lines, key=lambda k: (k == "", k.casefold(), k))]


def month_usage(month: date, *, only_author_id: int | None = None) -> MonthUsage:
    """The month's usage. With `only_author_id`, members, models and days are that person's own
    (what a member or viewer sees); the total is always the team's."""
    team = [completed_in(month), purged_in(month)]
    # One group for the whole team: a constant groups nothing apart.
    everyone = _lines([rows.annotate(everyone=Value("team")) for rows in team], "everyone")
    total = everyone[0] if everyone else Line("team")
    mine = (
        team if only_author_id is None else [rows.filter(author_id=only_author_id) for rows in team]
    )
    members = _lines(mine, "author__username")
    zone = timezone.get_default_timezone()
    by_day = {
        line.key: line
        for line in _lines(
            [rows.annotate(day=TruncDate("completed_at", tzinfo=zone)) for rows in mine], "day"
        )
    }
    days = []
    start, end = month_bounds(month)
    day = month
    while datetime.combine(day, time.min, tzinfo=start.tzinfo) < end:
        days.append(by_day.get(day.isoformat(), Line(day.isoformat())))
        day += timedelta(days=1)
    return MonthUsage(
        month=month,
        total=total,
        members=members,
        models=_lines(mine, "model"),
        days=days,
    )


@dataclass
class Bar:
    day: int
    label: str
    cost: Decimal
    x: float
    y: float
    width: float
    height: float


CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 720, 200, 10


def chart_bars(days: list[Line]) -> tuple[list[Bar], Decimal]:
    """One bar per day, scaled to the dearest day: drawn as SVG by the template, no script."""
    peak = max((line.cost for line in days), default=Decimal("0")) or Decimal("1")
    slot = CHART_WIDTH / max(len(days), 1)
    bars = []
    for index, line in enumerate(days):
        height = float(line.cost / peak) * (CHART_HEIGHT - CHART_TOP)
        bars.append(
            Bar(
                day=index + 1,
                label=line.key,
                cost=line.cost,
                x=round(index * slot + slot * 0.15, 2),
                y=round(CHART_HEIGHT - height, 2),
                width=round(slot * 0.7, 2),
                height=round(height, 2),
            )
        )
    return bars, peak
