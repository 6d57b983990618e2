"""Search: words and parts of words in prompts, English and Chinese, and provider ids, answered by
an index on both databases and kept in step with every way a job is written."""

import pytest
from django.core.management import call_command
from django.db import connection, models
from django.urls import reverse

from tests.conftest import API_KEY
from tests.factories import make_job
from videos import search, services
from videos.models import Status, VideoJob
from videos.search import MAX_TERMS, repair_sqlite_index, search_terms
from videos.upstream.client import VideosClient

pytestmark = pytest.mark.django_db

PROMPTS = {
    "lighthouse": "A lighthouse on a cliff at dusk, waves breaking below",
    "lantern": "Paper lanterns drifting over a night lake",
    "dragon": "A dragon lantern parade through the old town",
    "cat": "一只猫咪在窗台上睡觉，阳光洒在身上",
    "panda": "熊猫在竹林里吃竹子",
    "4k": "Neon alley in the rain, 4K, anamorphic",
    "percent": "A 100% handmade paper boat",
}


@pytest.fixture
def jobs(member) -> dict[str, VideoJob]:
    return {name: make_job(member, prompt=prompt) for name, prompt in PROMPTS.items()}


def found(text: str) -> set[str]:
    """The PROMPTS names of the jobs a search finds."""
    names = {prompt: name for name, prompt in PROMPTS.items()}
    return {
        names.get(p, p)
        for p in VideoJob.objects.matching(text=text).values_list("prompt", flat=True)
    }


def test_a_word_is_found_in_any_case(jobs):
    assert found("lighthouse") == {"lighthouse"}
    assert found("LIGHTHOUSE") == found("LightHouse") == {"lighthouse"}
    assert found("lantern") == {"lantern", "dragon"}


def test_part_of_a_word_is_found(jobs):
    assert found("light") == {"lighthouse"}
    assert found("ante") == {"lantern", "dragon"}


def test_every_word_of_a_search_must_be_there(jobs):
    assert found("lantern dragon") == {"dragon"}
    assert found("dragon   LANTERN") == {"dragon"}
    assert found("lantern whale") == set()


def test_chinese_words_are_found_however_short(jobs):
    assert found("猫咪") == {"cat"}
    assert found("猫") == {"cat", "panda"}  # 熊猫, a panda, is a "bear cat"
    assert found("一只猫咪在窗台") == {"cat"}
    assert found("竹子") == {"panda"}
    # Both characters, but not together: no match.
    assert found("猫身") == set()
    assert found("熊猫 竹林") == {"panda"}
    assert found("熊猫 猫咪") == set()


def test_short_words_and_the_last_characters_are_found(jobs):
    assert found("4k") == {"4k"}
    assert found("ic") == {"4k"}  # anamorphic, last word
    assert found("身上") == {"cat"}  # the prompt's last two characters
    assert found("上") == {"cat"}


def test_a_provider_id_is_found_exactly(member, jobs):
    job = make_job(member, status=Status.QUEUED, upstream_id="video_68d7a1b2c3")
    assert list(VideoJob.objects.matching(text="video_68d7a1b2c3")) == [job]
    assert list(VideoJob.objects.matching(text=" video_68d7a1b2c3 ")) == [job]
    assert list(VideoJob.objects.matching(text="video_68d7")) == []
    assert list(VideoJob.objects.matching(text="68d7a1b2c3")) == []


@pytest.mark.parametrize(
    "text",
    [
        '"', '""', '"lantern', 'lan"tern', "*", "lantern*", "(", "(lantern)", ")", "NEAR",
        "NEAR(lantern dragon)", "lantern NEAR dragon", "-", "-lantern", "'", "lantern's", "AND",
        "OR", "NOT", "lantern OR dragon", "^lantern", "searchable:lantern", "{searchable}: x",
        "+", "\\", "%", "_", "%%%", "a%b", "\x00lantern", "\U0010ffff", "🐉", "\u200f\u202e",
        "x" * 200, " ".join("abcdefghijklmnop"),
    ],
)  # fmt: skip
def test_search_syntax_in_a_search_is_plain_text(jobs, member_client, text):
    VideoJob.objects.matching(text=text).count()
    response = member_client.get(reverse("videos-gallery"), {"q": text})
    assert response.status_code == 200


def test_like_wildcards_are_plain_characters(jobs):
    assert found("100%") == {"percent"}
    assert found("0%") == {"percent"}
    assert found("%") == {"percent"}
    assert found("_") == set()
    assert found("a%b") == set()


def test_syntax_words_are_searched_as_words(member):
    make_job(member, prompt="Two ships NEAR the harbor, (slowly) -- \"quoted\" it's 'fine'")
    make_job(member, prompt="Nothing here")
    assert len(found("NEAR")) == 1
    assert len(found("(slowly)")) == 1
    assert len(found('"quoted"')) == 1
    assert len(found("it's")) == 1
    assert len(found("--")) == 1


def test_a_search_has_at_most_eight_words():
    words = [f"word{i}" for i in range(12)]
    assert search_terms(" ".join(words)) == words[:MAX_TERMS]
    assert search_terms("cat\tCAT cat\u3000dog\x00") == ["cat", "CAT", "dog"]


def test_jobs_from_bulk_create_are_found(member):
    VideoJob.objects.bulk_create(
        VideoJob(
            author=member, model="sora-2", prompt=f"Bulk kite {i} 风筝", seconds=4, size="1280x720"
        )
        for i in range(30)
    )
    assert VideoJob.objects.matching(text="kite").count() == 30
    assert VideoJob.objects.matching(text="风筝").count() == 30


def test_a_changed_prompt_is_found_by_its_new_words(member):
    job = make_job(member, prompt="An old prompt")
    job.prompt = "A brand new prompt about whales"
    job.save()
    assert found("whales") == {job.prompt}
    assert found("old") == set()
    VideoJob.objects.filter(pk=job.pk).update(prompt="Now about 海豚")
    assert found("海豚") == {"Now about 海豚"}
    assert found("whales") == set()
    job.refresh_from_db()
    job.status = Status.FAILED
    job.save()  # every field saved, the prompt unchanged
    assert found("海豚") == {"Now about 海豚"}


def test_a_deleted_job_is_no_longer_found(jobs):
    jobs["lighthouse"].delete()
    assert found("lighthouse") == set()
    VideoJob.objects.filter(prompt__startswith="A dragon").delete()
    assert found("lantern") == {"lantern"}


def test_imported_jobs_are_found(provider, catalogue):
    provider.reset()
    api = VideosClient(provider.base_url, API_KEY)
    started = api.create(
        prompt="Imported 灯笼 festival", model="sora-2", seconds=4, size="1280x720"
    )
    assert services.import_upstream_jobs(page_size=10) == 1
    job = VideoJob.objects.get(upstream_id=started["id"])
    assert list(VideoJob.objects.matching(text="festival")) == [job]
    assert list(VideoJob.objects.matching(text="灯笼")) == [job]
    assert list(VideoJob.objects.matching(text=started["id"])) == [job]


def test_the_gallery_searches(member_client, jobs):
    def cards(q: str) -> set[int]:
        response = member_client.get(reverse("videos-gallery"), {"q": q})
        return {job.pk for job in response.context["jobs"]}

    assert cards("猫咪") == {jobs["cat"].pk}
    assert cards("Lantern") == {jobs["lantern"].pk, jobs["dragon"].pk}
    assert cards("lantern dragon") == {jobs["dragon"].pk}
    assert cards("nothing like this") == set()
    page = member_client.get(reverse("videos-gallery"), {"q": "猫咪"}).content.decode()
    assert "一只猫咪在窗台上睡觉" in page
    assert "Paper lanterns" not in page


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's index")
@pytest.mark.parametrize(
    ("text", "tables"),
    [
        ("lantern", ["videos_search"]),
        ("猫咪", ["videos_search_trigrams"]),
        ("lantern 猫", ["videos_search", "videos_search_trigrams"]),
    ],
)
def test_sqlite_searches_through_its_index(jobs, text, tables):
    plan = VideoJob.objects.matching(text=text).for_cards()[:24].explain()
    # Few matches: found by the index, then fetched by id.
    assert "SEARCH videos_videojob USING INTEGER PRIMARY KEY" in plan
    for table in tables:
        assert f"SCAN {table} VIRTUAL TABLE" in plan


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's index")
def test_sqlite_walks_the_gallery_order_when_words_are_in_many_jobs(jobs, monkeypatch):
    monkeypatch.setattr(search, "FEW_MATCHES", 1)
    plan = VideoJob.objects.matching(text="lantern").for_cards()[:24].explain()
    assert "SCAN videos_search VIRTUAL TABLE" in plan
    assert "USING INDEX videojob_created" in plan  # the gallery order: (created_at, id)
    assert "SEARCH videos_videojob USING INTEGER PRIMARY KEY" not in plan
    assert found("lantern") == {"lantern", "dragon"}
    assert found("lantern dragon") == {"dragon"}
    assert found("猫咪") == {"cat"}
    assert found("上") == {"cat"}
    assert found("4K 雨") == set()
    assert found("4K ic") == {"4k"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes")
@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("lantern", "videojob_search_trigrams"),
        ("猫咪", "videojob_search_characters"),
        ("4k", "videojob_search_characters"),
    ],
)
def test_postgresql_searches_through_its_indexes(jobs, text, index):
    with connection.cursor() as cursor:
        # A handful of rows: without this a scan is cheaper. (Undone with the test's transaction.)
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    plan = VideoJob.objects.matching(text=text).for_cards()[:24].explain()
    assert f"Bitmap Index Scan on {index}" in plan


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's triggers")
@pytest.mark.django_db(transaction=True)
def test_search_triggers_come_back_after_django_rebuilds_the_jobs_table(member):
    before = make_job(member, prompt="Written before the rebuild")
    field = VideoJob._meta.get_field("error_code")
    wider = models.CharField(max_length=101, blank=True)
    wider.set_attributes_from_name("error_code")
    # Django changes a field on SQLite by copying the table into a new one: triggers are lost.
    with connection.schema_editor() as editor:
        editor.alter_field(VideoJob, field, wider)
    try:
        during = make_job(member, prompt="Written while the triggers were missing")
        assert found("missing") == set()
        call_command("migrate", verbosity=0)  # nothing to apply, but post_migrate runs
        after = make_job(member, prompt="Written after the rebuild")
        assert found("Written") == {before.prompt, during.prompt, after.prompt}
        assert repair_sqlite_index(connection) is False  # nothing left to repair
    finally:
        with connection.schema_editor() as editor:
            editor.alter_field(VideoJob, wider, field)
        repair_sqlite_index(connection)


@pytest.mark.django_db(transaction=True)
def test_the_migration_indexes_the_jobs_already_there(member):
    job = make_job(member, prompt="Older than search, 猫咪")
    call_command("migrate", "videos", "0011", verbosity=0)
    call_command("migrate", verbosity=0)  # every app: the review tables went too
    assert list(VideoJob.objects.matching(text="older")) == [job]
    assert list(VideoJob.objects.matching(text="猫咪")) == [job]
    make_job(member, prompt="Newer than search")
    assert VideoJob.objects.matching(text="than search").count() == 2


def test_titles_and_notes_are_found_as_prompts_are(member, jobs):
    titled = make_job(member, prompt="A slow pan across the harbour")
    VideoJob.objects.filter(pk=titled.pk).update(title="Keyframe for Lumberjack client")
    noted = make_job(member, prompt="Morning light on a windowsill")
    VideoJob.objects.filter(pk=noted.pk).update(note="客户喜欢这只猫咪，保留这个版本")
    assert set(VideoJob.objects.matching(text="lumberjack")) == {titled}
    assert set(VideoJob.objects.matching(text="LUMBER harbour")) == {titled}
    assert found("猫咪") == {"cat", noted.prompt}
    assert set(VideoJob.objects.matching(text="猫咪 windowsill")) == {noted}
    # Words do not run from the prompt into the title, nor from the title into the note.
    assert set(VideoJob.objects.matching(text="harbourkeyframe")) == set()
    VideoJob.objects.filter(pk=titled.pk).update(title="")
    assert set(VideoJob.objects.matching(text="lumberjack")) == set()


def test_a_title_is_found_by_the_gallery_search(member_client, member):
    job = make_job(member, prompt="Waves at dusk")
    VideoJob.objects.filter(pk=job.pk).update(title="Opening shot", note="short 猫咪 note")
    for text in ("opening", "猫咪"):
        response = member_client.get(reverse("videos-gallery"), {"q": text})
        assert [j.pk for j in response.context["jobs"]] == [job.pk]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes")
def test_postgresql_finds_titles_through_its_indexes(member, jobs):
    job = make_job(member, prompt="Waves at dusk")
    VideoJob.objects.filter(pk=job.pk).update(title="Lumberjack 猫咪")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    for text, index in (("lumberjack", "trigrams"), ("猫咪", "characters")):
        plan = VideoJob.objects.matching(text=text).for_cards()[:24].explain()
        assert f"Bitmap Index Scan on videojob_search_{index}" in plan
        assert job in VideoJob.objects.matching(text=text)
