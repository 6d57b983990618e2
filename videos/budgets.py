"""Monthly budgets: what a person and the team have spent this month, and the check every create
makes before anything is sent.

A job's estimated cost is reserved when it is created (`VideoJob.reserved_cost`) and counts while
the job runs; when it ends it is settled: a completed job counts its `final_cost` in the month it
completed, a failed one nothing. So this month's spend is what completed this month (removed for
good since or not: `PurgedCost`) plus what is still running. Months follow TIME_ZONE, as on the
usage page.

The limits themselves (accounts.models.Profile.monthly_budget, TeamBudget) belong to accounts;
the spend is made of jobs, so the arithmetic lives here, beside them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Sum, Value
from django.utils.translation import gettext as _

from accounts.models import Profile, TeamBudget
from muxweb.money import money
from videos.models import ACTIVE_STATUSES, ModelUnavailable, VideoJob
from videos.usage import completed_in, month_bounds, purged_in, this_month

ZERO = Decimal("0.00")


class OverBudget(ModelUnavailable):
    """A create refused because it would take the person or the team past a monthly budget;
    nothing was made or sent."""


def spent_this_month(author_id: int | None = None) -> Decimal:
    """What completed this month plus what is still reserved by running jobs: of `author_id`,
    or the whole team's."""
    month = this_month()
    completed, purged = completed_in(month), purged_in(month)
    running = VideoJob.objects.filter(status__in=ACTIVE_STATUSES)
    if author_id is not None:
        completed = completed.filter(author_id=author_id)
        purged = purged.filter(author_id=author_id)
        running = running.filter(author_id=author_id)
    # One statement: a job settling or purged meanwhile is counted once, never in two sums.
    # (A constant groups nothing apart: each part is one row.)
    sums = [
        rows.annotate(one=Value(1)).values("one").annotate(total=Sum(field)).order_by()
        for rows, field in [
            (completed, "final_cost"),
            (purged, "final_cost"),
            (running, "reserved_cost"),
        ]
    ]
    rows = sums[0].union(*sums[1:], all=True)
    return sum((row["total"] or ZERO for row in rows), ZERO).quantize(ZERO)


@dataclass
class PersonMonth:
    jobs: int = 0
    spent: Decimal = ZERO


def month_by_person() -> dict[int | None, PersonMonth]:
    """Per author (None: imported jobs and former accounts): the jobs they made this month and
    what they spent, counted as the budgets count it. Three grouped queries, whatever the team."""
    month = this_month()
    start, end = month_bounds(month)
    people: dict[int | None, PersonMonth] = defaultdict(PersonMonth)
    made = VideoJob.objects.filter(created_at__gte=start, created_at__lt=end)
    for row in made.values("author_id").annotate(n=Count("id")).order_by():
        people[row["author_id"]].jobs = row["n"]
    settled = (
        completed_in(month)
        .values("author_id")
        .annotate(total=Sum("final_cost"))
        .order_by()
        .union(
            purged_in(month).values("author_id").annotate(total=Sum("final_cost")).order_by(),
            all=True,
        )
    )
    running = (
        VideoJob.objects.filter(status__in=ACTIVE_STATUSES)
        .values("author_id")
        .annotate(total=Sum("reserved_cost"))
    )
    for row in [*settled, *running.order_by()]:
        people[row["author_id"]].spent += row["total"] or ZERO
    return dict(people)


@dataclass
class Limit:
    """One budget as it stands this month."""

    budget: Decimal
    spent: Decimal
    mine: bool  # the person's own budget, or the team's

    @property
    def left(self) -> Decimal:
        return max(self.budget - self.spent, ZERO)


@dataclass
class Allowance:
    """The budgets a person's next create is checked against: theirs and the team's (either may
    be unset)."""

    person: Limit | None
    team: Limit | None

    @property
    def binding(self) -> Limit | None:
        """The limit with the least left, the one a create runs into first."""
        limits = [limit for limit in (self.person, self.team) if limit is not None]
        return min(limits, key=lambda limit: limit.left, default=None)

    @property
    def left(self) -> Decimal | None:
        limit = self.binding
        return None if limit is None else limit.left

    def refusal(self, cost: Decimal | None) -> str | None:
        """Why a job estimated at `cost` may not start, or None if it fits."""
        for limit in (self.person, self.team):
            if limit is None or cost is None or cost <= limit.left:
                continue
            values = {"cost": money(cost), "left": money(limit.left), "budget": money(limit.budget)}
            if limit.mine:
                return (
                    _(
                        "This video would cost %(cost)s, but only %(left)s of your %(budget)s "
                        "monthly budget is left. Choose a shorter or smaller video, or ask an "
                        "admin to raise your budget."
                    )
                    % values
                )
            return (
                _(
                    "This video would cost %(cost)s, but only %(left)s of the team's %(budget)s "
                    "monthly budget is left. Ask an admin to raise the team's budget."
                )
                % values
            )
        return None


def allowance_for(user) -> Allowance:
    """The person's and the team's budgets as they stand now. Two or three queries when a
    budget is set; one to read the budgets otherwise."""
    team_budget = TeamBudget.objects.filter(pk=1).values_list("monthly_budget", flat=True).first()
    person_budget = (
        Profile.objects.filter(user_id=user.pk).values_list("monthly_budget", flat=True).first()
    )
    return Allowance(
        person=None
        if person_budget is None
        else Limit(person_budget, spent_this_month(user.pk), mine=True),
        team=None if team_budget is None else Limit(team_budget, spent_this_month(), mine=False),
    )


def reserve(user, cost: Decimal | None) -> None:
    """Check, inside the create's transaction, that `cost` fits the person's and the team's
    budgets; raise OverBudget if not. The team's row is locked first (PostgreSQL: FOR UPDATE;
    SQLite: every transaction here is BEGIN IMMEDIATE, one writer at a time), so the spend read
    here cannot change before the job that reserves it is saved and committed."""
    assert transaction.get_connection().in_atomic_block, "reserve() runs in the create's atomic"
    TeamBudget.objects.get_or_create(pk=1)
    list(TeamBudget.objects.select_for_update().filter(pk=1))
    message = allowance_for(user).refusal(cost)
    if message:
        raise OverBudget(message)
