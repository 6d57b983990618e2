"""Template context: the signed-in person's unseen mentions, for the menu's "For you" count and
the mention notifier every page carries (see review.mentions)."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.roles import can
from review.mentions import notices, toasted_upto


def mentions(request: HttpRequest) -> dict:
    # Error pages may be drawn before the authentication middleware has run.
    user = getattr(request, "user", None)
    if user is None or not can(user, "view"):
        return {}
    # Lazy: only a page that draws the menu asks the database (one query); partials never do.
    return {
        "mention_notices": SimpleLazyObject(lambda: notices(user, toasted_upto(request.session)))
    }
