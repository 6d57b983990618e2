"""A person's own choices, applied to every page: their language and their time zone.

The choices live on the Profile and are copied into the session when the person signs in or
changes them, so that a page costs no query to apply them.
"""

import zoneinfo
from collections.abc import Callable
from functools import cache

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.views.i18n import set_language

from accounts.models import Profile

SESSION_LANGUAGE = "muxweb_language"
SESSION_TIME_ZONE = "muxweb_time_zone"


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows, as a browser names them (no "posix/" or "right/")."""
    return tuple(
        sorted(
            name
            for name in zoneinfo.available_timezones()
            if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix", "right"))
        )
        + ["UTC"]
    )


def remember(request: HttpRequest, profile: Profile) -> None:
    """Copy the profile's language and time zone into the session, for every later page."""
    request.session[SESSION_LANGUAGE] = profile.language
    request.session[SESSION_TIME_ZONE] = profile.time_zone


def on_login(sender, request, user, **kwargs) -> None:
    """Django's user_logged_in signal: this person's choices from now on."""
    if request is not None and hasattr(request, "session"):
        remember(request, Profile.of(user))


def apply_preferences(get_response: Callable[[HttpRequest], HttpResponse]):
    """Middleware, after the locale and authentication middleware: the signed-in person's
    language (over the browser's) and time zone for this request."""

    def middleware(request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        zone_name = session.get(SESSION_TIME_ZONE, "") if session is not None else ""
        language = session.get(SESSION_LANGUAGE, "") if session is not None else ""
        if zone_name in time_zone_names():
            timezone.activate(zoneinfo.ZoneInfo(zone_name))
        else:
            timezone.deactivate()
        if language in dict(settings.LANGUAGES):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return get_response(request)

    return middleware


def switch_language(request: HttpRequest) -> HttpResponse:
    """The header's language switch: Django's set_language, and for a signed-in person their
    preferred language too, so the choice follows them to their other browsers."""
    response = set_language(request)
    language = request.POST.get("language", "")
    user = getattr(request, "user", None)
    if (
        request.method == "POST"
        and user is not None
        and user.is_authenticated
        and language in dict(settings.LANGUAGES)
    ):
        profile = Profile.of(user)
        if profile.language != language:
            profile.language = language
            profile.save(update_fields=["language"])
        remember(request, profile)
    return response


class PreferencesForm(forms.ModelForm):
    """My account: language, time zone and browser notifications."""

    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)

    class Meta:
        model = Profile
        fields = ["language", "time_zone", "browser_notifications"]
        labels = {
            "language": _("Language"),
            "browser_notifications": _("Show a browser notification when my video is ready"),
        }
        help_texts = {
            "browser_notifications": _(
                "Your browser asks for permission once. The toast on the page appears either way."
            ),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [
            ("", _("The browser's language")),
            *[(code, name) for code, name in settings.LANGUAGES],
        ]
        server = settings.TIME_ZONE
        self.fields["time_zone"].choices = [
            ("", _("The server's (%(zone)s)") % {"zone": server}),
            *[(name, name.replace("_", " ")) for name in time_zone_names()],
        ]
