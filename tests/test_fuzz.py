"""Every field of every form, fuzzed: bad input gets a clear message and changes nothing.

Values reach the server as a browser or a script could send them: any character (NUL, control
characters, right-to-left marks, HTML), lone surrogates as the invalid UTF-8 bytes they become on
the wire, strings past every limit. A server error fails the test (the test client re-raises it).
"""

import io
import re
import unicodedata
from urllib.parse import quote, urlencode, urlparse

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.factories import make_job
from videos.models import ModelSpec, Status, VideoJob

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=40,
    deadline=None,
    # No example database in the working tree; a failure prints the example to reproduce it.
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x07\x1b[31m\x7f\x85",
    "\r\n",
    "\u202eevil\u202c",
    "\u200fשלום עולם",
    "مرحبا",
    "\ufeff",
    "\ud800",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7|add:7 }}{% now 'Y' %}",
    "' OR 1=1 --",
    "../../secret_key",
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example",
    "%00",
    "-1",
    "0",
    "007",
    "٣",
    "²",
    "99999999999999999999",
    "9" * 5000,
    "me",
    "running",
    "completed",
]
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
# Long strings built from a repeated character: around the prompt limit and far past the others.
HUGE = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["x", "א", "\x00", "<", "9", "\r\n"]),
    st.integers(31_990, 32_010) | st.just(100_000),
)
TEXT = st.one_of(
    st.text(ANY_CHARACTER, max_size=40),
    st.sampled_from(NASTY),
    st.lists(st.text(ANY_CHARACTER, max_size=4) | st.sampled_from(NASTY), max_size=6).map("".join),
    HUGE,
)
# What the server sees of a value: the client's UTF-8 bytes, invalid ones replaced.
WIRE = {"errors": "surrogatepass"}


def on_the_wire(value: str) -> str:
    return value.encode("utf-8", **WIRE).decode("utf-8", "replace")


def form_body(data: dict[str, str | list[str]]) -> bytes:
    pairs = [
        (key.encode("utf-8", **WIRE), value.encode("utf-8", **WIRE))
        for key, values in data.items()
        for value in (values if isinstance(values, list) else [values])
    ]
    return urlencode(pairs).encode("ascii")


def get(client, url: str, data: dict[str, str | list[str]], **kwargs):
    return client.get(url + "?" + form_body(data).decode("ascii"), **kwargs)


def post(client, url: str, data: dict[str, str | list[str]], **kwargs):
    return client.post(
        url, form_body(data), content_type="application/x-www-form-urlencoded", **kwargs
    )


def expected_prompt(sent: str) -> str:
    """The prompt as it should be kept: line breaks as newlines, no other control character but
    tab, no surrounding whitespace (worked out here from the Unicode categories)."""
    text = re.sub(r"\r\n?|[\v\f]", "\n", on_the_wire(sent))
    text = "".join(c for c in text if c in "\t\n" or unicodedata.category(c) != "Cc")
    return text.strip()


def no_nul_reached_the_database(queries: CaptureQueriesContext) -> bool:
    # PostgreSQL refuses NUL in text; SQLite takes it, so the suite checks the SQL itself.
    return not any("\x00" in q["sql"] for q in queries.captured_queries)


class Unchanged:
    """Snapshot of what a refused form must not change: job rows, queued tasks, the provider."""

    def __init__(self, provider, callbacks) -> None:
        self.provider = provider
        self.callbacks = callbacks
        self.jobs = VideoJob.objects.count()
        self.upstream = len(provider.jobs())

    def check(self) -> None:
        assert VideoJob.objects.count() == self.jobs
        assert self.callbacks == [], "no task queued"
        assert len(self.provider.jobs()) == self.upstream, "nothing created at the provider"


def has_form_error(page: str, field: str) -> bool:
    return f'id="error-{field}"' in page or 'class="form-error"' in page


def offered(spec: ModelSpec | None, field: str, value: str) -> bool:
    return spec is not None and value in [str(v) for v in getattr(spec, field)]


VALID = {"prompt": "A fox in the snow", "model": "sora-2", "seconds": "8", "size": "720x1280"}


def post_create_form(client, provider, capture_callbacks, data: dict[str, str], htmx: bool):
    """Post the create form; check it made exactly one job, or refused with a message and
    changed nothing."""
    # Looked up here, not in SQL: PostgreSQL would refuse the test's own query for a NUL.
    spec = {spec.name: spec for spec in ModelSpec.objects.all()}.get(on_the_wire(data["model"]))
    kept = expected_prompt(data["prompt"])
    valid = (
        0 < len(kept) <= 32_000
        and offered(spec, "seconds", on_the_wire(data["seconds"]))
        and offered(spec, "sizes", on_the_wire(data["size"]))
    )
    token = data.get("token")
    well_formed_token = token is not None and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    repeated = well_formed_token and VideoJob.objects.filter(client_token=token).exists()
    headers = {"HX-Request": "true"} if htmx else {}

    with capture_callbacks() as callbacks:
        before = Unchanged(provider, callbacks)
        with CaptureQueriesContext(connection) as queries:
            response = post(client, reverse("videos-create"), data, headers=headers)

    assert no_nul_reached_the_database(queries)
    if not valid:
        assert response.status_code == 200
        page = response.content.decode()
        assert any(has_form_error(page, f) for f in ("prompt", "model", "seconds", "size"))
        before.check()
    elif repeated:
        assert VideoJob.objects.count() == before.jobs
    else:
        assert response.status_code == (200 if htmx else 302)
        assert VideoJob.objects.count() == before.jobs + 1
        assert len(callbacks) == 1, "one submit task queued"
        job = VideoJob.objects.order_by("-pk").first()
        assert job.prompt == kept
        assert job.client_token == (token if well_formed_token else None)


@pytest.mark.parametrize("field", ["prompt", "model", "seconds", "size", "token", "fit_reference"])
@FUZZ
@given(value=TEXT, htmx=st.booleans())
def test_each_create_form_field_takes_any_value(
    member_client, provider, django_capture_on_commit_callbacks, field, value, htmx
):
    data = {**VALID, field: value}
    post_create_form(member_client, provider, django_capture_on_commit_callbacks, data, htmx)


@FUZZ
@given(
    prompt=TEXT | st.sampled_from(["A fox in the snow", "שועל בשלג", "雪中的狐狸"]),
    model=st.sampled_from(["sora-2", "sora-2-pro"]) | TEXT,
    seconds=st.sampled_from(["4", "8", "12"]) | TEXT,
    size=st.sampled_from(["1280x720", "720x1280", "1792x1024"]) | TEXT,
    htmx=st.booleans(),
)
def test_create_form_fields_together(
    member_client, provider, django_capture_on_commit_callbacks, prompt, model, seconds, size, htmx
):
    data = {"prompt": prompt, "model": model, "seconds": seconds, "size": size}
    post_create_form(member_client, provider, django_capture_on_commit_callbacks, data, htmx)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


UPLOAD = st.one_of(
    st.binary(max_size=2000),
    st.builds(
        lambda w, h, cut, tail: png(w, h)[:cut] + tail,
        st.integers(1, 64),
        st.integers(1, 64),
        st.none() | st.integers(0, 200),
        st.binary(max_size=200),
    ),
)
# Any printable name; the leading letter keeps it a file name rather than "." or "" (a part
# without a file name is no upload at all).
FILENAME = st.text(st.characters(codec="utf-8", exclude_characters='"\r\n\\/'), max_size=60).map(
    lambda name: "x" + name
)
CONTENT_TYPE = st.sampled_from(
    ["image/png", "image/jpeg", "text/html", "image/svg+xml", "application/zip", ""]
)


@FUZZ
@given(content=UPLOAD, filename=FILENAME, content_type=CONTENT_TYPE, fit=st.booleans())
def test_reference_upload_is_refused_beside_the_field_or_stored_re_encoded(
    member_client,
    provider,
    settings,
    django_capture_on_commit_callbacks,
    content,
    filename,
    content_type,
    fit,
):
    upload = SimpleUploadedFile(filename, content, content_type=content_type)
    data = {
        "prompt": "From this frame",
        "model": "sora-2",
        "seconds": "4",
        "size": "1280x720",
        "input_reference": upload,
    }
    if fit:
        data["fit_reference"] = "on"
    with django_capture_on_commit_callbacks() as callbacks:
        before = Unchanged(provider, callbacks)
        response = member_client.post(reverse("videos-create"), data)

    if response.status_code == 302:
        job = VideoJob.objects.order_by("-pk").first()
        stored = (settings.MEDIA_ROOT / job.input_reference.name).read_bytes()
        with Image.open(io.BytesIO(stored)) as image:
            assert (image.format, image.size) == ("PNG", (1280, 720))
        assert stored != content, "re-encoded, never kept as uploaded"
    else:
        assert response.status_code == 200
        assert 'id="error-input_reference"' in response.content.decode()
        before.check()


@pytest.fixture
def completed_job(member) -> VideoJob:
    return make_job(member, status=Status.COMPLETED, prompt="The original")


@FUZZ
@given(prompt=TEXT, extra=TEXT)
def test_remix_form_makes_one_remix_or_shows_an_error_and_changes_nothing(
    member_client, provider, django_capture_on_commit_callbacks, completed_job, prompt, extra
):
    kept = expected_prompt(prompt)
    with django_capture_on_commit_callbacks() as callbacks:
        before = Unchanged(provider, callbacks)
        with CaptureQueriesContext(connection) as queries:
            response = post(
                member_client,
                reverse("videos-remix", args=[completed_job.pk]),
                {"prompt": prompt, "seconds": extra, "model": extra},
            )
    assert no_nul_reached_the_database(queries)
    if 0 < len(kept) <= 32_000:
        assert response.status_code == 302
        remix = VideoJob.objects.get(remix_of=completed_job, prompt=kept)
        assert response["Location"] == reverse("videos-detail", args=[remix.pk])
        assert (remix.seconds, remix.size, remix.model) == (4, "1280x720", "sora-2")
        remix.delete()
    else:
        assert response.status_code == 200
        assert 'id="error-remix-prompt"' in response.content.decode()
        before.check()


@FUZZ
@given(query=TEXT, form=st.dictionaries(TEXT.filter(bool), TEXT, max_size=3))
def test_delete_confirmation_ignores_anything_extra_and_deletes_once(
    member_client, member, provider, query, form
):
    # "Deletes": moves to the trash, what the job page's delete does now (the name is cited in
    # docs/reliability.md).
    job = make_job(member, status=Status.FAILED, prompt="Doomed")
    url = reverse("videos-delete", args=[job.pk])
    assert get(member_client, url, {"next": query, "q": query}).status_code == 200
    response = post(member_client, url, form)
    assert response.status_code == 302
    assert VideoJob.objects.trashed().filter(pk=job.pk).exists()
    assert not VideoJob.objects.kept().filter(pk=job.pk).exists()


DAYS = st.sampled_from(["2026-01-31", "0001-01-01", "9999-12-31", "2026-02-30", "20260101"])


@FUZZ
@given(
    q=TEXT,
    status=st.sampled_from(["running", "completed", "failed"]) | TEXT,
    author=st.sampled_from(["me", "1", "2"]) | TEXT,
    model=st.sampled_from(["sora-2", "sora-2-pro"]) | TEXT,
    size=st.sampled_from(["1280x720", "99999x1", "1x"]) | TEXT,
    seconds=st.sampled_from(["4", "0", "32768", "99999999999999999999"]) | TEXT,
    reference=st.sampled_from(["with", "without"]) | TEXT,
    remixes=st.sampled_from(["1", "0"]) | TEXT,
    day_from=DAYS | TEXT,
    day_to=DAYS | TEXT,
    source=st.sampled_from(["1", "2"]) | TEXT,
    cursor=st.sampled_from(["1_1", "0_1", "-1_1", "99999999999999999999_1", "1_0"]) | TEXT,
    direction=st.sampled_from(["older", "newer"]),
    htmx=st.booleans(),
)
def test_gallery_filters_take_any_value(
    member_client,
    completed_job,
    q,
    status,
    author,
    model,
    size,
    seconds,
    reference,
    remixes,
    day_from,
    day_to,
    source,
    cursor,
    direction,
    htmx,
):
    params = {
        "q": q,
        "status": status,
        "author": author,
        "model": model,
        "size": size,
        "seconds": seconds,
        "reference": reference,
        "remixes": remixes,
        "from": day_from,
        "to": day_to,
    }
    headers = {"HX-Request": "true", "HX-Target": "results"} if htmx else {}
    with CaptureQueriesContext(connection) as queries:
        response = get(
            member_client,
            reverse("videos-gallery"),
            {**params, "duplicate": source, direction: cursor},
            headers=headers,
        )
        export = get(member_client, reverse("videos-export"), params)
        b"".join(export.streaming_content)
    assert response.status_code == export.status_code == 200
    assert no_nul_reached_the_database(queries)


@FUZZ
@given(
    ids=st.lists(st.sampled_from(["1", "2", "1,2", ","]) | TEXT, max_size=4),
    version=TEXT,
)
def test_gallery_poll_takes_any_ids_and_version(member_client, completed_job, ids, version):
    with CaptureQueriesContext(connection) as queries:
        response = get(member_client, reverse("videos-gallery-poll"), {"ids": ids, "v": version})
    assert response.status_code in (200, 204)
    assert no_nul_reached_the_database(queries)
    response = get(
        member_client,
        reverse("videos-detail", args=[completed_job.pk]),
        {"v": version},
        headers={"HX-Request": "true", "HX-Target": "job-status"},
    )
    assert response.status_code in (200, 204)


@FUZZ
@given(
    model=st.sampled_from(["sora-2", "sora-2-pro"]) | TEXT,
    seconds=st.sampled_from(["4", "8", "12"]) | TEXT,
    size=st.sampled_from(["1280x720", "1792x1024"]) | TEXT,
    prompt=TEXT,
)
def test_compose_options_and_update_choices_take_any_value(
    member_client, provider, django_capture_on_commit_callbacks, model, seconds, size, prompt
):
    data = {"model": model, "seconds": seconds, "size": size, "prompt": prompt}
    response = get(member_client, reverse("videos-compose-options"), data)
    assert response.status_code == 200
    with django_capture_on_commit_callbacks() as callbacks:
        before = Unchanged(provider, callbacks)
        response = post(member_client, reverse("videos-create"), {**data, "refresh": "1"})
    assert response.status_code == 200
    before.check()


def reset_login_throttle() -> None:
    """Failed logins are throttled where django-axes is installed: each example starts afresh."""
    if apps.is_installed("axes"):
        from axes.utils import reset

        reset()


# Each attempt hashes a password on purpose (slowly): a few examples only.
@settings(parent=FUZZ, max_examples=10)
@given(username=TEXT, password=TEXT, next_url=TEXT)
def test_login_form_refuses_any_bad_credentials_with_a_message(
    client, member, username, password, next_url
):
    reset_login_throttle()
    with CaptureQueriesContext(connection) as queries:
        response = post(
            client,
            reverse("login"),
            {"username": username, "password": password, "next": next_url},
        )
    reset_login_throttle()
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="form-error"' in page or 'class="field-error"' in page
    assert "_auth_user_id" not in client.session
    assert no_nul_reached_the_database(queries)


@FUZZ
@given(language=st.sampled_from(["en", "zh-hans"]) | TEXT, next_url=TEXT)
def test_language_switch_takes_any_value_and_never_redirects_away(client, db, language, next_url):
    response = post(client, reverse("set_language"), {"language": language, "next": next_url})
    assert response.status_code in (302, 204)
    if response.status_code == 302:
        target = urlparse(response["Location"])
        assert target.netloc in ("", "testserver") and target.scheme in ("", "http")


@FUZZ
@given(segment=TEXT.filter(bool))
def test_any_text_in_place_of_a_job_id_is_404(member_client, completed_job, segment):
    wire = quote(segment.encode("utf-8", **WIRE), safe="")
    for suffix in ("/", "/media/video", "/media/thumbnail?download=1", "/delete"):
        response = member_client.get(f"/videos/{wire}{suffix}")
        assert response.status_code == 404 or (
            segment == str(completed_job.pk) and response.status_code == 200
        ), (segment, suffix, response.status_code)


MEDIA_BODY = bytes(range(256)) * 4
MEDIA_SIZE = len(MEDIA_BODY)
# A byte position as a client may write it: in and around the file, with leading zeros, or with
# far more digits than any file's size (int() refuses past 4,300).
POSITION = st.one_of(
    st.integers(0, MEDIA_SIZE + 10).map(str),
    st.text("0123456789", min_size=1, max_size=40),
    st.builds(
        lambda zeros, n: "0" * zeros + str(n), st.integers(1, 5000), st.integers(0, MEDIA_SIZE)
    ),
    st.builds(lambda c, n: c * n, st.sampled_from("19"), st.integers(19, 5000)),
)
OPTIONAL_POSITION = st.just("") | POSITION
PADDING = st.sampled_from(["", " ", "\t", " \t "])
NON_ASCII_DIGITS = st.sampled_from(["²", "٣", "۵", "߀", "१", "１", "𝟘"])


def position(digits: str) -> int:
    """The number, or one past any position in this small file when it is long."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 10 else 10**10


def asked_for(first: str, last: str) -> tuple[int, int] | int:
    """What RFC 9110 gives for `bytes=first-last` of the file: its (first, last) byte, 416 when
    unsatisfiable, or 200 for a range that names no byte at all."""
    if not first and not last:
        return 200
    if not first:
        length = position(last)
        return 416 if length == 0 else (max(MEDIA_SIZE - length, 0), MEDIA_SIZE - 1)
    start = position(first)
    end = position(last) if last else MEDIA_SIZE - 1
    if start >= MEDIA_SIZE or end < start:
        return 416
    return start, min(end, MEDIA_SIZE - 1)


@st.composite
def single_range(draw) -> tuple[str, tuple[int, int] | int]:
    first, last = draw(OPTIONAL_POSITION), draw(OPTIONAL_POSITION)
    header = draw(PADDING) + f"bytes={first}-{last}" + draw(PADDING)
    return header, asked_for(first, last)


@st.composite
def unsupported_range(draw) -> tuple[str, int]:
    """Ranges we answer with the whole file: several at once, or digits other than ASCII."""
    if draw(st.booleans()):
        specs = draw(st.lists(st.tuples(OPTIONAL_POSITION, OPTIONAL_POSITION), min_size=2))
        separator = draw(st.sampled_from([",", ", ", " ,\t"]))
        return "bytes=" + separator.join(f"{a}-{b}" for a, b in specs), 200
    first, last = draw(OPTIONAL_POSITION), draw(OPTIONAL_POSITION)
    digit = draw(NON_ASCII_DIGITS)
    if draw(st.booleans()):
        first = first[: draw(st.integers(0, len(first)))] + digit + first
    else:
        last = last[: draw(st.integers(0, len(last)))] + digit + last
    return f"bytes={first}-{last}", 200


def range_answer(response) -> bytes:
    """The body, after checking the answer is one a Range may get and agrees with its headers."""
    assert response.status_code in (200, 206, 416)
    if response.status_code == 416:
        assert response["Content-Range"] == f"bytes */{MEDIA_SIZE}"
        return b""
    content = b"".join(response.streaming_content)
    assert response["Content-Length"] == str(len(content))
    if response.status_code == 200:
        assert content == MEDIA_BODY
    else:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response["Content-Range"])
        start, end = int(match[1]), int(match[2])
        assert int(match[3]) == MEDIA_SIZE and 0 <= start <= end < MEDIA_SIZE
        assert content == MEDIA_BODY[start : end + 1]
    return content


@pytest.fixture
def cached_video(member, settings) -> VideoJob:
    job = make_job(member)
    job.video.name = f"videos/{job.pk}/video.mp4"
    path = settings.MEDIA_ROOT / job.video.name
    path.parent.mkdir(parents=True)
    path.write_bytes(MEDIA_BODY)
    job.save()
    return job


def get_media(client, job: VideoJob, headers: dict[str, str]):
    return client.get(reverse("videos-media", args=[job.pk, "video"]), headers=headers)


@FUZZ
@given(case=single_range() | unsupported_range())
def test_byte_range_gets_exactly_the_bytes_asked_for_or_416(member_client, cached_video, case):
    header, expected = case
    response = get_media(member_client, cached_video, {"Range": header})
    content = range_answer(response)
    if isinstance(expected, int):
        assert response.status_code == expected
    else:
        assert response.status_code == 206
        start, end = expected
        assert response["Content-Range"] == f"bytes {start}-{end}/{MEDIA_SIZE}"
        assert content == MEDIA_BODY[start : end + 1]


RANGE_TEXT = st.one_of(
    TEXT,
    st.builds(
        "{}{}".format,
        st.sampled_from(["bytes=", "BYTES=", "bytes =", "bytes=-", "items="]),
        st.text(st.sampled_from("0123456789-,= \t²٣１") | st.characters(codec=None), max_size=60),
    ),
    single_range().map(lambda case: case[0]),
    unsupported_range().map(lambda case: case[0]),
)


@FUZZ
@given(header=RANGE_TEXT, if_range=st.none() | st.just("current") | TEXT)
def test_any_range_header_is_answered_200_206_or_416(member_client, cached_video, header, if_range):
    headers = {"Range": header}
    if if_range == "current":
        headers["If-Range"] = get_media(member_client, cached_video, {})["ETag"]
    elif if_range is not None:
        headers["If-Range"] = if_range
    range_answer(get_media(member_client, cached_video, headers))


def test_range_header_with_thousands_of_digits_is_416_not_500(member_client, cached_video):
    huge = "9" * 5000
    response = get_media(member_client, cached_video, {"Range": f"bytes={huge}-"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{MEDIA_SIZE}"
    for header in (f"bytes=0-{huge}", f"bytes=-{huge}"):
        response = get_media(member_client, cached_video, {"Range": header})
        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes 0-{MEDIA_SIZE - 1}/{MEDIA_SIZE}"
        assert b"".join(response.streaming_content) == MEDIA_BODY
