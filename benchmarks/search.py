"""The gallery's search with a big history, against /healthz on the same server.

    .venv/bin/python benchmarks/search.py [--jobs 100000]
    .venv/bin/python benchmarks/search.py --database-url postgres://postgres@127.0.0.1:5432/muxweb_bench

It makes a throwaway data directory (and, with --database-url, the named PostgreSQL database,
which must not exist yet and is dropped after), migrates, adds `--jobs` jobs with bulk_create
(English prompts of 8 to 25 words drawn from about 300, one job in ten in Chinese), and times
/healthz, the gallery without a search and the gallery with each search: the median of 9
requests through Django's test client, the queries each made, the median time of the search's
own queries without the rest of the page (finding the first page of results, and counting them
for the page links) and how many jobs matched. On PostgreSQL the table is vacuumed and analyzed
first, as autovacuum would have done. Not part of the test suite; its numbers are not asserted.
"""

import argparse
import random
import statistics
import time

from throwaway import throwaway_database  # a sibling module

ENGLISH = [
    word
    for line in (
        "a an the of in on at with over under through across beside behind into above below",
        "toward slow fast quiet loud bright dark warm cold golden silver crimson azure",
        "emerald misty foggy rainy snowy sunny windy stormy ancient modern tiny giant lonely",
        "busy lantern dragon lighthouse fox rain neon alley market moon boat cafe barista",
        "clouds ridge astronaut chess storm forest snow river city night dusk sunrise ocean",
        "mountain valley desert canyon glacier volcano island harbor bridge tower castle",
        "temple garden meadow field orchard vineyard village street station train tram",
        "bicycle motorcycle car truck ship kite balloon rocket satellite planet comet galaxy",
        "nebula star sun cloud wave tide shore cliff cave waterfall lake pond stream cat dog",
        "horse deer wolf bear owl eagle sparrow whale dolphin octopus jellyfish turtle rabbit",
        "squirrel butterfly bee child woman man dancer musician painter chef farmer fisherman",
        "knight wizard robot samurai pilot sailor monk detective walking running flying",
        "dancing drifting spinning glowing falling rising floating swimming singing reading",
        "painting cinematic aerial closeup wide shot tracking dolly pan tilt zoom handheld",
        "timelapse macro portrait 35mm film grain anamorphic bokeh volumetric light shadows",
        "reflections silhouette haze glow sparkle dust smoke fire paper glass stone wooden",
        "metal velvet silk porcelain marble copper bronze crystal ice lava sand moss ivy rose",
        "tulip spotlight daylight moonlight firelight starlight sunlight twilight midnight",
        "morning evening autumn winter spring summer festival parade carnival circus theater",
        "library museum gallery workshop kitchen bakery rooftop balcony staircase corridor",
        "tunnel subway airport runway lagoon reef jungle savanna tundra prairie marsh delta",
        "estuary fjord geyser crater oasis dune plateau summit slope",
    )
    for word in line.split()
]
CHINESE = [
    word
    for line in (
        "猫咪 小狗 灯笼 夜空 城市 霓虹 熊猫 竹子 海边 日落 雪地 奔跑 窗台",
        "睡觉 森林 小溪 高山 云海 古镇 石桥 雨夜 街道 列车 站台 花园 樱花",
        "荷花 月亮 星空 飞船 宇航员 机器人 武士 少女 老人 渔夫 厨师 舞者 飘荡",
        "旋转 发光 缓缓 慢镜头 航拍 特写 电影感 胶片 光影 倒影 烟雾 火焰 瀑布",
        "湖泊 沙漠 冰川 火山 岛屿 港口 灯塔 龙 凤凰 鲸鱼 海豚 蝴蝶 蜜蜂 稻田",
        "茶园 庙会 烟花 长城 故宫 江南 水乡 渡船 风筝 雨伞 咖啡馆",
    )
    for word in line.split()
]
SEARCHES = [
    ("English word", "lantern"),
    ("two words", "lantern dragon"),
    ("part of a word", "light"),
    ("Chinese 2-char word", "猫咪"),
    ("Chinese 3-char word", "宇航员"),
    ("provider id", "video_bench_54321"),
    ("no match", "zeppelin"),
    ("a first letter typed", "l"),
]


def prompt(rng: random.Random, index: int) -> str:
    if index % 10 == 3:
        return "，".join(rng.choice(CHINESE) for _ in range(rng.randint(4, 10))) + "。"
    return " ".join(rng.choice(ENGLISH) for _ in range(rng.randint(8, 25))).capitalize()


def fill(jobs: int, people: list) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from videos.models import Status, VideoJob

    rng = random.Random(7)
    now = timezone.now()
    batch = []
    for index in range(jobs):
        at = now - timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        batch.append(
            VideoJob(
                author=rng.choice(people),
                model="sora-2",
                prompt=prompt(rng, index),
                seconds=4,
                size="1280x720",
                price_per_second=Decimal("0.10"),
                status=Status.COMPLETED,
                upstream_id=f"video_bench_{index}",
                created_at=at,
                completed_at=at + timedelta(minutes=2),
                final_cost=Decimal("0.40"),
                progress=100,
                assets_fetched_at=at + timedelta(minutes=3),
            )
        )
        if len(batch) == 5000:
            VideoJob.objects.bulk_create(batch)
            batch = []
    VideoJob.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE videos_videojob")


def search_ms(q: str) -> tuple[float, float]:
    """The gallery's own search queries, without the rest of its page: the first page of results,
    and their count (for the page links)."""
    from videos.models import VideoJob

    page, count = [], []
    for _ in range(9):
        started = time.perf_counter()
        jobs = VideoJob.objects.matching(text=q).for_cards()
        list(jobs[:24])
        page.append(time.perf_counter() - started)
        started = time.perf_counter()
        jobs.count()
        count.append(time.perf_counter() - started)
    return statistics.median(page) * 1000, statistics.median(count) * 1000


def median_ms(client, url: str, params: dict | None = None) -> tuple[float, int, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(9):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url, params)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return statistics.median(times) * 1000, len(queries), response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--database-url")
    options = parser.parse_args()
    with throwaway_database(options.database_url):
        run(options)


def run(options) -> None:
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from videos.models import VideoJob

    member = User.objects.create_user("mia")
    member.groups.add(Group.objects.get(name="Members"))
    people = [member] + [User.objects.create_user(f"person{i}") for i in range(20)]
    started = time.perf_counter()
    fill(options.jobs, people)
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"filled {options.jobs:,} jobs in {time.perf_counter() - started:.0f} s ({engine})")
    client = Client()
    client.force_login(member)
    healthz, _queries, _response = median_ms(client, "/healthz")
    print(
        f"{'page':20} {'q':18} {'queries':>7} {'page ms':>7} {'x healthz':>9} "
        f"{'results ms':>10} {'count ms':>8} {'matched':>7}"
    )
    print(f"{'/healthz':20} {'':18} {1:>7} {healthz:>7.1f} {1:>9.1f}")
    for label, q in [("gallery, no search", ""), *SEARCHES]:
        ms, queries, _response = median_ms(client, "/", {"q": q} if q else None)
        results, count = search_ms(q)
        matched = VideoJob.objects.matching(text=q).count()
        print(
            f"{label:20} {q:18} {queries:>7} {ms:>7.1f} {ms / healthz:>9.1f} "
            f"{results:>10.1f} {count:>8.1f} {matched:>7}"
        )


if __name__ == "__main__":
    main()
