"""My account: password, language, time zone, browser notifications, and my spend this month
against my budget. A person's language and time zone apply to every page they open."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Profile
from tests.factories import make_job, make_person
from videos.models import Status

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["admin", "member", "viewer", None])
def test_everyone_signed_in_has_an_account_page(client, catalogue, role):
    person = make_person(f"p{role}", role)
    client.force_login(person)
    page = client.get(reverse("accounts-account")).content.decode()
    assert "Change password" in page
    assert 'name="time_zone"' in page
    assert 'name="browser_notifications"' in page


def test_preferences_are_saved_and_my_language_follows_me(client, member):
    client.force_login(member)
    response = client.post(
        reverse("accounts-account"),
        {"language": "zh-hans", "time_zone": "Asia/Shanghai", "browser_notifications": "on"},
    )
    assert response.status_code == 302
    profile = Profile.of(member)
    assert (profile.language, profile.time_zone, profile.browser_notifications) == (
        "zh-hans",
        "Asia/Shanghai",
        True,
    )
    # Even asked in English, every page is in my language.
    page = client.get(reverse("videos-gallery"), headers={"Accept-Language": "en"})
    assert '<html lang="zh-hans">' in page.content.decode()
    # A new browser: my language once I sign in.
    fresh = Client()
    fresh.post(reverse("login"), {"username": "mia", "password": "pw-mia"})
    assert '<html lang="zh-hans">' in fresh.get(reverse("videos-gallery")).content.decode()


def test_the_header_switch_changes_my_preferred_language(client, member):
    client.force_login(member)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert Profile.of(member).language == "zh-hans"
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert Profile.of(member).language == "en"
    assert '<html lang="en">' in client.get(reverse("videos-gallery")).content.decode()


def test_every_time_is_shown_in_my_time_zone(client, member):
    from datetime import UTC, datetime

    job = make_job(
        member, status=Status.COMPLETED, completed_at=datetime(2026, 11, 3, 23, 30, tzinfo=UTC)
    )
    client.force_login(member)
    page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert 'datetime="2026-11-03T23:30:00+00:00"' in page
    client.post(reverse("accounts-account"), {"language": "", "time_zone": "Asia/Shanghai"})
    page = client.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert 'datetime="2026-11-04T07:30:00+08:00"' in page
    # Someone else's time zone is theirs alone.
    other = Client()
    other.force_login(make_person("tz-other", "member"))
    page = other.get(reverse("videos-detail", args=[job.pk])).content.decode()
    assert 'datetime="2026-11-03T23:30:00+00:00"' in page


def test_an_unknown_time_zone_is_an_error_beside_the_field(client, member):
    client.force_login(member)
    response = client.post(reverse("accounts-account"), {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert 'id="error-time_zone"' in response.content.decode()
    assert Profile.of(member).time_zone == ""


def test_changing_my_password(client, member):
    client.force_login(member)
    wrong = client.post(
        reverse("accounts-account"),
        {
            "password-old_password": "nope",
            "password-new_password1": "a-new-long-pass-29",
            "password-new_password2": "a-new-long-pass-29",
        },
    )
    assert 'id="error-old_password"' in wrong.content.decode()
    right = client.post(
        reverse("accounts-account"),
        {
            "password-old_password": "pw-mia",
            "password-new_password1": "a-new-long-pass-29",
            "password-new_password2": "a-new-long-pass-29",
        },
    )
    assert right.status_code == 302
    # Still signed in here; the new password works elsewhere, the old one no longer.
    assert client.get(reverse("accounts-account")).status_code == 200
    member.refresh_from_db()
    assert member.check_password("a-new-long-pass-29")
    assert not member.check_password("pw-mia")


def test_my_spend_this_month_against_my_budget(client, member, other_member):
    make_job(member, status=Status.COMPLETED, final_cost=Decimal("1.20"))
    make_job(member, status=Status.IN_PROGRESS, reserved_cost=Decimal("0.40"))
    make_job(member, status=Status.FAILED, reserved_cost=Decimal("9.00"))
    make_job(other_member, status=Status.COMPLETED, final_cost=Decimal("5.00"))
    client.force_login(member)
    page = client.get(reverse("accounts-account")).content.decode()
    assert 'id="my-spend">$1.60<' in page
    assert "no monthly budget of your own" in page
    profile = Profile.of(member)
    profile.monthly_budget = Decimal("1000")
    profile.save()
    page = client.get(reverse("accounts-account")).content.decode()
    assert "spent of your $1,000.00 monthly budget; $998.40 left" in page
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    page = client.get(reverse("accounts-account")).content.decode()
    assert "US$1,000.00" in page
