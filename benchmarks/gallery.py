"""Server time and queries of the gallery and its neighbours at 1,000 and 100,000 jobs.

    .venv/bin/python benchmarks/gallery.py [--million] [--people 40] [--repeat 9] [--json]
    .venv/bin/python benchmarks/gallery.py --database-url postgres://postgres@127.0.0.1:5432/muxweb_gbench

It makes a throwaway data directory, removed after (and, with --database-url, the named
PostgreSQL database, which must not exist yet and is dropped after), migrates, and fills it with
1,000 jobs of `--people` Members: English and some Chinese prompts, mostly completed, some failed,
a few running, the catalogue's models, sizes and lengths, spread over a year, some remixes and
some with a reference image. It measures every page in PAGES as a member, then grows the same
database to 100,000 jobs (and 1,000,000 with --million) and measures again. Each page is
requested once to warm up, then `--repeat` times; it prints the queries of each size, the
median time at each size, its ratio to the time at 1,000 jobs (x1k) and to /healthz measured at
the same size (xhz), and the one-member CSV's rows with its time per row. Not part of the test
suite; its numbers are not asserted.
"""

import argparse
import importlib
import json
import os
import random
import re
import statistics
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

from throwaway import throwaway_database  # a sibling module

# (label, URL). The URL is formatted with the values `run` picks ({member}, {running}, ...); a
# new filter is a new line here.
PAGES = [
    ("/healthz", "/healthz"),
    ("gallery", "/"),
    ("status: running", "/?status=running"),
    ("status: completed", "/?status=completed"),
    ("status: failed", "/?status=failed"),
    ("author: me", "/?author=me"),
    ("author: someone", "/?author={someone}"),
    ("model", "/?model=sora-2-pro"),
    ("search: English", "/?q=lantern+dragon"),
    ("search: Chinese", "/?q=%E7%8C%AB%E5%92%AA"),  # 猫咪
    ("search: provider id", "/?q={upstream_id}"),
    ("size", "/?size=720x1280"),
    ("duration", "/?seconds=12"),
    ("created this month", "/?from={month_start}"),
    ("with a reference image", "/?reference=with"),
    ("remixes only", "/?remixes=1"),
    ("deep page", "{deep}"),
    # An open first page with nothing running: the live gallery's idle poll.
    ("poll, nothing new", "/videos/poll?v={idle_version}&newest={newest}"),
    ("poll, running cards", "/videos/poll?ids={running}&v={version}&newest={newest}"),
    ("poll, changed", "/videos/poll?ids={running}&newest={newest}"),
    ("poll, one new job", "/videos/poll?v={idle_version}&newest={before_newest}"),
    ("job page", "/videos/{job}/"),
    ("CSV, one member", "/videos/export.csv?author={member}"),
]
SIZES = [1_000, 100_000]
OLDER_LINK = re.compile(r'href="[^"]*[?&;]older=')
BATCH = 1_000

ADJECTIVES = [
    "misty", "neon", "golden", "rain-soaked", "quiet", "crowded", "tiny", "ancient", "glowing",
    "frozen", "sunlit", "stormy", "velvet", "rusty", "floating", "wooden", "silver", "forgotten",
]  # fmt: skip
SUBJECTS = [
    "lighthouse", "fox", "astronaut", "paper boat", "old tram", "koi fish", "robot", "violinist",
    "hot air balloon", "glass jellyfish", "lantern", "dragon", "owl", "skateboarder", "whale",
    "cat", "hummingbird", "chef", "dancer", "sailboat", "tiger", "snowman", "fisherman",
    "windmill", "samurai", "butterfly", "night train", "street musician",
]  # fmt: skip
ACTIONS = [
    "drifting over", "walking through", "circling above", "resting beside", "racing across",
    "dancing in", "hiding behind", "waking up in", "sailing past", "climbing over",
]  # fmt: skip
PLACES = [
    "a harbour at dusk", "a bamboo forest", "the old town square", "a desert canyon",
    "a night market", "a mountain lake", "a rooftop garden", "a snowy village",
    "an empty subway station", "a field of sunflowers", "a coral reef", "a foggy pier",
    "a rice terrace", "a rainy neon alley",
]  # fmt: skip
SHOTS = [
    "slow dolly in", "aerial drone shot", "handheld close-up", "wide establishing shot",
    "35mm film grain", "timelapse", "shallow depth of field", "golden hour light",
    "tracking shot", "macro lens", "soft morning light", "cinematic lighting",
]  # fmt: skip
SUBJECTS_ZH = [
    "猫咪", "小狗", "灯笼", "巨龙", "熊猫", "锦鲤", "机器人", "宇航员", "老火车", "纸船", "白鹤",
    "少女", "渔夫", "茶馆", "风筝",
]  # fmt: skip
PLACES_ZH = [
    "在雨夜的老街上", "在竹林里", "在雪山脚下", "在夜市中", "在江南水乡", "在古城墙上",
    "在樱花树下", "在海边灯塔旁", "在沙漠里", "在霓虹都市中",
]  # fmt: skip
ACTIONS_ZH = ["慢慢走过", "飞过", "跳舞", "安静地睡着", "追逐蝴蝶", "回头微笑", "划船", "放风筝"]
SHOTS_ZH = ["电影感镜头", "航拍", "慢动作", "特写", "黄金时刻光线", "胶片质感", "长镜头", "浅景深"]
REMIX_PROMPTS = [
    "the same shot at night", "make it snow", "slower camera move", "autumn colours",
    "add light rain", "同样的镜头，换成夜景", "close-up of the ending",
    "in the style of a watercolour",
]  # fmt: skip
FAILURES = [
    ("moderation_blocked", "The prompt was refused."),
    ("internal_error", "The render failed. Try again."),
    ("video_generation_failed", "The video could not be generated."),
]


def prompt(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return (
            f"{rng.choice(SUBJECTS_ZH)}{rng.choice(PLACES_ZH)}{rng.choice(ACTIONS_ZH)}，"
            f"{rng.choice(SHOTS_ZH)}"
        )
    # About one English prompt in 150 is of a lantern dragon.
    subject = "lantern dragon" if rng.random() < 1 / 150 else rng.choice(SUBJECTS)
    return (
        f"a {rng.choice(ADJECTIVES)} {subject} {rng.choice(ACTIONS)} {rng.choice(PLACES)}, "
        f"{rng.choice(SHOTS)}, {rng.choice(SHOTS)}"
    )


class Seeder:
    """Adds made-up history in batches; remixes point at jobs of earlier batches only, so the
    fixed jobs the pages ask about keep the same family whatever the size."""

    def __init__(self, authors: list, rng: random.Random) -> None:
        from django.utils import timezone

        from videos.models import ModelSpec

        self.authors = authors
        self.rng = rng
        self.specs = list(ModelSpec.objects.all())
        self.now = timezone.now()
        self.seeded: tuple[int, int] | None = None  # the lowest and highest id added

    def grow(self, total: int) -> None:
        from videos.models import VideoJob

        missing = total - VideoJob.objects.count()
        while missing > 0:
            batch = [self.job() for _ in range(min(BATCH, missing))]
            created = VideoJob.objects.bulk_create(batch)
            low = created[0].pk if self.seeded is None else self.seeded[0]
            self.seeded = (low, created[-1].pk)
            missing -= len(batch)

    def job(self):
        from videos.models import Status, VideoJob

        rng = self.rng
        spec = rng.choice(self.specs)
        size = rng.choice(spec.sizes)
        seconds = rng.choice(spec.seconds)
        price = Decimal(spec.prices[size])
        roll = rng.random()
        status = (
            Status.IN_PROGRESS
            if roll < 0.0005
            else Status.FAILED
            if roll < 0.08
            else Status.COMPLETED
        )
        if status == Status.IN_PROGRESS:
            created = self.now - timedelta(seconds=rng.randint(0, 1800))
        else:
            created = self.now - timedelta(seconds=rng.randint(0, 365 * 24 * 3600))
        key = f"{rng.getrandbits(96):024x}"
        remix_of = None
        if self.seeded and rng.random() < 0.04:
            remix_of = rng.randint(*self.seeded)
        job = VideoJob(
            author=rng.choice(self.authors),
            model=spec.name,
            prompt=rng.choice(REMIX_PROMPTS) if remix_of else prompt(rng),
            seconds=seconds,
            size=size,
            price_per_second=price,
            remix_of_id=remix_of,
            upstream_id=f"video_{key}",
            status=status,
            created_at=created,
            submitted_at=created + timedelta(seconds=2),
        )
        if rng.random() < 0.06:
            job.input_reference.name = f"references/{key}.png"
        if status == Status.COMPLETED:
            job.progress = 100
            job.completed_at = created + timedelta(seconds=rng.randint(60, 400))
            job.assets_fetched_at = job.completed_at + timedelta(seconds=5)
            job.expires_at = job.completed_at + timedelta(hours=1)
            job.final_cost = price * seconds
            for variant, name in (
                ("video", "video.mp4"),
                ("thumbnail", "thumbnail.webp"),
                ("spritesheet", "spritesheet.jpg"),
            ):
                getattr(job, variant).name = f"videos/{key}/{name}"
        elif status == Status.FAILED:
            job.error_code, job.error_message = rng.choice(FAILURES)
            job.completed_at = created + timedelta(seconds=rng.randint(5, 200))
            if job.error_code == "moderation_blocked":
                job.upstream_id = None  # refused at submission: the provider never had it
        else:
            job.progress = rng.randint(0, 90)
            job.next_poll_at = self.now
        return job


def deep_page(client, total: int) -> str:
    """The URL of the gallery's page halfway down the history, by whichever paging it has."""
    from videos import views
    from videos.models import VideoJob

    middle = total // 2
    if not OLDER_LINK.search(client.get("/").content.decode()):
        return f"/?page={middle // views.PAGE_SIZE + 1}"
    # Cursor pages: following Older links a thousand times is too slow, so ask the gallery's
    # own rule for the cursor an Older link below the middle job would carry.
    for module in ("videos.paging", "videos.views"):
        try:
            cursor_for = getattr(importlib.import_module(module), "cursor_for", None)
        except ImportError:
            continue
        if cursor_for is not None:
            return f"/?older={quote(str(cursor_for(VideoJob.objects.all()[middle])))}"
    raise SystemExit("The gallery has cursor pages but no cursor_for(job) to make a deep one.")


def measure(client, urls: dict[str, str], repeat: int) -> dict[str, dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = {}
    for label, url in urls.items():
        client.get(url)
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                # A streamed CSV does its work while it is read.
                body = b"".join(response) if response.streaming else response.content
                times.append(time.perf_counter() - started)
        results[label] = {
            "queries": len(queries),
            "ms": statistics.median(times) * 1000,
            "status": response.status_code,
            "lines": body.count(b"\n"),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--million", action="store_true", help="grow to 1,000,000 jobs too")
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--database-url")
    options = parser.parse_args()
    with throwaway_database(options.database_url):
        run(options)


def run(options) -> None:
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from tests.factories import make_job
    from videos.models import Status, VideoJob
    from videos.paging import cursor_for
    from videos.views import version_of

    members = Group.objects.get(name="Members")
    member = User.objects.create_user("mia")
    people = [member] + [User.objects.create_user(f"person{i}") for i in range(options.people)]
    members.user_set.add(*people)
    # The jobs the pages ask about, made first so that no seeded job remixes them.
    running = [make_job(member, status=Status.IN_PROGRESS, progress=40) for _ in range(3)]
    original = make_job(
        member,
        status=Status.COMPLETED,
        prompt="a paper lantern over the bay",
        upstream_id=f"video_{random.Random(1).getrandbits(96):024x}",
    )
    remix = make_job(member, status=Status.COMPLETED, prompt="at night", remix_of=original)
    client = Client()
    client.force_login(member)
    values = {
        "member": member.pk,
        "someone": people[1].pk,
        "upstream_id": original.upstream_id,
        "running": ",".join(str(job.pk) for job in running),
        "version": version_of(running),
        "idle_version": version_of([]),
        "job": remix.pk,
        "month_start": timezone.localdate().replace(day=1).isoformat(),
    }
    seeder = Seeder(people, random.Random(7))
    sizes = SIZES + [1_000_000] if options.million else SIZES
    results, urls = {}, {}
    for size in sizes:
        started = time.perf_counter()
        seeder.grow(size)
        if connection.vendor == "postgresql":
            # What autovacuum does soon after a big insert in production; done here so that it
            # does not run during the measurements.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        filled = time.perf_counter() - started
        values["deep"] = deep_page(client, VideoJob.objects.count())
        # The place of the newest card of an open first page, and of the one before it (a poll
        # from there finds one new job).
        newest, before_newest = VideoJob.objects.order_by("-created_at", "-id")[:2]
        values["newest"] = quote(cursor_for(newest))
        values["before_newest"] = quote(cursor_for(before_newest))
        urls[size] = {label: url.format(**values) for label, url in PAGES}
        results[size] = measure(client, urls[size], options.repeat)
        # Other work on the machine shows in the times; the load average (this run included)
        # says how much there was.
        print(
            f"{size:,} jobs ({connection.vendor}): filled in {filled:.0f} s, measured with a "
            f"load average of {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    report(results, urls)
    if options.json:
        print(json.dumps({"database": connection.vendor, "urls": urls, "results": results}))


def report(results: dict[int, dict], urls: dict[int, dict]) -> None:
    sizes = list(results)
    first = sizes[0]
    header = f"{'page':22} {'queries':>14}"
    for size in sizes:
        header += f" {f'ms @{size:,}':>13}" + ("" if size == first else f" {'x1k':>6}")
        header += f" {'xhz':>6}"
    print(f"{header}  status")
    for label in results[first]:
        counts = " -> ".join(str(results[size][label]["queries"]) for size in sizes)
        line = f"{label:22} {counts:>14}"
        for size in sizes:
            row = results[size][label]
            line += f" {row['ms']:>13.1f}"
            if size != first:
                line += f" {row['ms'] / results[first][label]['ms']:>6.2f}"
            line += f" {row['ms'] / results[size]['/healthz']['ms']:>6.1f}"
        statuses = "/".join(sorted({str(results[size][label]["status"]) for size in sizes}))
        print(f"{line}  {statuses}")
    csv = []
    for size in sizes:
        row = results[size]["CSV, one member"]
        rows = max(row["lines"] - 1, 1)  # the header line is not a row
        csv.append(f"{rows:,} rows at {size:,} ({row['ms'] * 1000 / rows:.0f} µs/row)")
    print("CSV, one member: " + ", ".join(csv))
    print("deep page: " + ", ".join(urls[size]["deep page"] for size in sizes))


if __name__ == "__main__":
    main()
