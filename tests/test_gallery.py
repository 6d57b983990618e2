"""The gallery: constant queries as jobs grow, filters, and one cheap poll per open page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_job
from videos.models import Status, VideoJob

pytestmark = pytest.mark.django_db


def make_jobs(authors, n: int, status=Status.IN_PROGRESS, **fields) -> list[VideoJob]:
    return [
        make_job(
            authors[i % len(authors)],
            status=status,
            **{"prompt": f"job {i}", "progress": i % 100, **fields},
        )
        for i in range(n)
    ]


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_gallery_query_count_does_not_grow_with_jobs(member_client, member, other_member):
    url = reverse("videos-gallery")
    make_jobs([member], 2)
    few = count_queries(member_client, url)
    make_jobs([member, other_member], 40, status=Status.COMPLETED)
    many = count_queries(member_client, url)
    assert few == many
    # Session, user, role; the page; the catalogue; the team's and my budget; the authors; the
    # notifier; the menu's unread mentions; my stars.
    assert many <= 11


def test_poll_answers_204_when_nothing_changed_and_cards_when_something_did(
    member_client, member, django_assert_max_num_queries
):
    jobs = make_jobs([member], 3)
    page = member_client.get(reverse("videos-gallery")).content.decode()
    version = page.split('id="poll-version" name="v" value="')[1].split('"')[0]
    ids = ",".join(str(j.pk) for j in jobs)
    url = reverse("videos-gallery-poll")

    with django_assert_max_num_queries(5):  # session, user, its permissions (2), the jobs
        response = member_client.get(url, {"ids": ids, "v": version})
    assert response.status_code == 204

    VideoJob.objects.filter(pk=jobs[0].pk).update(
        progress=77, updated_at=jobs[0].updated_at.replace(year=2030)
    )
    with django_assert_max_num_queries(6):
        response = member_client.get(url, {"ids": ids, "v": version})
    page = response.content.decode()
    assert response.status_code == 200
    assert f'id="job-{jobs[0].pk}" class="job-card status-in_progress" hx-swap-oob="true"' in page
    assert 'value="77"' in page
    assert 'id="poller" hx-get=' in page  # still running: keeps polling


def test_poll_stops_when_nothing_runs(member_client, member):
    (job,) = make_jobs([member], 1, status=Status.COMPLETED)
    response = member_client.get(reverse("videos-gallery-poll"), {"ids": str(job.pk), "v": "old"})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<div id="poller">' in page  # no trigger left: htmx stops polling
    assert 'class="poll-id"' not in page


def test_poll_query_count_does_not_grow_with_running_cards(
    member_client, member, django_assert_max_num_queries
):
    jobs = make_jobs([member], 60)
    ids = ",".join(str(j.pk) for j in jobs)
    with django_assert_max_num_queries(6):
        member_client.get(reverse("videos-gallery-poll"), {"ids": ids, "v": "stale"})


def test_filters_by_search_status_author_and_model(member_client, member, other_member):
    make_jobs([member], 2, prompt="a red kite")
    make_jobs([other_member], 2, status=Status.FAILED, prompt="blue whale")
    gallery = reverse("videos-gallery")

    def prompts(**params) -> set[str]:
        response = member_client.get(gallery, params)
        return {j.prompt for j in response.context["jobs"]}

    assert prompts(q="KITE") == {"a red kite"}
    assert prompts(status="failed") == {"blue whale"}
    assert prompts(status="running") == {"a red kite"}
    assert prompts(author="me") == {"a red kite"}
    assert prompts(author=str(other_member.pk)) == {"blue whale"}
    assert prompts(model="sora-2-pro") == set()


def test_filter_change_by_htmx_returns_only_the_results(member_client, member):
    make_jobs([member], 1)
    response = member_client.get(
        reverse("videos-gallery"),
        {"q": "job"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response.content.decode().lstrip().startswith('<section id="results"')


def test_each_card_names_its_author(member_client, member, other_member):
    make_jobs([member, other_member], 2)
    page = member_client.get(reverse("videos-gallery")).content.decode()
    assert '<span class="author">mia</span>' in page
    assert '<span class="author">otto</span>' in page


def test_the_gallery_speaks_simplified_chinese_when_asked(member_client, member):
    make_jobs([member], 1, status=Status.FAILED)
    page = member_client.get(
        reverse("videos-gallery"), headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    )
    text = page.content.decode()
    assert '<html lang="zh-hans">' in text
    assert "生成" in text and "提示词" in text and "失败" in text
