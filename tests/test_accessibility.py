"""Every page passes the axe-core accessibility rules, in both languages and both colour schemes.

axe-core is vendored for the tests only (tests/vendor, from the npm registry, its version in the
file name); it is evaluated in the page through the browser's devtools channel, which the
Content Security Policy does not govern, so the pages keep their policy while they are checked.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import TeamBudget
from tests.factories import make_job
from tests.test_browser import log_in
from videos.models import Status

AXE = (Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js").read_text()
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
  v => ({rule: v.id, impact: v.impact, where: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""


def violations(page, path: str) -> list[dict]:
    page.goto(path)
    page.evaluate(AXE)
    return page.evaluate(RUN_AXE)


@pytest.mark.browser
@pytest.mark.parametrize(("language", "scheme"), [("en", "light"), ("zh-hans", "dark")])
def test_every_page_passes_axe(page, admin, member, language, scheme):
    page.emulate_media(color_scheme=scheme)
    done = make_job(member, status=Status.COMPLETED, with_files=True, final_cost=Decimal("0.40"))
    failed = make_job(member, status=Status.FAILED, prompt="Refused once")
    running = make_job(member, status=Status.IN_PROGRESS, progress=40, prompt="Still rendering")
    make_job(member, status=Status.COMPLETED, remix_of=done, prompt="A remix of it")
    binned = make_job(
        member, status=Status.COMPLETED, with_files=True, prompt="In the trash",
        trashed_at=timezone.now(), trashed_by=member,
    )  # fmt: skip
    # A budget nearly spent: the composer warns beside the button.
    TeamBudget.objects.update_or_create(pk=1, defaults={"monthly_budget": Decimal("0.50")})
    found = {"/accounts/login/": violations(page, reverse("login"))}
    log_in(page, "ada", "pw-ada")
    if language == "zh-hans":
        page.click("header button[lang=zh-hans]")
    paths = [
        reverse("videos-gallery"),
        reverse("videos-detail", args=[done.pk]),
        reverse("videos-detail", args=[failed.pk]),
        reverse("videos-detail", args=[running.pk]),
        reverse("videos-delete", args=[done.pk]),
        reverse("videos-detail", args=[binned.pk]),
        reverse("videos-trash"),
        reverse("videos-trash-empty"),
        reverse("videos-usage"),
        reverse("accounts-activity"),
        reverse("accounts-team"),
        reverse("accounts-team-deactivate", args=[member.pk]),
        reverse("accounts-team-role", args=[member.pk]) + "?role=viewer",
        reverse("accounts-account"),
        reverse("accounts-set-password", args=["MQ", "no-such-token"]),
    ]
    for path in paths:
        found[path] = violations(page, path)
    found = {path: problems for path, problems in found.items() if problems}
    assert found == {}, json.dumps(found, ensure_ascii=False, indent=1)
