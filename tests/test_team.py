"""The team page: adding people, roles, deactivating, set-password links and budgets, each
recorded once in the activity log, never leaving the team without an active admin."""

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from accounts import team
from accounts.models import Action, ActivityEntry, Profile, TeamBudget
from tests.factories import make_job, make_person
from videos.models import Status, VideoJob

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^\s\"<]+/account/set-password/[^\s\"<]+/")


def actions() -> list[str]:
    return list(ActivityEntry.objects.order_by("id").values_list("action", flat=True))


def groups(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


@pytest.fixture
def admin_client(client, admin) -> Client:
    client.force_login(admin)
    return client


def add(client: Client, username: str, role: str = "member", email: str = ""):
    return client.post(
        reverse("accounts-team-add"), {"username": username, "email": email, "role": role}
    )


def link_in(response) -> str:
    found = LINK.findall(response.content.decode())
    assert len(set(found)) == 1, found
    return found[0]


def set_password(link: str, password: str):
    """Open the link in a fresh browser and set the password; the response of the last step."""
    browser = Client()
    opened = browser.get(link)
    if opened.status_code != 302:
        return opened
    form = browser.get(opened["Location"])
    assert form.context["validlink"], form.content.decode()[:500]
    return browser.post(
        opened["Location"], {"new_password1": password, "new_password2": password}, follow=True
    )


def link_works(link: str) -> bool:
    """Whether the link leads to the set-password form (without setting anything)."""
    browser = Client()
    opened = browser.get(link)
    return opened.status_code == 302 and browser.get(opened["Location"]).context["validlink"]


def logs_in(username: str, password: str) -> bool:
    response = Client().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def test_adding_a_person_shows_their_link_once_and_the_link_sets_the_password_once(
    admin_client, admin
):
    response = add(admin_client, "nina", role="viewer")
    assert response.status_code == 200
    link = link_in(response)
    assert "no-store" in response["Cache-Control"]
    nina = User.objects.get(username="nina")
    assert groups(nina) == {"Viewers"} and not nina.is_superuser and not nina.has_usable_password()
    assert actions() == [Action.ACCOUNT_ADDED]
    entry = ActivityEntry.objects.get()
    assert entry.actor == admin
    assert entry.subject == {"username": "nina", "email": "", "role": "viewer"}
    assert link not in str(entry.subject)

    page = admin_client.get(reverse("accounts-team")).content.decode()
    assert "nina" in page and not LINK.search(page)

    done = set_password(link, "a quiet lighthouse 42")
    assert done.redirect_chain[-1][0] == reverse("login")
    assert "Your password is set. Log in with it." in done.content.decode()
    assert logs_in("nina", "a quiet lighthouse 42")
    # Used once, dead after.
    again = Client().get(link)
    assert again.status_code == 200 and not again.context["validlink"]
    assert "This link does not work" in again.content.decode()


def test_a_link_works_for_72_hours_and_not_after(admin_client, monkeypatch):
    link = link_in(add(admin_client, "nina"))
    start = datetime.now()
    monkeypatch.setattr(team.set_password_links, "_now", lambda: start + timedelta(hours=71))
    assert link_works(link)
    monkeypatch.setattr(
        team.set_password_links, "_now", lambda: start + timedelta(hours=72, minutes=1)
    )
    assert not link_works(link)


def test_a_new_link_stops_the_old_one(admin_client):
    first = link_in(add(admin_client, "nina"))
    nina = User.objects.get(username="nina")
    response = admin_client.post(reverse("accounts-team-link", args=[nina.pk]))
    assert response.status_code == 200
    second = link_in(response)
    assert second != first
    assert not link_works(first)
    assert link_works(second)
    # The link is never in the log.
    assert not any(second in str(e.subject) for e in ActivityEntry.objects.all())
    assert set_password(first, "a quiet lighthouse 42").status_code == 200
    assert not User.objects.get(username="nina").has_usable_password()


def test_the_link_is_emailed_when_the_person_has_an_address(admin_client, mailoutbox):
    response = add(admin_client, "nina", email="nina@example.com")
    link = link_in(response)
    assert "It was also sent to nina@example.com." in response.content.decode()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["nina@example.com"] and link in mailoutbox[0].body
    assert mailoutbox[0].subject == "Set your muxweb password"

    add(admin_client, "nemo")
    assert len(mailoutbox) == 1


def test_no_email_is_tried_when_the_site_sends_none(admin_client, settings, mailoutbox):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "localhost"
    response = add(admin_client, "nina", email="nina@example.com")
    link_in(response)
    assert "It was also sent" not in response.content.decode()
    assert not mailoutbox


def test_a_taken_or_malformed_username_is_refused_beside_the_field(admin_client, member):
    for name, error in [
        ("MIA", "Someone already has this username."),
        ("mia the great!", "Enter a valid username."),
        ("", "This field is required."),
    ]:
        response = add(admin_client, name)
        assert response.status_code == 200
        assert error in response.content.decode()
        assert response.context["add_form"].errors["username"]
    assert not add(admin_client, "x", role="owner").context["add_form"].is_valid()
    assert User.objects.count() == 2
    assert not ActivityEntry.objects.exists()
    with pytest.raises(team.UsernameTaken):
        team.add_person(None, "Mia", "", "viewer")


def test_roles_set_the_flags_and_exactly_one_group(admin_client, member, viewer):
    url = reverse("accounts-team-role", args=[member.pk])
    assert admin_client.post(url, {"role": "admin"}).status_code == 302
    member.refresh_from_db()
    assert member.is_superuser and member.is_staff and groups(member) == set()

    assert admin_client.post(url, {"role": "viewer", "confirmed": "1"}).status_code == 302
    member.refresh_from_db()
    assert not member.is_superuser and not member.is_staff and groups(member) == {"Viewers"}

    # A promotion needs no confirmation.
    admin_client.post(reverse("accounts-team-role", args=[viewer.pk]), {"role": "member"})
    assert groups(viewer) == {"Members"}

    # A group that gives no role is left alone.
    extra = Group.objects.create(name="Reviewers")
    member.groups.add(extra)
    admin_client.post(url, {"role": "member"})
    assert groups(member) == {"Members", "Reviewers"}

    entries = ActivityEntry.objects.order_by("id")
    assert [(e.subject["username"], e.subject["before"], e.subject["after"]) for e in entries] == [
        ("mia", "member", "admin"),
        ("mia", "admin", "viewer"),
        ("vera", "viewer", "member"),
        ("mia", "viewer", "member"),
    ]
    # The same role again changes and records nothing.
    admin_client.post(url, {"role": "member"})
    assert ActivityEntry.objects.count() == 4


def test_deactivation_and_demotion_are_confirmed_before_anything_changes(admin_client, member):
    deactivate = reverse("accounts-team-deactivate", args=[member.pk])
    role = reverse("accounts-team-role", args=[member.pk])
    page = admin_client.get(deactivate)
    assert page.status_code == 200 and "Deactivate mia?" in page.content.decode()
    assert f'action="{deactivate}"' in page.content.decode()
    page = admin_client.get(role, {"role": "viewer"})
    assert page.status_code == 200 and "Change the role of mia to Viewer?" in page.content.decode()
    # A demotion posted without the confirmation is asked first too.
    page = admin_client.post(role, {"role": "viewer"})
    assert page.status_code == 200 and 'name="confirmed" value="1"' in page.content.decode()
    member.refresh_from_db()
    assert member.is_active and groups(member) == {"Members"}
    assert not ActivityEntry.objects.exists()

    assert admin_client.post(deactivate).status_code == 302
    member.refresh_from_db()
    assert not member.is_active


def test_the_last_active_admin_can_be_neither_deactivated_nor_demoted(admin_client, admin):
    make_person("ivo", "admin", active=False)  # a deactivated admin does not count
    deactivate = reverse("accounts-team-deactivate", args=[admin.pk])
    response = admin_client.post(deactivate, follow=True)
    assert "ada is the last active admin." in response.content.decode()
    role = reverse("accounts-team-role", args=[admin.pk])
    response = admin_client.post(role, {"role": "member", "confirmed": "1"}, follow=True)
    assert "ada is the last active admin." in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active and admin.is_superuser
    assert not ActivityEntry.objects.exists()
    with pytest.raises(team.LastAdmin):
        team.deactivate(admin, admin)
    with pytest.raises(team.LastAdmin):
        team.change_role(admin, admin, "viewer")

    # With a second active admin, an admin may step down or leave.
    alan = make_person("alan", "admin")
    response = admin_client.post(role, {"role": "member", "confirmed": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("videos-gallery")
    admin.refresh_from_db()
    assert not admin.is_superuser and groups(admin) == {"Members"}
    assert admin_client.get(reverse("accounts-team")).status_code == 403
    with pytest.raises(team.LastAdmin):
        team.deactivate(admin, alan)


def test_an_admin_may_deactivate_themselves_while_another_admin_remains(admin_client, admin):
    make_person("alan", "admin")
    response = admin_client.post(reverse("accounts-team-deactivate", args=[admin.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    admin.refresh_from_db()
    assert not admin.is_active
    # This browser is logged out with it.
    assert admin_client.get(reverse("accounts-team"))["Location"].startswith(reverse("login"))


def test_deactivating_keeps_the_jobs_and_stops_logins_sessions_and_links(admin_client, member):
    mia_browser = Client()
    mia_browser.force_login(member)
    make_job(member, status=Status.COMPLETED, prompt="Mia's lighthouse")
    link = link_in(admin_client.post(reverse("accounts-team-link", args=[member.pk])))
    assert link_works(link)
    admin_client.post(reverse("accounts-team-deactivate", args=[member.pk]))

    member.refresh_from_db()
    assert not member.is_active
    assert VideoJob.objects.filter(author=member, prompt="Mia's lighthouse").exists()
    assert not logs_in("mia", "pw-mia")
    assert mia_browser.get(reverse("videos-gallery"))["Location"].startswith(reverse("login"))
    assert not link_works(link)
    page = admin_client.get(reverse("accounts-team")).content.decode()
    assert "deactivated" in page
    # No new link for a deactivated account.
    response = admin_client.post(reverse("accounts-team-link", args=[member.pk]), follow=True)
    assert not LINK.search(response.content.decode())
    assert "reactivate the account" in response.content.decode()

    admin_client.post(reverse("accounts-team-reactivate", args=[member.pk]))
    member.refresh_from_db()
    assert member.is_active and groups(member) == {"Members"}
    assert logs_in("mia", "pw-mia")
    # A link made before the deactivation stays dead.
    assert not link_works(link)
    assert actions() == [
        Action.PASSWORD_LINK,
        Action.ACCOUNT_DEACTIVATED,
        Action.ACCOUNT_REACTIVATED,
    ]
    assert ActivityEntry.objects.first().subject == {"username": "mia", "role": "member"}


def test_budgets_are_set_lowered_and_cleared_with_before_and_after(admin_client, member):
    person = reverse("accounts-team-person-budget", args=[member.pk])
    whole = reverse("accounts-team-budget")
    for url, amount in [
        (person, "50"),
        (person, "10.5"),
        (person, ""),
        (whole, "200"),
        (whole, ""),
    ]:
        assert admin_client.post(url, {"amount": amount}).status_code == 302
    assert Profile.of(member).monthly_budget is None
    assert TeamBudget.current().monthly_budget is None
    entries = ActivityEntry.objects.order_by("id")
    assert all(e.action == Action.BUDGET_CHANGE for e in entries)
    assert [e.subject for e in entries] == [
        {"username": "mia", "before": None, "after": "50.00"},
        {"username": "mia", "before": "50.00", "after": "10.50"},
        {"username": "mia", "before": "10.50", "after": None},
        {"team": True, "before": None, "after": "200.00"},
        {"team": True, "before": "200.00", "after": None},
    ]
    # The same budget again records nothing.
    admin_client.post(person, {"amount": ""})
    assert ActivityEntry.objects.count() == 5

    log = admin_client.get(reverse("accounts-activity")).content.decode()
    assert "mia's monthly budget" in log and "$50.00 → $10.50" in log
    assert "the team's monthly budget" in log and "$200.00 → no limit" in log


@pytest.mark.parametrize("amount", ["-5", "abc", "NaN", "Infinity", "1e20", "1.234"])
def test_a_budget_that_is_not_an_amount_is_refused_beside_the_field(admin_client, member, amount):
    for url in (
        reverse("accounts-team-person-budget", args=[member.pk]),
        reverse("accounts-team-budget"),
    ):
        response = admin_client.post(url, {"amount": amount})
        assert response.status_code == 200
        assert response.context["budget_form"].errors["amount"]
        assert 'aria-invalid="true"' in response.content.decode()
    assert Profile.of(member).monthly_budget is None
    assert TeamBudget.current().monthly_budget is None
    assert not ActivityEntry.objects.exists()


def test_every_change_writes_exactly_one_entry(admin_client, admin, member, viewer):
    steps = [
        (reverse("accounts-team-add"), {"username": "nina", "role": "member"}, 200),
        (reverse("accounts-team-role", args=[viewer.pk]), {"role": "member"}, 302),
        (reverse("accounts-team-role", args=[viewer.pk]), {"role": "viewer", "confirmed": 1}, 302),
        (reverse("accounts-team-deactivate", args=[member.pk]), {}, 302),
        (reverse("accounts-team-reactivate", args=[member.pk]), {}, 302),
        (reverse("accounts-team-person-budget", args=[member.pk]), {"amount": "5"}, 302),
        (reverse("accounts-team-budget"), {"amount": "100"}, 302),
    ]
    for url, data, status in steps:
        before = ActivityEntry.objects.count()
        assert admin_client.post(url, data).status_code == status, url
        assert ActivityEntry.objects.count() == before + 1, url
        assert ActivityEntry.objects.order_by("-id").first().actor == admin
    assert actions() == [
        Action.ACCOUNT_ADDED,
        Action.ROLE_CHANGE,
        Action.ROLE_CHANGE,
        Action.ACCOUNT_DEACTIVATED,
        Action.ACCOUNT_REACTIVATED,
        Action.BUDGET_CHANGE,
        Action.BUDGET_CHANGE,
    ]
    log = admin_client.get(reverse("accounts-activity")).content.decode()
    assert "Added an account" in log and "nina" in log
    assert "Viewer → Member" in log and "Member → Viewer" in log
    assert "Deactivated an account" in log and "Reactivated an account" in log


def team_urls(person: User) -> list[tuple[str, str]]:
    return [
        ("get", reverse("accounts-team")),
        ("get", reverse("accounts-team-role", args=[person.pk]) + "?role=viewer"),
        ("get", reverse("accounts-team-deactivate", args=[person.pk])),
        ("post", reverse("accounts-team-add")),
        ("post", reverse("accounts-team-budget")),
        ("post", reverse("accounts-team-role", args=[person.pk])),
        ("post", reverse("accounts-team-deactivate", args=[person.pk])),
        ("post", reverse("accounts-team-reactivate", args=[person.pk])),
        ("post", reverse("accounts-team-link", args=[person.pk])),
        ("post", reverse("accounts-team-person-budget", args=[person.pk])),
    ]


def test_only_admins_reach_the_team_pages(client, admin, member, viewer):
    outsider = make_person("olga")
    data = {"username": "eve", "role": "admin", "amount": "1", "confirmed": "1"}
    for user in (member, viewer, outsider):
        browser = Client()
        browser.force_login(user)
        for method, url in team_urls(admin):
            response = getattr(browser, method)(url, data if method == "post" else None)
            assert response.status_code == 403, (user.username, method, url)
        assert "/team/" not in browser.get(reverse("videos-usage")).content.decode()
    for method, url in team_urls(admin):
        response = getattr(client, method)(url, data if method == "post" else None)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    admin.refresh_from_db()
    assert admin.is_active and admin.is_superuser
    assert not User.objects.filter(username="eve").exists()
    assert not ActivityEntry.objects.exists()


def test_the_page_lists_everyone_active_first_with_their_month(
    admin_client, admin, member, django_assert_max_num_queries
):
    make_person("aaron", "viewer", active=False)
    make_person("olga")
    make_job(member, status=Status.QUEUED, reserved_cost=Decimal("0.40"))
    Profile.objects.create(user=member, monthly_budget=Decimal("25.00"))
    TeamBudget.objects.update_or_create(pk=1, defaults={"monthly_budget": Decimal("300")})
    response = admin_client.get(reverse("accounts-team"))
    page = response.content.decode()
    names = [p.user.username for p in response.context["people"]]
    assert names == ["ada", "mia", "olga", "aaron"]
    roles = [p.role for p in response.context["people"]]
    assert roles == ["admin", "member", None, "viewer"]
    mia = response.context["people"][1]
    assert (mia.jobs, mia.spent, mia.budget) == (1, Decimal("0.40"), Decimal("25.00"))
    assert response.context["team_spent"] == Decimal("0.40")
    assert "$300.00" in page and "$0.40" in page and 'value="25.00"' in page
    assert "no role" in page and "never" in page and "deactivated" in page
    assert 'href="/team/"' in page  # the nav link

    for n in range(10):
        make_person(f"extra{n}", "member")
    with django_assert_max_num_queries(12):
        admin_client.get(reverse("accounts-team"))


def test_deactivating_signs_the_person_out_everywhere_for_good(admin_client, member, admin):
    browser = Client()
    browser.force_login(member)
    assert browser.get(reverse("accounts-account")).status_code == 200
    admin_client.post(reverse("accounts-team-deactivate", args=[member.pk]), {"confirmed": 1})
    admin_client.post(reverse("accounts-team-reactivate", args=[member.pk]))
    # Active again, but the session from before is gone: they log in afresh.
    response = browser.get(reverse("accounts-account"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_new_link_is_recorded_without_the_link(admin_client, member):
    response = admin_client.post(reverse("accounts-team-link", args=[member.pk]))
    entry = ActivityEntry.objects.order_by("-id").first()
    assert entry.action == Action.PASSWORD_LINK
    assert entry.subject == {"username": "mia"}
    path = re.search(r"/account/set-password/[^\"'<\s]+", response.content.decode()).group(0)
    assert path not in str(entry.subject)


@pytest.mark.browser
def test_an_admin_adds_a_member_who_sets_a_password_generates_and_hears_it_is_done(
    page, live_server, admin
):
    """The whole way in a real browser: the admin adds nina on the Team page and copies the
    link; nina opens it, sets her password, logs in, switches to Chinese, generates a video at
    the simulator and sees the completion toast, with nothing blocked by the policy."""
    from playwright.sync_api import expect

    from tests.conftest import ARTIFACTS, run_until_settled
    from tests.test_browser import assert_nothing_blocked_or_logged, log_in

    log_in(page, "ada", "pw-ada")
    page.click("nav.topnav >> text=Team")
    page.fill("input[name=username]", "nina")
    page.select_option("select[name=role]", "member")
    page.click("form[action='/team/add'] button[type=submit]")
    link = page.locator("#new-link").input_value()
    assert "/account/set-password/" in link
    page.screenshot(path=ARTIFACTS / "team-added.png", full_page=True)
    page.click("nav.topnav button:has-text('Log out')")

    page.goto(link)
    page.fill("input[name=new_password1]", "nina-sets-her-own-81")
    page.fill("input[name=new_password2]", "nina-sets-her-own-81")
    page.click("main button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Your password is set")
    page.fill("#id_username", "nina")
    page.fill("#id_password", "nina-sets-her-own-81")
    page.click("main button[type=submit]")
    expect(page.locator("#composer")).to_be_visible()
    page.click("header button[lang=zh-hans]")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    assert Profile.objects.get(user__username="nina").language == "zh-hans"

    page.fill("#id_prompt", "Nina's first shot: a red kite over dunes")
    page.click("#generate")
    expect(page.locator(".job-card").first).to_contain_text("Nina's first shot")
    job = VideoJob.objects.get(prompt="Nina's first shot: a red kite over dunes")
    assert job.author.username == "nina"
    run_until_settled(job)
    assert job.status == Status.COMPLETED
    toast = page.locator("#toasts .toast")
    expect(toast).to_be_visible(timeout=8000)
    expect(toast).to_contain_text("你的视频已完成")
    expect(toast).to_contain_text("Nina's first shot")
    expect(toast.locator("img")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "team-member-toast.png")
    # The link worked once.
    page.goto(link)
    expect(page.locator("main")).not_to_contain_text("nina-sets")
    assert page.locator("input[name=new_password1]").count() == 0
    assert_nothing_blocked_or_logged(page, ["/team/", "/team/add", "/notifications/"])
