"""Template context: the signed-in person's role, and what they may do on any page.

Templates ask `may.create`, `may.import`, `may.use_admin` and `may.view`; whether a job may be
deleted depends on the job, so its page gets that from the view.
"""

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from accounts.roles import ALLOWED, JOB_ACTIONS, can, role_of


def roles(request: HttpRequest) -> dict:
    # Error pages may be drawn before the authentication middleware has run.
    user = getattr(request, "user", None) or AnonymousUser()
    return {
        "role": role_of(user),
        "may": {action: can(user, action) for action in ALLOWED if action not in JOB_ACTIONS},
    }
