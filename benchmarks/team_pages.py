"""Queries and time of the team's pages with a big history, against the same pages nearly empty.

    .venv/bin/python benchmarks/team_pages.py [--jobs 10000] [--entries 100000] [--people 40]
    .venv/bin/python benchmarks/team_pages.py --database-url postgres://postgres@127.0.0.1:5432/muxweb_bench

It makes a throwaway data directory (and, with --database-url, the named PostgreSQL database,
which must not exist yet and is dropped after), migrates, and measures each page as an admin and
as a member: first with one job and one activity entry (the baseline), then after adding
`--jobs` jobs spread over this month and the last, and `--entries` activity entries. For each
page it prints the queries the page made in both runs and the median of 5 requests' times, with
the ratio big/baseline. Not part of the test suite; its numbers are not asserted.
"""

import argparse
import statistics
import time

from throwaway import throwaway_database  # a sibling module

PAGES = [
    ("admin", "team", "/team/"),
    ("admin", "activity", "/activity/"),
    ("admin", "activity, one person", "/activity/?person={member}"),
    ("admin", "activity, deletes", "/activity/?action=delete"),
    ("admin", "activity, a day", "/activity/?from={today}&to={today}"),
    ("admin", "usage (everyone)", "/usage/"),
    ("member", "usage (own lines)", "/usage/"),
    ("member", "my account", "/account/"),
    ("member", "gallery", "/"),
    ("member", "notifications poll", "/notifications/?ids={running}"),
]


def fill(jobs: int, entries: int, people: int) -> None:
    import random
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth.models import User
    from django.utils import timezone

    from accounts.models import Action, ActivityEntry
    from videos.models import Status, VideoJob

    random.seed(7)
    users = list(User.objects.all())
    for index in range(people):
        users.append(User.objects.create_user(f"person{index}"))
    now = timezone.now()
    statuses = [Status.COMPLETED] * 8 + [Status.FAILED]
    batch = []
    for index in range(jobs):
        at = now - timedelta(minutes=random.randint(0, 60 * 24 * 45))
        status = random.choice(statuses)
        batch.append(
            VideoJob(
                author=random.choice(users),
                model="sora-2",
                prompt=f"shot {index}: a lighthouse at dusk",
                seconds=4,
                size="1280x720",
                price_per_second=Decimal("0.10"),
                status=status,
                upstream_id=f"video_bench_{index}",
                created_at=at,
                completed_at=at + timedelta(minutes=2),
                final_cost=Decimal("0.40") if status == Status.COMPLETED else None,
                progress=100,
                assets_fetched_at=at + timedelta(minutes=3),
            )
        )
    VideoJob.objects.bulk_create(batch, batch_size=2000)
    actions = list(Action)
    rows = []
    for index in range(entries):
        actor = random.choice(users)
        rows.append(
            ActivityEntry(
                at=now - timedelta(minutes=random.randint(0, 60 * 24 * 365)),
                actor=actor,
                actor_name=actor.username,
                action=random.choice(actions),
                job_id=index,
                subject={"prompt": f"shot {index}", "model": "sora-2", "cost": "0.40"},
            )
        )
    ActivityEntry.objects.bulk_create(rows, batch_size=5000)


def measure(clients: dict, values: dict) -> dict[str, tuple[int, float, int]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = {}
    for who, label, path in PAGES:
        url = path.format(**values)
        client = clients[who]
        times = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - started)
        results[label] = (len(queries), statistics.median(times), response.status_code)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--database-url")
    options = parser.parse_args()
    with throwaway_database(options.database_url):
        run(options)


def run(options) -> None:
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from django.utils import timezone

    from accounts.models import Action, ActivityEntry
    from tests.factories import make_job
    from videos.models import Status

    admin = User.objects.create_user("ada", is_staff=True, is_superuser=True)
    member = User.objects.create_user("mia")
    member.groups.add(Group.objects.get(name="Members"))
    running = make_job(member, status=Status.IN_PROGRESS)
    make_job(member, status=Status.COMPLETED)
    ActivityEntry.objects.create(actor=member, actor_name="mia", action=Action.CREATE)
    clients = {"admin": Client(), "member": Client()}
    clients["admin"].force_login(admin)
    clients["member"].force_login(member)
    values = {"member": member.pk, "today": timezone.localdate().isoformat(), "running": running.pk}
    baseline = measure(clients, values)
    started = time.perf_counter()
    fill(options.jobs, options.entries, options.people)
    print(
        f"filled {options.jobs:,} jobs and {options.entries:,} activity entries "
        f"in {time.perf_counter() - started:.0f} s ({settings.DATABASES['default']['ENGINE']})"
    )
    big = measure(clients, values)
    print(f"{'page':24} {'queries':>15} {'ms (baseline)':>14} {'ms (big)':>9} {'ratio':>6}  status")
    for label, (count, seconds, status) in big.items():
        base_count, base_seconds, _status = baseline[label]
        print(
            f"{label:24} {base_count:>6} -> {count:<6} {base_seconds * 1000:>14.1f} "
            f"{seconds * 1000:>9.1f} {seconds / base_seconds:>6.1f}  {status}"
        )


if __name__ == "__main__":
    main()
