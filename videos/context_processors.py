"""Template context for the notifier every page carries: the ids of the signed-in person's own
jobs that are still running (see videos.notifications)."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.roles import can
from videos.notifications import running_ids


def notifications(request: HttpRequest) -> dict:
    # Error pages may be drawn before the authentication middleware has run.
    user = getattr(request, "user", None)
    if user is None or not can(user, "view"):
        return {}
    # Lazy: only a page that draws the notifier (base.html, created.html) asks the database; the
    # partials that pollers fetch every few seconds never do.
    return {"notifier_ids": SimpleLazyObject(lambda: running_ids(user))}
