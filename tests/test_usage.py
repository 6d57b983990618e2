"""The usage page: a month's seconds and cost per member, model and day, as chart, tables and
CSV, each telling the same numbers as the jobs themselves."""

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import finished_job, make_job
from videos.models import ModelSpec, Status, VideoJob

pytestmark = pytest.mark.django_db(transaction=True)


def usage_csv(client, month: str) -> list[list[str]]:
    response = client.get(reverse("videos-usage-csv"), {"month": month})
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_a_completed_job_costs_the_price_fixed_at_completion_and_a_failure_nothing(
    member_client, provider
):
    job = finished_job(member_client, "A kite over the sea", size="720x1280")
    assert job.final_cost == Decimal("0.40")  # 4 s at 0.10
    # A later price change does not rewrite history.
    ModelSpec.objects.filter(name="sora-2").update(prices={"720x1280": "0.50", "1280x720": "0.5"})
    job.refresh_from_db()
    assert job.cost == Decimal("0.40")
    failed = finished_job(member_client, "A kite [fail]", size="720x1280")
    assert failed.status == Status.FAILED and failed.final_cost is None
    month = timezone.localdate().strftime("%Y-%m")
    rows = usage_csv(member_client, month)
    assert [row[1] for row in rows if row[1] == "team"] == ["team"]
    team = next(row for row in rows if row[1] == "team")
    assert team[3:] == ["1", "4", "0.40"]


def spread_jobs(member, other, admin) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    at = datetime(2026, 10, 1, 0, 30, tzinfo=zone)  # September 30th in UTC
    for author, model, seconds, cost, when in [
        (member, "sora-2", 4, "0.40", at),
        (member, "sora-2-pro", 8, "2.40", at + timedelta(days=3)),
        (other, "sora-2", 12, "1.20", at + timedelta(days=3, hours=2)),
        (admin, "sora-2", 4, "0.40", at + timedelta(days=20)),
        (None, "sora-2", 4, "0.40", at + timedelta(days=30, hours=23)),  # imported; October 31st
        (member, "sora-2", 4, "9.99", at - timedelta(hours=1)),  # September 30th
    ]:
        make_job(
            author, status=Status.COMPLETED, model=model, seconds=seconds,
            final_cost=Decimal(cost), completed_at=when,
        )  # fmt: skip
    make_job(member, status=Status.FAILED, completed_at=at + timedelta(days=1))


def test_each_breakdown_adds_up_to_the_jobs_and_months_follow_the_time_zone(
    client, admin, member, other_member, settings
):
    settings.TIME_ZONE = "Asia/Shanghai"
    spread_jobs(member, other_member, admin)
    client.force_login(admin)
    page = client.get(reverse("videos-usage"), {"month": "2026-10"})
    report = page.context["report"]
    assert (report.total.jobs, report.total.seconds, report.total.cost) == (5, 32, Decimal("4.80"))
    members = {line.key: (line.jobs, line.seconds, line.cost) for line in report.members}
    assert members == {
        "mia": (2, 12, Decimal("2.80")),
        "otto": (1, 12, Decimal("1.20")),
        "ada": (1, 4, Decimal("0.40")),
        "": (1, 4, Decimal("0.40")),
    }
    assert {line.key: line.cost for line in report.models} == {
        "sora-2": Decimal("2.40"),
        "sora-2-pro": Decimal("2.40"),
    }
    assert len(report.days) == 31
    days = {line.key: line.cost for line in report.days if line.jobs}
    assert days == {
        "2026-10-01": Decimal("0.40"),
        "2026-10-04": Decimal("3.60"),
        "2026-10-21": Decimal("0.40"),
        "2026-10-31": Decimal("0.40"),
    }
    # The chart: one bar a day, the dearest full height; the CSV: the same numbers.
    bars = page.context["bars"]
    assert len(bars) == 31 and max(bar.height for bar in bars) == 190
    assert b"<svg" in page.content and page.content.count(b'class="bar"') == 31
    rows = usage_csv(client, "2026-10")
    assert rows[0] == ["month", "breakdown", "key", "jobs", "seconds", "cost"]
    by_day = {row[2]: Decimal(row[5]) for row in rows if row[1] == "day" and row[3] != "0"}
    assert by_day == days
    assert {row[2]: Decimal(row[5]) for row in rows if row[1] == "member"} == {
        key: cost for key, (_n, _s, cost) in members.items()
    }
    october = VideoJob.objects.filter(status=Status.COMPLETED).exclude(final_cost=Decimal("9.99"))
    assert sum(job.final_cost for job in october) == report.total.cost


def test_members_and_viewers_see_their_own_lines_and_the_team_total(
    client, admin, member, other_member, viewer, settings
):
    settings.TIME_ZONE = "Asia/Shanghai"
    spread_jobs(member, other_member, admin)
    client.force_login(member)
    report = client.get(reverse("videos-usage"), {"month": "2026-10"}).context["report"]
    assert [line.key for line in report.members] == ["mia"]
    assert report.total.cost == Decimal("4.80")
    assert sum(line.cost for line in report.days) == Decimal("2.80")
    rows = usage_csv(client, "2026-10")
    assert {row[2] for row in rows if row[1] == "member"} == {"mia"}
    client.force_login(viewer)
    report = client.get(reverse("videos-usage"), {"month": "2026-10"}).context["report"]
    assert report.members == [] and report.total.jobs == 5


def test_the_page_takes_any_month_and_speaks_chinese(client, admin):
    client.force_login(admin)
    for month in ("", "2026-13", "garbage", "0000-01", "2026-1", "９９９９-01"):
        assert client.get(reverse("videos-usage"), {"month": month}).status_code == 200
    page = client.get(reverse("videos-usage"), headers={"accept-language": "zh-hans"})
    assert "用量" in page.content.decode()
