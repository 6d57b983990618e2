"""The history as CSV for cost accounting: the gallery's filters, one query, inert cells."""

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_job, make_person
from videos.models import Status, VideoJob

pytestmark = pytest.mark.django_db

COLUMNS = [
    "id",
    "created",
    "author",
    "model",
    "seconds",
    "size",
    "status",
    "progress",
    "cost",
    "error_code",
    "error_message",
    "prompt",
    "upstream_id",
    "remix_of",
]


@pytest.fixture
def outsider(catalogue):
    """An account in no team group: it has logged in, but sees nothing yet."""
    return make_person("olga")


def export(client, **params) -> tuple[object, list[dict[str, str]]]:
    response = client.get(reverse("videos-export"), params)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff"), "a byte order mark, so that spreadsheets read UTF-8"
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"), newline="")))
    assert rows[0] == COLUMNS
    return response, [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]


def test_export_is_a_csv_attachment_with_every_column_newest_first(
    member_client, member, other_member
):
    original = make_job(
        member,
        status=Status.COMPLETED,
        prompt="A lighthouse at dusk",
        upstream_id="video_abc",
        price_per_second=Decimal("0.10"),
        seconds=8,
    )
    failed = make_job(
        other_member,
        status=Status.FAILED,
        prompt="Blocked, 中文 and עברית",
        progress=40,
        error_code="moderation_blocked",
        error_message="The prompt was refused.",
        remix_of=original,
    )
    response, rows = export(member_client)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="muxweb-videos-')
    assert response["Content-Disposition"].endswith('.csv"')
    assert [row["id"] for row in rows] == [str(failed.pk), str(original.pk)]
    assert rows[1] == {
        "id": str(original.pk),
        "created": original.created_at.isoformat(),
        "author": "mia",
        "model": "sora-2",
        "seconds": "8",
        "size": "1280x720",
        "status": "completed",
        "progress": "100",
        "cost": "0.80",
        "error_code": "",
        "error_message": "",
        "prompt": "A lighthouse at dusk",
        "upstream_id": "video_abc",
        "remix_of": "",
    }
    assert rows[0]["author"] == "otto"
    assert rows[0]["status"] == "failed"
    assert rows[0]["cost"] == ""
    assert rows[0]["error_code"] == "moderation_blocked"
    assert rows[0]["error_message"] == "The prompt was refused."
    assert rows[0]["prompt"] == "Blocked, 中文 and עברית"
    assert rows[0]["remix_of"] == str(original.pk)


def test_export_applies_the_gallery_filters(member_client, member, other_member):
    mine = make_job(member, status=Status.FAILED, prompt="A red kite")
    make_job(member, status=Status.IN_PROGRESS, prompt="A blue kite")
    theirs = make_job(other_member, status=Status.FAILED, prompt="A red car", model="sora-2-pro")

    def ids(**params) -> list[str]:
        return [row["id"] for row in export(member_client, **params)[1]]

    assert ids(q="red") == [str(theirs.pk), str(mine.pk)]
    assert ids(q="red", author="me") == [str(mine.pk)]
    assert ids(author=str(other_member.pk)) == [str(theirs.pk)]
    assert ids(status="failed", model="sora-2") == [str(mine.pk)]
    assert ids(status="running") == [str(VideoJob.objects.get(prompt="A blue kite").pk)]
    assert ids(q="nothing like this") == []


def count_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        export(client)
    return len(queries.captured_queries)


def test_export_query_count_is_the_same_for_one_job_and_fifty(member_client, member, other_member):
    make_job(member)
    one = count_queries(member_client)
    for i in range(49):
        make_job(other_member if i % 2 else member, prompt=f"job {i}")
    assert len(export(member_client)[1]) == 50
    assert count_queries(member_client) == one
    assert one <= 5  # session, user, its permissions (2), the jobs with their authors


@pytest.mark.parametrize(
    ("prompt", "cell"),
    [
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1,2)", "'@SUM(1,2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\n=1+1"),
        ("\x07=1+1", "'=1+1"),  # a stored control character (PostgreSQL refuses NUL)
        ("\x1b[31mred", "[31mred"),
        ("A calm sea = peace", "A calm sea = peace"),
        ('two\nlines, "quoted"', 'two\nlines, "quoted"'),
    ],
)
def test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(
    member_client, member, prompt, cell
):
    make_job(member, status=Status.FAILED, prompt=prompt, error_message=prompt)
    _response, [row] = export(member_client)
    assert row["prompt"] == cell
    assert row["error_message"] == cell


def test_usernames_are_neutralised_too(member_client, catalogue):
    make_job(make_person("=cmd|calc"), prompt="Fine")
    _response, [row] = export(member_client)
    assert row["author"] == "'=cmd|calc"


def test_html_in_a_prompt_stays_data_and_the_file_is_never_read_as_a_page(member_client, member):
    payload = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    make_job(member, prompt=payload)
    response, [row] = export(member_client)
    assert row["prompt"] == payload, "exact, so that the accounting sees what was asked"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment;")


def test_viewer_may_export(client, viewer, member):
    make_job(member)
    client.force_login(viewer)
    assert len(export(client)[1]) == 1


def test_outsider_is_refused_like_in_the_gallery(client, outsider, member):
    make_job(member, prompt="Not for outsiders")
    client.force_login(outsider)
    gallery = client.get(reverse("videos-gallery"))
    response = client.get(reverse("videos-export"))
    assert response.status_code == gallery.status_code == 403
    assert b"Not for outsiders" not in response.content


def test_anonymous_visitor_is_sent_to_login(client, member):
    make_job(member)
    response = client.get(reverse("videos-export"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_gallery_links_to_the_export_with_its_current_filters(member_client, member):
    make_job(member, status=Status.FAILED, prompt="A red kite")
    page = member_client.get(reverse("videos-gallery")).content.decode()
    assert f'href="{reverse("videos-export")}" download>Export CSV</a>' in page
    response = member_client.get(
        reverse("videos-gallery"),
        {"q": "red", "status": "failed"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    page = response.content.decode()
    assert f'href="{reverse("videos-export")}?q=red&amp;status=failed" download>' in page
